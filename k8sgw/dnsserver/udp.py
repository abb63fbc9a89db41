"""The UDP server: one socket, one task, replies in arrival order."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import NoReturn

import trio

from k8sgw.dnsserver.wire import Pending

__all__ = ["serve_udp"]

logger = logging.getLogger(__name__)

MAX_DATAGRAM = 65535


async def serve_udp(
    sock: trio.socket.SocketType,
    handle: Callable[[bytes], bytes | Pending | None],
    *,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Serve DNS over UDP on a bound socket (sockets.bind_dns_sockets), which it closes when done.

    Args:
        handle: query bytes → reply bytes (already fitted to the client's payload size), None to
            drop, or Pending (forwarded): its reply is sent from a task of its own when it is ready,
            so one slow upstream never holds up the answers k8sgw gives itself.

    Returns:
        Never returns unless cancelled; task_status.started gets the bound (host, port).

    Error handling: a failing handler or a send error costs that one datagram, never the loop.
    """
    with sock:
        async with trio.open_nursery() as pending:
            task_status.started(sock.getsockname()[:2])
            await _serve(sock, handle, pending)


async def _serve(
    sock: trio.socket.SocketType, handle: Callable[[bytes], bytes | Pending | None], pending: trio.Nursery
) -> NoReturn:
    while True:
        try:
            data, addr = await sock.recvfrom(MAX_DATAGRAM)
        except ConnectionResetError:
            continue  # an ICMP port-unreachable from an earlier reply (Windows/Linux quirk)
        try:
            reply = handle(data)
        except Exception:
            logger.exception("UDP query from %s failed", addr[0])
            continue
        if isinstance(reply, Pending):
            pending.start_soon(_reply_later, sock, reply, addr)
        elif reply is not None:
            await _send(sock, reply, addr)


async def _reply_later(sock: trio.socket.SocketType, pending: Pending, addr) -> None:
    await _send(sock, await pending.reply(), addr)


async def _send(sock: trio.socket.SocketType, reply: bytes, addr) -> None:
    try:
        await sock.sendto(reply, addr)
    except OSError as exc:
        logger.debug("UDP reply to %s failed: %s", addr[0], exc)
