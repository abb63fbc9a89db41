"""What the dev API server does for its clients, counted from outside it: an ASGI wrapper around
DevApiApp, and the server run on a trio loop of its own thread so its CPU time is its own.

Counting happens at the ASGI boundary, so the dev API server's code and behaviour stay as they are:
bytes are response bodies as the app hands them to hypercorn (JSON lists, one watch event per
chunk); HTTP headers and chunked framing are not in them. Clients are told apart by the loopback
address they connect to (the server listens on one per client: 127.0.0.1, 127.0.0.2, ...), so a
replica's requests are its own without anything added to them (k8sgw, like client-go, sends no
credentials over plain http).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

import hypercorn.trio
import trio
from hypercorn.config import Config

from k8sgw.devapi.app import DevApiApp
from k8sgw.devapi.store import DevCluster

__all__ = ["ApiTally", "ClientTally", "CountingApp", "DevApiThread"]

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
T = TypeVar("T")

_LIST_BODY = re.compile(rb'^\{"kind":"\w+List"')  # app.py's list body starts with its kind
_BOOKMARK = b'{"type":"BOOKMARK"'
UNKNOWN = "(unknown)"


@dataclass
class ClientTally:
    """One client's requests and the response-body bytes it was sent."""

    lists: int = 0  # list pages (GET of a collection answered with a *List body)
    list_starts: int = 0  # of which first pages (no `continue`): one per kind listed
    watches: int = 0  # watch requests answered 200
    other: int = 0  # discovery, errors, anything else
    list_bytes: int = 0
    watch_events: int = 0  # ADDED/MODIFIED/DELETED/ERROR lines
    watch_event_bytes: int = 0
    bookmarks: int = 0
    bookmark_bytes: int = 0
    other_bytes: int = 0
    open_watches: int = 0  # streams answered and not yet finished
    connections: set[tuple[str, int]] = field(default_factory=set)

    @property
    def requests(self) -> int:
        return self.lists + self.watches + self.other

    def copy(self) -> ClientTally:
        return ClientTally(**{**self.__dict__, "connections": set(self.connections)})


@dataclass
class ApiTally:
    """Per-client tallies, keyed by the address the client connected to. Owned by the dev API server's thread: read it
    there (DevApiThread.call(tally.snapshot)), not from another thread while it serves."""

    clients: dict[str, ClientTally] = field(default_factory=dict)
    paths: Counter[str] = field(default_factory=Counter)  # "GET /api/v1/services watch" → requests

    def client(self, key: str) -> ClientTally:
        return self.clients.setdefault(key, ClientTally())

    def snapshot(self) -> ApiTally:
        return ApiTally({k: c.copy() for k, c in self.clients.items()}, Counter(self.paths))

    def total(self) -> ClientTally:
        out = ClientTally()
        for c in self.clients.values():
            for name, value in c.__dict__.items():
                if name == "connections":
                    out.connections |= value
                else:
                    setattr(out, name, getattr(out, name) + value)
        return out


def _listener(scope: Scope) -> str:
    server = scope.get("server")
    return str(server[0]) if server else UNKNOWN


