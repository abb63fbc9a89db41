"""The fast path never changes an answer: cached replies are byte-identical to computed ones."""

from __future__ import annotations

import random

import dns.edns
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdatatype
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from k8sgw.config.ops import LogConfig
from k8sgw.dnsserver.answer import Block, View
from k8sgw.dnsserver.assembly import Assembler, read_question
from k8sgw.dnsserver.fastpath import FastPath
from k8sgw.dnsserver.wire import handle_wire
from k8sgw.ops.instrument import instrument, needs_instrumenting
from k8sgw.ops.metrics import Metrics
from tests.zonetext import recordmap_from_text, view_from_text

ZONE = """
web.example.org. 60 IN A 192.0.2.10
two.example.org. 60 IN A 192.0.2.11
two.example.org. 60 IN A 192.0.2.12
web.example.org. 60 IN TXT "hello"
deep.er.sub.example.org. 60 IN AAAA 2001:db8::2
v6.example.org. 60 IN AAAA 2001:db8::1
svc.ns1.example.org. 60 IN A 192.0.2.20
*.apps.example.org. 60 IN A 192.0.2.30
alias.example.org. 60 IN CNAME web.example.org.
""" + "\n".join(f"big.example.org. 60 IN A 192.0.2.{i}" for i in range(1, 90))

NAMES = [
    "web.example.org.", "two.example.org.", "v6.example.org.", "ns1.example.org.", "svc.ns1.example.org.", "x.apps.example.org.",
    "a.b.apps.example.org.", "alias.example.org.", "big.example.org.", "nothing.example.org.",
    "example.org.", "dns1.kube-system.example.org.", "outside.example.com.",
]


# Random names: existing ones, their children and neighbours (NXDOMAIN), names under the wildcard,
# under the SOA's mname (dns1.kube-system) and rname (hostmaster) and under empty non-terminals.
random_names = st.builds(
    lambda prefix, base: ".".join([*prefix, base]) if prefix else base,
    st.lists(st.text("abcxyz-0123456789", min_size=1, max_size=12), max_size=3),
    st.sampled_from([*NAMES, "hostmaster.dns1.kube-system.example.org.", "kube-system.example.org.", "sub.example.org.", "er.sub.example.org.", "apps.example.org."]),
)


def mixed_case(name: str, flips: list[bool]) -> str:
    return "".join(c.upper() if flip else c for c, flip in zip(name, flips + [False] * len(name), strict=False))


queries = st.builds(
    lambda name, flips, rdtype, edns, payload, do, rd, cd, qid: _query(name, flips, rdtype, edns, payload, do, rd, cd, qid),
    st.one_of(st.sampled_from(NAMES), random_names),
    st.lists(st.booleans(), max_size=40),
    st.one_of(st.sampled_from([1, 28, 5, 2, 6, 16, 15, 33, 255, 65, 99, 251, 252, 41, 0, 128, 249]), st.integers(1, 65535)),
    st.sampled_from([-1, 0, 1]),
    st.integers(0, 65535),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.integers(0, 65535),
)


def _query(name, flips, rdtype, edns, payload, do, rd, cd, qid) -> bytes:
    if len(name) > 250:
        name = name[-250:].lstrip(".") or "."
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


def _configured(config: str):
    """The test zone's view and the handler a listener runs for it with one Corefile directive on
    (the configurations the benchmark runs; "deployed" parses the directives of the Corefile
    deploy/kustomize/base ships, as `python -m bench` does), and the full path to compare it with."""
    view, _ = views() if config != "nested zones" else view_from_text(ZONE, zones=("example.org.", "sub.example.org."))
    block = view.blocks[0]
    if config == "deployed":
        server = _deployed_server()
        view = View([Block(block.zones, block.authority, None, server.loadbalance, server.log)])
        config = "prometheus" if server.prometheus is not None else config
    elif config == "loadbalance":
        view = View([Block(block.zones, block.authority, None, loadbalance=True)])
    elif config in ("log", "prometheus and log"):
        view = View([Block(block.zones, block.authority, None, log=LogConfig(line=1))])
    fast = FastPath(view)
    metrics = Metrics(process_metrics=False) if config.startswith("prometheus") else None
    handlers = {True: fast.handle_udp, False: fast.handle_tcp}
    if needs_instrumenting(view, metrics):
        handlers = {
            udp: instrument(h, view, proto="udp" if udp else "tcp", address=("127.0.0.1", 53), metrics=metrics)
            for udp, h in handlers.items()
        }
    return view, handlers


