"""Deterministic fault switches for the dev API server: each one is a sync method that takes effect
immediately. Use `DevCluster(faults=Faults)`; the server consults them at its FaultPoints
(k8sgw/devapi/faults.py). `drop_watches` cuts every open watch stream of the owning
cluster mid-body; `garble_watches` and `cut_watches` do so after a bad line or half a line.

    the failure                            the switch
    5xx, 429 + Retry-After, 410 on a LIST  fail_next(n, code, reason, retry_after=...)
    malformed JSON list body               garble_lists(n)
    malformed line mid-stream              garble_watches()
    stream cut mid-object                  cut_watches()
    accepts, never sends headers           stall_requests() ... resume()
    stream goes silent after headers       stall_watches() ... resume()
    repeated 410 on watches                expire_watches(n)
    down (503, health checks too)          unavailable()
    RBAC denies a resource                 forbid(resource)
    401 after the token rotates            DevCluster.set_token(new)
"""

from __future__ import annotations

from collections.abc import Callable

import trio

from k8sgw.devapi.faults import Failure, FaultPoints, StreamFault

__all__ = ["Faults"]


class Faults(FaultPoints):
    def __init__(self, drop_all: Callable[[], int]) -> None:
        super().__init__(drop_all)
        self._pending: list[Failure] = []
        self._stalled = False
        self._resumed = trio.Event()
        self._resumed.set()
        self._requests_stalled = False
        self._requests_resumed = trio.Event()
        self._requests_resumed.set()
        self._garbled_lists = 0
        self._expired_watches = 0
        self._streams: set[StreamFault] = set()
        self.stalled_requests = 0
        """Requests currently held by stall_requests()."""

    def forbid(self, resource: str, flag: bool = True) -> None:
        """While set, every request for `resource` ("dnsendpoints.externaldns.k8s.io", "services")
        gets 403 Forbidden, as if RBAC did not grant it; `forbid(resource, False)` grants it again."""
        if flag:
            self.forbidden.add(resource)
        else:
            self.forbidden.discard(resource)

    def drop_watches(self) -> int:
        """Cut every open watch stream now, without the final chunk; returns how many were cut."""
        return self._drop_all()

    def fail_next(
        self, n: int, code: int, reason: str, retry_after: int | None = None, message: str | None = None
    ) -> None:
        """The next `n` requests (any path except /healthz etc.) get this Status, e.g. 429 + Retry-After."""
        failure = Failure(code, reason, message or f"injected fault: {reason}", retry_after)
        self._pending.extend([failure] * n)

    def take_failure(self) -> Failure | None:
        return self._pending.pop(0) if self._pending else None

    def stall_watches(self) -> None:
        """Watch streams (open and new) send their headers, then nothing until `resume()`."""
        if not self._stalled:
            self._stalled = True
            self._resumed = trio.Event()

    def resume(self) -> None:
        """End stall_watches() and stall_requests()."""
        self._stalled = False
        self._resumed.set()
        self._requests_stalled = False
        self._requests_resumed.set()

    @property
    def watches_stalled(self) -> bool:
        return self._stalled

    async def wait_watches_resumed(self) -> None:
        await self._resumed.wait()

    def garble_lists(self, n: int) -> None:
        """The next `n` LIST requests get 200 with a body that is not valid JSON (cut mid-object)."""
        self._garbled_lists += n

    def take_list_fault(self) -> bool:
        if self._garbled_lists:
            self._garbled_lists -= 1
            return True
        return False

    def expire_watches(self, n: int) -> None:
        """The next `n` watch requests get 200 and one ERROR event 410 Expired (what the watch cache
        sends for a resourceVersion it no longer has), then the stream ends."""
        self._expired_watches += n

    def take_watch_fault(self) -> bool:
        if self._expired_watches:
            self._expired_watches -= 1
            return True
        return False

    def open_stream(self) -> StreamFault:
        """Called by a watch stream when it starts; `close_stream` when it ends."""
        stream = StreamFault()
        self._streams.add(stream)
        return stream

    def close_stream(self, stream: StreamFault) -> None:
        self._streams.discard(stream)

    def _fire(self, action: str) -> int:
        streams = [s for s in self._streams if s.action is None]
        for stream in streams:
            stream.action = action
            stream.fired.set()
        return len(streams)

    def garble_watches(self) -> int:
        """Every open watch stream sends a line that is not JSON, then is cut; returns how many."""
        return self._fire("garble")

    def cut_watches(self) -> int:
        """Every open watch stream sends the first half of an event line (no newline), then is cut
        mid-object; returns how many."""
        return self._fire("cut")

    def stall_requests(self) -> None:
        """New requests (health checks excepted) are accepted and read, then get no answer at all,
        not even headers, until `resume()`: an API server that hangs."""
        if not self._requests_stalled:
            self._requests_stalled = True
            self._requests_resumed = trio.Event()

    @property
    def requests_stalled(self) -> bool:
        return self._requests_stalled

    async def wait_requests_resumed(self) -> None:
        self.stalled_requests += 1
        try:
            await self._requests_resumed.wait()
        finally:
            self.stalled_requests -= 1

    def unavailable(self, flag: bool = True) -> None:
        """While set, every request (health checks included) gets 503 ServiceUnavailable."""
        self.is_unavailable = flag

    def reset(self) -> None:
        self._pending.clear()
        self._garbled_lists = self._expired_watches = 0
        self.resume()
        self.is_unavailable = False
        self.forbidden.clear()
