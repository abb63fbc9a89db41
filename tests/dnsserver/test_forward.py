"""forward, cache, fallthrough, loadbalance and loop, against real upstream servers on 127.0.0.1.

The upstreams are k8sgw's own UDP/TCP servers over zone-text views, so each test decides exactly
what the upstream knows and counts what it was asked.
"""

from __future__ import annotations

import logging
import socket
import struct

import dns.asyncquery
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rrset
import pytest
import trio

from k8sgw.config.dnsplugins import CacheConfig, ForwardConfig, Upstream
from k8sgw.dnsserver.answer import Authority, Block, View
from k8sgw.dnsserver.cache import ResponseCache
from k8sgw.dnsserver.forward import Forwarder, LoopDetector
from k8sgw.dnsserver.sockets import bind_dns_sockets, bind_socket
from k8sgw.dnsserver.tcp import serve_tcp
from k8sgw.dnsserver.udp import serve_udp
from k8sgw.dnsserver.wire import handle_wire
from tests.dnsserver.test_servers import read_reply
from tests.zonetext import view_from_text

UPSTREAM_ZONE = "\n".join(
    ["www.example.net. 60 IN A 198.51.100.1", "www.example.net. 60 IN AAAA 2001:db8::80"]
    + [f"big.example.net. 60 IN A 198.51.100.{i}" for i in range(1, 61)]
)


class Upstream_:
    """A DNS server on 127.0.0.1 answering example.net. from zone text, counting queries."""

    def __init__(self, text: str = UPSTREAM_ZONE, zones=("example.net.",)) -> None:
        self.view, _ = view_from_text(text, zones=zones)
        self.udp_queries: list[str] = []
        self.tcp_queries: list[str] = []

    def _record(self, wire: bytes, log: list[str]) -> None:
        log.append(str(dns.message.from_wire(wire).question[0].name))

    def handle_udp(self, wire: bytes, addr=None):
        self._record(wire, self.udp_queries)
        return handle_wire(wire, self.view, udp=True)

    def handle_tcp(self, wire: bytes, addr=None):
        self._record(wire, self.tcp_queries)
        return handle_wire(wire, self.view, udp=False)

    async def start(self, nursery: trio.Nursery) -> tuple[str, int]:
        udp, tcp = await bind_dns_sockets("127.0.0.1", 0)
        addr = await nursery.start(serve_udp, udp, self.handle_udp)
        await nursery.start(serve_tcp, tcp, self.handle_tcp)
        return addr


def forward_cfg(*addrs: tuple[str, int], zone: str = ".", **kw) -> ForwardConfig:
    return ForwardConfig(zone=zone, upstreams=tuple(Upstream(host=h, port=p) for h, p in addrs), line=1, **kw)


async def dead_udp_port() -> tuple[str, int]:
    """An address where nothing answers UDP (port unreachable)."""
    sock = await bind_socket("127.0.0.1", 0, socket.SOCK_DGRAM)
    addr = sock.getsockname()[:2]
    sock.close()
    return addr


async def test_forwarded_answer_is_a_reply_to_the_client(nursery):
    upstream = await Upstream_().start(nursery)
    fwd = Forwarder(forward_cfg(upstream))
    query = dns.message.make_query("WWW.example.net.", "A", use_edns=0)
    with trio.fail_after(5):
        reply = await fwd.resolve(query)
    assert reply.id == query.id
    assert str(reply.question[0].name) == "WWW.example.net."
    assert [str(r) for r in reply.answer[0]] == ["198.51.100.1"]
    assert reply.edns == 0 and reply.payload == 1232


async def test_truncated_udp_answer_is_asked_again_over_tcp(nursery):
    up = Upstream_()
    upstream = await up.start(nursery)
    fwd = Forwarder(forward_cfg(upstream))
    with trio.fail_after(5):
        reply = await fwd.resolve(dns.message.make_query("big.example.net.", "A"))
    assert len(reply.answer[0]) == 60
    assert up.udp_queries == ["big.example.net."] and up.tcp_queries == ["big.example.net."]


async def test_force_tcp(nursery):
    up = Upstream_()
    fwd = Forwarder(forward_cfg(await up.start(nursery), force_tcp=True))
    with trio.fail_after(5):
        await fwd.resolve(dns.message.make_query("www.example.net.", "A"))
    assert up.udp_queries == [] and up.tcp_queries == ["www.example.net."]


async def test_failover_to_the_next_upstream_and_failing_one_goes_last(nursery):
    up = Upstream_()
    good = await up.start(nursery)
    dead = await dead_udp_port()
    fwd = Forwarder(forward_cfg(dead, good, policy="sequential", max_fails=1), attempt_timeout=1)
    with trio.fail_after(10):
        first = await fwd.resolve(dns.message.make_query("www.example.net.", "A"))
        second = await fwd.resolve(dns.message.make_query("www.example.net.", "A"))
    assert first.rcode() == second.rcode() == dns.rcode.NOERROR
    assert fwd._order()[0].port == good[1]  # the dead one is now tried last