def _deployed_server():
    from bench.configs import deployed_directives
    from k8sgw.config import parse_corefile

    lines = "\n    ".join(deployed_directives())
    text = f"example.org {{\n    {lines}\n    k8s_gateway example.org\n}}\n"
    (server,) = parse_corefile(text, filename="deployed", default_port=0).servers
    return server


def test_the_deployed_configuration_is_the_shipped_corefiles():
    server = _deployed_server()
    assert server.prometheus is not None and server.log is None and not server.loadbalance


@pytest.mark.parametrize(
    "config", ["plain", "prometheus", "log", "prometheus and log", "loadbalance", "nested zones", "deployed"]
)
@settings(max_examples=150, deadline=None)
@given(wires=st.lists(st.one_of(queries, malformed), min_size=1, max_size=8), udp=st.booleans(), seed=st.integers())
def test_every_configuration_answers_as_the_full_path(config, wires, udp, seed):
    view, handlers = _configured(config)
    for wire in wires + wires:
        random.seed(seed)  # loadbalance's shuffle: the same order on both paths
        fast = handlers[udp](wire, ("192.0.2.1", 5300))
        random.seed(seed)
        assert fast == handle_wire(wire, view, udp=udp)


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


ASSEMBLED = [
    ("web.example.org.", "A"), ("WeB.ExAmPlE.oRg.", "A"), ("two.example.org.", "A"), ("v6.example.org.", "AAAA"),
    ("web.example.org.", "AAAA"), ("web.example.org.", "MX"), ("example.org.", "AAAA"), ("sub.example.org.", "A"),
    ("nothing.example.org.", "A"), ("a.b.c.NOTHING.example.org.", "TXT"), ("x.web.example.org.", "A"),
]
FULL_PATH = [
    ("x.apps.example.org.", "A"),  # wildcard
    ("alias.example.org.", "A"),  # CNAME
    ("web.example.org.", "TXT"),  # a type assembly leaves to dnspython
    ("web.example.org.", "ANY"),
    ("nothing.kube-system.example.org.", "A"),  # under the SOA's mname: compresses differently
    ("x.hostmaster.dns1.kube-system.example.org.", "A"),  # under its rname
    ("big.example.org.", "A"),  # too big for UDP: TC
    ("outside.example.com.", "A"),
    ("nothing.example.org.", "AXFR"),  # refused, not answered
    ("nothing.example.org.", "IXFR"),
]


def test_common_answers_are_assembled_and_the_rest_left_to_the_full_path():
    view, _ = views()
    assembler = Assembler(view)
    for edns in (-1, 0):
        for name, rdtype in ASSEMBLED:
            wire = dns.message.make_query(name, rdtype, use_edns=edns, want_dnssec=edns == 0).to_wire()
            q = read_question(wire)
            assert q is not None
            assert assembler.reply(wire, q, True) == handle_wire(wire, view, udp=True), (name, rdtype)
        for name, rdtype in FULL_PATH:
            wire = dns.message.make_query(name, rdtype, use_edns=edns).to_wire()
            assert assembler.reply(wire, read_question(wire), True) is None, (name, rdtype)


