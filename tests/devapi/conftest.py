"""Fixtures: a seeded DevCluster served on 127.0.0.1:0, an httpx client, and a watch-line reader."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

import k8sgw
from k8sgw.devapi import DevCluster, serve_devapi
from tests.support.faults import Faults

EXAMPLES = Path(k8sgw.__file__).parent / "examples"
SEED = EXAMPLES / "seed"


@pytest.fixture
def cluster() -> DevCluster:
    cluster = DevCluster(bookmark_interval=0.2, faults=Faults)
    cluster.load_manifests([SEED])
    return cluster


@pytest.fixture
async def base_url(nursery, cluster: DevCluster) -> str:
    return await nursery.start(partial(serve_devapi, cluster))


@pytest.fixture
async def client(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(5.0, read=None)) as client:
        yield client


class EventReader:
    """Split a watch body on b"\\n" only (KUBEAPI.md §0.7) and decode one event per line.

    Use as `async with EventReader(response) as events:` so the byte iterator is closed."""

    def __init__(self, response: httpx.Response) -> None:
        self._chunks = response.aiter_bytes()
        self._buffer = b""

    async def __aenter__(self) -> EventReader:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._chunks.aclose()

    async def next(self) -> dict[str, Any]:
        while b"\n" not in self._buffer:
            self._buffer += await self._chunks.__anext__()
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    async def rest(self) -> list[dict[str, Any]]:
        """Every remaining event until the server ends the stream."""
        events = []
        async for chunk in self._chunks:
            self._buffer += chunk
        for line in self._buffer.split(b"\n"):
            if line:
                events.append(json.loads(line))
        self._buffer = b""
        return events


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # httpx/httpcore stream bodies through a chain of nested async generators; closing a watch response
    # early leaves the inner ones to the GC, and trio's finalizer warns (ResourceWarning, an error here).
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).parent == here:
            item.add_marker(pytest.mark.filterwarnings("ignore:Async generator 'http:ResourceWarning"))