async def test_silent_upstream_times_out_into_servfail(nursery):
    silent = await bind_socket("127.0.0.1", 0, socket.SOCK_DGRAM)  # bound, never reads
    fwd = Forwarder(forward_cfg(silent.getsockname()[:2]), attempt_timeout=0.2)
    with trio.fail_after(5):
        reply = await fwd.resolve(dns.message.make_query("www.example.net.", "A"))
    assert reply.rcode() == dns.rcode.SERVFAIL
    silent.close()


async def test_cache_answers_repeats_and_counts_down_ttls(nursery):
    up = Upstream_()
    now = [100.0]
    cache = ResponseCache(CacheConfig(max_ttl=30), clock=lambda: now[0])
    fwd = Forwarder(forward_cfg(await up.start(nursery)), cache=cache)
    with trio.fail_after(5):
        first = await fwd.resolve(dns.message.make_query("www.example.net.", "A"))
        now[0] += 10
        second = await fwd.resolve(dns.message.make_query("www.example.net.", "A"))
        now[0] += 21  # past max_ttl 30
        await fwd.resolve(dns.message.make_query("www.example.net.", "A"))
    assert first.answer[0].ttl == 60  # the upstream's TTL; the cache only caps how long it keeps it
    assert second.answer[0].ttl == 50
    assert up.udp_queries == ["www.example.net.", "www.example.net."]


async def test_cache_keeps_negative_answers_for_the_soa_minimum(nursery):
    up = Upstream_()
    now = [0.0]
    cache = ResponseCache(CacheConfig(), clock=lambda: now[0])
    fwd = Forwarder(forward_cfg(await up.start(nursery)), cache=cache)
    with trio.fail_after(5):
        for _ in range(2):
            reply = await fwd.resolve(dns.message.make_query("nope.example.net.", "A"))
            assert reply.rcode() == dns.rcode.NXDOMAIN
        now[0] = 61  # the upstream's SOA minimum is 60
        await fwd.resolve(dns.message.make_query("nope.example.net.", "A"))
    assert up.udp_queries.count("nope.example.net.") == 2


def test_forwarder_covers_from_zone_minus_excepts():
    fwd = Forwarder(forward_cfg(("127.0.0.1", 53), zone="example.net.", excepts=("internal.example.net.",)))
    assert fwd.covers(dns.name.from_text("a.example.net."))
    assert not fwd.covers(dns.name.from_text("a.internal.example.net."))
    assert not fwd.covers(dns.name.from_text("example.org."))


# -- routing through answer()/handle_wire: out-of-zone, fallthrough, loadbalance ---------------

OURS = """
web.example.org. 60 IN A 192.0.2.10
dns1.kube-system.example.org. 60 IN A 192.0.2.53
"""


async def serve_view(nursery, view: View) -> tuple[str, int]:
    udp, tcp = await bind_dns_sockets("127.0.0.1", 0)
    addr = await nursery.start(serve_udp, udp, lambda w, a: handle_wire(w, view, udp=True))
    await nursery.start(serve_tcp, tcp, lambda w, a: handle_wire(w, view, udp=False))
    return addr


def our_view(forwarder, *, fallthrough=None, loadbalance=False, zones=("example.org.",)) -> View:
    base, store = view_from_text(OURS, zones=zones)
    block = base.blocks[0]
    authority = Authority(block.authority.settings, store, fallthrough)
    return View([Block((dns.name.root,), authority, forwarder, loadbalance)])


async def ask(addr, name, rdtype="A", tcp=False):
    q = dns.message.make_query(name, rdtype)
    if tcp:
        return await dns.asyncquery.tcp(q, addr[0], port=addr[1], timeout=5)
    return await dns.asyncquery.udp(q, addr[0], port=addr[1], timeout=5)