def test_unusual_queries_are_not_read_as_plain_questions():
    plain = dns.message.make_query("web.example.org.", "A", use_edns=0)
    assert read_question(plain.to_wire()) is not None
    cookie = dns.message.make_query("web.example.org.", "A", use_edns=0, options=[dns.edns.GenericOption(10, b"8bytes!!")])
    version1 = dns.message.make_query("web.example.org.", "A", use_edns=1)
    chaos = dns.message.make_query("web.example.org.", "TXT", rdclass="CH")
    wires = [cookie.to_wire(), version1.to_wire(), chaos.to_wire(), plain.to_wire()[:20]]
    notify = dns.message.make_query("web.example.org.", "SOA")
    notify.set_opcode(dns.opcode.NOTIFY)
    wires.append(notify.to_wire())
    for wire in wires:
        assert read_question(wire) is None


def test_a_new_spelling_of_a_question_answered_before_is_spliced():
    view, _ = views()
    fast = FastPath(view)
    first = dns.message.make_query("alias.example.org.", "A").to_wire()
    fast.handle(first, udp=True)
    again = dns.message.make_query("ALIAS.example.ORG.", "A").to_wire()
    assert read_question(again).key in fast._by_question[True]
    assert fast.handle(again, udp=True) == handle_wire(again, view, udp=True)


# ---- answers kept across publishes ----------------------------------------------------------------

CHURN_NAMES = [
    "web.example.org.", "two.example.org.", "a.b.example.org.", "b.example.org.", "*.apps.example.org.",
    "x.apps.example.org.", "alias.example.org.", "example.org.", "deep.a.b.example.org.", "*.b.example.org.",
]
_A_DATA = [dns.rdata.from_text("IN", "A", f"192.0.2.{i}") for i in range(1, 5)]
_AAAA_DATA = [dns.rdata.from_text("IN", "AAAA", f"2001:db8::{i}") for i in range(1, 3)]
_CNAME_DATA = dns.rdata.from_text("IN", "CNAME", "web.example.org.")

# One step of churn: (name, what it holds next: A addresses, AAAA addresses, a CNAME instead, TTL)
churn_steps = st.tuples(
    st.sampled_from(CHURN_NAMES),
    st.lists(st.sampled_from(_A_DATA), max_size=3, unique=True),
    st.lists(st.sampled_from(_AAAA_DATA), max_size=2, unique=True),
    st.booleans(),
    st.sampled_from([None, 30]),
)
churn_queries = st.tuples(
    st.sampled_from([
        *CHURN_NAMES[:4], "y.apps.example.org.", *CHURN_NAMES[5:], "nothing.example.org.", "q.deep.a.b.example.org.",
        "q.a.b.example.org.", "z.x.apps.example.org.", "c.b.example.org.",
    ]),
    st.lists(st.booleans(), max_size=30),
    st.sampled_from([1, 28, 16]),
    st.sampled_from([-1, 0]),
)


class _PublisherStore:
    def __init__(self, publisher) -> None:
        self.publisher = publisher

    @property
    def current(self):
        return self.publisher.current


@settings(max_examples=200, deadline=None)
@given(
    rounds=st.lists(
        st.tuples(st.lists(churn_steps, min_size=1, max_size=3), st.integers(1, 2), st.lists(churn_queries, max_size=10)),
        min_size=1,
        max_size=8,
    ),
    udp=st.booleans(),
)
def test_answers_kept_across_publishes_are_the_full_paths(rounds, udp):
    """Under churn the fast path keeps the positive answers of unchanged names across a publish;
    after every publish (one version on, or two at once), every answer is still the full path's."""
    from k8sgw.dnsserver.answer import Authority
    from k8sgw.records.keys import NameKey
    from k8sgw.records.publisher import Publisher
    from k8sgw.records.store import ZoneSettings

    zone_settings = ZoneSettings(["example.org."])
    publisher = Publisher(zone_settings, ready=True)
    view = View([Block(zone_settings.zones, Authority(zone_settings, _PublisherStore(publisher)))])
    fast = FastPath(view)
    held: dict[NameKey, tuple[dict, dict]] = {}
    revision = 100
    for steps, publishes, asked in rounds:
        touched: set[NameKey] = set()
        for i, (name, a, aaaa, cname, ttl) in enumerate(steps):
            rrsets = {5: (_CNAME_DATA,)} if cname and name != "example.org." else {}
            if not rrsets:
                rrsets = {t: tuple(v) for t, v in ((1, a), (28, aaaa)) if v}
            key = NameKey.of(dns.name.from_text(name))
            held[key] = (rrsets, {1: ttl, 28: ttl} if ttl else {})
            touched.add(key)
            if i < publishes or i == len(steps) - 1:  # one or more versions between two queries
                revision += 1
                publisher.seen_version(str(revision))  # the serial rises, as with the API's revisions
                for _ in publisher.publish(touched, True, lambda n: tuple(map(dict, held.get(n, ({}, {}))))):
                    pass
                touched = set()
        # Every name as first asked (from the tables when kept from before), then the random ones
        # twice (the second time from the tables).
        every = [(name, [], rdtype, -1) for name in CHURN_NAMES for rdtype in (1, 28)]
        for name, flips, rdtype, edns in every + asked * 2:
            wire = dns.message.make_query(mixed_case(name, flips), rdtype, use_edns=edns).to_wire()
            assert fast.handle(wire, udp=udp) == handle_wire(wire, view, udp=udp), (name, rdtype)


