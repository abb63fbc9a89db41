"""The query log: CoreDNS's common and combined formats, read from wire messages; class and name filters."""

from __future__ import annotations

import logging

import dns.flags
import dns.message
import dns.rcode
import dns.rrset
import pytest

from k8sgw.config import parse_corefile
from k8sgw.config.ops import COMBINED_LOG_FORMAT, LogConfig
from k8sgw.ops.querylog import QUERY_LOGGER, QueryLogger, classify, format_entry, summarize


def query(name: str = "web.example.org.", rdtype: str = "A", **kw) -> dns.message.Message:
    q = dns.message.make_query(name, rdtype, **kw)
    q.id = 4242
    return q


def reply(q: dns.message.Message, *answers: str, rcode: int = dns.rcode.NOERROR, soa: bool = False) -> dns.message.Message:
    r = dns.message.make_response(q)
    r.flags |= dns.flags.AA
    r.set_rcode(rcode)
    for text in answers:
        r.answer.append(dns.rrset.from_text(q.question[0].name, 60, "IN", "A", text))
    if soa:
        r.authority.append(dns.rrset.from_text("example.org.", 60, "IN", "SOA", "ns. host. 1 2 3 4 60"))
    return r


def test_common_log_format_from_wire() -> None:
    q = query()
    r = reply(q, "192.0.2.10")
    qw, rw = q.to_wire(), r.to_wire()
    line = format_entry(qw, rw, remote=("192.0.2.1", 41234), proto="udp", duration=0.000131)
    assert line == (
        f'192.0.2.1:41234 - 4242 "A IN web.example.org. udp {len(qw)} false 512" NOERROR qr,aa,rd {len(rw)} 0.000131s'
    )


def test_edns_do_bufsize_ipv6_tcp_and_parsed_messages() -> None:
    q = query("Web.Example.ORG.", "AAAA", use_edns=0, payload=1232, want_dnssec=True)
    r = reply(q, rcode=dns.rcode.NXDOMAIN, soa=True)
    line = format_entry(q, r, remote=("2001:db8::1", 53000), proto="udp", duration=0.25)
    assert line.startswith('[2001:db8::1]:53000 - 4242 "AAAA IN Web.Example.ORG. udp ')
    assert ' true 1232" NXDOMAIN qr,aa,rd ' in line and line.endswith(" 0.25s")
    small = query(use_edns=0, payload=100)
    assert ' false 512" ' in format_entry(small, None, remote=("192.0.2.1", 1), proto="udp", duration=0)
    # CoreDNS reports 64 KiB as the buffer size over TCP.
    assert ' 65535" ' in format_entry(q, r, remote=("192.0.2.1", 1), proto="tcp", duration=0)


def test_no_reply_and_odd_values() -> None:
    q = query()
    line = format_entry(q.to_wire(), None, remote=("192.0.2.1", 5), proto="udp", duration=0)
    assert line.endswith('512" - - - -')
    q2 = query("x.example.org.", "TYPE65280")
    r2 = reply(q2, rcode=dns.rcode.REFUSED)
    line = format_entry(q2, r2, remote=("192.0.2.1", 5), proto="udp", duration=1e-5)
    assert '"TYPE65280 IN x.example.org. udp' in line and " REFUSED qr,aa,rd " in line and line.endswith(" 0.00001s")
    # A header-only message: what can be read is logged.
    assert format_entry(b"\x00\x01" + b"\x00" * 10, None, remote=("192.0.2.1", 5), proto="udp", duration=0).startswith(
        '192.0.2.1:5 - 1 "- - - udp 12 false 512"'
    )
    assert summarize(b"\x00") is None


def test_combined_and_custom_formats() -> None:
    q = query()
    r = reply(q, "192.0.2.10")
    line = format_entry(q, r, remote=("192.0.2.1", 5), proto="udp", duration=0.001, fmt=COMBINED_LOG_FORMAT)
    assert line.endswith(' 0.001s "0"')
    custom = "{name} {>ID} {>nothing} {unknown} {rcode}"
    assert format_entry(q, r, remote=("192.0.2.1", 5), proto="udp", duration=0, fmt=custom) == (
        "web.example.org. 4242 - {unknown} NOERROR"
    )


def test_compressed_and_truncated_wire() -> None:
    q = query()
    r = reply(q, "192.0.2.10", "192.0.2.11", soa=True)
    wire = r.to_wire()  # answer owners are compression pointers to the question
    s = summarize(wire)
    assert s is not None and s.ancount == 2 and s.authority_soa and str(s.qname) == "web.example.org."
    cut = summarize(wire[:20])  # the question is cut short
    assert cut is not None and cut.qname is None and cut.id == 4242


@pytest.mark.parametrize(
    ("answers", "rcode", "soa", "cls"),
    [
        (("192.0.2.1",), dns.rcode.NOERROR, False, "success"),
        ((), dns.rcode.NOERROR, True, "denial"),
        ((), dns.rcode.NXDOMAIN, True, "denial"),
        ((), dns.rcode.SERVFAIL, False, "error"),
        ((), dns.rcode.REFUSED, False, "error"),
    ],
)
def test_classify(answers, rcode, soa, cls) -> None:
    q = query()
    assert classify(summarize(reply(q, *answers, rcode=rcode, soa=soa).to_wire())) == cls
    assert classify(None) == "error"


def log_config(line: str) -> LogConfig:
    cfg = parse_corefile(f"example.org {{\n{line}\n}}\n", env={})
    return cfg.servers[0].plugin("log")


def test_query_logger_filters_and_logs_at_info(caplog) -> None:
    caplog.set_level(logging.INFO, logger=QUERY_LOGGER)
    logger = QueryLogger(log_config("log sub.example.org {\n class denial\n}"))
    ok = query("a.sub.example.org.")
    nx = query("b.sub.example.org.")
    other = query("c.example.org.")
    logger.log(ok.to_wire(), reply(ok, "192.0.2.1").to_wire(), remote=("192.0.2.1", 1), proto="udp", duration=0)
    logger.log(nx.to_wire(), reply(nx, rcode=3, soa=True).to_wire(), remote=("192.0.2.1", 1), proto="udp", duration=0)
    logger.log(other.to_wire(), reply(other, rcode=3).to_wire(), remote=("192.0.2.1", 1), proto="udp", duration=0)
    logger.log(b"\x01", None, remote=("192.0.2.1", 1), proto="udp", duration=0)
    records = [r for r in caplog.records if r.name == QUERY_LOGGER]
    assert len(records) == 1 and records[0].levelno == logging.INFO
    assert '"A IN b.sub.example.org. udp' in records[0].getMessage()


def test_query_logger_default_logs_everything_unless_info_is_off(caplog) -> None:
    logger = QueryLogger(log_config("log"))
    q = query()
    caplog.set_level(logging.WARNING, logger=QUERY_LOGGER)
    logger.log(q.to_wire(), None, remote=("192.0.2.1", 1), proto="tcp", duration=0)
    assert not caplog.records
    caplog.set_level(logging.INFO, logger=QUERY_LOGGER)
    logger.log(q.to_wire(), None, remote=("192.0.2.1", 1), proto="tcp", duration=0)
    assert len(caplog.records) == 1
