"""The `logs` fixture of tests/conftest.py, plus waiting for a number of matching lines."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from tests.conftest import LogWaiter


class LogCounter(LogWaiter):
    def count(self, match: Callable[[str], bool], since: int = 0) -> int:
        return sum(1 for line in self.lines[since:] if match(line))

    async def wait_count(self, match: Callable[[str], bool], n: int, since: int = 0) -> None:
        """Until at least n lines (from index `since` on) satisfy match, woken by each record."""
        while self.count(match, since) < n:
            await self._event.wait()


@pytest.fixture
def logs():
    """k8sgw's own log lines (not httpx's), every level; also waits for a count of lines."""
    counter = LogCounter()
    ours = logging.getLogger("k8sgw")
    old_level = ours.level
    ours.addHandler(counter)
    ours.setLevel(logging.DEBUG)
    yield counter
    ours.removeHandler(counter)
    ours.setLevel(old_level)


@pytest.fixture
def cluster():
    """The seeded dev cluster, with a BOOKMARK every 0.1 s: the tests' watch inactivity timeout is
    0.5 s, and a quiet watch must not look stalled (production: 60 s bookmarks, 150 s timeout)."""
    from k8sgw.devapi.store import DevCluster
    from tests.conftest import EXAMPLES

    c = DevCluster(bookmark_interval=0.1)
    c.load_manifests(sorted((EXAMPLES / "seed").glob("*.yaml")))
    return c