async def test_tcp_pipeline_with_forwarded_queries_keeps_its_order(nursery):
    up = Upstream_()
    fwd = Forwarder(forward_cfg(await up.start(nursery)))
    addr = await serve_view(nursery, our_view(fwd))
    names = ["web.example.org.", "www.example.net.", "missing.example.org.", "www.example.net."]
    queries = [dns.message.make_query(n, "A") for n in names]
    with trio.fail_after(5):
        stream = await trio.open_tcp_stream(*addr)
        async with stream:
            await stream.send_all(b"".join(struct.pack("!H", len(w)) + w for w in (q.to_wire() for q in queries)))
            replies = [await read_reply(stream) for _ in queries]
    assert [r.id for r in replies] == [q.id for q in queries]
    assert [r.answer[0][0].to_text() if r.answer else r.rcode() for r in replies] == [
        "192.0.2.10", "198.51.100.1", dns.rcode.NXDOMAIN, "198.51.100.1"
    ]


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
async def test_names_outside_our_zones_are_forwarded(nursery, tcp):
    up = Upstream_()
    fwd = Forwarder(forward_cfg(await up.start(nursery)))
    addr = await serve_view(nursery, our_view(fwd))
    with trio.fail_after(5):
        out = await ask(addr, "www.example.net.", tcp=tcp)
        ours = await ask(addr, "web.example.org.", tcp=tcp)
        missing = await ask(addr, "missing.example.org.", tcp=tcp)
    assert [str(r) for r in out.answer[0]] == ["198.51.100.1"]
    assert not out.flags & dns.flags.AA
    assert [str(r) for r in ours.answer[0]] == ["192.0.2.10"] and ours.flags & dns.flags.AA
    assert missing.rcode() == dns.rcode.NXDOMAIN  # no fallthrough: authoritative NXDOMAIN
    assert up.udp_queries + up.tcp_queries == ["www.example.net."]


async def test_fallthrough_forwards_missing_names_only(nursery):
    # The upstream knows example.org names that k8sgw does not.
    up = Upstream_("legacy.example.org. 60 IN A 198.51.100.7\nbelow.dns1.kube-system.example.org. 60 IN A 198.51.100.8", zones=("example.org.",))
    fwd = Forwarder(forward_cfg(await up.start(nursery)))
    addr = await serve_view(nursery, our_view(fwd, fallthrough=()))
    with trio.fail_after(5):
        legacy = await ask(addr, "legacy.example.org.")
        web = await ask(addr, "web.example.org.")
        web_aaaa = await ask(addr, "web.example.org.", "AAAA")  # exists: NODATA, no fallthrough
        below_ns = await ask(addr, "below.dns1.kube-system.example.org.")
    assert [str(r) for r in legacy.answer[0]] == ["198.51.100.7"]
    assert [str(r) for r in web.answer[0]] == ["192.0.2.10"]
    assert web_aaaa.rcode() == dns.rcode.NOERROR and web_aaaa.answer == []
    assert below_ns.rcode() == dns.rcode.NXDOMAIN  # nameserver hosts never fall through
    assert up.udp_queries == ["legacy.example.org."]


async def test_fallthrough_limited_to_listed_zones(nursery):
    up = Upstream_("x.a.example.org. 60 IN A 198.51.100.9\nx.b.example.org. 60 IN A 198.51.100.9", zones=("example.org.",))
    fwd = Forwarder(forward_cfg(await up.start(nursery)))
    fall = (dns.name.from_text("a.example.org."),)
    addr = await serve_view(nursery, our_view(fwd, fallthrough=fall))
    with trio.fail_after(5):
        assert (await ask(addr, "x.a.example.org.")).answer
        assert (await ask(addr, "x.b.example.org.")).rcode() == dns.rcode.NXDOMAIN


async def test_loadbalance_shuffles_address_order(nursery):
    up = Upstream_()
    fwd = Forwarder(forward_cfg(await up.start(nursery)))
    addr = await serve_view(nursery, our_view(fwd, loadbalance=True))
    orders = set()
    with trio.fail_after(10):
        for _ in range(20):
            reply = await ask(addr, "big.example.net.", tcp=True)
            orders.add(tuple(str(r) for r in reply.answer[0]))
    assert len(orders) > 1  # 60 records: the chance of 20 identical shuffles is nil
    assert all(len(o) == 60 for o in orders)


async def test_loop_is_detected(nursery):
    # k8sgw forwarding to itself: the probe comes back again and again.
    udp, tcp = await bind_dns_sockets("127.0.0.1", 0)
    own = udp.getsockname()[:2]
    loop = LoopDetector()
    fwd = Forwarder(forward_cfg(own), loop=loop, attempt_timeout=1)
    view = View([Block((dns.name.root,), None, fwd)])
    await nursery.start(serve_udp, udp, lambda w, a: handle_wire(w, view, udp=True))
    await nursery.start(serve_tcp, tcp, lambda w, a: handle_wire(w, view, udp=False))
    nursery.start_soon(fwd.resolve, loop.new_probe(dns.name.root))
    with trio.fail_after(10):
        await loop.detected.wait()
    assert "Loop" in loop.message and str(own[1]) in loop.message


async def test_no_loop_without_one(nursery):
    up = Upstream_()
    loop = LoopDetector()
    fwd = Forwarder(forward_cfg(await up.start(nursery)), loop=loop)
    with trio.fail_after(5):
        await fwd.resolve(loop.new_probe(dns.name.from_text("example.net.")))
    assert not loop.detected.is_set()


