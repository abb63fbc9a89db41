"""The replies of a zone transfer, as messages of raw bytes (RFC 5936 AXFR, RFC 1995 IXFR).

Records are packed into as few messages as fit 64 KB (RFC 5936 §2.2: as many as fit). Every
message carries the question (§2.2.1 allows it after the first; the records' owners point to its
name), the query's ID, QR and AA; an OPT when the
query had one; and a TSIG record when the query was signed (each message, RFC 8945 §5.3.1).
Messages are produced one at a time, so the server sends each before the next is packed and a
transfer of any size holds the event loop for one message at a time.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator

import dns.flags
import dns.message

from k8sgw.dnsserver.replies import OUR_PAYLOAD
from k8sgw.transfer.journal import Difference
from k8sgw.transfer.tsig import MultiSigner
from k8sgw.transfer.zonecopy import Snapshot

__all__ = ["axfr_records", "ixfr_records", "messages"]

# Messages are filled to about this size, though 64 KB would be allowed: packing one costs the
# event loop ~0.3 ms, so UDP answers wait at most that long behind a transfer (NSD's are ~16 KB too).
MESSAGE_SIZE = 16384
# Room kept in each message for the OPT and TSIG records added after packing: an OPT is 11 bytes,
# a TSIG at most ~ 255 (key name) + 255 (algorithm) + 64 (SHA-512 MAC) + 26.
_RESERVED = 11 + 620
_FLAGS = dns.flags.QR | dns.flags.AA


def axfr_records(zone: Snapshot) -> Iterator[bytes]:
    """RFC 5936 §2.2: the SOA, every other record, the SOA again."""
    yield zone.soa
    yield from zone.records()
    yield zone.soa


def ixfr_records(current: bytes, difference: Difference) -> Iterator[bytes]:
    """RFC 1995 §4, one condensed difference: the new SOA; the old SOA and what it removes; the
    new SOA and what it adds; the new SOA again."""
    yield current
    yield difference.old_soa
    yield from difference.removed
    yield current
    yield from difference.added
    yield current


def messages(query: dns.message.Message, records: Iterable[bytes], counted: list[int] | None = None) -> Iterator[bytes]:
    """The reply messages carrying records, in order, each ready to send (without the TCP length).

    Args:
        counted: when given, its first item counts the records packed so far.
    """
    question = _question(query)
    flags = _FLAGS | (query.flags & dns.flags.RD)
    opt = _opt(query)
    signer = MultiSigner(query) if query.had_tsig else None
    limit = MESSAGE_SIZE - _RESERVED
    body: list[bytes] = []
    size = start = 12 + len(question)
    for rr in records:
        if body and size + len(rr) > limit:  # a record larger than the limit goes alone (up to 64 KB)
            if counted is not None:
                counted[0] += len(body)
            yield _finish(query.id, flags, question, body, opt, signer)
            body, size = [], start
        body.append(rr)
        size += len(rr)
    if counted is not None:
        counted[0] += len(body)
    yield _finish(query.id, flags, question, body, opt, signer)


def _finish(qid: int, flags: int, question: bytes, body: list[bytes], opt: bytes, signer: MultiSigner | None) -> bytes:
    header = struct.pack("!HHHHHH", qid, flags, 1, len(body), 0, 1 if opt else 0)
    wire = b"".join((header, question, *body, opt))
    return signer.sign(wire) if signer is not None else wire


def _question(query: dns.message.Message) -> bytes:
    q = query.question[0]
    return q.name.to_wire() + struct.pack("!HH", q.rdtype, q.rdclass)


def _opt(query: dns.message.Message) -> bytes:
    """An OPT answering the query's (our payload size, DO echoed), or nothing without one."""
    if query.edns < 0:
        return b""
    do = query.ednsflags & dns.flags.DO
    return b"\x00" + struct.pack("!HHHH", 41, OUR_PAYLOAD, 0, do) + b"\x00\x00"
