"""The fast path never changes an answer: cached replies are byte-identical to computed ones."""

from __future__ import annotations

import dns.edns
import dns.flags
import dns.message
import dns.rdatatype
from hypothesis import given, settings
from hypothesis import strategies as st

from k8sgw.dnsserver.answer import Block, View
from k8sgw.dnsserver.fastpath import FastPath
from k8sgw.dnsserver.wire import handle_wire
from tests.zonetext import recordmap_from_text, view_from_text

ZONE = """
web.example.org. 60 IN A 192.0.2.10
v6.example.org. 60 IN AAAA 2001:db8::1
svc.ns1.example.org. 60 IN A 192.0.2.20
*.apps.example.org. 60 IN A 192.0.2.30
alias.example.org. 60 IN CNAME web.example.org.
""" + "\n".join(f"big.example.org. 60 IN A 192.0.2.{i}" for i in range(1, 90))

NAMES = [
    "web.example.org.", "v6.example.org.", "ns1.example.org.", "svc.ns1.example.org.", "x.apps.example.org.",
    "a.b.apps.example.org.", "alias.example.org.", "big.example.org.", "nothing.example.org.",
    "example.org.", "dns1.kube-system.example.org.", "outside.example.com.",
]


def mixed_case(name: str, flips: list[bool]) -> str:
    return "".join(c.upper() if flip else c for c, flip in zip(name, flips + [False] * len(name), strict=False))


queries = st.builds(
    lambda name, flips, rdtype, edns, payload, do, rd, cd, qid: _query(name, flips, rdtype, edns, payload, do, rd, cd, qid),
    st.sampled_from(NAMES),
    st.lists(st.booleans(), max_size=40),
    st.one_of(st.sampled_from([1, 28, 5, 2, 6, 16, 15, 33, 255, 65, 99]), st.integers(1, 65535)),
    st.sampled_from([-1, 0, 1]),
    st.integers(0, 65535),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.integers(0, 65535),
)


def _query(name, flips, rdtype, edns, payload, do, rd, cd, qid) -> bytes:
    q = dns.message.make_query(mixed_case(name, flips), rdtype, use_edns=edns, payload=payload, want_dnssec=do and edns >= 0)
    q.id = qid
    q.flags = dns.flags.RD if rd else 0
    if cd:
        q.flags |= dns.flags.CD
    return q.to_wire()


malformed = st.one_of(
    st.binary(max_size=64),
    st.builds(lambda wire, cut: wire[:cut], queries, st.integers(0, 60)),
    st.builds(lambda wire, i, b: wire[:i] + bytes([b]) + wire[i + 1 :], queries, st.integers(0, 60), st.integers(0, 255)),
)


def views():
    view, store = view_from_text(ZONE)
    return view, store


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(queries, malformed), min_size=1, max_size=8), st.booleans())
def test_fast_path_bytes_equal_full_path(wires, udp):
    view, _ = views()
    fast = FastPath(view)
    for wire in wires + wires:  # the second round comes from the cache
        assert fast.handle(wire, udp=udp) == handle_wire(wire, view, udp=udp)


def test_cache_dies_with_its_record_map_version():
    view, store = views()
    fast = FastPath(view)
    wire = dns.message.make_query("web.example.org.", "A").to_wire()
    first = dns.message.from_wire(fast.handle(wire, udp=True))
    assert [str(r) for r in first.answer[0]] == ["192.0.2.10"]
    settings_ = view.blocks[0].authority.settings
    changed = recordmap_from_text("web.example.org. 60 IN A 192.0.2.99", settings_)
    store.current = type(changed)(changed.nodes, version=store.current.version + 1, serial=8, ready=True)
    second = dns.message.from_wire(fast.handle(wire, udp=True))
    assert [str(r) for r in second.answer[0]] == ["192.0.2.99"]


def test_loadbalance_views_are_never_cached():
    view, _ = views()
    block = view.blocks[0]
    shuffled = View([Block(block.zones, block.authority, None, loadbalance=True)])
    fast = FastPath(shuffled)
    wire = dns.message.make_query("big.example.org.", "A", use_edns=0, payload=1232).to_wire()
    orders = {fast.handle(wire, udp=False) for _ in range(10)}
    assert len(orders) > 1


def test_entries_are_bounded_by_bytes():
    view, _ = views()
    fast = FastPath(view, max_bytes=4000)
    for i in range(200):
        for udp in (True, False):
            fast.handle(dns.message.make_query(f"n{i}.example.org.", "A").to_wire(), udp=udp)
            assert fast.held_bytes() <= 8000
    assert 0 < len(fast._udp) < 40
    assert sum(len(k) + len(v) for k, v in fast._udp.items()) <= 4000
    assert dns.rdatatype.A  # imported for the qtype strategy


def test_a_query_with_a_large_option_is_answered_but_not_kept():
    view, _ = views()
    fast = FastPath(view)
    for i in range(50):
        option = dns.edns.GenericOption(65001, i.to_bytes(2, "big") * 30_000)  # 60 KB, distinct
        query = dns.message.make_query("web.example.org.", "A", use_edns=0, options=[option])
        for udp in (True, False):
            reply = dns.message.from_wire(fast.handle(query.to_wire(max_size=65535), udp=udp))
            assert [str(r) for r in reply.answer[0]] == ["192.0.2.10"]
    assert fast.held_bytes() == 0
    small = dns.message.make_query("web.example.org.", "A", use_edns=0, options=[dns.edns.GenericOption(10, b"8bytes!!")])
    fast.handle(small.to_wire(), udp=True)
    assert len(fast._udp) == 1  # a cookie-sized option still is
