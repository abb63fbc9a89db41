"""The indexer: the one owner of k8sgw's record state.

Watchers send KubeEvents over a memory channel; `RecordStore.consume` applies each batch to its
private indexes and publishes a new immutable RecordMap by swapping one reference. The DNS
servers only read `store.current`; nobody else writes. No locks: `answer()` is synchronous, so a
reader never sees a half-published map.

Applying one event costs O(claims of that object × name depth), independent of the cluster's
size: the per-name vote counts say which names changed, and the persistent map shares the rest.
Kinds that feed others keep a reverse index, so a change re-translates only what depends on it:
a Gateway change re-translates the routes that name it (Gateway → routes), an EndpointSlice change
the one Service it belongs to (Service → slices). A change to the nameserver's own Service
rewrites only the nameserver host names.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.NS
import dns.rdtypes.ANY.SOA
import immutables
import trio

from k8sgw.kubeapi.events import Deleted, KubeEvent, Synced, SyncPage, Upserted
from k8sgw.records.recordmap import RecordMap, set_rrsets
from k8sgw.records.sources import (
    PRECEDENCE,
    ROUTE_KINDS,
    TRANSLATORS,
    Claim,
    Related,
    Scope,
    nameserver_rdatas,
    parse_label_selector,
    route_gateway_keys,
    slice_service_key,
    wants_endpoints,
)

__all__ = ["RecordStore", "ZoneSettings", "watched_kinds"]

logger = logging.getLogger(__name__)

ObjectKey = tuple[str, str]

# Objects in one list from which on the survivors are frozen out of the GC (see apply).
_FREEZE_AFTER = 1000

def _release_freed_memory() -> None:
    """Give the heap that a sync's parsed pages used back to the OS (glibc's malloc_trim).

    Listing 50,000 objects parses every page into models that die once translated; without this
    the process keeps that peak as resident memory for good. Elsewhere it does nothing.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.malloc_trim(0)


# Stands for an object whose records were translated and which nothing re-translates from.
_TRANSLATED: Any = object()  # (namespace, name)


class ZoneSettings:
    """The parts of a k8s_gateway block that shape its zones and what objects may claim."""

    def __init__(
        self,
        zones: Iterable[str | dns.name.Name],
        *,
        ttl: int = 60,
        apex: str = "dns1.kube-system",
        secondary: str | None = None,
        ingress_classes: Iterable[str] = (),
        gateway_classes: Iterable[str] = (),
        service_label_selectors: Iterable[str] = (),
    ) -> None:
        self.zones = tuple(dns.name.from_text(z) if isinstance(z, str) else z for z in zones)
        self.ttl = ttl
        self.apex = dns.name.from_text(apex, origin=None)
        self.secondary = dns.name.from_text(secondary, origin=None) if secondary else None
        self.scope = Scope(
            self.zones,
            frozenset(ingress_classes),
            frozenset(gateway_classes),
            tuple(parse_label_selector(s) for s in service_label_selectors),
        )
        # DESIGN rule 3: <apex>.<zone> and <secondary>.<zone> belong to the Service named by the
        # host's first two labels, name.namespace ("dns1.kube-system" → Service kube-system/dns1).
        self.nameserver_hosts: dict[dns.name.Name, ObjectKey | None] = {}
        for host in (self.apex, self.secondary):
            if host is None:
                continue
            labels = [label.decode().lower() for label in host.labels]
            key = (labels[1], labels[0]) if len(labels) >= 2 else None
            for zone in self.zones:
                self.nameserver_hosts[host.concatenate(zone)] = key

    @classmethod
    def from_config(cls, gw: Any) -> ZoneSettings:
        """From a config.GatewayConfig."""
        return cls(
            gw.zones,
            ttl=gw.ttl,
            apex=gw.apex,
            secondary=gw.secondary,
            ingress_classes=gw.ingress_classes,
            gateway_classes=gw.gateway_classes,
            service_label_selectors=gw.service_label_selectors,
        )

    def nameservers(self, zone: dns.name.Name) -> tuple[dns.name.Name, ...]:
        hosts = [self.apex] + ([self.secondary] if self.secondary else [])
        return tuple(h.concatenate(zone) for h in hosts)

    def nameserver_service_keys(self) -> frozenset[ObjectKey]:
        return frozenset(k for k in self.nameserver_hosts.values() if k is not None)

    def soa(self, zone: dns.name.Name, serial: int) -> dns.rdata.Rdata:
        # Timers follow k8s_gateway; minimum = TTL so negative answers live as long as positive ones.
        # mname: the first of apex and secondary in DNS order, so both members of a dual pair (each
        # the other's secondary) publish the same SOA, as zone checkers expect of a zone's servers.
        mname = min(self.apex, self.secondary or self.apex).concatenate(zone)
        return dns.rdtypes.ANY.SOA.SOA(
            dns.rdataclass.IN,
            dns.rdatatype.SOA,
            mname,
            dns.name.Name([b"hostmaster"]).concatenate(mname),
            serial,
            7200,
            1800,
            86400,
            self.ttl,
        )

    def apex_rrsets(self, zone: dns.name.Name, serial: int) -> dict[int, tuple[dns.rdata.Rdata, ...]]:
        ns = tuple(
            dns.rdtypes.ANY.NS.NS(dns.rdataclass.IN, dns.rdatatype.NS, host) for host in self.nameservers(zone)
        )
        return {dns.rdatatype.SOA: (self.soa(zone, serial),), dns.rdatatype.NS: ns}


