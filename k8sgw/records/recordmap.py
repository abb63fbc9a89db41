"""RecordMap: one immutable, versioned snapshot of every name k8sgw answers for.

The indexer (store.py) is its only writer and publishes a new map per batch of events; the DNS
servers only ever read `store.current`. Names are stored as NameKeys (their lower-cased labels)
so a lookup is one dict access and costs no dnspython hashing. Empty non-terminals (names that exist only because something
exists below them) are nodes with no rdata, so NXDOMAIN vs NODATA is one lookup too (RFC 8020).

Must not import trio or httpx: this is pure data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import dns.name
import dns.rdata
import immutables

from k8sgw.records.keys import NameKey

__all__ = ["Node", "RecordMap", "Rdatas"]

Rdatas = tuple[dns.rdata.Rdata, ...]


@dataclass(frozen=True, slots=True)
class Node:
    """What exists at one name.

    Attributes:
        rrsets: rdata by rdtype; empty for an empty non-terminal.
        children: how many direct child names exist; keeps empty non-terminals alive.
        ttls: TTL by rdtype where a source sets its own (DNSEndpoint recordTTL); other types
            get the k8s_gateway `ttl`.
        anchored: exists even with no data and no children: a nameserver host the zone's NS
            records name, which must answer NODATA rather than NXDOMAIN while it has no address.
    """

    rrsets: Mapping[int, Rdatas] = field(default_factory=dict)
    children: int = 0
    ttls: Mapping[int, int] = field(default_factory=dict)
    anchored: bool = False

    def exists(self) -> bool:
        return bool(self.rrsets) or self.children > 0 or self.anchored


_EMPTY = immutables.Map()


@dataclass(frozen=True, slots=True)
class RecordMap:
    """An immutable snapshot: names → Node, plus the facts every answer from it shares.

    Attributes:
        nodes: persistent map (HAMT), so the next version shares all unchanged entries.
        version: rises by one per published batch; caches derived from a map belong to its version.
        serial: SOA serial; rises whenever data changes and never goes back across restarts
            (it starts from the clock, see store.py).
        ready: every enabled kind has finished its first list; until then in-zone answers are
            SERVFAIL, since an empty index would answer NXDOMAIN for names that exist.
        changed: the names whose records may differ from version - 1 (None: unknown, compare
            everything); what follows the map version by version (zone transfer) reads only these.
    """

    nodes: immutables.Map[NameKey, Node] = _EMPTY
    version: int = 0
    serial: int = 1
    ready: bool = False
    changed: frozenset[NameKey] | None = None

    def get(self, name: dns.name.Name) -> Node | None:
        return self.nodes.get(NameKey.of(name))

    def rdatas(self, name: dns.name.Name, rdtype: int) -> Rdatas:
        node = self.nodes.get(NameKey.of(name))
        return node.rrsets.get(rdtype, ()) if node else ()

    def __len__(self) -> int:
        return len(self.nodes)


def set_rrsets(
    mutation: immutables.MapMutation,
    name: dns.name.Name | NameKey,
    rrsets: Mapping[int, Rdatas],
    *,
    stop_at: Iterable[dns.name.Name | NameKey],  # a frozenset of NameKeys is used as it is
    ttls: Mapping[int, int] | None = None,
    anchored: bool = False,
) -> None:
    """Set the rdata owned by `name` in a map being mutated, keeping empty non-terminals right.

    Ancestors up to (not including) the nearest name in `stop_at` (the zone apexes) are created
    as empty non-terminals when a name appears and removed when their last child goes.
    Cost: O(depth of the name), independent of the map's size.
    """
    name = _key(name)
    apexes = stop_at if isinstance(stop_at, frozenset) else frozenset(_key(n) for n in stop_at)
    old = mutation.get(name)
    children = old.children if old else 0
    new = Node(dict(rrsets), children, dict(ttls or {}), anchored)
    if new.exists():
        mutation[name] = new
        if old is None:
            _adjust_parent(mutation, name, +1, apexes)
    elif old is not None:
        del mutation[name]
        _adjust_parent(mutation, name, -1, apexes)


def _key(name: dns.name.Name | NameKey) -> NameKey:
    return name if isinstance(name, NameKey) else NameKey.of(name)


def _adjust_parent(mutation: immutables.MapMutation, name: NameKey, delta: int, apexes: frozenset[NameKey]) -> None:
    while name not in apexes and len(name) > 1:
        parent = name.parent()
        if parent in apexes:
            return  # the apex exists on its own (SOA/NS); it is not counted as a non-terminal
        old = mutation.get(parent)
        rrsets = old.rrsets if old else {}
        children = (old.children if old else 0) + delta
        node = Node(rrsets, children, old.ttls if old else {}, old.anchored if old else False)
        if node.exists():
            mutation[parent] = node
            if old is not None:
                return  # the parent already existed and still does: nothing above changes
        elif old is not None:
            del mutation[parent]
        else:
            return
        # The parent appeared or vanished: its own parent's child count changes too.
        name = parent
