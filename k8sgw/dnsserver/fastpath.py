"""The fast path: finished reply bytes, reused for a repeated query while the records are unchanged.

Parsing and building a message costs ~100 µs in dnspython; a dict lookup costs well under 1 µs.
So the reply to a query is kept by the query's bytes minus its ID (question with its spelling,
flags, EDNS options: everything the reply depends on) and served again with the new ID spliced
in. Entries belong to one generation of record maps (the maps current in every store the view
reads) and die when it publishes, with one exception that keeps a cluster under churn on the fast
path: a positive A/AAAA answer for a name that exists (assembled: the name's own RRset, nothing
synthesised or chased) depends only on that name's node, so when the next map is the very next
version and says which names changed, only those names' answers go. An assembled negative answer
(NXDOMAIN or NODATA below a zone's apex, the zone's SOA as its authority) depends on the name's
node, on whether anything exists below it (NODATA for an empty non-terminal), on its ancestors
(the closest encloser) and their wildcards (RFC 4592), and on the SOA. So it lasts too, unless a
changed name is the name itself, one of its ancestors or descendants, or a wildcard of one of its
ancestors; the SOA is a function of the settings and the serial, so only its serial bytes are
rewritten, when the answer is next asked for (with one store; a view of several stores drops them).
Replies that are not a pure function of the query and the maps are never kept: forwarded ones
(Pending) and `loadbalance` shuffles.

Memory is bounded by bytes, not entries: each protocol's keys and replies count against
MAX_BYTES, and a query longer than MAX_QUERY_SIZE (only a large EDNS option makes one: no name,
cookie or padding comes near it) is answered but never kept, so no client can make the cache
hold its bulk.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import dns.rdatatype

from k8sgw.dnsserver.answer import View
from k8sgw.dnsserver.assembly import Assembler, read_question
from k8sgw.dnsserver.forward import Pending
from k8sgw.dnsserver.wire import HEADER_SIZE, Outbound, TransferQuery, handle_wire
from k8sgw.records.keys import NameKey
from k8sgw.records.recordmap import RecordMap

__all__ = ["FastPath"]

# Bytes kept per protocol (keys, replies and ENTRY_OVERHEAD each) under a flood of distinct
# queries; past it the cache starts over, which costs only the re-answering. 16 MiB holds ~100,000
# typical replies; a listener's two protocols keep at most twice this.
MAX_BYTES = 16 * 2**20
# The longest query kept: a 255-byte name, OPT, a full client and server cookie and padding to a
# 128-byte block stay below it.
MAX_QUERY_SIZE = 512
# What a dict slot and two bytes objects cost beyond their contents (measured with sys.getsizeof:
# 33 bytes per bytes object, ~60 per dict slot at its usual fill).
ENTRY_OVERHEAD = 128
# Negative queries remembered as assembled once (a set of hashes: ~70 bytes each).
MAX_SEEN = 65536
# What a kept negative answer adds per label of its name: a slot in its ancestor's set of names.
INDEX_OVERHEAD = 48


class FastPath:
    """handle_wire with a reply cache in front, for one listener's View."""

    def __init__(self, view: View, *, max_bytes: int = MAX_BYTES) -> None:
        self.view = view
        self.max_bytes = max_bytes
        self._stores = tuple(b.authority.store for b in view.blocks if b.authority is not None)
        # Not kept: `loadbalance` shuffles, and anything when `tsig require` makes an unsigned
        # query's answer depend on more than its bytes.
        self._cacheable = not any(b.loadbalance for b in view.blocks) and not (
            view.tsig is not None and view.tsig.requires_queries()
        )
        self._maps: tuple = tuple(s.current for s in self._stores)
        self._udp: dict[bytes, bytes] = {}
        self._tcp: dict[bytes, bytes] = {}
        self._sizes = {True: 0, False: 0}  # bytes held by _udp (True) and _tcp (False)
        # The positive answers that outlive a publish (see the module's docstring), per protocol,
        # and their query keys by name, so a changed name's answers can be found and dropped.
        self._lasting: dict[bool, dict[bytes, bytes]] = {True: {}, False: {}}
        self._lasting_names: dict[bool, dict[NameKey, list[bytes]]] = {True: {}, False: {}}
        self._lasting_sizes = {True: 0, False: 0}
        # The negative answers that outlive a publish, per protocol: query key → (reply without
        # its ID, where the SOA serial is in it); their keys by name, and their names by each
        # ancestor below the zone's apex, so a change's subtree can be found (a name right under
        # the apex, as a random-subdomain flood's are, costs no index entry).
        self._negatives: dict[bool, dict[bytes, tuple[bytes, int]]] = {True: {}, False: {}}
        self._negative_names: dict[bool, dict[NameKey, list[bytes]]] = {True: {}, False: {}}
        self._negative_under: dict[bool, dict[tuple[bytes, ...], set[NameKey]]] = {True: {}, False: {}}
        # Hashes of the negative queries assembled once: one is kept from its second assembly on
        # (a random-subdomain flood's names, each asked once, then cost a set insert, not an index).
        self._negatives_seen: dict[bool, set[int]] = {True: set(), False: set()}
        self._zone_keys = frozenset(NameKey.of(z) for b in view.blocks if b.authority is not None for z in b.zones)
        self._serial = b""  # the current map's serial, as a negative answer's SOA carries it
        self._check_serial()
        self._assembler = Assembler(view)
        # Full-path replies by Question.key (lower-cased question, RD, EDNS parameters): a new
        # spelling of a question answered before costs a splice, not dnspython. Values are the
        # reply's header bytes 2-12 and what follows its question.
        self._by_question: dict[bool, dict[tuple, tuple[bytes, bytes]]] = {True: {}, False: {}}
        # The per-query functions are closures over locals: at 150k+ queries/s on one core,
        # attribute lookups and an extra call per query are a measurable share of the time.
        self.handle_udp = self._handler(True, self._udp)
        self.handle_tcp = self._handler(False, self._tcp)

    def handle(self, wire: bytes, *, udp: bool, addr: object = None) -> bytes | Pending | Outbound | None:
        """Same bytes as handle_wire(wire, view, udp=udp), from the cache when it can; a transfer
        query answered for the client at addr."""
        return self.handle_udp(wire, addr) if udp else self.handle_tcp(wire, addr)

    def _handler(self, udp: bool, entries: dict[bytes, bytes]) -> Callable[..., bytes | Pending | Outbound | None]:
        check = self._check_generation
        answer = self._answer
        get = entries.get
        get_lasting = self._lasting[udp].get
        if len(self._stores) == 1:
            (store,) = self._stores
            fast = self

            def handle_one(wire: bytes, addr: object = None) -> bytes | Pending | Outbound | None:
                if store.current is not fast._maps[0]:
                    check()
                key = wire[2:]
                tail = get(key) or get_lasting(key)
                if tail is not None:
                    return wire[:2] + tail
                return answer(wire, udp, entries, addr)

            return handle_one

        def handle_any(wire: bytes, addr: object = None) -> bytes | Pending | Outbound | None:
            check()
            key = wire[2:]
            tail = get(key) or get_lasting(key)
            if tail is not None:
                return wire[:2] + tail
            return answer(wire, udp, entries, addr)

        return handle_any

    def _check_generation(self) -> None:
        # Identity of the published maps: a publish swaps the reference, so `is` is exact.
        maps = self._maps
        current = tuple(s.current for s in self._stores)
        if all(new is old for new, old in zip(current, maps, strict=True)):
            return
        self._maps = current
        self._udp.clear()
        self._tcp.clear()
        self._by_question[True].clear()
        self._by_question[False].clear()
        steps = [(old, new) for old, new in zip(maps, current, strict=True) if new is not old]
        if all(_next_step(old, new) for old, new in steps):
            changed = frozenset().union(*(new.changed for _, new in steps))
            soa_same = len(steps) == 1 and _same_soa_but_serial(*steps[0], changed & self._zone_keys)
            for udp in (True, False):
                self._forget(udp, changed)
                self._forget_negatives(udp, changed if soa_same else None)
            self._assembler.advance(changed)
        else:
            for udp in (True, False):
                self._forget(udp, None)
            self._assembler.clear()
        self._check_serial()
        self._sizes[True], self._sizes[False] = self._lasting_sizes[True], self._lasting_sizes[False]

    def _forget(self, udp: bool, names: frozenset[NameKey] | None) -> None:
        """Drop the lasting answers of `names` (None: all of them)."""
        lasting, by_name = self._lasting[udp], self._lasting_names[udp]
        if names is None:
            lasting.clear()
            by_name.clear()
            self._forget_negatives(udp, None)
            self._lasting_sizes[udp] = 0
            return
        for name in names & by_name.keys() if len(names) < len(by_name) else [n for n in by_name if n in names]:
            for key in by_name.pop(name):
                tail = lasting.pop(key, None)
                if tail is not None:
                    self._lasting_sizes[udp] -= len(key) + len(tail) + ENTRY_OVERHEAD

    def _forget_negatives(self, udp: bool, changed: frozenset[NameKey] | None) -> None:
        """Drop the negative answers a change of `changed` can alter (None: all of them)."""
        negatives, by_name, under = self._negatives[udp], self._negative_names[udp], self._negative_under[udp]
        if changed is None:
            for name, keys in by_name.items():
                for key in keys:
                    self._lasting_sizes[udp] -= _negative_cost(key, negatives[key][0], name)
            negatives.clear()
            by_name.clear()
            under.clear()
            return
        if not by_name:
            return
        zones = self._zone_keys
        gone: set[tuple[bytes, ...]] = set()
        for name in changed:
            if name in zones:
                continue  # the apex: only its SOA's serial changed (checked), nothing is kept at it
            top = name[1:] if name[:1] == (b"*",) else name  # a wildcard answers below its parent
            if top in zones:
                self._forget_negatives(udp, None)  # a wildcard at the apex: the whole zone
                return
            gone.add(top)
            gone.update(under.get(top, ()))
            gone.update(name[i:] for i in range(1, len(name)))  # its ancestors
        for name in gone & by_name.keys():
            for key in by_name.pop(name):
                self._lasting_sizes[udp] -= _negative_cost(key, negatives.pop(key)[0], name)
            for i in range(1, len(name)):
                above = name[i:]
                if above in zones:
                    break
                below = under[above]
                below.discard(name)
                if not below:
                    del under[above]

    def _keep_negative(self, udp: bool, key: bytes, labels: NameKey, reply: bytes, edns: bool) -> None:
        """Keep an assembled negative answer across publishes (see the module's docstring)."""
        at = len(reply) - 2 - 20 - (11 if edns else 0)  # SOA rdata ends: serial, then 4 more fields
        if len(self._stores) != 1 or labels in self._zone_keys or reply[2 + at : 2 + at + 4] != self._serial:
            return
        seen, mark = self._negatives_seen[udp], hash(key)
        if mark not in seen:
            if len(seen) >= MAX_SEEN:
                seen.clear()
            seen.add(mark)
            return
        tail = reply[2:]
        cost = _negative_cost(key, tail, labels)
        self._make_room(udp, cost)
        self._lasting_sizes[udp] += cost
        self._negatives[udp][key] = (tail, at)
        self._negative_names[udp].setdefault(labels, []).append(key)
        under, zones = self._negative_under[udp], self._zone_keys
        for i in range(1, len(labels)):
            above = labels[i:]
            if above in zones:
                break
            below = under.get(above)
            if below is None:
                under[above] = {labels}
            else:
                below.add(labels)

    def _check_serial(self) -> None:
        if len(self._stores) == 1:
            self._serial = struct.pack("!I", self._stores[0].current.serial)

    def _answer(
        self, wire: bytes, udp: bool, entries: dict[bytes, bytes], addr: object
    ) -> bytes | Pending | Outbound | None:
        key = wire[2:]
        kept = self._negatives[udp].get(key)
        if kept is not None:
            tail, at = kept
            if tail[at : at + 4] != self._serial:  # a publish since: the same answer, a new serial
                tail = tail[:at] + self._serial + tail[at + 4 :]
                self._negatives[udp][key] = (tail, at)
            self._make_room(udp, len(wire) + len(tail) + ENTRY_OVERHEAD)
            entries[key] = tail
            return wire[:2] + tail
        q = read_question(wire) if self._cacheable else None
        if q is None:
            reply = handle_wire(wire, self.view, udp=udp)
        else:
            by_question = self._by_question[udp]
            known = by_question.get(q.key)
            if known is not None:
                reply = wire[:2] + known[0] + wire[12 : q.end] + known[1]
            else:
                reply = self._assembler.reply(wire, q, udp)
                if reply is None:
                    reply = handle_wire(wire, self.view, udp=udp)
                    if type(reply) is bytes and reply[12 : q.end] == wire[12 : q.end]:
                        self._keep_by_question(udp, q.key, reply, q.end)
                elif reply[6:8] != b"\0\0" and HEADER_SIZE <= len(wire) <= MAX_QUERY_SIZE:
                    # An assembled answer with records: the name's own A/AAAA RRset; it lasts.
                    self._make_room(udp, len(wire) + len(reply) + ENTRY_OVERHEAD)
                    self._lasting[udp][key] = reply[2:]
                    self._lasting_names[udp].setdefault(q.labels, []).append(key)
                    self._lasting_sizes[udp] += len(wire) - 2 + len(reply) - 2 + ENTRY_OVERHEAD
                    return reply
                elif HEADER_SIZE <= len(wire) <= MAX_QUERY_SIZE:
                    self._keep_negative(udp, key, q.labels, reply, q.edns is not None)
        if type(reply) is TransferQuery:
            return reply.answer(addr)  # never kept: whether it is allowed depends on the client
        if type(reply) is bytes and self._cacheable and HEADER_SIZE <= len(wire) <= MAX_QUERY_SIZE:
            self._make_room(udp, len(wire) + len(reply) + ENTRY_OVERHEAD)
            entries[key] = reply[2:]
        return reply

    def _keep_by_question(self, udp: bool, key: tuple, reply: bytes, end: int) -> None:
        self._make_room(udp, len(key[0]) + len(reply) + ENTRY_OVERHEAD)
        self._by_question[udp][key] = (reply[2:12], reply[end:])

    def _make_room(self, udp: bool, size: int) -> None:
        """Count size against the protocol's budget (both tables), starting over when it is spent."""
        if self._sizes[udp] + size > self.max_bytes:
            (self._udp if udp else self._tcp).clear()
            self._by_question[udp].clear()
            self._forget(udp, None)
            self._sizes[udp] = 0
        self._sizes[udp] += size

    def lasting_answers(self) -> int:
        """How many positive answers are kept across publishes now (both protocols)."""
        return len(self._lasting[True]) + len(self._lasting[False])

    def lasting_negatives(self) -> int:
        """How many negative answers are kept across publishes now (both protocols)."""
        return len(self._negatives[True]) + len(self._negatives[False])

    def held_bytes(self) -> int:
        """What the kept replies cost now, as counted against max_bytes (both protocols, both tables)."""
        return self._sizes[True] + self._sizes[False]


def _negative_cost(key: bytes, tail: bytes, labels: NameKey) -> int:
    return len(key) + len(tail) + ENTRY_OVERHEAD + INDEX_OVERHEAD * len(labels)


def _same_soa_but_serial(old: RecordMap, new: RecordMap, apexes: frozenset[NameKey]) -> bool:
    """Whether every changed apex's SOA differs from the old one's in nothing but the serial."""
    for apex in apexes:
        name = apex.name()
        before, after = old.rdatas(name, dns.rdatatype.SOA), new.rdatas(name, dns.rdatatype.SOA)
        if len(before) != 1 or len(after) != 1 or before[0].replace(serial=after[0].serial) != after[0]:
            return False
    return True


def _next_step(old: RecordMap, new: RecordMap) -> bool:
    """Whether `new` follows `old` directly and says which names changed (so answers of the other
    names are still right): one version on, the same readiness, `changed` known."""
    return new.version == old.version + 1 and new.changed is not None and new.ready == old.ready
