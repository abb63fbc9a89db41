"""Bytes in, bytes out: the checks every query passes before answer(), and the encoding after.

Bad input never stops a server, and gets what NSD gives it: under 12 bytes or QR set → no reply
(answering a response could start a loop between two servers); an opcode other than QUERY →
NOTIMP (NOTIFY: REFUSED, k8sgw is no secondary), read from the header before anything is parsed;
records in the answer or authority section, rcode bits set, or an unparseable message → FORMERR;
no question → FORMERR, or NOERROR when the query has an OPT (RFC 7873 §5.4: how a client asks
only for a server cookie); several questions → FORMERR; EDNS version > 0 → BADVERS (RFC 6891
§6.1.3); class ≠ IN → REFUSED; bytes after the question and OPT are ignored. A bug in answer()
costs one SERVFAIL, never the server.

A signed query (TSIG, RFC 8945) is verified against the listener's keys while it is parsed, and
its reply is signed; one that does not verify gets the TSIG error reply (BADKEY, BADSIG,
BADTIME). A query `tsig require` names that is not signed is REFUSED. AXFR and IXFR for a zone a
block transfers become a TransferQuery, which the server answers knowing the client's address.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from typing import Any, Protocol

import dns.edns
import dns.exception
import dns.message
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from k8sgw.dnsserver.answer import Block, View, answer
from k8sgw.dnsserver.forward import Pending
from k8sgw.dnsserver.replies import MIN_UDP_PAYLOAD, OUR_PAYLOAD, encode, header_reply, make_reply
from k8sgw.transfer.serve import Outbound, TransferQuery
from k8sgw.transfer.tsig import error_reply, is_tsig_failure

# Pending lives with the forwarding I/O in forward.py; it is named here too because it is part of
# what a Handler returns.
__all__ = [
    "HEADER_SIZE",
    "Deferred",
    "Handler",
    "Handlers",
    "Outbound",
    "Pending",
    "TransferQuery",
    "handle_wire",
    "refuse_transfer",
]

logger = logging.getLogger(__name__)

HEADER_SIZE = 12
_QR = 0x8000
_RCODE = 0x000F
_QUERY = dns.opcode.QUERY
_NOTIFY = dns.opcode.NOTIFY

class Deferred(Protocol):
    """A reply that needs I/O first: a forward.Pending, or a wrapper around one (ops/instrument.py
    counts and logs it when it is ready)."""

    async def reply(self) -> bytes: ...


Handler = Callable[[bytes, Any], "bytes | Deferred | Outbound | None"]
"""What a server calls per message: (query bytes, client address) → reply bytes, a Deferred
reply (forwarded), an Outbound (a zone transfer's messages, TCP only) or None (drop)."""


class Handlers:
    """The handlers one listener's servers call, looked up per message so a reload can swap them."""

    __slots__ = ("tcp", "udp")

    def __init__(self, udp: Handler | None = None, tcp: Handler | None = None) -> None:
        self.udp = udp
        self.tcp = tcp


def handle_wire(wire: bytes, view: View, *, udp: bool) -> bytes | Pending | TransferQuery | None:
    """The reply to one DNS message, None when it must be dropped, Pending when it is forwarded, or
    a TransferQuery (AXFR/IXFR of a zone a block transfers) for the server to answer.

    Args:
        wire: the query as received (for TCP: without its length prefix).
        view: the server blocks of the listener it arrived on.
        udp: whether the reply must fit the client's UDP payload size (setting TC if not).
    """
    if len(wire) < HEADER_SIZE:
        return None
    _, flags, qdcount, ancount, nscount = struct.unpack_from("!HHHHH", wire)
    if flags & _QR:
        return None
    opcode = (flags >> 11) & 0xF
    if opcode != _QUERY:
        return header_reply(wire, dns.rcode.REFUSED if opcode == _NOTIFY else dns.rcode.NOTIMP)
    # One authority record is an IXFR's SOA (RFC 1995 §3), checked once the question is read.
    if ancount or nscount > 1 or flags & _RCODE:
        return header_reply(wire, dns.rcode.FORMERR)
    keyring = view.tsig.keyring if view.tsig is not None else None
    try:
        query = dns.message.from_wire(wire, ignore_trailing=True, keyring=keyring)
    except dns.exception.DNSException as exc:
        if is_tsig_failure(exc):
            return _tsig_failed(wire, exc, keyring)
        return _formerr(wire)
    if query.additional or (nscount and not _is_ixfr(query)):  # records other than OPT and TSIG
        return header_reply(wire, dns.rcode.FORMERR)
    try:
        reply = _checked_answer(query, qdcount, view, udp)
    except Exception:
        logger.exception("bug while answering %s", query.question[:1])
        reply = make_reply(query, dns.rcode.SERVFAIL)
    if isinstance(reply, Block):
        return _forwarded(query, reply, udp)
    if type(reply) is TransferQuery:
        return reply
    return encode(reply, query, udp=udp, loadbalance=view.loadbalance and _shuffles(query, view))


def _forwarded(query: dns.message.Message, block: Block, udp: bool) -> Pending:
    """A Pending for block's forwarder; already done when the forwarder needs no I/O for it."""
    forwarder = block.forwarder
    assert forwarder is not None  # answer() returns a Block only for its forwarder
    try:
        ready = forwarder.answer_now(query)
    except Exception:
        logger.exception("bug while forwarding %s", query.question[0].name)
        ready = make_reply(query, dns.rcode.SERVFAIL)
    if ready is None:
        return Pending(query, forwarder, udp, block.loadbalance)
    return Pending(query, forwarder, udp, block.loadbalance, encode(ready, query, udp=udp, loadbalance=block.loadbalance))


def _checked_answer(query: dns.message.Message, qdcount: int, view: View, udp: bool) -> dns.message.Message | Block:
    if query.edns > 0:
        reply = make_reply(query)
        reply.use_edns(0, 0, OUR_PAYLOAD)  # RFC 6891 §6.1.3: answer with the version we speak (no DO, as NSD)
        reply.set_rcode(dns.rcode.BADVERS)  # after use_edns: the upper rcode bits live in the OPT
        return reply
    if qdcount == 0 and query.edns == 0:
        return make_reply(query)  # a COOKIE-only query (RFC 7873 §5.4); k8sgw keeps no server cookie
    if qdcount != 1 or len(query.question) != 1:
        return make_reply(query, dns.rcode.FORMERR)
    question = query.question[0]
    if question.rdclass != dns.rdataclass.IN:
        # CHAOS too: k8sgw tells no version or host name (as CoreDNS without `chaos`).
        return make_reply(query, dns.rcode.REFUSED, dns.edns.EDECode.NOT_SUPPORTED)
    if view.tsig is not None and not query.had_tsig and view.tsig.requires(question.name, question.rdtype):
        return make_reply(query, dns.rcode.REFUSED, dns.edns.EDECode.PROHIBITED)  # `tsig require`
    if question.rdtype in (dns.rdatatype.AXFR, dns.rdatatype.IXFR):
        return _transfer(query, view, udp)
    return answer(query, view)


def _transfer(query: dns.message.Message, view: View, udp: bool) -> dns.message.Message | TransferQuery:
    """A TransferQuery where the zone's block transfers it; otherwise as refuse_transfer says."""
    name = query.question[0].name
    block = view.block_for(name)
    policy = block.transfer if block is not None else None
    if policy is None or name not in policy.zones:
        return refuse_transfer(query, view, udp=udp)
    if udp and query.question[0].rdtype == dns.rdatatype.AXFR:
        return make_reply(query, dns.rcode.NOTIMP)  # RFC 5936 §4.2: AXFR is TCP only (as NSD)
    return TransferQuery(query, policy, udp=udp)


def _is_ixfr(query: dns.message.Message) -> bool:
    """An IXFR whose authority section is one SOA at the zone's name (RFC 1995 §3)."""
    if len(query.question) != 1 or query.question[0].rdtype != dns.rdatatype.IXFR or len(query.authority) != 1:
        return False
    soa = query.authority[0]
    return soa.rdtype == dns.rdatatype.SOA and soa.name == query.question[0].name and len(soa) == 1


def _tsig_failed(wire: bytes, exc: Exception, keyring: dict | None) -> bytes:
    reply = error_reply(wire, exc, keyring)
    if reply is None:
        return _formerr(wire)
    logger.debug("TSIG of a query failed: %s: %s", type(exc).__name__, exc)
    return reply


def refuse_transfer(query: dns.message.Message, view: View, *, udp: bool) -> dns.message.Message:
    """AXFR and IXFR while k8sgw serves no zone transfer, answered as NSD answers a client its ACLs
    do not allow: AXFR over UDP NOTIMP (RFC 5936 §4.2: AXFR is TCP only); for a zone k8sgw serves
    REFUSED (RFC 5936 §2.2.1), for any other name NOTAUTH."""
    if udp and query.question[0].rdtype == dns.rdatatype.AXFR:
        return make_reply(query, dns.rcode.NOTIMP)
    name = query.question[0].name
    block = view.block_for(name)
    if block is None or block.authority is None or name not in block.authority.settings.zones:
        return make_reply(query, dns.rcode.NOTAUTH)
    return make_reply(query, dns.rcode.REFUSED, dns.edns.EDECode.PROHIBITED)


def _shuffles(query: dns.message.Message, view: View) -> bool:
    block = view.block_for(query.question[0].name) if query.question else None
    return block is not None and block.loadbalance


def _formerr(wire: bytes) -> bytes:
    """FORMERR for a message we cannot parse: echo the question if that much can be read."""
    try:
        query = dns.message.from_wire(wire, question_only=True)
    except dns.exception.DNSException:
        return header_reply(wire, dns.rcode.FORMERR)
    reply = make_reply(query, dns.rcode.FORMERR)
    if len(reply.question) != 1:
        reply.question = []
    return reply.to_wire(max_size=MIN_UDP_PAYLOAD, prefer_truncation=True, want_shuffle=False)
