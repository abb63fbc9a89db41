"""A TCP relay between k8sgw and the API server that a test can cut and hold, to drop watch streams
the way a restarted load balancer or apiserver does (the TLS inside passes through untouched)."""

from __future__ import annotations

from functools import partial

import trio


class Relay:
    """Forwards 127.0.0.1:<port> to `upstream`; `cut()` closes every open connection, and while
    `held` new connections wait (accepted, nothing forwarded) until `release()`."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = 0
        self.connections = 0
        self._open: set[trio.CancelScope] = set()
        self._released = trio.Event()
        self._released.set()

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started(self.port)
        await trio.serve_listeners(self._handle, listeners)

    def cut(self) -> None:
        for scope in list(self._open):
            scope.cancel()

    def hold(self) -> None:
        self._released = trio.Event()

    def release(self) -> None:
        self._released.set()

    async def _handle(self, client: trio.SocketStream) -> None:
        with trio.CancelScope() as scope:
            self._open.add(scope)
            try:
                await self._released.wait()
                self.connections += 1
                server = await trio.open_tcp_stream(*self.upstream)
                async with client, server, trio.open_nursery() as nursery:
                    nursery.start_soon(partial(_pump, client, server, nursery.cancel_scope))
                    nursery.start_soon(partial(_pump, server, client, nursery.cancel_scope))
            finally:
                self._open.discard(scope)
        await client.aclose()


async def _pump(src: trio.SocketStream, dst: trio.SocketStream, done: trio.CancelScope) -> None:
    try:
        while data := await src.receive_some(65536):
            await dst.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    done.cancel()
