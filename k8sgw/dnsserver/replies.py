"""Building and encoding replies: what every answer (k8sgw's own or an upstream's) passes through.

The one home of the EDNS size k8sgw advertises, of the reply skeleton (ID, question, RD, OPT and DO
echoed), of `loadbalance`'s shuffle and of the last step, message → bytes, which never fails: a
reply that cannot be encoded becomes SERVFAIL.
"""

from __future__ import annotations

import logging
import random
import struct

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

from k8sgw.dnsserver.throttle import LogThrottle, repeats_note

__all__ = [
    "MAX_TCP_SIZE",
    "MIN_UDP_PAYLOAD",
    "OUR_PAYLOAD",
    "encode",
    "header_reply",
    "make_reply",
    "shuffle_addresses",
]

logger = logging.getLogger(__name__)

# What we advertise: the DNS flag day 2020 size, which avoids IP fragmentation.
OUR_PAYLOAD = 1232
MIN_UDP_PAYLOAD = 512  # RFC 6891 §6.2.5: a smaller advertised payload is treated as 512
MAX_TCP_SIZE = 65535  # RFC 1035 §4.2.2: a two-byte length prefix

_QR = 0x8000
_OPCODE_RD = 0x7800 | dns.flags.RD

# One WARNING per name and minute for replies that cannot be encoded: a client repeating the
# query (every resolver retries) must not turn one bad object into a log flood.
_unencodable = LogThrottle(60.0)


def make_reply(
    query: dns.message.Message, rcode: int = dns.rcode.NOERROR, ede: dns.edns.EDECode | None = None
) -> dns.message.Message:
    """A response to query: ID, question and RD echoed; OPT when the query had one, with DO copied
    (RFC 3225 §3: the DO bit of a query is copied into its response) and the Extended DNS Error
    `ede` when given (RFC 8914: why a query was refused or failed)."""
    reply = dns.message.make_response(query, our_payload=OUR_PAYLOAD)  # OPT already, when asked
    if query.edns >= 0 and (ede is not None or query.ednsflags & dns.flags.DO):
        options = [dns.edns.EDEOption(ede)] if ede is not None else []
        reply.use_edns(0, query.ednsflags & dns.flags.DO, OUR_PAYLOAD, options=options)
    reply.set_rcode(rcode)
    return reply


def header_reply(wire: bytes, rcode: int) -> bytes:
    """A bare header answering wire: same ID and opcode, QR set, RD copied, no sections."""
    qid, flags = struct.unpack_from("!HH", wire)
    return struct.pack("!HHHHHH", qid, _QR | (flags & _OPCODE_RD) | rcode, 0, 0, 0, 0)


def shuffle_addresses(reply: dns.message.Message) -> None:
    """`loadbalance`: a random order of the A and AAAA records in the answer section."""
    for i, rrset in enumerate(reply.answer):
        if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA) and len(rrset) > 1:
            rdatas = list(rrset)
            random.shuffle(rdatas)
            shuffled = dns.rrset.RRset(rrset.name, rrset.rdclass, rrset.rdtype)
            shuffled.update_ttl(rrset.ttl)
            for rdata in rdatas:
                shuffled.add(rdata)
            reply.answer[i] = shuffled


def encode(reply: dns.message.Message, query: dns.message.Message, *, udp: bool, loadbalance: bool = False) -> bytes:
    """reply as bytes for the client of query: fitted to its UDP payload size (TC set when cut),
    shuffled for `loadbalance`; SERVFAIL when it cannot be encoded at all (an RRset over 64 KB
    for TCP, an rdata over 65,535 bytes)."""
    if loadbalance:
        shuffle_addresses(reply)
    try:
        return _to_wire(reply, query, udp)
    except (dns.exception.DNSException, struct.error, ValueError) as exc:
        name = query.question[0].name if query.question else None
        held_back = _unencodable.report(name)
        if held_back is not None:
            logger.warning(
                "the reply to %s cannot be encoded (%s: %s); answering SERVFAIL%s",
                name, type(exc).__name__, exc, repeats_note(held_back),
            )
        return _to_wire(make_reply(query, dns.rcode.SERVFAIL), query, udp)


def _to_wire(reply: dns.message.Message, query: dns.message.Message, udp: bool) -> bytes:
    # want_shuffle=False: dnspython shuffles records by default; k8sgw keeps a stable order (so a
    # reply can be cached and reused byte for byte) and shuffles only for `loadbalance`.
    if not udp:
        return reply.to_wire(max_size=MAX_TCP_SIZE, want_shuffle=False)
    limit = max(MIN_UDP_PAYLOAD, min(query.payload, OUR_PAYLOAD)) if query.edns >= 0 else MIN_UDP_PAYLOAD
    return reply.to_wire(max_size=limit, prefer_truncation=True, want_shuffle=False)
