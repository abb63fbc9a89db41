"""The indexer: the one owner of k8sgw's record state.

Watchers send KubeEvents over a memory channel; `RecordStore.consume` applies each batch to its
private indexes and publishes a new immutable RecordMap by swapping one reference. The DNS
servers only read `store.current`; nobody else writes. No locks: `answer()` is synchronous, so a
reader never sees a half-published map.

Applying one event costs O(claims of that object × name depth), independent of the cluster's
size: the per-name vote counts say which names changed, and the persistent map shares the rest.
"""

from __future__ import annotations

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

from k8sgw.kubeapi.events import Deleted, KubeEvent, Synced, Upserted
from k8sgw.records.recordmap import RecordMap, set_rrsets
from k8sgw.records.sources import PRECEDENCE, TRANSLATORS, Claim, Scope

__all__ = ["RecordStore", "ZoneSettings"]

logger = logging.getLogger(__name__)

ObjectKey = tuple[str, str]  # (namespace, name)


class ZoneSettings:
    """The parts of a k8s_gateway block that shape its zones' SOA and NS records."""

    def __init__(
        self,
        zones: Iterable[str | dns.name.Name],
        *,
        ttl: int = 60,
        apex: str = "dns1.kube-system",
        secondary: str | None = None,
        ingress_classes: Iterable[str] = (),
    ) -> None:
        self.zones = tuple(dns.name.from_text(z) if isinstance(z, str) else z for z in zones)
        self.ttl = ttl
        self.apex = dns.name.from_text(apex, origin=None)
        self.secondary = dns.name.from_text(secondary, origin=None) if secondary else None
        self.scope = Scope(self.zones, frozenset(ingress_classes))

    @classmethod
    def from_config(cls, gw: Any) -> ZoneSettings:
        """From a config.GatewayConfig."""
        return cls(
            gw.zones, ttl=gw.ttl, apex=gw.apex, secondary=gw.secondary, ingress_classes=gw.ingress_classes
        )

    def nameservers(self, zone: dns.name.Name) -> tuple[dns.name.Name, ...]:
        hosts = [self.apex] + ([self.secondary] if self.secondary else [])
        return tuple(h.concatenate(zone) for h in hosts)

    def soa(self, zone: dns.name.Name, serial: int) -> dns.rdata.Rdata:
        # Timers follow k8s_gateway; minimum = TTL so negative answers live as long as positive ones.
        mname = self.apex.concatenate(zone)
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


class RecordStore:
    """Indexes one k8s_gateway instance's objects and publishes its RecordMap.

    Args:
        settings: zones, TTL and nameserver names.
        kinds: the enabled kinds; the map is `ready` once each has sent its first Synced.
        clock: wall-clock seconds, for SOA serials (a test can pass its own).
    """

    def __init__(
        self, settings: ZoneSettings, kinds: Iterable[str], *, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self.kinds = tuple(kinds)
        unknown = set(self.kinds) - set(TRANSLATORS)
        if unknown:
            raise ValueError(f"no translation for kinds {sorted(unknown)}")
        self._clock = clock
        self._claims: dict[str, dict[ObjectKey, tuple[Claim, ...]]] = {k: {} for k in self.kinds}
        # name → kind → Counter of rdata: several objects may claim the same record.
        self._votes: dict[dns.name.Name, dict[str, Counter[dns.rdata.Rdata]]] = {}
        self._synced: set[str] = set()
        self._changed = trio.Event()
        serial = self._next_serial(0)
        mutation = immutables.Map().mutate()
        for zone in settings.zones:
            set_rrsets(mutation, zone, settings.apex_rrsets(zone, serial), stop_at=settings.zones)
        self.current = RecordMap(nodes=mutation.finish(), version=0, serial=serial, ready=not self.kinds)

    # -- reading -------------------------------------------------------------------------------

    def object_count(self, kind: str) -> int:
        return len(self._claims[kind])

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
        for event in events:
            if event.kind not in self._claims:
                logger.debug("event for disabled kind %s ignored", event.kind)
                continue
            if isinstance(event, Synced):
                self._replace_kind(event.kind, event.objects, touched)
                if event.kind not in self._synced:
                    self._synced.add(event.kind)
                    logger.info("synced %s: %d objects", event.kind, len(event.objects))
            elif isinstance(event, Upserted):
                obj = event.obj
                key = (obj.metadata.namespace, obj.metadata.name)
                self._set_object(event.kind, key, TRANSLATORS[event.kind](obj, self.settings.scope), touched)
            elif isinstance(event, Deleted):
                self._set_object(event.kind, (event.namespace, event.name), (), touched)
        ready = self._synced.issuperset(self.kinds)
        if touched or ready != was_ready:
            self._publish(touched, ready)
        return self.current

    def _replace_kind(self, kind: str, objects: Iterable[Any], touched: set[dns.name.Name]) -> None:
        translate = TRANSLATORS[kind]
        fresh = {(o.metadata.namespace, o.metadata.name): translate(o, self.settings.scope) for o in objects}
        for key in list(self._claims[kind]):
            if key not in fresh:
                self._set_object(kind, key, (), touched)
        for key, claims in fresh.items():
            self._set_object(kind, key, claims, touched)

    def _set_object(
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
        for name, rdata in old:
            votes = self._votes[name][kind]
            votes[rdata] -= 1
            if votes[rdata] <= 0:
                del votes[rdata]
            touched.add(name)
        for name, rdata in claims:
            self._votes.setdefault(name, {}).setdefault(kind, Counter())[rdata] += 1
            touched.add(name)

    def _winning_rrsets(self, name: dns.name.Name) -> dict[int, tuple[dns.rdata.Rdata, ...]]:
        by_kind = self._votes.get(name, {})
        for kind in PRECEDENCE:
            votes = by_kind.get(kind)
            if votes:
                rrsets: dict[int, list[dns.rdata.Rdata]] = {}
                for rdata in votes:
                    rrsets.setdefault(rdata.rdtype, []).append(rdata)
                return {t: tuple(r) for t, r in rrsets.items()}
        self._votes.pop(name, None)
        return {}

    def _publish(self, touched: set[dns.name.Name], ready: bool) -> None:
        old = self.current
        serial = self._next_serial(old.serial) if touched else old.serial
        mutation = old.nodes.mutate()
        zones = self.settings.zones
        # A new serial rewrites every apex SOA; otherwise only the names whose votes changed.
        for name in touched | set(zones) if serial != old.serial else touched:
            rrsets = self._winning_rrsets(name)
            if name in zones:
                rrsets.update(self.settings.apex_rrsets(name, serial))
            set_rrsets(mutation, name, rrsets, stop_at=zones)
        self.current = RecordMap(nodes=mutation.finish(), version=old.version + 1, serial=serial, ready=ready)
        logger.debug(
            "published record map version %d: %d names changed, serial %d, ready %s",
            self.current.version, len(touched), serial, ready,
        )
        self._changed.set()
        self._changed = trio.Event()

    def _next_serial(self, previous: int) -> int:
        # From the clock so it never goes back across restarts; +1 so it rises on every change
        # even within one second (RFC 1982 arithmetic keeps secondaries happy past 2^32 wraps).
        return max(previous + 1, math.floor(self._clock())) % (2**32)
