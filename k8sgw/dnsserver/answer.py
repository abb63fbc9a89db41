"""answer(): one parsed query in, one response message out. Pure and synchronous.

Routing (DESIGN rule 1): the server block whose zone is the longest suffix of the name, then the
k8s_gateway zone inside it. Lookup follows the RFCs where k8s_gateway does not: NODATA for a name
that exists without the asked type (RFC 4074, 8020), wildcards per RFC 4592, the SOA in the
authority section of every negative answer (RFC 2308).

Reads `store.current` once per query; there is no await between that read and the last use, so a
concurrent publish can never mix two versions in one answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from k8sgw.records.recordmap import RecordMap
from k8sgw.records.store import ZoneSettings

__all__ = ["Authority", "Block", "View", "answer", "make_reply"]

# What we advertise: the DNS flag day 2020 size, which avoids IP fragmentation.
OUR_PAYLOAD = 1232
WILDCARD = b"*"


class MapSource(Protocol):
    """Anything with a `current` RecordMap (the RecordStore)."""

    @property
    def current(self) -> RecordMap: ...


@dataclass(frozen=True, slots=True)
class Authority:
    """One k8s_gateway instance as answer() sees it: its settings and its store."""

    settings: ZoneSettings
    store: MapSource


@dataclass(frozen=True, slots=True)
class Block:
    """One server block served on a listener: its zones and what answers for them."""

    zones: tuple[dns.name.Name, ...]
    authority: Authority | None = None


class View:
    """The server blocks one listener (address, port) serves; picks the block for a name."""

    def __init__(self, blocks: Iterable[Block]) -> None:
        self.blocks = tuple(blocks)
        self._by_zone = sorted(
            ((zone, block) for block in self.blocks for zone in block.zones), key=lambda zb: -len(zb[0])
        )

    def block_for(self, name: dns.name.Name) -> Block | None:
        for zone, block in self._by_zone:
            if name.is_subdomain(zone):
                return block
        return None


def make_reply(query: dns.message.Message, rcode: int = dns.rcode.NOERROR) -> dns.message.Message:
    """A response to query: ID, question and RD echoed, OPT when the query had one."""
    reply = dns.message.make_response(query, our_payload=OUR_PAYLOAD)
    reply.set_rcode(rcode)
    return reply


def answer(query: dns.message.Message, view: View) -> dns.message.Message:
    """Answer a query that wire.py has already checked (one question, opcode QUERY, class IN)."""
    question = query.question[0]
    qname, qtype = question.name, question.rdtype
    block = view.block_for(qname)
    authority = block.authority if block else None
    zone = authority.settings.scope.zone_of(qname) if authority else None
    if authority is None or zone is None:
        return make_reply(query, dns.rcode.REFUSED)
    records = authority.store.current
    if not records.ready:
        reply = make_reply(query, dns.rcode.SERVFAIL)
        if query.edns >= 0:
            reply.use_edns(0, payload=OUR_PAYLOAD, options=[dns.edns.EDEOption(dns.edns.EDECode.NOT_READY)])
        return reply
    reply = make_reply(query)
    reply.flags |= dns.flags.AA
    _lookup(reply, qname, qtype, zone, records, authority.settings)
    return reply


def _lookup(
    reply: dns.message.Message,
    qname: dns.name.Name,
    qtype: int,
    zone: dns.name.Name,
    records: RecordMap,
    settings: ZoneSettings,
) -> None:
    node = records.get(qname)
    if node is None:
        node = records.get(_wildcard_for(qname, zone, records))
        if node is None:
            reply.set_rcode(dns.rcode.NXDOMAIN)
            _add_soa(reply, zone, records, settings)
            return
    rrsets = node.rrsets
    if qtype == dns.rdatatype.ANY and rrsets:
        # RFC 8482: answer ANY with one RRset rather than everything.
        qtype = next(iter(rrsets))
    rdatas = rrsets.get(qtype)
    if not rdatas:
        _add_soa(reply, zone, records, settings)  # NODATA
        return
    reply.answer.append(_rrset(qname, node.ttls.get(qtype, settings.ttl), rdatas))
    if qtype == dns.rdatatype.NS:
        _add_glue(reply, rdatas, records, settings)


def _wildcard_for(qname: dns.name.Name, zone: dns.name.Name, records: RecordMap) -> dns.name.Name:
    """`*.<closest encloser>` (RFC 4592 §3.3.1): the wildcard that may answer a missing name."""
    encloser = qname.parent()
    while encloser != zone and records.get(encloser) is None:
        encloser = encloser.parent()
    return dns.name.Name((WILDCARD, *encloser.labels))


def _add_soa(reply: dns.message.Message, zone: dns.name.Name, records: RecordMap, settings: ZoneSettings) -> None:
    # RFC 2308 §5: the negative TTL is min(SOA TTL, SOA minimum); both are the configured TTL.
    soa = records.rdatas(zone, dns.rdatatype.SOA)
    reply.authority.append(_rrset(zone, settings.ttl, soa))


def _add_glue(
    reply: dns.message.Message, targets: Sequence[dns.rdata.Rdata], records: RecordMap, settings: ZoneSettings
) -> None:
    for ns in targets:
        for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            glue = records.rdatas(ns.target, rdtype)
            if glue:
                reply.additional.append(_rrset(ns.target, settings.ttl, glue))


def _rrset(name: dns.name.Name, ttl: int, rdatas: Sequence[dns.rdata.Rdata]) -> dns.rrset.RRset:
    rrset = dns.rrset.RRset(name, dns.rdataclass.IN, rdatas[0].rdtype)
    rrset.update_ttl(ttl)
    for rdata in rdatas:
        rrset.add(rdata)
    return rrset
