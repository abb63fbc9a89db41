"""serve_ops: a tiny HTTP/1.1 server for the operations endpoints (GET and HEAD only).

Probes and scrapers send one small request at a time, so this is h11 over trio streams rather
than an ASGI stack: a route is a plain function called at request time that returns
``(status, content_type, body)``. It must never be taken down by a client: malformed requests get
400, unknown paths 404, other methods 405, a raising route 500 (logged), and every connection has
an idle timeout and a cap on how many may be open.

Must not import the DNS servers or the Kubernetes client; routes close over what they report on.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from typing import NoReturn
from urllib.parse import parse_qsl

import h11
import trio

__all__ = [
    "MAX_CONNECTIONS",
    "READ_TIMEOUT",
    "ListenError",
    "QueryRoute",
    "Route",
    "RouteTable",
    "open_ops_listeners",
    "serve_ops",
    "serve_ops_listeners",
]

logger = logging.getLogger(__name__)

Route = Callable[[], tuple[int, str, bytes]]
"""Called per request: returns (HTTP status, Content-Type, body)."""


@dataclass(frozen=True)
class QueryRoute:
    """A route that reads the query string: `handle` gets its parameters (the last of a repeated one)."""

    handle: Callable[[dict[str, str]], tuple[int, str, bytes]]


READ_TIMEOUT = 10.0
"""Seconds a connection may take to send a request (and may sit idle between keep-alive requests);
kubelet probes time out after 1 s by default, Prometheus after 10 s."""

MAX_CONNECTIONS = 64
"""Open connections at once; more are closed at once. Probes and a scraper or two need a handful."""

_MAX_REQUEST_BYTES = 16 * 1024  # request line + headers; nothing here takes a body
_TEXT = "text/plain; charset=utf-8"


class ListenError(OSError):
    """An address that cannot be listened on, said as CoreDNS says it: ``listen tcp 127.0.0.1:8080:
    address already in use`` (no ``[Errno 98]``, and the address named)."""

    def __str__(self) -> str:
        return self.strerror or super().__str__()


def listen_error(exc: OSError, proto: str, host: str | None, port: int) -> ListenError:
    """`exc` from binding host:port, as a ListenError naming the protocol and the address."""
    reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
    if exc.errno == errno.EADDRINUSE:
        reason = "address already in use"
    shown = f"[{host}]" if host and ":" in host else host or ""
    return ListenError(exc.errno or 0, f"listen {proto} {shown}:{port}: {reason}")


class RouteTable(Mapping[str, Route | QueryRoute]):
    """The routes one listener serves, looked up per request, so a reload swaps them in one
    assignment while connections stay open."""

    def __init__(self, routes: Mapping[str, Route | QueryRoute] | None = None) -> None:
        self.routes: Mapping[str, Route | QueryRoute] = routes or {}

    def __getitem__(self, path: str) -> Route | QueryRoute:
        return self.routes[path]

    def __iter__(self) -> Iterator[str]:
        return iter(self.routes)

    def __len__(self) -> int:
        return len(self.routes)


async def open_ops_listeners(host: str | None, port: int) -> list[trio.SocketListener]:
    """Listening sockets on host:port (``""`` or None: every address; port 0: any free port).

    Raises:
        ListenError: the address cannot be bound.
    """
    try:
        return await trio.open_tcp_listeners(port, host=host or None)
    except OSError as exc:
        raise listen_error(exc, "tcp", host, port) from exc


async def serve_ops_listeners(
    listeners: list[trio.SocketListener],
    routes: Mapping[str, Route | QueryRoute],
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Serve GET/HEAD ``routes`` on listeners from open_ops_listeners until cancelled (closes them)."""
    limiter = trio.CapacityLimiter(MAX_CONNECTIONS)
    handler = partial(_handle, routes=routes, limiter=limiter)
    await trio.serve_listeners(handler, listeners, task_status=task_status)
    raise AssertionError("unreachable")  # pragma: no cover


