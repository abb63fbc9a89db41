"""Replies assembled from wire fragments, for queries the fast path has never seen byte for byte.

The reply to a plain query is a function of its lower-cased question, its RD bit, its EDNS
parameters (present, UDP payload, DO) and the record map: never of the letter case (the question
is echoed as asked and every other name in the reply is a compression pointer or the stored
spelling), the ID, the other header bits or bytes after the question. So the common answers are
put together from pieces rendered once per record-map version, the way NSD precompiles its
answers: a header, the question copied from the query, and

- positive A/AAAA: the answer RRset with owner pointer 0xC00C (the question's name, offset 12);
- NODATA and NXDOMAIN: the zone's SOA in the authority section, whose owner and rdata names are
  pointers into the question: the same bytes for every question of the same length, unless the
  name is under the SOA's mname or rname (then those compress differently: the full path answers);
- the OPT record (our payload, DO copied).

Everything else (other types, CNAME, wildcards, ANY, a reply over the size limit, fallthrough,
forwarded names, EDNS options, EDNS version > 0, odd header bits) returns None: the full path
answers it. Lookups use NameKeys built from the lower-cased wire labels; no dns.name.Name is made.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from k8sgw.dnsserver.answer import Authority, Block, View
from k8sgw.dnsserver.replies import MIN_UDP_PAYLOAD, OUR_PAYLOAD
from k8sgw.records.keys import NameKey
from k8sgw.records.recordmap import RecordMap

__all__ = ["Question", "Assembler", "read_question"]

_A, _AAAA, _CNAME, _SOA = dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.CNAME, dns.rdatatype.SOA
_NOT_PLAIN = 0xF80F  # QR, opcode, rcode: a query with any of these set is never assembled
_RD = 0x0100
_ONE_QUESTION = b"\x00\x01\x00\x00\x00\x00"  # QDCOUNT 1, ANCOUNT 0, NSCOUNT 0
_OPT_HEAD = b"\x00\x00\x29"  # root owner, type OPT
_WILDCARD = b"*"
# A per-version table of rendered answers past this many entries starts over (a flood of names
# that exist cannot grow it beyond the names in the map, but a map can be large).
MAX_FRAGMENTS = 200_000


@dataclass(slots=True)
class Question:
    """What a plain query's reply depends on, read from its wire without dnspython. Read-only by
    convention: a frozen dataclass's __init__ costs four times as much, once per query never seen.

    Attributes:
        key: the lower-cased question name, qtype, RD and EDNS parameters: equal keys, equal replies
            (but for the question echoed).
        end: where the question section (name, type, class) ends in the query.
        labels: the lower-cased labels, root last (a NameKey).
        qtype: the asked type.
        rd: the RD bit (the only header bit a reply copies).
        edns: None without OPT, else (UDP payload limit, DO).
    """

    key: tuple
    end: int
    labels: NameKey
    qtype: int
    rd: bool
    edns: tuple[int, bool] | None


def read_question(wire: bytes) -> Question | None:
    """The Question of a plain query: one question of class IN, no records but an optional
    option-less OPT of version 0 with no flags but DO; None for anything else."""
    # The fast path and then the counting (ops/instrument.py) read the same bytes object of a
    # query never seen before: the second read is an identity check.
    if wire is _last[0]:
        return _last[1]
    q = _read_question(wire)
    _last[0], _last[1] = wire, q
    return q


_last: list = [None, None]  # the bytes read last and their Question


def _read_question(wire: bytes) -> Question | None:
    try:
        flags = wire[2] << 8 | wire[3]
        if flags & _NOT_PLAIN or wire[4:10] != _ONE_QUESTION:
            return None
        arcount = wire[10] << 8 | wire[11]
        if arcount > 1:
            return None
        i = 12
        starts = []
        length = wire[i]
        while length:
            if length > 63:
                return None  # a compression pointer or a reserved label type
            starts.append(i)
            i += length + 1
            length = wire[i]
        end = i + 5
        if end - 16 > 255 or len(wire) < end or wire[end - 2 : end] != b"\x00\x01":
            return None
        qtype = wire[end - 4] << 8 | wire[end - 3]
        edns = None
        if arcount:
            opt = wire[end : end + 11]
            # payload(2) ext-rcode(1) version(1) flags(2) rdlen(2): only DO may be set, no options
            if len(opt) != 11 or opt[:3] != _OPT_HEAD or opt[5] or opt[6] or opt[7] & 0x7F or opt[8] or opt[9:11] != b"\x00\x00":
                return None
            payload = opt[3] << 8 | opt[4]
            edns = (max(MIN_UDP_PAYLOAD, min(payload, OUR_PAYLOAD)), bool(opt[7] & 0x80))
    except IndexError:
        return None
    lowered = wire[: end - 4].lower()
    labels = [lowered[i + 1 : i + 1 + lowered[i]] for i in starts]
    labels.append(b"")
    rd = bool(flags & _RD)
    return Question((lowered[12:], qtype, rd, edns), end, NameKey(labels), qtype, rd, edns)


class Assembler:
    """Assembled replies for one View; None where the full path must answer."""

    def __init__(self, view: View) -> None:
        self._blocks: dict[NameKey, Block] = {}
        for block in view.blocks:
            for zone in block.zones:
                self._blocks.setdefault(NameKey.of(zone), block)  # the first, as View.zone_for picks it
        self._tables: dict[int, _Tables] = {}  # by id(Authority), for the current maps only

    def clear(self) -> None:
        """Forget every rendered fragment (a record map was published)."""
        self._tables.clear()

    def advance(self, changed: frozenset[NameKey]) -> None:
        """The stores published the next version, changing only `changed`: keep the other names'
        RRset fragments, render the SOA again (its serial rose)."""
        for tables in self._tables.values():
            tables.advance(changed)

    def reply(self, wire: bytes, q: Question, udp: bool) -> bytes | None:
        labels = q.labels
        blocks = self._blocks
        block = None
        for i in range(len(labels)):
            block = blocks.get(labels[i:])
            if block is not None:
                break
        if block is None or (authority := block.authority) is None:
            return None
        if authority.fallthrough is not None and block.forwarder is not None:
            return None
        tables = self._tables.get(id(authority))
        if tables is None:
            tables = self._tables[id(authority)] = _Tables(authority)
        return tables.reply(wire, q, udp)


class _Tables:
    """One authority's fragments for its store's current map."""

    def __init__(self, authority: Authority) -> None:
        self.settings = authority.settings
        self._store = authority.store
        self.records: RecordMap = authority.store.current
        self.zones = {NameKey.of(z): z for z in self.settings.zones}
        self._answers: dict[tuple[NameKey, int], tuple[int, bytes] | None] = {}
        self._soas: dict[tuple[NameKey, int], bytes | None] = {}
        self._soa_names: dict[NameKey, frozenset[NameKey]] = {}

    def advance(self, changed: frozenset[NameKey]) -> None:
        self.records = self._store.current
        answers = self._answers
        for name in changed:
            answers.pop((name, _A), None)
            answers.pop((name, _AAAA), None)
        self._soas.clear()
        self._soa_names.clear()

    def reply(self, wire: bytes, q: Question, udp: bool) -> bytes | None:
        records = self.records
        if not records.ready:
            return None
        labels, qtype = q.labels, q.qtype
        if qtype >= 128 and qtype != dns.rdatatype.ANY or qtype in (0, dns.rdatatype.OPT):
            return None  # meta types (AXFR and IXFR are refused, not answered) and OPT are the full path's
        zone = None
        for i in range(len(labels)):
            zone = labels[i:]
            if zone in self.zones:
                break
        else:
            return None
        nodes = records.nodes
        node = nodes.get(labels)
        if node is None:
            if self._wildcard_may_answer(labels, zone, nodes):
                return None
            rcode, ancount, body = 3, 0, self._soa(zone, q.end - 16)
        else:
            rrsets = node.rrsets
            rdatas = rrsets.get(qtype)
            if rdatas:
                if qtype != _A and qtype != _AAAA:
                    return None
                answer = self._answer(labels, qtype, node.ttls.get(qtype, self.settings.ttl), rdatas)
                if answer is None:
                    return None
                rcode, (ancount, body) = 0, answer
            elif qtype == dns.rdatatype.ANY or _CNAME in rrsets:
                return None
            else:
                rcode, ancount, body = 0, 0, self._soa(zone, q.end - 16)
        if body is None:
            return None
        if ancount == 0 and i and self._under_soa_names(labels, i, zone):
            return None
        edns = q.edns
        flags = 0x8400 | (_RD if q.rd else 0) | rcode  # QR AA
        nscount = 0 if ancount else 1
        header = struct.pack("!HHHHH", flags, 1, ancount, nscount, 0 if edns is None else 1)
        parts = [wire[:2], header, wire[12 : q.end], body]
        size = q.end + len(body)
        if edns is not None:
            parts.append(_OPT_DO if edns[1] else _OPT)
            size += 11
        if udp and size > (MIN_UDP_PAYLOAD if edns is None else edns[0]):
            return None  # truncation is the full path's
        return b"".join(parts)

    def _under_soa_names(self, labels: NameKey, depth: int, zone: NameKey) -> bool:
        """Whether the question is under a name the SOA rdata holds below the zone (mname, rname
        or a suffix of them): the compression table then has that name, and the SOA's bytes differ."""
        names = self._soa_names.get(zone)
        if names is None:
            names = self._soa_names[zone] = frozenset(
                NameKey(key[j:])
                for r in self.records.rdatas(self.zones[zone], _SOA)
                for key in (NameKey.of(r.mname), NameKey.of(r.rname))
                for j in range(len(key))
                if len(key) - j > len(zone) and key[len(key) - len(zone) :] == zone
            )
        return any(labels[j:] in names for j in range(depth))

    def _wildcard_may_answer(self, labels: NameKey, zone: NameKey, nodes) -> bool:
        # The closest encloser's wildcard (RFC 4592 §3.3.1), as answer() looks for it.
        encloser = labels[1:]
        while encloser != zone and nodes.get(encloser) is None:
            encloser = encloser[1:]
        return nodes.get(NameKey((_WILDCARD, *encloser))) is not None

    def _answer(self, labels: NameKey, qtype: int, ttl: int, rdatas) -> tuple[int, bytes] | None:
        key = (labels, qtype)
        answer = self._answers.get(key, _MISSING)
        if answer is _MISSING:
            datas = [r.to_wire() for r in rdatas]
            if len(set(datas)) != len(datas):
                answer = None  # an RRset holds each rdata once: dnspython's dedup is the full path's
            else:
                fixed = struct.pack("!HHHI", 0xC00C, qtype, 1, ttl)
                answer = (len(datas), b"".join(fixed + struct.pack("!H", len(d)) + d for d in datas))
            if len(self._answers) >= MAX_FRAGMENTS:
                self._answers.clear()
            self._answers[key] = answer
        return answer

    def _soa(self, zone: NameKey, qlen: int) -> bytes | None:
        """The SOA RR as it follows a question of qlen name bytes under zone; None when the
        question is under mname or rname (it would compress differently)."""
        key = (zone, qlen)
        body = self._soas.get(key, _MISSING)
        if body is _MISSING:
            body = self._soas[key] = self._render_soa(zone, qlen)
        return body

    def _render_soa(self, zone: NameKey, qlen: int) -> bytes | None:
        zone_name = self.zones[zone]
        soa = self.records.rdatas(zone_name, _SOA)
        if not soa:
            return None
        rrset = dns.rrset.RRset(zone_name, dns.rdataclass.IN, _SOA)
        rrset.update_ttl(self.settings.ttl)
        for rdata in soa:
            rrset.add(rdata)
        # The names in the compression table that can matter: the question's suffixes from the zone up.
        zone_start = 12 + qlen - sum(len(label) + 1 for label in zone)
        compress: dict[dns.name.Name, int] = {}
        at = zone_start
        for i in range(len(zone) - 1):
            compress[dns.name.Name(zone[i:])] = at
            at += len(zone[i]) + 1
        out = io.BytesIO()
        out.write(b"\x00" * (12 + qlen + 4))
        rrset.to_wire(out, compress)
        return out.getvalue()[12 + qlen + 4 :]


_MISSING = object()
_OPT = _OPT_HEAD + struct.pack("!HIH", OUR_PAYLOAD, 0, 0)
_OPT_DO = _OPT_HEAD + struct.pack("!HIH", OUR_PAYLOAD, 0x8000, 0)
