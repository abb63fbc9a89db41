"""The UDP server: one socket, one task, replies in arrival order.

The loop reads and answers a batch at a time: up to 64 datagrams per recvmmsg and their replies in
one sendmmsg (the optional C module _mmsg, built on Linux at install), or one recvfrom/sendto per
datagram where that module is missing. Most of a query's cost under load is those system calls,
so batching them is what lets one Python process keep pace with NSD (measured in README
"Performance").
"""

from __future__ import annotations

import logging
import os
import socket
from typing import NoReturn

import trio

from k8sgw.dnsserver.forward import Pending
from k8sgw.dnsserver.wire import Deferred, Handler, Handlers

try:
    from k8sgw.dnsserver import _mmsg
except ImportError:  # not built: no C compiler at install, or not Linux
    _mmsg = None

__all__ = ["BATCHED_IO", "serve_udp"]

# Whether serve_udp batches by default (the benchmark reports it). K8SGW_UDP_BATCH=0 turns it off:
# to measure the difference, or where a sandbox refuses recvmmsg.
BATCHED_IO = _mmsg is not None and os.environ.get("K8SGW_UDP_BATCH", "1") != "0"

logger = logging.getLogger(__name__)

MAX_DATAGRAM = 65535
# Datagrams answered between two checkpoints. Small enough that other tasks wait at most a few
# milliseconds under a flood, large enough that yielding costs nothing measurable.
FAIRNESS_BATCH = 64


async def serve_udp(
    sock: trio.socket.SocketType,
    handle: Handler | Handlers,
    *,
    batched: bool = BATCHED_IO,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Serve DNS over UDP on a bound socket (sockets.bind_dns_sockets), which it closes when done.

    Args:
        handle: a Handler, or Handlers whose `udp` is looked up per datagram (so it can be
            swapped while serving): (query bytes, client address) → reply bytes (already fitted
            to the client's payload size), None to drop, or a Deferred reply (forwarded): sent
            from a task of its own when it is ready, so one slow upstream never holds up the
            answers k8sgw gives itself; a Pending already `done` is sent with the batch.
        batched: read and write with recvmmsg/sendmmsg (the default where _mmsg is built), else
            with recvfrom/sendto.

    Returns:
        Never returns unless cancelled; task_status.started gets the bound (host, port).

    Error handling: a failing handler or a send error costs that one datagram, never the loop.
    """
    if batched and _mmsg is None:
        raise RuntimeError("batched UDP I/O needs k8sgw.dnsserver._mmsg, which was not built")
    with sock:
        # The loop reads the plain socket without blocking and waits for readability only when
        # it is empty: a trio socket call is a scheduler round trip per datagram, which under load
        # costs more than answering from the fast path does.
        raw = socket.socket(sock.family, sock.type, sock.proto, fileno=sock.detach())
        raw.setblocking(False)
        with raw:
            async with trio.open_nursery() as pending:
                task_status.started(raw.getsockname()[:2])
                await _serve(raw, handle if isinstance(handle, Handlers) else Handlers(udp=handle), pending, batched)


async def _serve(sock: socket.socket, handlers: Handlers, pending: trio.Nursery, batched: bool) -> NoReturn:
    # Hot loop: functions in locals, the handler looked up per batch (a reload swaps it).
    receive, send = (_mmsg.recvmmsg, _mmsg.sendmmsg) if batched else (_recvfrom_some, _sendto_some)
    wait_readable, checkpoint = trio.lowlevel.wait_readable, trio.lowlevel.checkpoint
    budget = FAIRNESS_BATCH
    while True:
        try:
            batch = receive(sock)
        except BlockingIOError:
            await wait_readable(sock)
            budget = FAIRNESS_BATCH  # that wait was a checkpoint already
            continue
        except (ConnectionResetError, ConnectionRefusedError):
            continue  # an ICMP error about an earlier reply
        handle = handlers.udp
        replies = []
        add = replies.append
        for data, addr in batch:
            try:
                reply = handle(data, addr)
            except Exception:
                logger.exception("UDP query from %s failed", addr[0])
                continue
            if type(reply) is bytes:
                add((reply, addr))
            elif type(reply) is Pending and reply.done is not None:
                add((reply.done, addr))  # forwarded, but answered without I/O: no task
            elif reply is not None:
                pending.start_soon(_reply_later, sock, reply, addr)
        done = 0
        while done < len(replies):
            try:
                done += send(sock, replies, done)
            except BlockingIOError:
                await trio.lowlevel.wait_writable(sock)  # the send buffer is full: wait for room
            except (OSError, ValueError) as exc:
                logger.debug("UDP reply to %s failed: %s", replies[done][1][0], exc)
                done += 1  # the kernel refused this one reply: the others still go
        budget -= len(batch)
        if budget <= 0:
            # A flood never starves the watchers, the indexer or TCP clients of the CPU.
            budget = FAIRNESS_BATCH
            await checkpoint()


# recvmmsg and sendmmsg's contracts (see _mmsg.c), one system call per datagram: the loop without
# the C module.


def _recvfrom_some(sock: socket.socket) -> list[tuple[bytes, tuple]]:
    batch = []
    try:
        for _ in range(FAIRNESS_BATCH):
            batch.append(sock.recvfrom(MAX_DATAGRAM))
    except (BlockingIOError, ConnectionResetError, ConnectionRefusedError):
        if not batch:
            raise
    return batch


def _sendto_some(sock: socket.socket, replies: list[tuple[bytes, tuple]], start: int) -> int:
    for i in range(start, len(replies)):
        try:
            sock.sendto(*replies[i])
        except OSError:
            if i == start:
                raise
            return i - start
    return len(replies) - start


async def _reply_later(sock: socket.socket, pending: Deferred, addr) -> None:
    await _send(sock, await pending.reply(), addr)


async def _send(sock: socket.socket, reply: bytes, addr) -> None:
    """Send, waiting for room in the send buffer when it is full."""
    try:
        while True:
            try:
                sock.sendto(reply, addr)
                return
            except BlockingIOError:
                await trio.lowlevel.wait_writable(sock)
    except OSError as exc:
        logger.debug("UDP reply to %s failed: %s", addr[0], exc)
