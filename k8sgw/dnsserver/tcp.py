"""The TCP server (RFC 7766): length-prefixed messages, pipelining, idle timeout, bounded connections."""

from __future__ import annotations

import errno
import logging
import struct
from typing import NoReturn

import trio

from k8sgw.dnsserver.forward import LOCAL_SHORTAGE_ERRNOS, Pending
from k8sgw.dnsserver.sockets import TCP_BACKLOG
from k8sgw.dnsserver.throttle import LogThrottle, repeats_note
from k8sgw.dnsserver.wire import Handler, Handlers, Outbound

__all__ = ["TcpLimits", "serve_tcp"]

logger = logging.getLogger(__name__)


class TcpLimits:
    """Bounds on TCP clients.

    Attributes:
        idle_timeout: seconds a connection may take to deliver its next whole message (length
            prefix and body: a deadline per message, not per read, so a client trickling a byte at a
            time is closed too), and seconds a reply may wait for the client to read it. CoreDNS's
            read timeout is 10 s and RFC 7766 §6.2.3 asks for "a few seconds" at least.
        max_connections: connections served at once; more wait in the listen backlog until one
            closes, so a flood of idle clients costs at most idle_timeout each.
    """

    def __init__(self, idle_timeout: float = 10.0, max_connections: int = 1000) -> None:
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections


