"""The indexer: the one owner of k8sgw's record state.

Watchers send KubeEvents over a memory channel; `RecordStore.consume` applies each batch and
publishes a new immutable RecordMap by swapping one reference. Three parts, one job each:

- objects.py (ObjectIndex): the objects and the reverse indexes of what depends on what;
- claims.py (ClaimIndex): each object's claims and the RRsets that win at each name;
- publisher.py (Publisher): the serial, the snapshot, the wake-ups.

Applying one event costs O(claims of that object × name depth), independent of the cluster's
size. The indexer runs on the event loop beside the DNS servers, so it never holds it for long:
`consume` checks in with the scheduler every few milliseconds of work, and an object large enough
to take longer than that to translate is translated in a worker thread (translation is a pure
function of the object and what it reads, which the indexer does not change meanwhile).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass

import trio

from k8sgw.kubeapi.events import Deleted, KubeEvent, Synced, SyncPage, Upserted
from k8sgw.kubeapi.kinds import FEEDING_KINDS
from k8sgw.kubeapi.models import KubeObject, Service
from k8sgw.records.claims import ClaimIndex, RRsets, TTLs
from k8sgw.records.keys import NameKey
from k8sgw.records.noteindex import NoteIndex, NoteSnapshot
from k8sgw.records.objects import TRANSLATED, ObjectIndex, _Translated
from k8sgw.records.publisher import Publisher
from k8sgw.records.reasons import Notes
from k8sgw.records.recordmap import RecordMap
from k8sgw.records.settings import ObjectKey, ZoneSettings, watched_kinds
from k8sgw.records.sources import (
    TRANSLATORS,
    Claim,
    LogLine,
    log_held,
    nameserver_rdatas,
    translate_noted,
    translation_size,
)

__all__ = ["ClusterEvent", "ListApplied", "RecordStore", "ZoneSettings", "watched_kinds"]

logger = logging.getLogger(__name__)

LARGE_LIST = 1000
"""Objects in one list from which `on_list_applied` is told the list is large."""

ClusterEvent = tuple[str, KubeEvent]
"""An event of one of several clusters: (cluster name, event)."""

_SLICE = 0.005  # seconds of indexing between two check-ins with the scheduler
_THREAD_FROM = 400  # translation_size from which an object is translated in a worker thread
_REMIND_EVERY = 60.0  # seconds between two warnings about one missing nameserver Service

ListApplied = Callable[[bool], None]
"""Called after a batch that applied list pages: False while a list is still coming, True once a
list of at least LARGE_LIST objects is complete. The application may do process-wide memory
housekeeping there; the store itself does none."""


@dataclass(frozen=True, slots=True)
class _Offload:
    """A step of apply that may run in a worker thread: the driver sends back its result."""

    run: Callable[[], _Noted]


_Noted = tuple[tuple[Claim, ...], Notes]
_Steps = Generator[_Offload | None, _Noted | None, None]


class RecordStore:
    """Indexes one k8s_gateway instance's objects and publishes its RecordMap.

    Args:
        settings: zones, TTL, nameserver names and filters.
        resources: the enabled kinds (`resources`); Gateway, EndpointSlice and Service are added
            as `watched_kinds` says. The map is `ready` once each kind in `kinds` has sent its first
            Synced.
        clock: wall-clock seconds, for SOA serials (a test can pass its own).
        on_list_applied: see ListApplied.
        clusters: the names of the clusters whose objects the store merges, each watched on its
            own (`consume` takes ClusterEvents; a plain KubeEvent is the first cluster's). Objects
            and what they read stay within their cluster (a route's Gateway is its own
            cluster's); their claims meet in one ClaimIndex, so one kind's addresses at a name
            merge across clusters and the ownership order settles a name two kinds claim. The
            map is ready once every cluster has synced every kind; a cluster unreachable later
            keeps its last state (its watchers keep it) while the others change. SOA serials
            follow the clock: several APIs' resourceVersions are not one sequence.
    """

    def __init__(
        self,
        settings: ZoneSettings,
        resources: Iterable[str],
        *,
        clock: Callable[[], float] = time.time,
        on_list_applied: ListApplied | None = None,
        clusters: Sequence[str] = ("",),
    ) -> None:
        self.settings = settings
        self.kinds = watched_kinds(resources)
        unknown = set(self.kinds) - set(TRANSLATORS) - set(FEEDING_KINDS)
        if unknown:
            raise ValueError(f"no translation for kinds {sorted(unknown)}")
        self._nameserver_services = settings.nameserver_service_keys()
        if not clusters or len(set(clusters)) != len(clusters):
            raise ValueError(f"clusters must be distinct names, got {list(clusters)}")
        self.clusters = tuple(clusters)
        self._indexes = {
            c: ObjectIndex(self.kinds, self._nameserver_services, settings.scope.traefik_service) for c in self.clusters
        }
        # Only the enabled resources claim: Services watched for Istio or Traefik alone do not.
        claiming = tuple(k for k in dict.fromkeys(resources) if k in TRANSLATORS)
        self._claims = ClaimIndex(claiming)
        self._notes = NoteIndex(claiming)
        self._publisher = Publisher(settings, ready=not self.kinds, clock=clock)
        if len(self.clusters) > 1:
            self._publisher.follow_clock()
        self._on_list_applied = on_list_applied
        self._synced: set[tuple[str, str]] = set()  # (cluster, kind) listed once
        self._paged: dict[tuple[str, str], set[ObjectKey]] = {}  # (cluster, kind) → keys listed so far
        self._reminded: dict[ObjectKey, float] = {}  # missing nameserver Service → when last warned
        self.unavailable: dict[str, str] = {}
        """Kinds the API does not serve or RBAC forbids, with what to change; written by the
        watchers' observer (explain/observer.py), read by `k8sgw explain`."""

    def _claims_kinds(self) -> tuple[str, ...]:
        return tuple(k for k in self.kinds if k in TRANSLATORS)

    # -- reading -------------------------------------------------------------------------------

    def explained(self) -> tuple[RecordMap, NoteSnapshot]:
        """The current map and the notes of its objects, of the same version (k8sgw explain)."""
        return self.current, self._notes.published

    @property
    def current(self) -> RecordMap:
        return self._publisher.current

    def object_count(self, kind: str) -> int:
        return sum(index.count(kind) for index in self._indexes.values())

    def behind(self) -> dict[str, tuple[str, ...]]:
        """The kinds each cluster has not listed yet (a cluster that listed all is absent)."""
        out = {}
        for cluster in self.clusters:
            missing = tuple(k for k in self.kinds if (cluster, k) not in self._synced)
            if missing:
                out[cluster] = missing
        return out

    async def wait_changed(self) -> RecordMap:
        """Wait for the next published map and return it."""
        return await self._publisher.wait_changed()

    async def wait_until(self, predicate: Callable[[RecordMap], bool]) -> RecordMap:
        """Wait until the current map satisfies predicate; no polling, one check per publish."""
        while not predicate(self.current):
            await self.wait_changed()
        return self.current

    # -- writing (the indexer task only) -------------------------------------------------------

    async def consume(self, events_recv: trio.MemoryReceiveChannel[KubeEvent | ClusterEvent]) -> None:
        """Apply events as they come; publish one new map per batch (what is queued right now).

        Returns when every sender has closed the channel; otherwise runs until cancelled. While a
        nameserver Service is missing, a WARNING repeats at most once a minute.
        """
        async with events_recv:
            while True:
                event: KubeEvent | None = None
                with trio.move_on_at(self._next_reminder()):
                    try:
                        event = await events_recv.receive()
                    except trio.EndOfChannel:
                        return
                if event is None:
                    self._remind_missing_nameservers()
                    continue
                batch = [event]
                while True:
                    try:
                        batch.append(events_recv.receive_nowait())
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                await self._drive(self._apply(batch))

    def apply(self, events: Iterable[KubeEvent | ClusterEvent]) -> RecordMap:
        """Apply a batch of events and publish the resulting map (if anything changed), at once.

        For callers off the event loop's hot path (tests, tools); `consume` applies the same steps
        with check-ins.
        """
        steps = self._apply(list(events))
        reply: _Noted | None = None
        while True:
            try:
                step = steps.send(reply)
            except StopIteration:
                return self.current
            reply = step.run() if step is not None else None

    async def _drive(self, steps: _Steps) -> None:
        """Run apply's steps, checking in every _SLICE seconds and offloading large translations."""
        slice_end = time.perf_counter() + _SLICE
        reply: _Noted | None = None
        while True:
            try:
                step = steps.send(reply)
            except StopIteration:
                return
            reply = None
            if step is not None:
                reply = await trio.to_thread.run_sync(step.run)
                slice_end = time.perf_counter() + _SLICE
            elif time.perf_counter() >= slice_end:
                await trio.lowlevel.checkpoint()
                slice_end = time.perf_counter() + _SLICE

    def _apply(self, events: list[KubeEvent | ClusterEvent]) -> _Steps:
        touched: set[NameKey] = set()
        was_ready = self.current.ready
        listing = large_list = False
        for item in events:
            cluster, event = item if isinstance(item, tuple) else (self.clusters[0], item)
            index = self._indexes.get(cluster)
            if index is None or event.kind not in index:
                logger.debug("event for disabled kind %s (cluster %r) ignored", event.kind, cluster)
                continue
            at = (cluster, event.kind)
            if isinstance(event, SyncPage):
                seen = set() if event.first else self._paged.setdefault(at, set())
                self._paged[at] = seen
                yield from self._put_all(cluster, event.kind, event.objects, seen, touched)
                listing = True
            elif isinstance(event, Synced):
                if event.history_replaced:
                    self._publisher.history_replaced(event.kind)
                self._publisher.seen_version(event.resource_version)
                seen = self._paged.pop(at, set())
                yield from self._put_all(cluster, event.kind, event.objects, seen, touched)
                for key in [k for k in index.keys(event.kind) if k not in seen]:
                    yield from self._put(cluster, event.kind, key, None, touched)  # gone while we were not watching
                if at not in self._synced:
                    self._synced.add(at)
                    logger.info("synced %s%s: %d objects", event.kind, _in(cluster, self.clusters), len(seen))
                large_list = large_list or len(seen) >= LARGE_LIST
            elif isinstance(event, Upserted):
                self._publisher.seen_version(event.obj.metadata.resource_version)
                yield from self._put(cluster, event.kind, event.obj.key, event.obj, touched)
            elif isinstance(event, Deleted):
                self._publisher.seen_version(event.resource_version)
                yield from self._put(cluster, event.kind, (event.namespace, event.name), None, touched)
        ready = len(self._synced) == len(self.clusters) * len(self.kinds)
        if ready and not was_ready:
            logger.info("ready: every watched kind has synced (%s)", ", ".join(self.kinds))
        if touched or ready != was_ready:
            yield from self._publisher.publish(touched, ready, self._winning)
            self._remind_missing_nameservers()
        # No check-in since the map was swapped: the notes published are those of current. A batch
        # that changed notes and no claims left the map as it was: its notes are current's too.
        self._notes.publish(self.current.version)
        if self._on_list_applied is not None and (large_list or listing):
            self._on_list_applied(large_list)

    def _put_all(
        self, cluster: str, kind: str, objects: Iterable[KubeObject], seen: set[ObjectKey], touched: set[NameKey]
    ) -> _Steps:
        for obj in objects:
            key = obj.key
            seen.add(key)
            yield from self._put(cluster, kind, key, obj, touched)
            yield None

    def _put(self, cluster: str, kind: str, key: ObjectKey, obj: KubeObject | None, touched: set[NameKey]) -> _Steps:
        """Store (or, for None, drop) one object and re-translate what depends on it."""
        index = self._indexes[cluster]
        for dependent in index.put(kind, key, obj):
            if dependent == (kind, key):
                yield from self._translate(cluster, kind, key, touched, obj)
            else:
                yield from self._translate(cluster, *dependent, touched, index.get(*dependent))
        if kind == "Service" and key in self._nameserver_services:
            touched.update(h for h, k in self.settings.nameserver_hosts.items() if k == key)

    def _translate(
        self, cluster: str, kind: str, key: ObjectKey, touched: set[NameKey], obj: KubeObject | _Translated | None
    ) -> _Steps:
        """(Re-)translate one object (None: it is gone) and apply its claims."""
        if kind not in self._claims:
            return  # e.g. a slice of a Service while Services are not enabled
        if obj is TRANSLATED:
            return  # a re-translation of an object whose records depend on nothing but itself
        noted: _Noted = ((), ())
        if isinstance(obj, KubeObject):
            related, scope = self._indexes[cluster].related, self.settings.scope
            if translation_size(kind, obj, related) >= _THREAD_FROM:
                held: list[LogLine] = []
                offloaded = yield _Offload(lambda: translate_noted(kind, obj, scope, related, held=held))
                noted = offloaded or noted
                log_held(held)
            else:
                noted = translate_noted(kind, obj, scope, related)
        claims, notes = noted
        self._notes.set(kind, (cluster, *key), notes)
        yield from self._claims.set(kind, (cluster, *key), claims, touched)

    def _winning(self, name: NameKey) -> tuple[RRsets, TTLs]:
        """What a name publishes: a nameserver host its Service's addresses (and nothing objects
        claim); any other name the claims that win there."""
        hosts = self.settings.nameserver_hosts
        if name in hosts:
            service_key = hosts[name]
            rrsets: dict[int, list] = {}
            for service in self._nameserver_service(service_key):  # every cluster's, merged
                for rdata in nameserver_rdatas(service):
                    if rdata not in rrsets.setdefault(rdata.rdtype, []):
                        rrsets[rdata.rdtype].append(rdata)
            return {t: tuple(r) for t, r in rrsets.items()}, {}
        return self._claims.winning(name)

    # -- the nameserver Services ----------------------------------------------------------------

    def _missing_nameservers(self) -> dict[ObjectKey, list[NameKey]]:
        """Nameserver Services without an address, with the NS host names they leave bare."""
        missing: dict[ObjectKey, list[NameKey]] = {}
        if "Service" not in self._indexes[self.clusters[0]]:
            return missing
        for host, key in self.settings.nameserver_hosts.items():
            if key is not None and not self.current.nodes[host].rrsets:
                missing.setdefault(key, []).append(host)
        return missing

    def _remind_missing_nameservers(self) -> None:
        if not self.current.ready:
            return
        now = time.monotonic()
        missing = self._missing_nameservers()
        for key in list(self._reminded):
            if key not in missing:
                del self._reminded[key]
                logger.info("nameserver Service %s/%s has an address again", *key)
        for key, hosts in missing.items():
            if now - self._reminded.get(key, -_REMIND_EVERY) < _REMIND_EVERY:
                continue
            self._reminded[key] = now
            exists = bool(self._nameserver_service(key))
            logger.warning(
                "nameserver Service %s/%s %s, so %s (named by the zone's NS records) has no address: "
                "answered NODATA, no glue. Create the Service or fix `apex`/`secondary`",
                *key, "has no external or load balancer IP" if exists else "does not exist",
                ", ".join(str(h) for h in hosts),
            )

    def _nameserver_service(self, key: ObjectKey | None) -> list[Service]:
        found = (index.service(key) for index in self._indexes.values()) if key else ()
        return [s for s in found if s is not None]

    def _next_reminder(self) -> float:
        """When consume should next wake to repeat a missing-nameserver warning (trio's clock)."""
        if not self._reminded:
            return float("inf")
        due = min(self._reminded.values()) + _REMIND_EVERY - time.monotonic()
        return trio.current_time() + max(due, 0.0)


def _in(cluster: str, clusters: tuple[str, ...]) -> str:
    """" in cluster x" in log lines, once there is more than one."""
    return f" in cluster {cluster}" if len(clusters) > 1 else ""