def test_a_publish_keeps_unchanged_names_answers_and_drops_the_changed_ones():
    from k8sgw.dnsserver.answer import Authority
    from k8sgw.records.keys import NameKey
    from k8sgw.records.publisher import Publisher
    from k8sgw.records.store import ZoneSettings

    zone_settings = ZoneSettings(["example.org."])
    publisher = Publisher(zone_settings, ready=True)
    view = View([Block(zone_settings.zones, Authority(zone_settings, _PublisherStore(publisher)))])
    fast = FastPath(view)
    web, two = (NameKey.of(dns.name.from_text(n)) for n in ("web.example.org.", "two.example.org."))
    state = {web: {1: (_A_DATA[0],)}, two: {1: (_A_DATA[1],)}}

    def publish(*names):
        publisher.seen_version(str(publisher.current.version + 100))
        for _ in publisher.publish(set(names), True, lambda n: (dict(state.get(n, {})), {})):
            pass

    publish(web, two)
    queries = {n: dns.message.make_query(n, "A").to_wire() for n in ("web.example.org.", "two.example.org.")}
    nx = dns.message.make_query("nothing.example.org.", "A").to_wire()
    for wire in (*queries.values(), nx):
        fast.handle(wire, udp=True)
    assert fast.lasting_answers() == 2
    assert fast.lasting_negatives() == 0  # a negative is kept from its second assembly on
    state[web] = {1: (_A_DATA[2],)}
    publish(web)
    assert fast.handle(queries["two.example.org."], udp=True) == handle_wire(queries["two.example.org."], view, udp=True)
    assert fast.lasting_answers() == 1  # web's answer went with its change; two's stayed
    answer = dns.message.from_wire(fast.handle(queries["web.example.org."], udp=True))
    assert [r.to_text() for r in answer.answer[0]] == ["192.0.2.3"]
    nx_reply = dns.message.from_wire(fast.handle(nx, udp=True))
    assert nx_reply.authority[0][0].serial == publisher.current.serial  # the SOA of the new serial
    assert fast.lasting_negatives() == 1
    state[two] = {1: (_A_DATA[0],)}
    publish(two)  # unrelated to nothing.example.org.: its NXDOMAIN stays, with the SOA's new serial
    kept = fast.handle(nx, udp=True)
    assert fast.lasting_negatives() == 1 and kept == handle_wire(nx, view, udp=True)
    assert dns.message.from_wire(kept).authority[0][0].serial == publisher.current.serial
    below = NameKey.of(dns.name.from_text("a.nothing.example.org."))
    state[below] = {1: (_A_DATA[3],)}
    publish(below)  # nothing.example.org. is now an empty non-terminal: NODATA, not NXDOMAIN
    nodata = fast.handle(nx, udp=True)  # the NXDOMAIN kept from before would be wrong now
    assert nodata == handle_wire(nx, view, udp=True)
    assert dns.message.from_wire(nodata).rcode() == dns.rcode.NOERROR
