"""Feeds: one task per transferred zone, process-wide, keeping the zone's copy and journal.

A feed follows the record maps of the store its generation gave it, map after map; a commit of
a new generation (reload) points the feed at the new store, whose first map is compared with
the copy name by name, so the journal goes on across the reload and a secondary that asks for
an IXFR afterwards still gets one. Each serial change pokes the zone's notifier.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Protocol

import dns.name
import trio
import trio.lowlevel

from k8sgw.config.transfer import TransferConfig
from k8sgw.records.recordmap import RecordMap
from k8sgw.transfer.journal import Journal
from k8sgw.transfer.notify import Notifier
from k8sgw.transfer.serial import serial_newer
from k8sgw.transfer.tsig import TsigPolicy
from k8sgw.transfer.zonecopy import ZoneCopy

__all__ = ["Feeds", "ZoneFeed", "ZoneSource"]

logger = logging.getLogger(__name__)


class _Store(Protocol):
    """What a feed needs of a RecordStore."""

    @property
    def current(self) -> RecordMap: ...

    async def wait_until(self, predicate: Callable[[RecordMap], bool]) -> RecordMap: ...


@dataclass(frozen=True, slots=True)
class ZoneSource:
    """What a generation gives the feed of one zone it transfers.

    Attributes:
        store: the store whose maps hold the zone.
        ttl: the TTL of records whose source sets none (the block's k8s_gateway `ttl`).
        inner: zones of the same store below this one (their names are not this zone's).
        config: the block's `transfer`.
        tsig: the listener's `tsig` keys, for signing NOTIFY; None without `tsig`.
    """

    store: _Store
    ttl: int
    inner: tuple[dns.name.Name, ...]
    config: TransferConfig
    tsig: TsigPolicy | None = None


class ZoneFeed:
    """One zone's copy, journal and notifier; `run` is its only writer."""

    def __init__(self, zone: dns.name.Name, source: ZoneSource, after_copy: Callable[[], None] = lambda: None) -> None:
        self.zone = zone
        self._after_copy = after_copy
        self.source = source
        self.copy = ZoneCopy(zone, source.inner)
        self.journal = Journal(source.config.journal_versions, source.config.journal_bytes)
        self.notifier = Notifier(zone)
        self.scope = trio.CancelScope()
        self._swapped = trio.Event()
        self._updated = trio.Event()

    def attach(self, source: ZoneSource) -> None:
        """Follow source from now on (a committed generation); the journal keeps its steps."""
        self.source = source
        self.copy.set_inner(source.inner)
        self.journal.bound(source.config.journal_versions, source.config.journal_bytes)
        self._swapped.set()
        self._swapped = trio.Event()

    async def wait_serial(self, serial: int) -> None:
        """Until the copy is at serial or newer (tests and the benchmark wait on it)."""
        while self.copy.snapshot is None or serial_newer(serial, self.copy.snapshot.serial):
            await self._updated.wait()

    async def run(self) -> None:
        followed: RecordMap | None = None
        with self.scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self.notifier.run, lambda: self.source)
                while True:
                    source = self.source
                    records = source.store.current
                    if records.ready and records is not followed:
                        await self._follow(records, source)
                        followed = records
                        continue
                    # wait_until checks the current map first: a publish between the read above
                    # and this wait is not missed. The swap's event is taken now for the same reason.
                    ahead = partial(source.store.wait_until, lambda m, seen=followed: m.ready and m is not seen)
                    await _first_of(ahead, self._swapped.wait)

    async def _follow(self, records: RecordMap, source: ZoneSource) -> None:
        before = self.copy.snapshot
        steps = self.copy.follow(records, source.ttl)
        try:
            while True:
                next(steps)
                await trio.lowlevel.checkpoint()  # a large first copy must not hold the DNS servers
        except StopIteration as done:
            step = done.value
        if step is not None and (step.removed or step.added or step.old_serial != step.new_serial):
            self.journal.record(step)
        snapshot = self.copy.snapshot
        if before is None:
            self._after_copy()
            logger.info("transfer: %s ready at serial %d, %d records", self.zone, snapshot.serial, snapshot.count())
        if before is None or before.serial != snapshot.serial:
            self.notifier.poke(snapshot.serial)
        self._updated.set()
        self._updated = trio.Event()


class Feeds:
    """Every transferred zone's feed; app.py commits each generation's sources here."""

    def __init__(self, nursery: trio.Nursery, *, after_copy: Callable[[], None] = lambda: None) -> None:
        """after_copy: called once a feed has its first copy of a zone (process memory housekeeping)."""
        self._nursery = nursery
        self._after_copy = after_copy
        self._feeds: dict[dns.name.Name, ZoneFeed] = {}

    def get(self, zone: dns.name.Name) -> ZoneFeed | None:
        return self._feeds.get(zone)

    def commit(self, sources: Mapping[dns.name.Name, ZoneSource]) -> None:
        """The zones a committed generation transfers: new ones start, kept ones follow their new
        store (journal kept), the others stop. Synchronous, like the commit it is part of."""
        for zone in list(self._feeds):
            if zone not in sources:
                self._feeds.pop(zone).scope.cancel()
                logger.info("transfer: %s no longer transferred; its journal is dropped", zone)
        for zone, source in sources.items():
            feed = self._feeds.get(zone)
            if feed is None:
                feed = self._feeds[zone] = ZoneFeed(zone, source, self._after_copy)
                self._nursery.start_soon(feed.run, name=f"transfer feed {zone}")
            else:
                feed.attach(source)


async def _first_of(*waits) -> None:
    """Return when the first of waits returns."""
    async with trio.open_nursery() as nursery:
        for wait in waits:
            nursery.start_soon(_then_cancel, wait, nursery.cancel_scope)


async def _then_cancel(wait, scope: trio.CancelScope) -> None:
    await wait()
    scope.cancel()
