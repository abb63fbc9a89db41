"""Counting and logging around a listener's handler: what each query is counted and logged as,
when the same query repeats with new IDs and its answer changes between record maps."""

from __future__ import annotations

import dataclasses
import logging
import os

import dns.edns
import dns.message
import dns.opcode
import dns.rcode

from k8sgw.config.ops import LogConfig
from k8sgw.dnsserver.answer import View
from k8sgw.dnsserver.fastpath import FastPath
from k8sgw.ops.instrument import instrument
from k8sgw.ops.metrics import Metrics
from k8sgw.ops.querylog import QUERY_LOGGER, format_entry
from k8sgw.records.store import ZoneSettings
from tests.ops.test_metrics import value
from tests.zonetext import recordmap_from_text, view_from_text

ZONE_V1 = "web.example.org. 60 IN A 192.0.2.10"
ZONE_V2 = "other.example.org. 60 IN A 192.0.2.11"  # web.example.org. is gone: NXDOMAIN
SERVER = "dns://:1053"


def wire(name: str = "web.example.org.", qid: int = 1, **kw) -> bytes:
    q = dns.message.make_query(name, "A", **kw)
    q.id = qid
    return q.to_wire()


def setup(log: bool = False):
    view, store = view_from_text(ZONE_V1)
    if log:
        view = View([dataclasses.replace(view.blocks[0], log=LogConfig(line=1))])
    metrics = Metrics(process_metrics=False)
    handle = instrument(FastPath(view).handle_udp, view, proto="udp", address=("", 1053), metrics=metrics)
    return handle, store, metrics


def responses(metrics: Metrics, rcode: str, zone: str = "example.org.", plugin: str = "k8s_gateway") -> float:
    try:
        return value(
            metrics, "coredns_dns_responses_total", server=SERVER, zone=zone, rcode=rcode, plugin=plugin
        )
    except KeyError:
        return 0


def test_a_repeated_query_is_counted_by_its_own_reply():
    handle, store, metrics = setup()
    for qid in (1, 2):
        handle(wire(qid=qid), ("192.0.2.1", 5000))
    store.current = recordmap_from_text(ZONE_V2, ZoneSettings(("example.org.",)), serial=8)  # a publish
    reply = dns.message.from_wire(handle(wire(qid=3), ("2001:db8::1", 5000)))
    assert reply.rcode() == dns.rcode.NXDOMAIN
    assert responses(metrics, "NOERROR") == 2 and responses(metrics, "NXDOMAIN") == 1
    requests = {"server": SERVER, "zone": "example.org.", "proto": "udp", "type": "A"}
    assert value(metrics, "coredns_dns_requests_total", **requests, family="1") == 2
    assert value(metrics, "coredns_dns_requests_total", **requests, family="2") == 1


def test_badvers_and_out_of_zone_queries_are_counted_as_what_they_are():
    handle, _, metrics = setup()
    for qid in (1, 2):
        reply = dns.message.from_wire(handle(wire(qid=qid, use_edns=1), ("192.0.2.1", 5000)))
        assert reply.rcode() == dns.rcode.BADVERS  # 16: the extended bits are in the OPT record
        handle(wire("elsewhere.test.", qid=qid), ("192.0.2.1", 5000))
    assert responses(metrics, "BADVERS") == 2
    assert responses(metrics, "REFUSED", zone="dropped", plugin="") == 2


def test_logged_lines_are_those_of_each_query_and_reply(caplog):
    caplog.set_level(logging.INFO, logger=QUERY_LOGGER)
    handle, store, _ = setup(log=True)
    expected = []
    for qid, addr in ((7, ("192.0.2.1", 5000)), (8, ("192.0.2.2", 6000)), (9, ("192.0.2.3", 7000))):
        if qid == 9:  # a publish between the second and the third query
            store.current = recordmap_from_text(ZONE_V2, ZoneSettings(("example.org.",)), serial=8)
        query = wire(qid=qid)
        expected.append(format_entry(query, handle(query, addr), remote=addr, proto="udp", duration=0))
    lines = [r.getMessage() for r in caplog.records if r.name == QUERY_LOGGER]
    # Each line is what formatting its own messages directly gives, but the duration (last field).
    assert [line.rsplit(" ", 1)[0] for line in lines] == [line.rsplit(" ", 1)[0] for line in expected]
    assert [line.split()[2] for line in lines] == ["7", "8", "9"]
    assert [line.split()[-4] for line in lines] == ["NOERROR", "NOERROR", "NXDOMAIN"]


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def padded(name: str, qid: int, size: int) -> bytes:
    option = dns.edns.GenericOption(65001, os.urandom(size))  # an option k8sgw does not read
    return dns.message.make_query(name, "A", use_edns=0, options=[option], id=qid).to_wire(max_size=65535)


def test_padded_queries_do_not_grow_the_memos_of_metrics_and_log(caplog):
    """30,000 UDP queries with a 60 KB option each once took RSS from 51 MB to 1.8 GB: each memo
    kept every query whole. Now the options are not part of the key, and the memos are bounded."""
    caplog.set_level(logging.INFO, logger=QUERY_LOGGER)
    view, _ = view_from_text(ZONE_V1)
    view = View([dataclasses.replace(view.blocks[0], log=LogConfig(line=1))])
    metrics = Metrics(process_metrics=False)
    # A fast path that keeps about one reply: what grows here is counting and logging, nothing else.
    handle = instrument(
        FastPath(view, max_bytes=1024).handle_udp, view, proto="udp", address=("", 1053), metrics=metrics
    )
    logger = logging.getLogger(QUERY_LOGGER)
    logger.propagate, propagate = False, logger.propagate  # keep 1,500 lines out of caplog's memory
    try:
        handle(padded("web.example.org.", 1, 60_000), ("192.0.2.1", 5000))
        before = rss_bytes()
        for qid in range(1500):
            name = f"n{qid % 50}.example.org." if qid % 2 else "web.example.org."
            handle(padded(name, qid, 60_000), ("192.0.2.1", 5000))
        grown = rss_bytes() - before
    finally:
        logger.propagate = propagate
    assert grown < 40 * 2**20, f"RSS grew by {grown / 2**20:.0f} MiB"
    assert (
        value(
            metrics,
            "coredns_dns_requests_total",
            server=SERVER,
            zone="example.org.",
            proto="udp",
            type="A",
            family="1",
        )
        == 1501
    )


def test_a_padded_query_is_logged_with_its_own_size(caplog):
    caplog.set_level(logging.INFO, logger=QUERY_LOGGER)
    handle, _, _ = setup(log=True)
    sizes = []
    for qid, pad in ((1, 1000), (2, 2000), (3, 0)):
        query = padded("web.example.org.", qid, pad) if pad else wire(qid=qid, use_edns=0)
        handle(query, ("192.0.2.1", 5000))
        sizes.append(str(len(query)))
    lines = [r.getMessage() for r in caplog.records if r.name == QUERY_LOGGER]
    assert [line.split('"')[1].split()[4] for line in lines] == sizes


def test_replies_the_server_writes_are_not_labelled_k8s_gateway():
    handle, _, metrics = setup()
    q = dns.message.make_query("web.example.org.", "A")
    q.set_opcode(dns.opcode.STATUS)
    reply = dns.message.from_wire(handle(q.to_wire(), ("192.0.2.1", 5000)))
    assert reply.rcode() == dns.rcode.NOTIMP
    assert responses(metrics, "NOTIMP", plugin="") == 1
    assert responses(metrics, "NOTIMP", plugin="k8s_gateway") == 0
