"""ZoneCopy: every record of one zone as wire bytes, following a store's record maps.

An AXFR sends these bytes as they are, and an IXFR step is the bytes that left and came, so a
record is rendered once, when it changes, not once per transfer. The records of each name sit in
a persistent map (HAMT) beside the record-map Node they were rendered from: a transfer takes the
map as it is (one version, however long the transfer runs), and following the next record map
re-renders only the names whose Node is a different object. Owner names are written in full with
their labels lower-cased as the record map keys them, and compressed to the zone's name: every message of a transfer carries the question,
whose name is the zone's at offset 12, so an owner is its labels below the zone and a pointer
there (RFC 1035 §4.1.4; RFC 5936 §2.2.1 lets every message repeat the question).
"""

from __future__ import annotations

import struct
from collections.abc import Generator, Iterable
from dataclasses import dataclass

import dns.name
import dns.rdatatype
import immutables

from k8sgw.records.keys import NameKey
from k8sgw.records.recordmap import Node, RecordMap
from k8sgw.transfer.journal import Step

__all__ = ["Snapshot", "ZoneCopy", "rr_wires"]

_SOA = dns.rdatatype.SOA
_IN = 1
_STEP = 512  # names rendered between two chances for the caller to check in with the scheduler

_Entry = tuple[Node, tuple[bytes, ...]]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The zone at one serial, as a transfer sends it: SOA first and last, the rest between."""

    zone: dns.name.Name
    serial: int
    soa: bytes
    entries: immutables.Map[NameKey, _Entry]

    def records(self) -> Iterable[bytes]:
        for _, wires in self.entries.values():
            yield from wires

    def count(self) -> int:
        """Records in the zone, the SOA once."""
        return 1 + sum(len(wires) for _, wires in self.entries.values())


class ZoneCopy:
    """One zone's records as wire bytes, owned by the zone's feed (the only caller of follow).

    Args:
        zone: the zone's apex.
        inner: zones of the same store below this one: their names belong to them, not to it.
    """

    def __init__(self, zone: dns.name.Name, inner: Iterable[dns.name.Name] = ()) -> None:
        self.zone = zone
        self._key = NameKey.of(zone)
        self._inner = tuple(NameKey.of(z) for z in inner)
        self._entries: immutables.Map[NameKey, _Entry] = immutables.Map()
        self._source: RecordMap | None = None
        self.snapshot: Snapshot | None = None
        """The zone at the last map followed; None until a ready map has been followed."""

    def set_inner(self, inner: Iterable[dns.name.Name]) -> None:
        """The zones below this one after a reload (the next follow compares every name)."""
        keys = tuple(NameKey.of(z) for z in inner)
        if keys != self._inner:
            self._inner = keys
            self._source = None

    def follow(self, records: RecordMap, ttl: int) -> Generator[None, None, Step | None]:
        """Bring the copy to `records` (a ready map); the step from the copy's previous serial,
        None for the first map followed. A generator: it yields every few hundred names rendered,
        so a caller on the event loop can check in; the snapshot changes at the end, whole.

        Args:
            ttl: the TTL of records whose source sets none (the k8s_gateway `ttl`).
        """
        source = self._source
        if source is not None and records.changed is not None and records.version == source.version + 1:
            names: Iterable[NameKey] = (n for n in records.changed if self._owns(n))
        else:  # a first map, a gap, or another store's map (a reload): compare every name
            names = {n for n in records.nodes.keys() if self._owns(n)} | set(self._entries.keys())
        removed: list[bytes] = []
        added: list[bytes] = []
        mutation = self._entries.mutate()
        rendered = 0
        for name in names:
            node = records.nodes.get(name)
            old = mutation.get(name)
            if old is not None and old[0] is node:
                continue
            wires = rr_wires(name, node, ttl, len(self._key)) if node is not None else ()
            old_wires = old[1] if old is not None else ()
            if wires != old_wires:
                new_set, old_set = set(wires), set(old_wires)
                removed.extend(w for w in old_wires if w not in new_set)
                added.extend(w for w in wires if w not in old_set)
            if wires:
                mutation[name] = (node, wires)
            elif old is not None:
                del mutation[name]
            rendered += 1
            if rendered % _STEP == 0:
                yield
        self._entries = mutation.finish()
        self._source = records
        apex = records.nodes.get(self._key)
        soa_rdatas = apex.rrsets.get(_SOA) if apex is not None else None
        if not soa_rdatas:
            raise ValueError(f"the record map has no SOA at {self.zone}")
        soa = _rr(_TO_QUESTION, _SOA, apex.ttls.get(_SOA, ttl), soa_rdatas[0].to_wire())
        before = self.snapshot
        self.snapshot = Snapshot(self.zone, records.serial, soa, self._entries)
        if before is None:
            return None
        return Step(before.serial, records.serial, before.soa, tuple(removed), tuple(added))

    def _owns(self, name: NameKey) -> bool:
        return name.is_subdomain(self._key) and not any(name.is_subdomain(z) for z in self._inner)


def rr_wires(name: NameKey, node: Node, ttl: int, zone_depth: int) -> tuple[bytes, ...]:
    """The wire form of every record at name but the SOA (which a transfer places itself), its
    owner compressed to the zone's name at offset 12; zone_depth: the zone's labels, root included."""
    owner = _owner_wire(name, zone_depth)
    out: list[bytes] = []
    for rdtype, rdatas in node.rrsets.items():
        if rdtype == _SOA:
            continue
        rr_ttl = node.ttls.get(rdtype, ttl)
        out.extend(_rr(owner, rdtype, rr_ttl, rdata.to_wire()) for rdata in rdatas)
    return tuple(out)


_TO_QUESTION = b"\xc0\x0c"  # a pointer to offset 12: the question's name, the zone


def _owner_wire(name: NameKey, zone_depth: int) -> bytes:
    below = name[: len(name) - zone_depth]
    return b"".join(bytes((len(label),)) + label for label in below) + _TO_QUESTION


def _rr(owner: bytes, rdtype: int, ttl: int, rdata: bytes) -> bytes:
    return owner + struct.pack("!HHIH", rdtype, _IN, ttl, len(rdata)) + rdata
