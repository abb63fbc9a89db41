"""The wire pipeline: malformed input, header checks, EDNS, UDP truncation, replies too big to encode.

(How each odd query compares with NSD's answer is in test_wire_nsd.py.)"""

from __future__ import annotations

import ipaddress
import logging
import struct

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from k8sgw.dnsserver.wire import handle_wire
from tests.zonetext import view_from_text

MANY = "\n".join(f"big.example.org. 60 IN A 192.0.2.{i}" for i in range(1, 61))
VIEW, _ = view_from_text("web.example.org. 60 IN A 192.0.2.10\n" + MANY)


def reply_to(query: dns.message.Message | bytes, *, udp: bool = True) -> dns.message.Message:
    wire = query if isinstance(query, bytes) else query.to_wire()
    out = handle_wire(wire, VIEW, udp=udp)
    assert out is not None
    return dns.message.from_wire(out)


@pytest.mark.parametrize("wire", [b"", b"\x00" * 11, b"\x12\x34\x81\x00" + b"\x00" * 8])
def test_short_or_response_is_dropped(wire):
    assert handle_wire(wire, VIEW, udp=True) is None


def test_garbage_after_header_is_formerr():
    wire = b"\xbe\xef\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + b"\xff\xff\xff"
    reply = reply_to(wire)
    assert reply.id == 0xBEEF
    assert reply.rcode() == dns.rcode.FORMERR


def test_formerr_keeps_a_readable_question():
    good = dns.message.make_query("web.example.org.", "A").to_wire()
    # Claim one additional record that is not there: the question is readable, the rest is not.
    broken = good[:10] + struct.pack("!H", 1) + good[12:]
    reply = reply_to(broken)
    assert reply.rcode() == dns.rcode.FORMERR
    assert str(reply.question[0].name) == "web.example.org."


def test_no_question_is_formerr():
    query = dns.message.make_query("web.example.org.", "A")
    query.question = []
    assert reply_to(query).rcode() == dns.rcode.FORMERR


def test_two_questions_is_formerr():
    query = dns.message.make_query("web.example.org.", "A")
    query.question.append(dns.message.make_query("x.example.org.", "A").question[0])
    assert reply_to(query).rcode() == dns.rcode.FORMERR


@pytest.mark.parametrize(
    ("opcode", "rcode"),
    [(dns.opcode.UPDATE, dns.rcode.NOTIMP), (dns.opcode.STATUS, dns.rcode.NOTIMP), (dns.opcode.NOTIFY, dns.rcode.REFUSED)],
)
def test_other_opcodes_are_read_before_parsing(opcode, rcode):
    query = dns.message.make_query("web.example.org.", "SOA")
    query.set_opcode(opcode)
    # An UPDATE's prerequisite section (the answer section of a query) holds records: read as a
    # query it would be FORMERR; the opcode is read first.
    query.answer.append(dns.rrset.from_text("web.example.org.", 0, "ANY", "ANY"))
    reply = reply_to(query)
    assert reply.rcode() == rcode
    assert reply.opcode() == opcode


def test_other_class_is_refused():
    query = dns.message.make_query("web.example.org.", "A", rdclass=dns.rdataclass.CH)
    assert reply_to(query).rcode() == dns.rcode.REFUSED


def test_edns_version_1_is_badvers():
    query = dns.message.make_query("web.example.org.", "A", use_edns=1)
    reply = reply_to(query)
    assert reply.rcode() == dns.rcode.BADVERS
    assert reply.edns == 0


def test_udp_reply_that_does_not_fit_is_truncated_and_fits():
    reply_wire = handle_wire(dns.message.make_query("big.example.org.", "A").to_wire(), VIEW, udp=True)
    assert len(reply_wire) <= 512
    reply = dns.message.from_wire(reply_wire)
    assert reply.flags & dns.flags.TC


def test_edns_payload_is_honoured_up_to_ours():
    query = dns.message.make_query("big.example.org.", "A", use_edns=0, payload=4096)
    wire = handle_wire(query.to_wire(), VIEW, udp=True)
    reply = dns.message.from_wire(wire)
    assert len(wire) <= 1232
    assert not reply.flags & dns.flags.TC  # 60 A records (16 bytes each) fit in 1232 bytes
    assert len(reply.answer[0]) == 60
    small = dns.message.make_query("big.example.org.", "A", use_edns=0, payload=100)
    assert len(handle_wire(small.to_wire(), VIEW, udp=True)) <= 512  # below 512 counts as 512


def test_tcp_reply_is_never_truncated():
    reply = reply_to(dns.message.make_query("big.example.org.", "A"), udp=False)
    assert not reply.flags & dns.flags.TC
    assert len(reply.answer[0]) == 60


def _txt_over_64k() -> str:
    return "huge.example.org. 60 IN TXT " + " ".join(['"' + "x" * 255 + '"'] * 280)  # 71,680 bytes


def _many_aaaa(count: int) -> str:
    return "\n".join(f"huge.example.org. 60 IN AAAA {ipaddress.IPv6Address((0x20010DB8 << 96) | i)}" for i in range(count))


@pytest.mark.parametrize(
    ("records", "udp", "rcode", "tc"),
    [
        (_txt_over_64k(), True, dns.rcode.SERVFAIL, False),  # an rdata over 65,535 bytes: no encoding at all
        (_txt_over_64k(), False, dns.rcode.SERVFAIL, False),
        (_many_aaaa(2400), False, dns.rcode.SERVFAIL, False),  # 2,400 AAAA: over 64 KB, TooBig
        (_many_aaaa(2400), True, dns.rcode.NOERROR, True),  # over UDP: truncated, the client retries TCP
    ],
    ids=["txt-70k-udp", "txt-70k-tcp", "aaaa-2400-tcp", "aaaa-2400-udp"],
)
def test_a_reply_that_cannot_be_encoded_is_servfail_and_logged_once(records, udp, rcode, tc, caplog):
    # Past the translators' own checks: what answer() returns if an object ever carries it.
    view, _ = view_from_text(records)
    rdtype = records.split()[3]
    caplog.set_level(logging.WARNING)
    for qid in range(20):
        query = dns.message.make_query("huge.example.org.", rdtype, use_edns=0)
        query.id = qid
        wire = handle_wire(query.to_wire(), view, udp=udp)
        assert wire is not None
        reply = dns.message.from_wire(wire)
        assert reply.id == qid
        assert reply.rcode() == rcode
        assert bool(reply.flags & dns.flags.TC) == tc
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) <= 1  # at most one line per name and minute, never a traceback per query
    assert all(r.exc_info is None for r in warnings)
