"""Deterministic fault switches for tests: each one is a sync method that takes effect immediately.

The HTTP layer consults these before routing (`take_failure`) and inside watch streams
(`wait_watches_resumed`). `drop_watches` cuts every open watch stream of the owning cluster mid-body.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import trio

__all__ = ["Failure", "Faults"]


@dataclass(frozen=True)
class Failure:
    code: int
    reason: str
    message: str
    retry_after: int | None = None


class Faults:
    def __init__(self, drop_all: Callable[[], int]) -> None:
        self._drop_all = drop_all
        self._pending: list[Failure] = []
        self._stalled = False
        self._resumed = trio.Event()
        self._resumed.set()
        self.is_unavailable = False
        self.forbidden: set[str] = set()

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
        self._stalled = False
        self._resumed.set()

    @property
    def watches_stalled(self) -> bool:
        return self._stalled

    async def wait_watches_resumed(self) -> None:
        await self._resumed.wait()

    def unavailable(self, flag: bool = True) -> None:
        """While set, every request (health checks included) gets 503 ServiceUnavailable."""
        self.is_unavailable = flag

    def reset(self) -> None:
        self._pending.clear()
        self.resume()
        self.is_unavailable = False
        self.forbidden.clear()
