"""Publisher: the current RecordMap, its SOA serial, and the wake-ups of those waiting for a new one.

The indexer is the only writer: `publish` builds the next map from the names that changed and
swaps one reference. Readers (the DNS servers) only read `current`; no locks are needed because
`answer()` is synchronous, so it never sees a half-published map.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator

import immutables
import trio

from k8sgw.records.claims import RRsets, TTLs
from k8sgw.records.keys import NameKey
from k8sgw.records.recordmap import RecordMap, set_rrsets
from k8sgw.records.reverse import ReverseIndex
from k8sgw.records.settings import ZoneSettings

__all__ = ["Publisher"]

logger = logging.getLogger(__name__)

_STEP = 512  # names between two chances for the caller to check in with the scheduler


class Publisher:
    """Owns `current` and the serial.

    Args:
        settings: zones and nameserver hosts (the apex SOA/NS and the anchored nameserver names).
        ready: whether the first map is ready (no kinds to wait for).
        clock: wall-clock seconds, for SOA serials where resourceVersions are not numbers.
    """

    def __init__(self, settings: ZoneSettings, *, ready: bool, clock: Callable[[], float] = time.time) -> None:
        self._settings = settings
        self._clock = clock
        self._changed = trio.Event()
        self._high_rv = 0
        self._clock_serials = False
        # PTR records are derived here, at publish time, so they change with their addresses.
        self._reverse = (
            ReverseIndex(settings.forward_zones, settings.reverse_zones) if settings.reverse_zones else None
        )
        serial = self._next_serial(0)
        mutation = immutables.Map().mutate()
        zones = settings.zone_keys
        for zone in settings.zones:
            set_rrsets(mutation, zone, settings.apex_rrsets(zone, serial), stop_at=zones)
        for host in settings.nameserver_hosts:
            set_rrsets(mutation, host, {}, stop_at=zones, anchored=True)
        self.current = RecordMap(nodes=mutation.finish(), version=0, serial=serial, ready=ready)

    async def wait_changed(self) -> RecordMap:
        """Wait for the next published map and return it."""
        await self._changed.wait()
        return self.current

    def seen_version(self, resource_version: str) -> None:
        """Remember the highest resourceVersion applied; a non-numeric one switches to clock serials."""
        if not resource_version or self._clock_serials:
            return
        try:
            self._high_rv = max(self._high_rv, int(resource_version))
        except ValueError:
            logger.info("resourceVersion %r is not a number: SOA serials follow the clock", resource_version)
            self._clock_serials = True

    def follow_clock(self) -> None:
        """Serials follow the clock from the start: several clusters' resourceVersions are not
        one sequence."""
        self._clock_serials = True

    def history_replaced(self, kind: str) -> None:
        """The API server was replaced: its revisions say nothing about the old one's, and serials
        that followed them would stop (or go back), so from now on they follow the clock."""
        if not self._clock_serials:
            logger.warning("%s: the API server was replaced; SOA serials follow the clock", kind)
            self._clock_serials = True

    def publish(
        self, touched: set[NameKey], ready: bool, winning: Callable[[NameKey], tuple[RRsets, TTLs]]
    ) -> Iterator[None]:
        """Publish the next map: `winning` says what each touched name holds now.

        A generator: it yields every few hundred names so that a caller on the event loop can
        check in; the map is swapped in at the end, whole.
        """
        old = self.current
        settings = self._settings
        # At readiness too: a restart over an empty zone must still start at the API's revision.
        changed = touched or (ready and not old.ready)
        serial = self._next_serial(old.serial) if changed else old.serial
        mutation = old.nodes.mutate()
        zones = settings.zone_keys
        # A new serial rewrites every apex SOA; otherwise only the names whose votes changed.
        names: Iterable[NameKey] = touched | zones if serial != old.serial else touched
        reverse = self._reverse
        reversed_names: set[NameKey] = set()  # reverse names whose owners changed
        for i, name in enumerate(names, 1):
            rrsets, ttls = winning(name)
            if reverse is not None:
                node = mutation.get(name)
                reverse.update(name, node.rrsets if node else {}, rrsets, reversed_names)
                rrsets.update(reverse.ptr_rrsets(name))  # a /32 or /128 reverse zone's apex
            if name in zones:
                rrsets.update(settings.apex_rrsets(name.name(), serial))
            anchored = name in settings.nameserver_hosts  # named by NS: exists, address or not
            set_rrsets(mutation, name, rrsets, stop_at=zones, ttls=ttls, anchored=anchored)
            if i % _STEP == 0:
                yield
        if reverse is not None:
            for i, name in enumerate(reversed_names, 1):
                rrsets = reverse.ptr_rrsets(name)
                if name in zones:
                    rrsets.update(settings.apex_rrsets(name.name(), serial))
                set_rrsets(mutation, name, rrsets, stop_at=zones)
                if i % _STEP == 0:
                    yield
        names_changed = frozenset(names) | reversed_names if reversed_names else frozenset(names)
        self.current = RecordMap(
            nodes=mutation.finish(), version=old.version + 1, serial=serial, ready=ready, changed=names_changed
        )
        logger.debug(
            "published record map version %d: %d names changed, serial %d, ready %s",
            self.current.version, len(touched), serial, ready,
        )
        self._changed.set()
        self._changed = trio.Event()

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