def test_cache_is_bounded_by_bytes_least_recently_used_first():
    cache = ResponseCache(CacheConfig(), clock=lambda: 0.0, max_bytes=20_000)
    queries = [dns.message.make_query(f"n{i}.example.net.", "TXT") for i in range(40)]
    for query in queries:
        response = dns.message.make_response(query)
        response.answer.append(
            dns.rrset.from_text(query.question[0].name, 60, "IN", "TXT", " ".join(['"' + "x" * 250 + '"'] * 8))
        )
        cache.put(query, response)
        assert cache.bytes <= 20_000
    assert 0 < len(cache) < 10
    assert cache.get(queries[-1]) is not None  # the newest stay, the oldest went
    assert cache.get(queries[0]) is None


class _Switchable:
    """A UDP upstream that ignores queries until `answering` is set, then answers from zone text."""

    def __init__(self) -> None:
        self.view, _ = view_from_text(UPSTREAM_ZONE, zones=("example.net.",))
        self.answering = False
        self.ignored = 0

    async def serve(self, sock) -> None:
        while True:
            data, addr = await sock.recvfrom(65535)
            if not self.answering:
                self.ignored += 1
                continue
            await sock.sendto(handle_wire(data, self.view, udp=True), addr)


async def test_a_failing_upstream_is_marked_down_fails_fast_and_comes_back(caplog):
    caplog.set_level(logging.INFO, logger="k8sgw.dnsserver.forward")
    upstream = _Switchable()
    query = dns.message.make_query("www.example.net.", "A")
    with await bind_socket("127.0.0.1", 0, socket.SOCK_DGRAM) as sock, trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(upstream.serve, sock)
            fwd = Forwarder(
                forward_cfg(sock.getsockname()[:2], max_fails=2), attempt_timeout=0.2, health_interval=0.3
            )
            for _ in range(2):  # two timeouts in a row: down
                assert (await fwd.resolve(query)).rcode() == dns.rcode.SERVFAIL
            started = trio.current_time()
            for _ in range(50):  # down: SERVFAIL without asking, nothing waits for a timeout
                assert (await fwd.resolve(query)).rcode() == dns.rcode.SERVFAIL
            assert trio.current_time() - started < 0.1
            assert upstream.ignored == 2
            upstream.answering = True
            await trio.sleep(0.3)  # the health interval: the next query checks the upstream
            assert (await fwd.resolve(query)).rcode() == dns.rcode.NOERROR
            assert (await fwd.resolve(query)).rcode() == dns.rcode.NOERROR
            nursery.cancel_scope.cancel()
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 2, warnings  # the first failure, then "down"; the rest held back
    assert "no reply within 0.2s" in warnings[0] and "is down after 2 failures" in warnings[1]
    assert any("answers again" in r.getMessage() for r in caplog.records)


async def test_in_flight_is_bounded_by_default(nursery):
    silent = await bind_socket("127.0.0.1", 0, socket.SOCK_DGRAM)
    fwd = Forwarder(forward_cfg(silent.getsockname()[:2], max_fails=0), attempt_timeout=0.5)
    fwd.max_concurrent = 3  # DEFAULT_MAX_CONCURRENT when the Corefile sets none; small here
    replies = []

    async def ask(name: str) -> None:
        replies.append((await fwd.resolve(dns.message.make_query(name, "A"))).rcode())

    with trio.fail_after(5):
        async with trio.open_nursery() as asking:
            for i in range(5):
                asking.start_soon(ask, f"n{i}.example.net.")
    assert sorted(replies) == [dns.rcode.SERVFAIL] * 3 + [dns.rcode.REFUSED] * 2
    silent.close()


def test_in_flight_default_bound():
    from k8sgw.dnsserver.forward import DEFAULT_MAX_CONCURRENT

    assert Forwarder(forward_cfg(("127.0.0.1", 53))).max_concurrent == DEFAULT_MAX_CONCURRENT
    assert Forwarder(forward_cfg(("127.0.0.1", 53), max_concurrent=7)).max_concurrent == 7


async def test_a_forwarded_name_answered_without_io_needs_no_task(nursery):
    silent = await bind_socket("127.0.0.1", 0, socket.SOCK_DGRAM)
    fwd = Forwarder(forward_cfg(silent.getsockname()[:2], max_fails=1), attempt_timeout=0.1, health_interval=60)
    view = View([Block((dns.name.root,), forwarder=fwd)])
    wire = dns.message.make_query("www.example.net.", "A").to_wire()
    first = handle_wire(wire, view, udp=True)
    assert first.done is None  # the upstream is not known to be down: it is asked
    with trio.fail_after(5):
        assert dns.message.from_wire(await first.reply()).rcode() == dns.rcode.SERVFAIL
    second = handle_wire(wire, view, udp=True)  # down now: the reply is ready, no I/O
    assert dns.message.from_wire(second.done).rcode() == dns.rcode.SERVFAIL
    assert await second.reply() == second.done
    silent.close()
