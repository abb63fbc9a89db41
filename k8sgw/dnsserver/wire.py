"""Bytes in, bytes out: the checks every query passes before answer(), and the encoding after.

DESIGN rule 11: under 12 bytes or QR set → no reply; unparseable with a readable header →
FORMERR; QDCOUNT ≠ 1 → FORMERR; opcode ≠ QUERY → NOTIMP; class ≠ IN → REFUSED; EDNS version > 0 →
BADVERS. A bug in answer() costs one SERVFAIL, never the server.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdataclass

from k8sgw.dnsserver.answer import OUR_PAYLOAD, Block, View, answer, make_reply, shuffle_addresses

__all__ = ["MAX_TCP_SIZE", "Handler", "Handlers", "Pending", "handle_wire"]

logger = logging.getLogger(__name__)

HEADER_SIZE = 12
MAX_TCP_SIZE = 65535
MIN_UDP_PAYLOAD = 512  # RFC 6891 §6.2.5: a smaller advertised payload is treated as 512
_QR = 0x8000


@dataclass(frozen=True, slots=True)
class Pending:
    """A query whose reply needs I/O: the block's forwarder asks upstream. The server awaits reply()."""

    query: dns.message.Message
    block: Block
    udp: bool

    async def reply(self) -> bytes:
        try:
            response = await self.block.forwarder.resolve(self.query)
        except Exception:
            logger.exception("bug while forwarding %s", self.query.question[0].name)
            response = make_reply(self.query, dns.rcode.SERVFAIL)
        if self.block.loadbalance:
            shuffle_addresses(response)
        return _encode(response, self.query, udp=self.udp)


Handler = Callable[[bytes, Any], "bytes | Pending | None"]
"""What a server calls per message: (query bytes, client address) → reply bytes, Pending or None."""


class Handlers:
    """The handlers one listener's servers call, looked up per message so a reload can swap them."""

    __slots__ = ("tcp", "udp")

    def __init__(self, udp: Handler | None = None, tcp: Handler | None = None) -> None:
        self.udp = udp
        self.tcp = tcp


def handle_wire(wire: bytes, view: View, *, udp: bool) -> bytes | Pending | None:
    """The reply to one DNS message, None when it must be dropped, or Pending when it is forwarded.

    Args:
        wire: the query as received (for TCP: without its length prefix).
        view: the server blocks of the listener it arrived on.
        udp: whether the reply must fit the client's UDP payload size (setting TC if not).
    """
    if len(wire) < HEADER_SIZE:
        return None
    _, flags, qdcount = struct.unpack_from("!HHH", wire)
    if flags & _QR:
        return None  # a response: answering it could start a loop between two servers
    try:
        query = dns.message.from_wire(wire)
    except dns.exception.DNSException:
        return _formerr(wire)
    try:
        reply = _checked_answer(query, qdcount, view)
    except Exception:
        logger.exception("bug while answering %s", query.question[:1])
        reply = make_reply(query, dns.rcode.SERVFAIL)
    if isinstance(reply, Block):
        return Pending(query, reply, udp)
    return _encode(reply, query, udp=udp)


def _checked_answer(query: dns.message.Message, qdcount: int, view: View) -> dns.message.Message | Block:
    if query.opcode() != dns.opcode.QUERY:
        return make_reply(query, dns.rcode.NOTIMP)
    if qdcount != 1 or len(query.question) != 1:
        return make_reply(query, dns.rcode.FORMERR)
    if query.edns > 0:
        reply = make_reply(query)
        reply.use_edns(0, payload=OUR_PAYLOAD)  # RFC 6891 §6.1.3: answer with the version we speak
        reply.set_rcode(dns.rcode.BADVERS)  # after use_edns: the upper rcode bits live in the OPT
        return reply
    if query.question[0].rdclass != dns.rdataclass.IN:
        return make_reply(query, dns.rcode.REFUSED)
    return answer(query, view)


def _encode(reply: dns.message.Message, query: dns.message.Message, *, udp: bool) -> bytes:
    # want_shuffle=False: dnspython shuffles records by default; k8sgw keeps a stable order (so a
    # reply can be cached and reused byte for byte) and shuffles only for `loadbalance`.
    if not udp:
        return reply.to_wire(max_size=MAX_TCP_SIZE, want_shuffle=False)
    limit = max(MIN_UDP_PAYLOAD, min(query.payload, OUR_PAYLOAD)) if query.edns >= 0 else MIN_UDP_PAYLOAD
    return reply.to_wire(max_size=limit, prefer_truncation=True, want_shuffle=False)


def _formerr(wire: bytes) -> bytes:
    """FORMERR for a message we cannot parse: echo the question if that much can be read."""
    try:
        query = dns.message.from_wire(wire, question_only=True)
    except dns.exception.DNSException:
        return _header_reply(wire, dns.rcode.FORMERR)
    reply = make_reply(query, dns.rcode.FORMERR)
    if len(reply.question) != 1:
        reply.question = []
    return reply.to_wire(max_size=MIN_UDP_PAYLOAD, prefer_truncation=True, want_shuffle=False)


def _header_reply(wire: bytes, rcode: int) -> bytes:
    """A bare header: same ID and opcode, QR set, RD copied, no sections (nothing else was readable)."""
    qid, flags = struct.unpack_from("!HH", wire)
    opcode_rd = flags & (0x7800 | dns.flags.RD)
    return struct.pack("!HHHHHH", qid, _QR | opcode_rd | rcode, 0, 0, 0, 0)
