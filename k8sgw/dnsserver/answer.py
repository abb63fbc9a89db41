"""answer(): one parsed query in, one response message out. Pure and synchronous.

Routing: the server block whose zone is the longest suffix of the name (case-insensitive), then
the k8s_gateway zone inside it, the longest configured zone that is a suffix of the name. Lookup
follows the RFCs where k8s_gateway does not: NODATA for a name that exists without the asked
type (RFC 4074, 8020), wildcards per RFC 4592, the SOA in the authority section of every negative
answer (RFC 2308).

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

from k8sgw.config.ops import LogConfig
from k8sgw.config.transfer import TsigConfig
from k8sgw.dnsserver.replies import make_reply
from k8sgw.records.recordmap import RecordMap
from k8sgw.records.store import ZoneSettings
from k8sgw.transfer.serve import TransferPolicy
from k8sgw.transfer.tsig import TsigPolicy

__all__ = ["Authority", "Block", "Forwards", "View", "answer"]

WILDCARD = b"*"


class MapSource(Protocol):
    """Anything with a `current` RecordMap (the RecordStore)."""

    @property
    def current(self) -> RecordMap: ...


@dataclass(frozen=True, slots=True)
class Authority:
    """One k8s_gateway instance as answer() sees it.

    Attributes:
        settings: zones, TTL, nameserver names.
        store: where the current RecordMap is.
        fallthrough: None: off; (): every zone; else the zones whose missing names are forwarded.
    """

    settings: ZoneSettings
    store: MapSource
    fallthrough: tuple[dns.name.Name, ...] | None = None


@dataclass(frozen=True, slots=True)
class Block:
    """One server block served on a listener: its zones and what answers for them.

    Attributes:
        zones: the block's keys' zones.
        authority: k8s_gateway, if the block has it.
        forwarder: `forward`, if the block has it (the I/O is in forward.py).
        loadbalance: shuffle A/AAAA records in every answer (`loadbalance`; replies.encode does it).
        log: the block's `log` directive, read by ops/instrument.py (answer() ignores it).
        transfer: `transfer`: which zones AXFR/IXFR serve, to whom (wire.py hands those queries on).
        tsig: `tsig`: the block's keys and which queries must be signed.
    """

    zones: tuple[dns.name.Name, ...]
    authority: Authority | None = None
    forwarder: Forwards | None = None
    loadbalance: bool = False
    log: LogConfig | None = None
    transfer: TransferPolicy | None = None
    tsig: TsigConfig | None = None


class Forwards(Protocol):
    """What answer() and forward.Pending need of a forwarder (forward.Forwarder)."""

    def covers(self, name: dns.name.Name) -> bool: ...

    def answer_now(self, query: dns.message.Message) -> dns.message.Message | None: ...

    async def forward(self, query: dns.message.Message) -> dns.message.Message: ...


class View:
    """The server blocks one listener (address, port) serves; picks the block for a name."""

    def __init__(self, blocks: Iterable[Block]) -> None:
        self.blocks = tuple(blocks)
        self.loadbalance = any(b.loadbalance for b in self.blocks)
        signed = [(b.zones, b.tsig) for b in self.blocks if b.tsig is not None]
        self.tsig = TsigPolicy(signed) if signed else None
        """The keys of every block's `tsig` (a key is the listener's) and what each block requires."""
        self._by_zone = sorted(
            ((zone, block) for block in self.blocks for zone in block.zones), key=lambda zb: -len(zb[0])
        )

    def block_for(self, name: dns.name.Name) -> Block | None:
        return self.zone_for(name)[1]

    def zone_for(self, name: dns.name.Name) -> tuple[dns.name.Name | None, Block | None]:
        """The longest server-block zone containing name, and its block (None, None: no block)."""
        for zone, block in self._by_zone:
            if name.is_subdomain(zone):
                return zone, block
        return None, None


def answer(query: dns.message.Message, view: View) -> dns.message.Message | Block:
    """Answer a query that wire.py has already checked (one question, opcode QUERY, class IN).

    Returns:
        The reply, or the Block whose forwarder must answer: the name is outside every
        k8s_gateway zone but its block forwards it, or it does not exist in a fallthrough zone.
    """
    question = query.question[0]
    qname, qtype = question.name, question.rdtype
    block = view.block_for(qname)
    if block is None:
        return make_reply(query, dns.rcode.REFUSED, dns.edns.EDECode.NOT_AUTHORITATIVE)
    authority = block.authority
    zone = authority.settings.zone_of(qname) if authority else None
    if authority is None or zone is None:
        if block.forwarder is not None and block.forwarder.covers(qname):
            return block
        return make_reply(query, dns.rcode.REFUSED, dns.edns.EDECode.NOT_AUTHORITATIVE)
    records = authority.store.current
    if not records.ready:
        return make_reply(query, dns.rcode.SERVFAIL, dns.edns.EDECode.NOT_READY)
    reply = make_reply(query)
    reply.flags |= dns.flags.AA
    _lookup(reply, qname, qtype, zone, records, authority.settings)
    if reply.rcode() == dns.rcode.NXDOMAIN and _falls_through(qname, zone, block, authority):
        return block
    return reply


def _falls_through(qname: dns.name.Name, zone: dns.name.Name, block: Block, authority: Authority) -> bool:
    """`fallthrough [ZONES]`: a missing name in such a zone goes to forward; nameserver hosts never do."""
    zones = authority.fallthrough
    if zones is None or block.forwarder is None or not block.forwarder.covers(qname):
        return False
    if zones and not any(qname.is_subdomain(z) for z in zones):
        return False
    return not any(qname.is_subdomain(ns) for ns in authority.settings.nameservers(zone))


# A CNAME chain longer than this is a loop or an abuse; resolvers give up around 8-16 too.
MAX_CNAME_CHAIN = 8


def _lookup(
    reply: dns.message.Message,
    qname: dns.name.Name,
    qtype: int,
    zone: dns.name.Name,
    records: RecordMap,
    settings: ZoneSettings,
) -> None:
    """Fill reply for qname/qtype; in-zone CNAME targets are followed in the same answer (a CNAME
    to a name outside k8sgw's zones is left for the resolver to follow)."""
    owner = qname
    for _ in range(MAX_CNAME_CHAIN):
        node = records.get(owner)
        if node is None:
            node = records.get(_wildcard_for(owner, zone, records))
            if node is None:
                reply.set_rcode(dns.rcode.NXDOMAIN)  # RFC 6604: the rcode of the chain's last name
                _add_soa(reply, zone, records, settings)
                return
        rrsets = node.rrsets
        if qtype == dns.rdatatype.ANY and rrsets:
            # RFC 8482: answer ANY with one RRset rather than everything.
            qtype = next(iter(rrsets))
        rdatas = rrsets.get(qtype)
        if rdatas:
            reply.answer.append(_rrset(owner, node.ttls.get(qtype, settings.ttl), rdatas))
            if qtype == dns.rdatatype.NS:
                _add_glue(reply, rdatas, records, settings)
            return
        cname = rrsets.get(dns.rdatatype.CNAME)
        if not cname:
            _add_soa(reply, zone, records, settings)  # NODATA
            return
        reply.answer.append(_rrset(owner, node.ttls.get(dns.rdatatype.CNAME, settings.ttl), cname))
        owner = cname[0].target
        in_zone = settings.zone_of(owner)
        if in_zone is None or any(rrset.name == owner for rrset in reply.answer):
            return  # out of our zones (the resolver follows it), or a loop
        zone = in_zone


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