class CountingApp:
    """ASGI middleware: passes every message through unchanged and tallies it on the way."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], tally: ApiTally) -> None:
        self.app, self.tally = app, tally

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        params = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        watch = params.get("watch") in ("true", "1", "True")
        c = self.tally.client(_listener(scope))
        client = scope.get("client")
        if client:
            c.connections.add((str(client[0]), int(client[1])))
        self.tally.paths[f"{scope['method']} {scope['path']}{' watch' if watch else ''}"] += 1
        kind: str | None = None  # "list" | "watch" | "other", decided by the response
        streaming = False

        async def counted(message: Message) -> None:
            nonlocal kind, streaming
            if message["type"] == "http.response.start":
                if watch and message.get("status") == 200:
                    kind, streaming = "watch", True
                    c.watches += 1
                    c.open_watches += 1
            elif message["type"] == "http.response.body":
                body = message.get("body", b"")
                if kind is None:
                    kind = "list" if _LIST_BODY.match(body) else "other"
                    if kind == "list":
                        c.lists += 1
                        c.list_starts += "continue" not in params
                    else:
                        c.other += 1
                if kind == "list":
                    c.list_bytes += len(body)
                elif kind == "watch" and body:
                    if body.startswith(_BOOKMARK):
                        c.bookmarks += 1
                        c.bookmark_bytes += len(body)
                    else:
                        c.watch_events += 1
                        c.watch_event_bytes += len(body)
                elif kind == "other":
                    c.other_bytes += len(body)
            await send(message)

        try:
            await self.app(scope, receive, counted)
        finally:
            if streaming:
                c.open_watches -= 1


def _config(hosts: Sequence[str]) -> Config:
    """As serve_devapi configures hypercorn for plain HTTP: HTTP/1.1 (watches are chunked bodies)."""
    config = Config()
    config.bind = [f"{host}:0" for host in hosts]
    config.alpn_protocols = ["http/1.1"]
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")  # the caller's logging, not a second handler
    config.graceful_timeout = 0.5  # open watch streams never finish on their own
    return config


class DevApiThread:
    """The dev API server over a DevCluster `build()` makes, on its own thread and trio loop.

    Its own thread, so the thread's CPU clock is the dev API server's CPU time alone: the harness's
    DNS polling and the replicas' start-up run elsewhere. Everything touching the DevCluster or the
    tally runs on that thread's loop (`call`), which owns them.
    """

    def __init__(self, build: Callable[[], DevCluster], hosts: Sequence[str] = ("127.0.0.1",)) -> None:
        self.build, self.hosts = build, tuple(hosts)
        self.tally = ApiTally()
        self.urls: dict[str, str] = {}  # listening host → base URL
        self.cluster: DevCluster | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._cancel: trio.CancelScope | None = None
        self._thread = threading.Thread(target=self._run, name="devapi", daemon=True)

    async def start(self) -> dict[str, str]:
        """Build the cluster and start serving; returns {host: base URL} once bound."""
        self._thread.start()
        await trio.to_thread.run_sync(self._ready.wait)
        if self._error is not None or not self.urls:
            raise RuntimeError("dev API server did not start") from self._error
        return self.urls

    def _run(self) -> None:
        try:
            trio.run(self._serve)
        except BaseException as exc:  # reported by start() or stop()
            self._error = exc
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        self.cluster = self.build()  # on this thread: the DevCluster's trio objects belong to its loop
        self._token = trio.lowlevel.current_trio_token()
        with trio.CancelScope() as self._cancel:
            async with trio.open_nursery() as nursery:
                app = CountingApp(DevApiApp(self.cluster), self.tally)
                binds = await nursery.start(hypercorn.trio.serve, app, _config(self.hosts))
                self.urls = {urlsplit(url).hostname or "": url for url in binds}
                self._ready.set()

    def cpu_s(self) -> float:
        """CPU seconds the dev API server's thread has used so far."""
        ident = self._thread.ident
        if ident is None:
            return 0.0
        return time.clock_gettime(time.pthread_getcpuclockid(ident))

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(*args) on the dev API server's loop and return its result."""
        token = self._token
        if token is None:
            raise RuntimeError("dev API server not running")
        return await trio.to_thread.run_sync(
            lambda: trio.from_thread.run_sync(fn, *args, trio_token=token)
        )

    async def stop(self) -> None:
        """Stop serving and wait for the thread; raises what the server failed with, if it did."""
        if self._token is not None and self._cancel is not None and self._thread.is_alive():
            cancel = self._cancel.cancel
            await self.call(cancel)
        await trio.to_thread.run_sync(self._thread.join)
        if self._error is not None:
            raise RuntimeError("dev API server failed") from self._error
