"""The query log: CoreDNS's common and combined formats, read from wire messages; class and name filters;
lines rendered from memos equal to formatting each query on its own; the prefix logging gives."""

from __future__ import annotations

import io
import logging
import re
import time

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rrset
import pytest

from k8sgw.config import parse_corefile
from k8sgw.config.ops import COMBINED_LOG_FORMAT, LogConfig
from k8sgw.ops.logsink import LOG_FORMAT, LineSink, Prefix
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


# -- lines from memos, through a LineSink -------------------------------------------------------

PREFIX = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO k8sgw\.query: ")


def sink_lines(fmt_line: str, calls, level: int = logging.INFO) -> list[str]:
    """Each call (query, reply, remote, proto, duration) through a QueryLogger with a real sink."""
    out = io.StringIO()
    sink = LineSink(out)
    logger = QueryLogger(log_config(fmt_line), sink=sink)
    old = logging.getLogger(QUERY_LOGGER).level
    logging.getLogger(QUERY_LOGGER).setLevel(level)
    try:
        for q, r, remote, proto, duration in calls:
            logger.log(q, r, remote=remote, proto=proto, duration=duration)
    finally:
        logging.getLogger(QUERY_LOGGER).setLevel(old)
        sink.close()
    text = out.getvalue()
    assert text.endswith("\n") or not text
    assert sink.written == len(text.splitlines())
    return text.splitlines()


def mixed_calls():
    """Repeats of a few queries with new IDs, ports, durations, protocols; replies that change."""
    calls = []
    plain, edns, nx = query(), query("Web.Example.ORG.", "AAAA", use_edns=0, payload=1232, want_dnssec=True), query("x.example.org.")
    for i in range(40):
        q = (plain, edns, nx)[i % 3]
        q.id = (i * 7919) % 65536
        r = reply(q, "192.0.2.10") if q is plain and i < 20 else reply(q, rcode=dns.rcode.NXDOMAIN, soa=True)
        host = "2001:db8::1" if i % 4 == 0 else f"192.0.2.{i}"
        calls.append((q.to_wire(), None if i % 5 == 4 else r.to_wire(), (host, 1024 + i), "tcp" if i % 6 == 0 else "udp",
                      (0.000131, 0.25, 1e-9 * i, 2.5, 0.0)[i % 5]))
    return calls


@pytest.mark.parametrize(
    "fmt_line",
    ["log", "log . {combined}", 'log . "{name} {>ID} {>nothing} {unknown} %s {{x}} {rcode} {remote}:{port} {duration}"'],
)
def test_lines_from_memos_are_what_formatting_each_query_gives(fmt_line):
    calls = mixed_calls()
    fmt = log_config(fmt_line).format
    got = sink_lines(fmt_line, calls)
    expected = [format_entry(q, r, remote=remote, proto=proto, duration=d, fmt=fmt) for q, r, remote, proto, d in calls]
    assert [PREFIX.sub("", line) for line in got] == expected
    assert all(PREFIX.match(line) for line in got)


def test_the_prefix_is_what_logging_gives_for_the_same_time():
    formatter = logging.Formatter(LOG_FORMAT)
    prefix = Prefix("INFO", QUERY_LOGGER)
    for now in (1_700_000_000.0, 1_700_000_000.0004, 1_700_000_000.9996, 1_700_000_001.5, 1_750_123_456.789, 86399.999):
        record = logging.LogRecord(QUERY_LOGGER, logging.INFO, __file__, 1, "MSG", None, None)
        record.created = now
        record.msecs = int((now - int(now)) * 1000) + 0.0
        assert prefix(now) + "MSG" == formatter.format(record), now


def test_when_is_the_second_of_the_prefix():
    q = query()
    lines = sink_lines('log . "{when} {>id}"', [(q.to_wire(), reply(q).to_wire(), ("192.0.2.1", 5), "udp", 0.001)])
    m = PREFIX.match(lines[0])
    when, qid = lines[0][m.end() :].rsplit(" ", 1)
    assert qid == "4242"
    stamp = m.group(1).split(",")[0]
    assert time.strptime(stamp, "%Y-%m-%d %H:%M:%S")[:6] == time.strptime(when, "%d/%b/%Y:%H:%M:%S %z")[:6]


def test_the_sink_path_filters_and_honours_the_level():
    ok, nx, other = query("a.sub.example.org."), query("b.sub.example.org."), query("c.example.org.")
    calls = [
        (ok.to_wire(), reply(ok, "192.0.2.1").to_wire(), ("192.0.2.1", 1), "udp", 0),
        (nx.to_wire(), reply(nx, rcode=3, soa=True).to_wire(), ("192.0.2.1", 1), "udp", 0),
        (other.to_wire(), reply(other, rcode=3).to_wire(), ("192.0.2.1", 1), "udp", 0),
        (b"\x01", None, ("192.0.2.1", 1), "udp", 0),
    ]
    config = "log sub.example.org {\n class denial\n}"
    lines = sink_lines(config, calls * 3)
    assert len(lines) == 3 and all('"A IN b.sub.example.org. udp' in line for line in lines)
    assert sink_lines(config, calls, level=logging.WARNING) == []


def test_padded_queries_are_logged_with_their_own_size_through_the_sink():
    sizes, calls = [], []
    for qid, pad in ((1, 1000), (2, 2000), (3, 0), (4, 1000)):
        options = [dns.edns.GenericOption(65001, b"\0" * pad)] if pad else []
        q = dns.message.make_query("web.example.org.", "A", use_edns=0, options=options, id=qid)
        wire = q.to_wire(max_size=65535)
        calls.append((wire, reply(q, "192.0.2.1").to_wire(max_size=65535), ("192.0.2.1", 5), "udp", 0))
        sizes.append(str(len(wire)))
    assert [line.split('"')[1].split()[4] for line in sink_lines("log", calls)] == sizes
