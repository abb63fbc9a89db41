"""The TCP server (RFC 7766): length-prefixed messages, pipelining, idle timeout, bounded connections."""

from __future__ import annotations

import logging
import struct
from typing import NoReturn

import trio

from k8sgw.dnsserver.wire import Handler, Handlers, Pending

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
            Pending (forwarded; awaited here).

    Returns:
        Never returns unless cancelled; task_status.started gets the bound (host, port).
    """
    limits = limits or TcpLimits()
    handlers = handle if isinstance(handle, Handlers) else Handlers(tcp=handle)
    sock.listen(128)
    listener = trio.SocketListener(sock)
    slots = trio.Semaphore(limits.max_connections)  # released by each connection task
    async with listener, trio.open_nursery() as nursery:
        task_status.started(sock.getsockname()[:2])
        while True:
            await slots.acquire()
            try:
                stream = await listener.accept()
            except BaseException:
                slots.release()
                raise
            nursery.start_soon(_serve_connection, stream, handlers, limits, slots)


async def _serve_connection(
    stream: trio.SocketStream, handlers: Handlers, limits: TcpLimits, slots: trio.Semaphore
) -> None:
    buffer = bytearray()
    try:
        async with stream:
            # Inside the try: a client that reset before accept() got to it leaves a socket whose
            # getpeername() fails (ENOTCONN); that costs this connection, never the server.
            peer = stream.socket.getpeername()
            while True:
                # One deadline per message, not per read: a trickler that sends a byte just
                # before each idle_timeout still has to complete a message within idle_timeout
                # (RFC 7766 §6.2.3), so it cannot hold a slot forever.
                with trio.move_on_after(limits.idle_timeout) as idle:
                    size = struct.unpack("!H", await _read_exactly(stream, buffer, 2))[0]
                    message = await _read_exactly(stream, buffer, size)
                if idle.cancelled_caught:
                    return  # idle (or a slow writer): close
                reply = handlers.tcp(message, peer)
                if isinstance(reply, Pending):
                    reply = await reply.reply()  # in order: pipelined replies keep their sequence
                if reply is None:
                    return
                # A client that pipelines queries but never reads fills the socket buffers and
                # blocks this write; without a bound it would hold its slot forever.
                with trio.move_on_after(limits.idle_timeout) as write:
                    await stream.send_all(struct.pack("!H", len(reply)) + reply)
                if write.cancelled_caught:
                    return  # not reading its replies: close
    except (trio.BrokenResourceError, trio.ClosedResourceError, EOFError, OSError):
        pass  # the client went away (or reset before we could serve it)
    except Exception:
        logger.exception("TCP connection failed")
    finally:
        slots.release()


async def _read_exactly(stream: trio.SocketStream, buffer: bytearray, n: int) -> bytes:
    """n bytes from stream; what arrives beyond them stays in buffer for the next (pipelined) message."""
    while len(buffer) < n:
        chunk = await stream.receive_some(65536)
        if not chunk:
            raise EOFError
        buffer += chunk
    out = bytes(buffer[:n])
    del buffer[:n]
    return out
