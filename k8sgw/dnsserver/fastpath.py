"""The fast path: finished reply bytes, reused for a repeated query while the records are unchanged.

Parsing and building a message costs ~100 µs in dnspython; a dict lookup costs well under 1 µs.
So the reply to a query is kept by the query's bytes minus its ID (question with its spelling,
flags, EDNS options: everything the reply depends on) and served again with the new ID spliced
in. Entries belong to one generation of record maps (the maps current in every store the view
reads) and die when it publishes, with one exception that keeps a cluster under churn on the fast
path: a positive A/AAAA answer for a name that exists (assembled: the name's own RRset, nothing
synthesised or chased) depends only on that name's node, so when the next map is the very next
version and says which names changed, only those names' answers go. Negative answers carry the
zone's SOA, whose serial every change raises, so they always go. Replies that are not a pure
function of the query and the maps are never kept: forwarded ones (Pending) and `loadbalance`
shuffles.

Memory is bounded by bytes, not entries: each protocol's keys and replies count against
MAX_BYTES, and a query longer than MAX_QUERY_SIZE (only a large EDNS option makes one: no name,
cookie or padding comes near it) is answered but never kept, so no client can make the cache
hold its bulk.
"""

from __future__ import annotations

from collections.abc import Callable

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
            for udp in (True, False):
                self._forget(udp, changed)
            self._assembler.advance(changed)
        else:
            for udp in (True, False):
                self._forget(udp, None)
            self._assembler.clear()
        self._sizes[True], self._sizes[False] = self._lasting_sizes[True], self._lasting_sizes[False]

    def _forget(self, udp: bool, names: frozenset[NameKey] | None) -> None:
        """Drop the lasting answers of `names` (None: all of them)."""
        lasting, by_name = self._lasting[udp], self._lasting_names[udp]
        if names is None:
            lasting.clear()
            by_name.clear()
            self._lasting_sizes[udp] = 0
            return
        for name in names & by_name.keys() if len(names) < len(by_name) else [n for n in by_name if n in names]:
            for key in by_name.pop(name):
                tail = lasting.pop(key, None)
                if tail is not None:
                    self._lasting_sizes[udp] -= len(key) + len(tail) + ENTRY_OVERHEAD

    def _answer(
        self, wire: bytes, udp: bool, entries: dict[bytes, bytes], addr: object
    ) -> bytes | Pending | Outbound | None:
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
                    self._lasting[udp][wire[2:]] = reply[2:]
                    self._lasting_names[udp].setdefault(q.labels, []).append(wire[2:])
                    self._lasting_sizes[udp] += len(wire) - 2 + len(reply) - 2 + ENTRY_OVERHEAD
                    return reply
        if type(reply) is TransferQuery:
            return reply.answer(addr)  # never kept: whether it is allowed depends on the client
        if type(reply) is bytes and self._cacheable and HEADER_SIZE <= len(wire) <= MAX_QUERY_SIZE:
            self._make_room(udp, len(wire) + len(reply) + ENTRY_OVERHEAD)
            entries[wire[2:]] = reply[2:]
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

    def held_bytes(self) -> int:
        """What the kept replies cost now, as counted against max_bytes (both protocols, both tables)."""
        return self._sizes[True] + self._sizes[False]


def _next_step(old: RecordMap, new: RecordMap) -> bool:
    """Whether `new` follows `old` directly and says which names changed (so answers of the other
    names are still right): one version on, the same readiness, `changed` known."""
    return new.version == old.version + 1 and new.changed is not None and new.ready == old.ready
