"""Fixtures shared by the end-to-end tests: a dev API server as the cluster, k8sgw in the same trio run."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from functools import partial
from pathlib import Path

import dns.asyncquery
import dns.message
import dns.name
import dns.rdatatype
import pytest
import trio

from k8sgw.app import Bound, serve
from k8sgw.config import parse_corefile
from k8sgw.devapi.kubeconfig import write_kubeconfig
from k8sgw.devapi.server import serve_devapi
from k8sgw.devapi.store import DevCluster
from k8sgw.dnsserver.tcp import TcpLimits
from k8sgw.kubeapi.watch import RetryPolicy
from k8sgw.records.recordmap import RecordMap
from tests.support.faults import Faults

EXAMPLES = Path(__file__).resolve().parent.parent / "k8sgw" / "examples"

# Retries fast and exactly, so tests of recovery take milliseconds, not the production backoff.
FAST_RETRY = RetryPolicy(initial_backoff=0.05, max_backoff=0.2, jitter=0.0)


def corefile(kubeconfig: Path | str, zone: str = "foo.org", extra: str = "") -> str:
    """A one-block Corefile on 127.0.0.1 (the port comes from default_port=0: any free port)."""
    return f"""
{zone} {{
    bind 127.0.0.1
    k8s_gateway {zone} {{
        kubeconfig {kubeconfig}
        {extra}
    }}
}}
"""


@pytest.fixture
def cluster() -> DevCluster:
    c = DevCluster(faults=Faults)
    c.load_manifests(sorted((EXAMPLES / "seed").glob("*.yaml")))
    return c


@pytest.fixture
async def api_url(nursery, cluster) -> str:
    return await nursery.start(partial(serve_devapi, cluster))


@pytest.fixture
def kubeconfig(tmp_path, api_url) -> Path:
    return write_kubeconfig(tmp_path / "kubeconfig", api_url)


async def start_k8sgw(nursery: trio.Nursery, text: str, **kw) -> Bound:
    cfg = parse_corefile(text, filename="test.Corefile", default_port=0)
    kw.setdefault("watch_policy", FAST_RETRY)
    kw.setdefault("tcp_limits", TcpLimits(idle_timeout=5))
    return await nursery.start(partial(serve, cfg, **kw))


@pytest.fixture
async def k8sgw(nursery, kubeconfig) -> Bound:
    """k8sgw serving foo.org from the seeded dev cluster, synced."""
    bound = await start_k8sgw(nursery, corefile(kubeconfig))
    with trio.fail_after(10):
        await bound.stores[0].wait_until(lambda m: m.ready)
    return bound


async def query(
    addr: tuple[str, int], name: str, rdtype: str = "A", *, tcp: bool = False, **kw
) -> dns.message.Message:
    q = dns.message.make_query(name, rdtype, **kw)
    if tcp:
        return await dns.asyncquery.tcp(q, addr[0], port=addr[1], timeout=5)
    return await dns.asyncquery.udp(q, addr[0], port=addr[1], timeout=5)


def addresses(reply: dns.message.Message) -> list[str]:
    return sorted(str(r) for rrset in reply.answer for r in rrset)


def has(name: str, *ips: str) -> Callable[[RecordMap], bool]:
    """A RecordMap predicate: name answers exactly these A addresses (none: the name is gone)."""
    owner = dns.name.from_text(name)

    def check(records: RecordMap) -> bool:
        return sorted(str(r) for r in records.rdatas(owner, dns.rdatatype.A)) == sorted(ips)

    return check


def tool(name: str) -> str:
    """Path of a CLI tool the test needs; .ci/run installs it, so its absence is a failure in CI."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed, and .ci/run should have installed it")
        pytest.skip(f"{name} is not installed (`.ci/run` installs it)")
    return path


class LogWaiter(logging.Handler):
    """Collects log records and lets a test wait for one, woken by the record itself (no polling)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self._event = trio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.name}: {record.getMessage()}")
        self._event.set()
        self._event = trio.Event()

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def count(self, match: Callable[[str], bool], since: int = 0) -> int:
        """How many lines (from index `since` on) satisfy match."""
        return sum(1 for line in self.lines[since:] if match(line))

    async def wait_count(self, match: Callable[[str], bool], n: int, since: int = 0) -> None:
        """Until at least n lines (from index `since` on) satisfy match, woken by each record."""
        while self.count(match, since) < n:
            await self._event.wait()

    async def wait_for(self, text: str) -> str:
        """The first line containing text, waiting for it to be logged."""
        while True:
            for line in self.lines:
                if text in line:
                    return line
            await self._event.wait()


@pytest.fixture
def logs():
    """k8sgw's own log lines (not httpx's), every level."""
    waiter = LogWaiter()
    ours = logging.getLogger("k8sgw")
    old_level = ours.level
    ours.addHandler(waiter)
    ours.setLevel(logging.DEBUG)
    yield waiter
    ours.removeHandler(waiter)
    ours.setLevel(old_level)