async def serve_tcp(
    sock: trio.socket.SocketType,
    handle: Handler | Handlers,
    *,
    limits: TcpLimits | None = None,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Serve DNS over TCP on a bound socket (sockets.bind_dns_sockets), which it closes when done.

    Args:
        handle: (query bytes, client address) → reply bytes, None (no reply; the connection is then closed), or
            a Deferred reply (forwarded; awaited here).

    Returns:
        Never returns unless cancelled; task_status.started gets the bound (host, port).

    Error handling: when accept() fails for want of a resource (no file descriptor or kernel
    memory left), new connections wait in the listen backlog and accept is tried again every
    ACCEPT_RETRY seconds, as trio's serve_listeners does: TCP is shed while UDP, which needs no new
    descriptor, goes on answering.
    """
    limits = limits or TcpLimits()
    handlers = handle if isinstance(handle, Handlers) else Handlers(tcp=handle)
    sock.listen(TCP_BACKLOG)  # again for a socket bound elsewhere (a no-op when listening)
    listener = trio.SocketListener(sock)
    slots = trio.Semaphore(limits.max_connections)  # released by each connection task
    async with listener, trio.open_nursery() as nursery:
        task_status.started(sock.getsockname()[:2])
        while True:
            await slots.acquire()
            try:
                stream = await listener.accept()
            except OSError as exc:
                slots.release()
                if exc.errno not in ACCEPT_CAPACITY_ERRNOS:
                    raise
                held_back = _accept_failures.report((_address(sock), exc.errno))
                if held_back is not None:
                    logger.warning(
                        "TCP accept on %s failed: %s (%s); new TCP connections wait, UDP is still served%s",
                        _address(sock), errno.errorcode[exc.errno], exc.strerror, repeats_note(held_back),
                    )
                await trio.sleep(ACCEPT_RETRY)
                continue
            except BaseException:
                slots.release()
                raise
            nursery.start_soon(_serve_connection, stream, handlers, limits, slots)


# accept() errors that say the process or the kernel is out of something, and pass.
ACCEPT_CAPACITY_ERRNOS = LOCAL_SHORTAGE_ERRNOS
ACCEPT_RETRY = 0.1  # seconds; trio's serve_listeners waits as long
_accept_failures = LogThrottle(60.0)


def _address(sock: trio.socket.SocketType) -> str:
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# Replies answered from one read before they are written together: a pipelining client gets one
# send per batch instead of one per message, and a flood still yields to other tasks between batches.
MAX_BATCH = 64


async def _serve_connection(
    stream: trio.SocketStream, handlers: Handlers, limits: TcpLimits, slots: trio.Semaphore
) -> None:
    buffer = bytearray()
    try:
        async with stream:
            # Inside the try: a client that reset before accept() got to it leaves a socket whose
            # getpeername() fails (ENOTCONN); that costs this connection, never the server.
            peer = stream.socket.getpeername()
            deadline = None  # when the message being received must be complete
            while True:
                replies = await _answer_buffered(buffer, handlers, peer, stream, limits)
                if replies is None:
                    return  # a reply is to be dropped, or the client does not read: close
                if replies:
                    deadline = None  # the clock starts again for the next message
                    if not await _send(stream, replies, limits):
                        return
                    continue
                # One deadline per message, not per read: a trickler that sends a byte just
                # before each idle_timeout still has to complete a message within idle_timeout
                # (RFC 7766 §6.2.3), so it cannot hold a slot forever.
                if deadline is None:
                    deadline = trio.current_time() + limits.idle_timeout
                with trio.move_on_at(deadline):
                    chunk = await stream.receive_some(65536)
                    if not chunk:
                        return
                    buffer += chunk
                    continue
                return  # idle (or a slow writer): close
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass  # the client went away (or reset before we could serve it)
    except Exception:
        logger.exception("TCP connection failed")
    finally:
        slots.release()


async def _answer_buffered(
    buffer: bytearray, handlers: Handlers, peer, stream: trio.SocketStream, limits: TcpLimits
) -> bytearray | None:
    """Answer the whole messages at the start of buffer (at most MAX_BATCH), removing them.

    Returns:
        Their framed replies, in order (empty when no whole message is buffered), or None when
        the connection must close.
    """
    replies = bytearray()
    offset = 0
    for _ in range(MAX_BATCH):
        if len(buffer) - offset < 2:
            break
        size = (buffer[offset] << 8) | buffer[offset + 1]
        end = offset + 2 + size
        if len(buffer) < end:
            break
        message = bytes(buffer[offset + 2 : end])
        offset = end
        reply = handlers.tcp(message, peer)
        if type(reply) is Outbound:
            # A zone transfer: what is ready goes first, then its messages one by one.
            if replies and not await _send(stream, replies, limits):
                return None
            replies = bytearray()
            if not await _send_all_messages(stream, reply, limits):
                return None
            continue
        if type(reply) is Pending and reply.done is not None:
            reply = reply.done  # forwarded, answered without I/O
        elif reply is not None and type(reply) is not bytes:  # Deferred: a Pending, or one wrapped
            # In order: pipelined replies keep their sequence. What is ready goes out first, so
            # answers k8sgw gives itself never wait behind a slow upstream.
            if replies and not await _send(stream, replies, limits):
                return None
            replies = bytearray()
            reply = await reply.reply()
        if reply is None:
            if replies:
                await _send(stream, replies, limits)
            return None
        replies += struct.pack("!H", len(reply))
        replies += reply
    del buffer[:offset]
    return replies


async def _send_all_messages(stream: trio.SocketStream, outbound: Outbound, limits: TcpLimits) -> bool:
    """Send a transfer's messages, each packed just before it is sent, so a transfer of any size
    holds the event loop for one message at a time and the rest of the server goes on between."""
    sent, complete = 0, False
    try:
        for message in outbound.messages():
            if not await _send(stream, bytearray(struct.pack("!H", len(message)) + message), limits):
                return False
            sent += 1
        complete = True
        return True
    finally:
        outbound.finished(sent, complete)


async def _send(stream: trio.SocketStream, data: bytearray, limits: TcpLimits) -> bool:
    """Write data; False when the client did not take it within idle_timeout."""
    # A client that pipelines queries but never reads fills the socket buffers and blocks this
    # write; without a bound it would hold its slot forever.
    with trio.move_on_after(limits.idle_timeout):
        await stream.send_all(data)
        return True
    return False
