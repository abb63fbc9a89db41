"""Where the dev API server can be made to fail: the points its HTTP layer consults, inert here.

The HTTP layer consults these before routing (`take_failure`, `wait_requests_resumed`), when it
answers a LIST (`take_list_fault`) or opens a watch (`take_watch_fault`), and inside watch streams
(`wait_watches_resumed`, `open_stream`). A plain DevCluster never fails; the tests' switchboard
(tests/support/faults.py) subclasses FaultPoints and is handed to `DevCluster(faults=...)`, so what
ships in the package is only these no-op answers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import trio

__all__ = ["Failure", "FaultPoints", "StreamFault"]


class StreamFault:
    """One open watch stream's fault mailbox: `action` is set, then `fired` (app.py acts on it)."""

    def __init__(self) -> None:
        self.action: str | None = None
        self.fired = trio.Event()


@dataclass(frozen=True)
class Failure:
    code: int
    reason: str
    message: str
    retry_after: int | None = None


class FaultPoints:
    """What the HTTP layer asks before and while it answers; here: never fail.

    Args:
        drop_all: cuts every open watch stream of the owning cluster (for a subclass's switch).
    """

    def __init__(self, drop_all: Callable[[], int]) -> None:
        self._drop_all = drop_all
        self.is_unavailable = False
        self.forbidden: set[str] = set()
        self.requests = 0
        """API requests received (health checks excluded), whatever their fate: lets a test count
        retries, or see that a client never got as far as a request (a failed TLS handshake)."""

    def take_failure(self) -> Failure | None:
        return None

    @property
    def requests_stalled(self) -> bool:
        return False

    async def wait_requests_resumed(self) -> None:
        return

    def take_list_fault(self) -> bool:
        return False

    def take_watch_fault(self) -> bool:
        return False

    @property
    def watches_stalled(self) -> bool:
        return False

    async def wait_watches_resumed(self) -> None:
        return

    def open_stream(self) -> StreamFault:
        """Called by a watch stream when it starts; `close_stream` when it ends."""
        return StreamFault()

    def close_stream(self, stream: StreamFault) -> None:
        pass
