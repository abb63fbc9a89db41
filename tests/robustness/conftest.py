"""Robustness tests watch with a short inactivity timeout, so their cluster sends bookmarks often."""

from __future__ import annotations

import pytest


@pytest.fixture
def cluster():
    """The seeded dev cluster, with a BOOKMARK every 0.1 s: the tests' watch inactivity timeout is
    0.5 s, and a quiet watch must not look stalled (production: 60 s bookmarks, 150 s timeout)."""
    from k8sgw.devapi.store import DevCluster
    from tests.conftest import EXAMPLES
    from tests.support.faults import Faults

    c = DevCluster(bookmark_interval=0.1, faults=Faults)
    c.load_manifests(sorted((EXAMPLES / "seed").glob("*.yaml")))
    return c
