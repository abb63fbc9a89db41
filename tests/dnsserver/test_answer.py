"""answer() table tests: zone text in, message out (CoreDNS test.Case style). No sockets."""

from __future__ import annotations

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from k8sgw.dnsserver.answer import Block, View, answer
from tests.zonetext import view_from_text

ZONE = """
web.example.org.            60 IN A     192.0.2.10
web.example.org.            60 IN A     192.0.2.11
v6.example.org.             60 IN AAAA  2001:db8::1
svc.ns1.example.org.        60 IN A     192.0.2.20
*.apps.example.org.         60 IN A     192.0.2.30
exact.apps.example.org.     60 IN A     192.0.2.31
dns1.kube-system.example.org. 60 IN A   192.0.2.53
"""


def ask(name: str, rdtype: str = "A", *, view=None, **query_kw) -> dns.message.Message:
    view = view or view_from_text(ZONE)[0]
    return answer(dns.message.make_query(name, rdtype, **query_kw), view)


def rrsets(section) -> list[str]:
    return sorted(str(r) for rrset in section for r in [rrset])


@pytest.mark.parametrize(
    ("qname", "qtype", "rcode", "answer_text"),
    [
        ("web.example.org.", "A", "NOERROR", ["web.example.org. 60 IN A 192.0.2.10", "web.example.org. 60 IN A 192.0.2.11"]),
        ("WeB.ExAmple.ORG.", "A", "NOERROR", ["WeB.ExAmple.ORG. 60 IN A 192.0.2.10", "WeB.ExAmple.ORG. 60 IN A 192.0.2.11"]),
        ("v6.example.org.", "AAAA", "NOERROR", ["v6.example.org. 60 IN AAAA 2001:db8::1"]),
        # RFC 4074: the name exists, the type does not → NODATA, never NXDOMAIN.
        ("v6.example.org.", "A", "NOERROR", []),
        ("web.example.org.", "AAAA", "NOERROR", []),
        ("web.example.org.", "TXT", "NOERROR", []),
        # RFC 8020: an empty non-terminal exists.
        ("ns1.example.org.", "A", "NOERROR", []),
        ("nothing.example.org.", "A", "NXDOMAIN", []),
        ("below.web.example.org.", "A", "NXDOMAIN", []),
        # RFC 4592: wildcard answers under its owner with the query name; the exact name wins.
        ("x.apps.example.org.", "A", "NOERROR", ["x.apps.example.org. 60 IN A 192.0.2.30"]),
        ("a.b.apps.example.org.", "A", "NOERROR", ["a.b.apps.example.org. 60 IN A 192.0.2.30"]),
        ("exact.apps.example.org.", "A", "NOERROR", ["exact.apps.example.org. 60 IN A 192.0.2.31"]),
        ("x.apps.example.org.", "AAAA", "NOERROR", []),
        ("apps.example.org.", "A", "NOERROR", []),  # the wildcard's parent is an empty non-terminal
        # Below an existing name the wildcard does not reach (closest encloser is exact.apps).
        ("y.exact.apps.example.org.", "A", "NXDOMAIN", []),
    ],
)
def test_lookup(qname, qtype, rcode, answer_text):
    reply = ask(qname, qtype)
    assert dns.rcode.to_text(reply.rcode()) == rcode
    assert reply.flags & dns.flags.AA
    got = sorted(line for rrset in reply.answer for line in str(rrset).splitlines())
    assert got == sorted(answer_text)
    if not answer_text:
        # RFC 2308: negative answers carry the zone's SOA, TTL = min(SOA TTL, minimum).
        (soa,) = reply.authority
        assert soa.rdtype == dns.rdatatype.SOA
        assert soa.name == dns.name.from_text("example.org.")
        assert soa.ttl == 60
        assert soa[0].mname == dns.name.from_text("dns1.kube-system.example.org.")
        assert soa[0].minimum == 60
    else:
        assert reply.authority == []


def test_question_echoed_and_id_kept():
    query = dns.message.make_query("WEB.example.org.", "A")
    reply = answer(query, view_from_text(ZONE)[0])
    assert reply.id == query.id
    assert reply.question[0].name.to_text() == "WEB.example.org."


def test_apex_soa_and_ns_with_glue():
    view, _ = view_from_text(ZONE, secondary="dns2.kube-system")
    soa = answer(dns.message.make_query("example.org.", "SOA"), view)
    assert soa.answer[0][0].serial == 7
    assert str(soa.answer[0][0].rname) == "hostmaster.dns1.kube-system.example.org."
    ns = answer(dns.message.make_query("example.org.", "NS"), view)
    assert sorted(str(r.target) for r in ns.answer[0]) == [
        "dns1.kube-system.example.org.",
        "dns2.kube-system.example.org.",
    ]
    assert [str(r) for r in ns.additional] == ["dns1.kube-system.example.org. 60 IN A 192.0.2.53"]


def test_ttl_comes_from_config():
    view, _ = view_from_text(ZONE, ttl=300)
    assert ask("web.example.org.", view=view).answer[0].ttl == 300


def test_any_gets_one_rrset():
    reply = ask("example.org.", "ANY")
    assert len(reply.answer) == 1


def test_outside_every_zone_is_refused():
    reply = ask("web.example.com.")
    assert reply.rcode() == dns.rcode.REFUSED
    assert not reply.flags & dns.flags.AA
    assert reply.answer == [] and reply.authority == []


def test_block_without_k8s_gateway_refuses():
    view = View([Block((dns.name.root,), None)])
    assert ask("web.example.org.", view=view).rcode() == dns.rcode.REFUSED


def test_longest_zone_wins():
    outer, _ = view_from_text("web.example.org. 60 IN A 192.0.2.1")
    inner, _ = view_from_text("web.sub.example.org. 60 IN A 192.0.2.2", zones=("sub.example.org.",))
    view = View([*outer.blocks, *inner.blocks])
    assert str(ask("web.sub.example.org.", view=view).answer[0][0]) == "192.0.2.2"
    assert str(ask("web.example.org.", view=view).answer[0][0]) == "192.0.2.1"


def test_not_ready_is_servfail_with_extended_error():
    view, _ = view_from_text(ZONE, ready=False)
    reply = ask("web.example.org.", view=view, use_edns=0)
    assert reply.rcode() == dns.rcode.SERVFAIL
    (ede,) = reply.options
    assert ede.code == dns.edns.EDECode.NOT_READY
    assert ask("web.example.org.", view=view).rcode() == dns.rcode.SERVFAIL


def test_edns_is_echoed():
    reply = ask("web.example.org.", use_edns=0, payload=4096)
    assert reply.edns == 0
    assert reply.payload == 1232
    assert ask("web.example.org.").edns == -1