async def serve_ops(
    host: str | None,
    port: int,
    routes: Mapping[str, Route | QueryRoute],
    *,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Serve GET/HEAD ``routes`` (path → Route) on host:port until cancelled.

    Args:
        host: IP address or host name; ``""`` or None = every address (IPv4 and IPv6).
        port: 0 = any free port (with one host; every address may get one port per family).
        routes: exact paths (``"/health"``); the query string is ignored, except by a QueryRoute.

    Calls ``task_status.started((host, port))`` with the first bound address once listening.
    Never returns unless cancelled.

    Raises:
        ListenError: the address cannot be bound.
    """
    listeners = await open_ops_listeners(host, port)
    bound = listeners[0].socket.getsockname()[:2]
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_ops_listeners, listeners, routes)
        task_status.started(bound)
    raise AssertionError("unreachable")  # pragma: no cover


async def _handle(stream: trio.SocketStream, *, routes: Mapping[str, Route | QueryRoute], limiter: trio.CapacityLimiter) -> None:
    """One connection; catches its own errors (a raising handler would stop serve_listeners)."""
    try:
        limiter.acquire_nowait()
    except trio.WouldBlock:
        await _close(stream)
        return
    try:
        await _serve_connection(stream, routes)
    except (trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError):
        pass  # the client went away or was too slow: nothing to tell it
    except Exception:
        logger.exception("ops HTTP connection failed")
    finally:
        limiter.release()
        await _close(stream)


async def _close(stream: trio.SocketStream) -> None:
    with trio.move_on_after(1) as scope:
        scope.shield = True
        await stream.aclose()


async def _serve_connection(stream: trio.SocketStream, routes: Mapping[str, Route | QueryRoute]) -> None:
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_REQUEST_BYTES)
    while True:
        try:
            event = await _next_event(stream, conn)
        except h11.RemoteProtocolError as exc:
            if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                await _send(stream, conn, exc.error_status_hint, _TEXT, b"Bad Request\n", head=False)
            return
        if isinstance(event, h11.ConnectionClosed):
            return
        if not isinstance(event, h11.Request):  # pragma: no cover - _next_event returns only these
            return
        status, content_type, body = _respond(event, routes)
        head = event.method == b"HEAD"
        # Drain the (unexpected) request body so the connection can be reused.
        while not isinstance(await _next_event(stream, conn), h11.EndOfMessage):
            pass
        await _send(stream, conn, status, content_type, body, head=head)
        if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
            return
        try:
            conn.start_next_cycle()
        except h11.LocalProtocolError:
            return


async def _next_event(stream: trio.SocketStream, conn: h11.Connection):
    with trio.fail_after(READ_TIMEOUT):
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await stream.receive_some(8192)
                conn.receive_data(data)  # b"" = the peer closed
                continue
            return event


def _respond(request: h11.Request, routes: Mapping[str, Route | QueryRoute]) -> tuple[int, str, bytes]:
    if request.method not in (b"GET", b"HEAD"):
        return 405, _TEXT, b"Method Not Allowed\n"
    target, _, query = request.target.partition(b"?")
    path = target.decode("ascii", "replace")
    route = routes.get(path)
    if route is None:
        return 404, _TEXT, b"404 page not found\n"
    try:
        if isinstance(route, QueryRoute):
            return route.handle(dict(parse_qsl(query.decode("ascii", "replace"))))
        return route()
    except Exception:
        logger.exception("ops endpoint %s failed", path)
        return 500, _TEXT, b"Internal Server Error\n"


async def _send(
    stream: trio.SocketStream, conn: h11.Connection, status: int, content_type: str, body: bytes, *, head: bool
) -> None:
    headers = [
        ("Content-Type", content_type),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
    ]
    if status == 405:
        headers.append(("Allow", "GET, HEAD"))
    if status >= 400 and status != 404 and status != 405:
        headers.append(("Connection", "close"))
    data = conn.send(h11.Response(status_code=status, headers=headers))
    if not head:
        data += conn.send(h11.Data(data=body))
    data += conn.send(h11.EndOfMessage())
    with trio.fail_after(READ_TIMEOUT):
        await stream.send_all(data)
