"""Staleness is observable: the watcher reports every list, event and BOOKMARK (event_seen), every
re-opened watch (watch_restarted) and every relist (relisted) to its observer, which feeds
k8sgw_watch_last_event_age_seconds and friends; during an outage event_seen stops, so the age grows."""

from __future__ import annotations

import dataclasses
from functools import partial

import trio

from k8sgw.kubeapi.client import KubeClient
from k8sgw.kubeapi.kinds import KINDS
from k8sgw.kubeapi.kubeconfig import resolve_connection
from k8sgw.kubeapi.watch import Watch, WatchState, list_then_watch, watch_forever
from tests.conftest import FAST_RETRY

POLICY = dataclasses.replace(FAST_RETRY, inactivity_timeout=0.5, request_timeout=0.5)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, float]] = []
        self._changed = trio.Event()

    def _add(self, what: str, kind: str) -> None:
        self.calls.append((what, kind, trio.current_time()))
        self._changed.set()
        self._changed = trio.Event()

    def event_seen(self, kind: str) -> None:
        self._add("event_seen", kind)

    def watch_restarted(self, kind: str) -> None:
        self._add("watch_restarted", kind)

    def relisted(self, kind: str) -> None:
        self._add("relisted", kind)

    def kind_unavailable(self, kind, problem: str | None) -> None:
        self._add("kind_unavailable", kind.name)

    def count(self, what: str) -> int:
        return sum(1 for c in self.calls if c[0] == what)

    async def wait(self, what: str, n: int) -> None:
        while self.count(what) < n:
            await self._changed.wait()


async def drain(recv) -> None:
    async for _ in recv:
        pass


def ingress(name: str, ip: str) -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"rules": [{"host": f"{name}.foo.org"}]},
        "status": {"loadBalancer": {"ingress": [{"ip": ip}]}},
    }


async def test_observer_sees_events_bookmarks_restarts_relists_and_outage(nursery, kubeconfig, cluster, logs):
    rec = Recorder()
    send, recv = trio.open_memory_channel(0)
    nursery.start_soon(drain, recv)
    client = await nursery.start(_client, kubeconfig)
    nursery.start_soon(partial(watch_forever, Watch(client, KINDS["Ingress"], send, policy=POLICY, observer=rec)))
    with trio.fail_after(15):
        await rec.wait("event_seen", 1)  # the first list
        assert rec.count("relisted") == rec.count("watch_restarted") == 0
        seen = rec.count("event_seen")
        cluster.apply(ingress("obs", "192.0.2.77"))
        await rec.wait("event_seen", seen + 1)
        seen = rec.count("event_seen")
        await rec.wait("event_seen", seen + 2)  # BOOKMARKs (every 0.1 s) keep a quiet kind fresh
        assert all(kind == "Ingress" for _, kind, _ in rec.calls)

        # Outage: no event_seen while the API is down, however many retries happen.
        await cluster.wait_watch_count(1)
        cluster.faults.unavailable(True)
        outage = trio.current_time()
        cluster.faults.drop_watches()
        since = len(logs.lines)
        await logs.wait_count(lambda line: "503" in line, 3, since)
        assert not [c for c in rec.calls if c[0] == "event_seen" and c[2] > outage]
        restarts = rec.count("watch_restarted")
        assert restarts >= 3  # each retry re-opens the watch and says so
        cluster.faults.unavailable(False)
        await rec.wait("event_seen", rec.count("event_seen") + 1)  # fresh again

        # A 410 (history compacted while cut off) relists: relisted is reported.
        cluster.faults.unavailable(True)
        cluster.faults.drop_watches()
        cluster.apply(ingress("obs2", "192.0.2.78"))
        cluster.compact()
        cluster.faults.unavailable(False)
        await rec.wait("relisted", 1)
        await rec.wait("event_seen", rec.count("event_seen") + 1)


async def test_watch_state_records_last_event_time(nursery, kubeconfig, cluster):
    """WatchState.last_event_at (for code that runs list_then_watch itself) moves with event_seen."""
    state, rec = WatchState(), Recorder()
    send, recv = trio.open_memory_channel(0)
    nursery.start_soon(drain, recv)
    client = await nursery.start(_client, kubeconfig)
    nursery.start_soon(
        partial(list_then_watch, Watch(client, KINDS["Ingress"], send, policy=POLICY, observer=rec), state)
    )
    with trio.fail_after(10):
        await rec.wait("event_seen", 1)
        listed = state.last_event_at
        assert listed is not None and listed <= rec.calls[-1][2]  # the list
        cluster.apply(ingress("obs3", "192.0.2.79"))
        await rec.wait("event_seen", rec.count("event_seen") + 1)
        assert listed < state.last_event_at <= rec.calls[-1][2]


async def _client(kubeconfig, *, task_status=trio.TASK_STATUS_IGNORED):
    async with KubeClient(resolve_connection(str(kubeconfig))) as client:
        task_status.started(client)
        await trio.sleep_forever()