def watched_kinds(resources: Iterable[str]) -> tuple[str, ...]:
    """The kinds to watch for `resources`: Gateways when any route kind is on, EndpointSlices with
    Services (for `k8s-gateway.dns/resolve-endpoints`)."""
    kinds = list(dict.fromkeys(resources))
    if any(k in ROUTE_KINDS for k in kinds):
        kinds.append("Gateway")
    if "Service" in kinds:
        kinds.append("EndpointSlice")
    return tuple(kinds)


_FEEDERS = ("Gateway", "EndpointSlice")
_Vote = tuple[dns.rdata.Rdata, int | None]


class RecordStore:
    """Indexes one k8s_gateway instance's objects and publishes its RecordMap.

    Args:
        settings: zones, TTL, nameserver names and filters.
        resources: the enabled kinds (`resources`); Gateway and EndpointSlice are added as
            `watched_kinds` says. The map is `ready` once each kind in `kinds` has sent its first
            Synced.
        clock: wall-clock seconds, for SOA serials (a test can pass its own).
    """

    def __init__(
        self, settings: ZoneSettings, resources: Iterable[str], *, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self.kinds = watched_kinds(resources)
        unknown = set(self.kinds) - set(TRANSLATORS) - set(_FEEDERS)
        if unknown:
            raise ValueError(f"no translation for kinds {sorted(unknown)}")
        self._clock = clock
        self._objects: dict[str, dict[ObjectKey, Any]] = {k: {} for k in self.kinds}
        self._claims: dict[str, dict[ObjectKey, tuple[Claim, ...]]] = {
            k: {} for k in self.kinds if k in TRANSLATORS
        }
        # Reverse indexes: which objects to re-translate when a feeding object changes.
        self._routes_by_gateway: dict[ObjectKey, set[tuple[str, ObjectKey]]] = {}
        self._gateways_of_route: dict[tuple[str, ObjectKey], frozenset[ObjectKey]] = {}
        self._slices_by_service: dict[ObjectKey, set[ObjectKey]] = {}
        self._service_of_slice: dict[ObjectKey, ObjectKey] = {}
        self._related = Related(self._objects.get("Gateway", {}), self._slices_of)
        # name → kind → Counter of (rdata, ttl): several objects may claim the same record.
        self._votes: dict[dns.name.Name, dict[str, Counter[_Vote]]] = {}
        self._ns_keys = settings.nameserver_service_keys()
        self._synced: set[str] = set()
        self._paged: dict[str, set[ObjectKey]] = {}  # kind → keys listed so far in a paged sync
        self._changed = trio.Event()
        self._high_rv = 0
        self._clock_serials = False
        serial = self._next_serial(0)
        mutation = immutables.Map().mutate()
        for zone in settings.zones:
            set_rrsets(mutation, zone, settings.apex_rrsets(zone, serial), stop_at=settings.zones)
        self.current = RecordMap(nodes=mutation.finish(), version=0, serial=serial, ready=not self.kinds)

    # -- reading -------------------------------------------------------------------------------

    def object_count(self, kind: str) -> int:
        return len(self._objects[kind])

    async def wait_changed(self) -> RecordMap:
        """Wait for the next published map and return it."""
        await self._changed.wait()
        return self.current

    async def wait_until(self, predicate: Callable[[RecordMap], bool]) -> RecordMap:
        """Wait until the current map satisfies predicate; no polling, one check per publish."""
        while not predicate(self.current):
            await self.wait_changed()
        return self.current

    # -- writing (the indexer task only) -------------------------------------------------------

    async def consume(self, events_recv: trio.MemoryReceiveChannel[KubeEvent]) -> None:
        """Apply events as they come; publish one new map per batch (what is queued right now).

        Returns when every sender has closed the channel; otherwise runs until cancelled.
        """
        async with events_recv:
            async for event in events_recv:
                batch = [event]
                while True:
                    try:
                        batch.append(events_recv.receive_nowait())
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                self.apply(batch)

    def apply(self, events: Iterable[KubeEvent]) -> RecordMap:
        """Apply a batch of events and publish the resulting map (if anything changed)."""
        touched: set[dns.name.Name] = set()
        was_ready = self.current.ready
        big_list = listing = False
        for event in events:
            if event.kind not in self._objects:
                logger.debug("event for disabled kind %s ignored", event.kind)
                continue
            if isinstance(event, SyncPage):
                seen = set() if event.first else self._paged.setdefault(event.kind, set())
                self._paged[event.kind] = seen
                self._put_all(event.kind, event.objects, seen, touched)
                listing = True
            elif isinstance(event, Synced):
                if event.history_replaced and not self._clock_serials:
                    # The new API's revisions say nothing about the old one's: serials that
                    # followed them would stop, so from now on they follow the clock.
                    logger.warning("%s: the API server was replaced; SOA serials follow the clock", event.kind)
                    self._clock_serials = True
                self._seen_version(event.resource_version)
                seen = self._paged.pop(event.kind, set())
                self._put_all(event.kind, event.objects, seen, touched)
                for key in [k for k in self._objects[event.kind] if k not in seen]:
                    self._put(event.kind, key, None, touched)  # gone while we were not watching
                if event.kind not in self._synced:
                    self._synced.add(event.kind)
                    logger.info("synced %s: %d objects", event.kind, len(seen))
                big_list = big_list or len(seen) >= _FREEZE_AFTER
            elif isinstance(event, Upserted):
                obj = event.obj
                self._seen_version(obj.metadata.resource_version)
                self._put(event.kind, (obj.metadata.namespace, obj.metadata.name), obj, touched)
            elif isinstance(event, Deleted):
                self._seen_version(event.resource_version)
                self._put(event.kind, (event.namespace, event.name), None, touched)
        ready = self._synced.issuperset(self.kinds)
        if ready and not was_ready:
            logger.info("ready: every watched kind has synced (%s)", ", ".join(self.kinds))
        if touched or ready != was_ready:
            self._publish(touched, ready)
        if big_list:
            # A large list leaves ~40 long-lived objects per name: moving them out of the collector's
            # generations keeps full collections (which scan every tracked object) from pausing the
            # servers for a second at 50,000 objects, and the pages parsed on the way are handed
            # back to the OS.
            gc.freeze()
            _release_freed_memory()
        elif listing:
            # The same, page by page while a list is still coming: otherwise every full collection
            # on the way scans all that the pages so far built (a third of a 50,000-object sync).
            gc.freeze()
        return self.current

    def _put_all(
        self, kind: str, objects: Iterable[Any], seen: set[ObjectKey], touched: set[dns.name.Name]
    ) -> None:
        for obj in objects:
            key = (obj.metadata.namespace, obj.metadata.name)
            seen.add(key)
            self._put(kind, key, obj, touched)

    def _put(self, kind: str, key: ObjectKey, obj: Any | None, touched: set[dns.name.Name]) -> None:
        """Store (or, for None, drop) one object and re-translate what depends on it."""
        objects = self._objects[kind]
        old = objects.get(key)
        if obj is None:
            objects.pop(key, None)
        else:
            # Only objects something else re-translates from are kept whole; for the rest the key
            # is enough (its claims are kept): at 50,000 objects that is most of the memory.
            objects[key] = obj if self._retained(kind, key, obj) else _TRANSLATED
        if kind == "Gateway":
            if _gateway_view(old) != _gateway_view(obj):
                for route_kind, route_key in list(self._routes_by_gateway.get(key, ())):
                    self._translate(route_kind, route_key, touched)
        elif kind == "EndpointSlice":
            self._index_slice(key, obj)
            if _slice_view(old) != _slice_view(obj):
                for service_key in {slice_service_key(o) for o in (old, obj) if o is not None} - {None}:
                    self._translate("Service", service_key, touched)
        else:
            if kind in ROUTE_KINDS:
                self._index_route(kind, key, obj)
            self._translate(kind, key, touched, obj)
            if kind == "Service" and key in self._ns_keys:
                touched.update(h for h, k in self.settings.nameserver_hosts.items() if k == key)

    def _retained(self, kind: str, key: ObjectKey, obj: Any) -> bool:
        if kind == "Service":
            return key in self._ns_keys or wants_endpoints(obj)  # nameserver glue; EndpointSlice joins
        return kind in ("Gateway", "EndpointSlice") or kind in ROUTE_KINDS

    def _translate(self, kind: str, key: ObjectKey, touched: set[dns.name.Name], obj: Any = _TRANSLATED) -> None:
        if kind not in self._claims:
            return  # e.g. a slice of a Service while Services are not enabled
        if obj is _TRANSLATED:
            obj = self._objects[kind].get(key)
            if obj is _TRANSLATED:
                return  # not kept because its records depend on nothing but itself
        claims = TRANSLATORS[kind](obj, self.settings.scope, self._related) if obj is not None else ()
        self._set_claims(kind, key, claims, touched)

    def _index_route(self, kind: str, key: ObjectKey, obj: Any | None) -> None:
        route = (kind, key)
        old = self._gateways_of_route.pop(route, frozenset())
        new = route_gateway_keys(obj) if obj is not None else frozenset()
        for gw in old - new:
            routes = self._routes_by_gateway[gw]
            routes.discard(route)
            if not routes:
                del self._routes_by_gateway[gw]
        for gw in new - old:
            self._routes_by_gateway.setdefault(gw, set()).add(route)
        if new:
            self._gateways_of_route[route] = new

    def _index_slice(self, key: ObjectKey, obj: Any | None) -> None:
        old = self._service_of_slice.pop(key, None)
        new = slice_service_key(obj) if obj is not None else None
        if old is not None and old != new:
            slices = self._slices_by_service[old]
            slices.discard(key)
            if not slices:
                del self._slices_by_service[old]
        if new is not None:
            self._slices_by_service.setdefault(new, set()).add(key)
            self._service_of_slice[key] = new

    def _slices_of(self, service: ObjectKey) -> list[Any]:
        slices = self._objects.get("EndpointSlice", {})
        return [slices[k] for k in self._slices_by_service.get(service, ()) if k in slices]

    def _set_claims(
        self, kind: str, key: ObjectKey, claims: tuple[Claim, ...], touched: set[dns.name.Name]
    ) -> None:
        by_key = self._claims[kind]
        old = by_key.get(key, ())
        if old == claims:
            return
        if claims:
            by_key[key] = claims
        else:
            by_key.pop(key, None)
        for name, rdata, ttl in old:
            votes = self._votes[name][kind]
            votes[(rdata, ttl)] -= 1
            if votes[(rdata, ttl)] <= 0:
                del votes[(rdata, ttl)]
            touched.add(name)
        for name, rdata, ttl in claims:
            self._votes.setdefault(name, {}).setdefault(kind, Counter())[(rdata, ttl)] += 1
            touched.add(name)

    def _winning_rrsets(
        self, name: dns.name.Name
    ) -> tuple[dict[int, tuple[dns.rdata.Rdata, ...]], dict[int, int]]:
        """The rrsets and per-type TTLs published at name: nameserver hosts first, then precedence."""
        ns_hosts = self.settings.nameserver_hosts
        if name in ns_hosts:
            service_key = ns_hosts[name]
            service = self._objects.get("Service", {}).get(service_key) if service_key else None
            rrsets: dict[int, list[dns.rdata.Rdata]] = {}
            for rdata in nameserver_rdatas(service) if service is not None else ():
                rrsets.setdefault(rdata.rdtype, []).append(rdata)
            return {t: tuple(r) for t, r in rrsets.items()}, {}
        if ns_hosts and any(name.is_subdomain(host) for host in ns_hosts):
            return {}, {}  # below a nameserver host: NXDOMAIN whatever objects claim (DESIGN rule 3)
        by_kind = self._votes.get(name, {})
        for kind in PRECEDENCE:
            votes = by_kind.get(kind)
            if votes:
                return _rrsets_from_votes(name, kind, votes)
        self._votes.pop(name, None)
        return {}, {}

    def _publish(self, touched: set[dns.name.Name], ready: bool) -> None:
        old = self.current
        # At readiness too: a restart over an empty zone must still start at the API's revision.
        changed = touched or (ready and not old.ready)
        serial = self._next_serial(old.serial) if changed else old.serial
        mutation = old.nodes.mutate()
        zones = self.settings.zones
        # A new serial rewrites every apex SOA; otherwise only the names whose votes changed.
        for name in touched | set(zones) if serial != old.serial else touched:
            rrsets, ttls = self._winning_rrsets(name)
            if name in zones:
                rrsets.update(self.settings.apex_rrsets(name, serial))
            set_rrsets(mutation, name, rrsets, stop_at=zones, ttls=ttls)
        self.current = RecordMap(nodes=mutation.finish(), version=old.version + 1, serial=serial, ready=ready)
        logger.debug(
            "published record map version %d: %d names changed, serial %d, ready %s",
            self.current.version, len(touched), serial, ready,
        )
        self._changed.set()
        self._changed = trio.Event()

    def _seen_version(self, resource_version: str) -> None:
        """Remember the highest resourceVersion applied; a non-numeric one switches to clock serials."""
        if not resource_version or self._clock_serials:
            return
        try:
            self._high_rv = max(self._high_rv, int(resource_version))
        except ValueError:
            logger.info("resourceVersion %r is not a number: SOA serials follow the clock", resource_version)
            self._clock_serials = True

    def _next_serial(self, previous: int) -> int:
        """The SOA serial after a change: it never goes back and rises with the data.

        The API's resourceVersion (etcd's revision) names the state the map represents: every
        instance watching the cluster publishes the same serial for the same data, so a
        dual-nameserver pair agrees, and a restart lists at a revision at least as high. A change
        always comes with a higher revision (an event, or a relist after deletions), except for
        an event that was already behind another kind's list at start-up: the map then reaches
        the state its serial already named. Where resourceVersions are not numbers: the clock,
        plus one per change. RFC 1982 arithmetic lets resolvers follow the 2^32 wrap.
        """
        if self._clock_serials:
            return max(previous + 1, math.floor(self._clock())) % (2**32)
        return max(previous, self._high_rv, 1) % (2**32)


def _rrsets_from_votes(
    name: dns.name.Name, kind: str, votes: Counter[_Vote]
) -> tuple[dict[int, tuple[dns.rdata.Rdata, ...]], dict[int, int]]:
    """Group the winning kind's records by type. An rrset has one TTL (RFC 2181 §5.2): the lowest
    set by a source. A CNAME excludes other data (RFC 1034 §3.6.2): other data wins, and of several
    CNAMEs (from different objects) the lowest target is kept, so the answer is deterministic."""
    rrsets: dict[int, list[dns.rdata.Rdata]] = {}
    ttls: dict[int, int] = {}
    for rdata, ttl in votes:
        bucket = rrsets.setdefault(rdata.rdtype, [])
        if rdata not in bucket:
            bucket.append(rdata)
        if ttl is not None:
            ttls[rdata.rdtype] = min(ttl, ttls.get(rdata.rdtype, ttl))
    cname = dns.rdatatype.CNAME
    if cname in rrsets and (len(rrsets) > 1 or len(rrsets[cname]) > 1):
        if len(rrsets) > 1:
            logger.debug("%s: %s objects claim a CNAME and other data; answering the other data", name, kind)
            del rrsets[cname]
            ttls.pop(cname, None)
        else:
            logger.debug("%s: %s objects claim several CNAMEs; answering one", name, kind)
            rrsets[cname] = [min(rrsets[cname], key=lambda r: r.target)]
    return {t: tuple(r) for t, r in rrsets.items()}, ttls


def _gateway_view(obj: Any | None) -> Any:
    """What of a Gateway routes read (not its resourceVersion): a change here re-translates them."""
    return None if obj is None else (obj.metadata.labels, obj.spec, obj.status)


def _slice_view(obj: Any | None) -> Any:
    return None if obj is None else (obj.metadata.labels, obj.address_type, obj.endpoints)
