"""Reverse zones: PTR records derived from the forward zones' addresses, in the same map version."""

from __future__ import annotations

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.reversename
import pytest

from k8sgw.arpa import reverse_key, reverse_zone_problem
from k8sgw.config import ConfigError, parse_corefile
from k8sgw.dnsserver.answer import Authority, Block, View, answer
from k8sgw.kubeapi.events import Deleted, Synced, Upserted
from k8sgw.kubeapi.models import DNSEndpoint
from k8sgw.records import reverse as reverse_module
from k8sgw.records.hostnames import parse_address
from k8sgw.records.keys import NameKey
from k8sgw.records.reverse import PTR_NAMES_MAX, ReverseIndex
from k8sgw.records.store import RecordStore, ZoneSettings
from tests.records.test_store import ingress, service

ZONES = ("example.org.", "example.com.", "2.0.192.in-addr.arpa.", "8.b.d.0.1.0.0.2.ip6.arpa.")


def ptrs(store: RecordStore, address: str) -> list[str]:
    name = dns.reversename.from_address(address)
    return [str(r.target) for r in store.current.rdatas(name, dns.rdatatype.PTR)]


def ask(store: RecordStore, name: str, rdtype: str = "PTR") -> dns.message.Message:
    view = View([Block(store.settings.zones, Authority(store.settings, store))])
    return answer(dns.message.make_query(name, rdtype), view)


@pytest.fixture
def store():
    s = RecordStore(ZoneSettings(ZONES), ["Ingress", "Service"], clock=lambda: 1000.0)
    s.apply([Synced("Ingress", ()), Synced("Service", ()), Synced("EndpointSlice", ())])
    return s


def test_ptr_for_ipv4_and_ipv6_in_the_same_version(store):
    before = store.current.version
    store.apply([Upserted("Ingress", ingress("a", ["web.example.org"], ["192.0.2.1", "2001:db8::1"]))])
    assert store.current.version == before + 1
    assert ptrs(store, "192.0.2.1") == ["web.example.org."]
    assert ptrs(store, "2001:db8::1") == ["web.example.org."]


def test_every_owner_in_canonical_order_across_kinds_and_zones(store):
    store.apply([
        Upserted("Ingress", ingress("a", ["z.example.org", "a.example.com", "b.a.example.org"], ["192.0.2.7"])),
        Upserted("Service", service("web", ["192.0.2.7"])),
    ])
    # RFC 4034 §6.1: by the label nearest the root first: example.com before example.org, and
    # a.example.org (an owner's parent) before its children.
    assert ptrs(store, "192.0.2.7") == [
        "a.example.com.",
        "web.default.example.com.",
        "b.a.example.org.",
        "web.default.example.org.",
        "z.example.org.",
    ]


def test_address_change_moves_the_ptr_and_delete_removes_it(store):
    store.apply([Upserted("Service", service("web", ["192.0.2.5"]))])
    store.apply([Upserted("Service", service("web", ["192.0.2.6"]))])
    assert ptrs(store, "192.0.2.5") == []
    assert ptrs(store, "192.0.2.6") == ["web.default.example.com.", "web.default.example.org."]
    assert ask(store, "5.2.0.192.in-addr.arpa.").rcode() == dns.rcode.NXDOMAIN
    store.apply([Deleted("Service", "default", "web", "9")])
    assert ptrs(store, "192.0.2.6") == []
    assert ask(store, "6.2.0.192.in-addr.arpa.").rcode() == dns.rcode.NXDOMAIN


def test_one_owner_losing_an_address_keeps_the_others(store):
    store.apply([
        Upserted("Ingress", ingress("a", ["a.example.org"], ["192.0.2.9"])),
        Upserted("Ingress", ingress("b", ["b.example.org"], ["192.0.2.9"])),
    ])
    store.apply([Deleted("Ingress", "default", "a", "9")])
    assert ptrs(store, "192.0.2.9") == ["b.example.org."]


def test_addresses_outside_the_reverse_zones_and_wildcards_get_no_ptr(store):
    store.apply([Upserted("Ingress", ingress("a", ["*.apps.example.org", "web.example.org"], ["198.51.100.1", "192.0.2.3"]))])
    assert ptrs(store, "192.0.2.3") == ["web.example.org."]  # not *.apps.example.org
    assert store.current.get(dns.reversename.from_address("198.51.100.1")) is None


def test_cap_keeps_the_first_names_in_order_and_shifts_up_on_delete(store):
    hosts = [f"h{i:02d}.example.org" for i in range(PTR_NAMES_MAX + 3)]
    store.apply([Upserted("Ingress", ingress(h.split(".")[0], [h], ["192.0.2.4"])) for h in hosts])
    assert ptrs(store, "192.0.2.4") == [h + "." for h in hosts[:PTR_NAMES_MAX]]
    store.apply([Deleted("Ingress", "default", "h00", "9")])
    assert ptrs(store, "192.0.2.4") == [h + "." for h in hosts[1 : PTR_NAMES_MAX + 1]]


@pytest.mark.parametrize(
    ("qname", "qtype", "rcode", "count"),
    [
        ("1.2.0.192.in-addr.arpa.", "PTR", dns.rcode.NOERROR, 1),
        ("1.2.0.192.in-addr.arpa.", "A", dns.rcode.NOERROR, 0),  # NODATA: the name exists
        ("2.2.0.192.in-addr.arpa.", "PTR", dns.rcode.NXDOMAIN, 0),  # an address without records
        ("x.1.2.0.192.in-addr.arpa.", "PTR", dns.rcode.NXDOMAIN, 0),
        ("2.0.192.in-addr.arpa.", "SOA", dns.rcode.NOERROR, 1),
        ("2.0.192.in-addr.arpa.", "NS", dns.rcode.NOERROR, 1),
        # IPv6: the nibbles between the zone and the address are empty non-terminals (RFC 8020).
        (dns.reversename.from_address("2001:db8::1").to_text(), "PTR", dns.rcode.NOERROR, 1),
        ("0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.", "PTR", dns.rcode.NOERROR, 0),
        ("1.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.", "PTR", dns.rcode.NXDOMAIN, 0),
        ("8.b.d.0.1.0.0.2.ip6.arpa.", "SOA", dns.rcode.NOERROR, 1),
    ],
)
def test_answers_in_the_reverse_zones(store, qname, qtype, rcode, count):
    store.apply([Upserted("Ingress", ingress("a", ["web.example.org"], ["192.0.2.1", "2001:db8::1"]))])
    reply = ask(store, qname, qtype)
    assert reply.rcode() == rcode
    assert sum(len(r) for r in reply.answer) == count
    assert reply.flags & dns.flags.AA
    if not count:
        assert [r.rdtype for r in reply.authority] == [dns.rdatatype.SOA]


def test_reverse_zones_claim_no_forward_names():
    s = RecordStore(ZoneSettings(["example.org.", "2.0.192.in-addr.arpa."]), ["Service", "DNSEndpoint"])
    s.apply([Synced("Service", ()), Synced("EndpointSlice", ()), Synced("DNSEndpoint", ())])
    endpoint = DNSEndpoint.model_validate({
        "metadata": {"name": "e", "namespace": "default"},
        "spec": {"endpoints": [{"dnsName": "9.2.0.192.in-addr.arpa", "recordType": "A", "targets": ["192.0.2.9"]}]},
    })
    s.apply([Upserted("Service", service("web", ["192.0.2.5"])), Upserted("DNSEndpoint", endpoint)])
    assert s.current.get(dns.name.from_text("web.default.2.0.192.in-addr.arpa.")) is None
    assert s.current.get(dns.name.from_text("9.2.0.192.in-addr.arpa.")) is None
    assert [str(r.target) for r in s.current.rdatas(dns.name.from_text("5.2.0.192.in-addr.arpa."), dns.rdatatype.PTR)] == [
        "web.default.example.org."
    ]


def test_a_single_address_zone_keeps_its_soa_beside_the_ptr():
    s = RecordStore(ZoneSettings(["example.org.", "5.2.0.192.in-addr.arpa."]), ["Service"])
    s.apply([Synced("Service", ()), Synced("EndpointSlice", ())])
    s.apply([Upserted("Service", service("web", ["192.0.2.5"]))])
    apex = s.current.get(dns.name.from_text("5.2.0.192.in-addr.arpa."))
    assert set(apex.rrsets) == {dns.rdatatype.SOA, dns.rdatatype.NS, dns.rdatatype.PTR}
    s.apply([Upserted("Service", service("web", ["192.0.2.6"]))])  # a new serial rewrites the apex
    apex = s.current.get(dns.name.from_text("5.2.0.192.in-addr.arpa."))
    assert set(apex.rrsets) == {dns.rdatatype.SOA, dns.rdatatype.NS}


def test_nameserver_host_address_maps_back_from_the_forward_zone_only():
    s = RecordStore(ZoneSettings(["example.org.", "2.0.192.in-addr.arpa."]), ["Service"])
    s.apply([Synced("Service", ()), Synced("EndpointSlice", ())])
    s.apply([Upserted("Service", service("dns1", ["192.0.2.53"], ns="kube-system"))])
    names = [str(r.target) for r in s.current.rdatas(dns.name.from_text("53.2.0.192.in-addr.arpa."), dns.rdatatype.PTR)]
    assert names == ["dns1.kube-system.example.org."]


@pytest.mark.parametrize(
    ("zone", "ok"),
    [
        ("in-addr.arpa.", True),
        ("10.in-addr.arpa.", True),
        ("2.0.192.in-addr.arpa.", True),
        ("5.2.0.192.in-addr.arpa.", True),
        ("256.in-addr.arpa.", False),
        ("01.in-addr.arpa.", False),
        ("0/25.2.0.192.in-addr.arpa.", False),
        ("1.5.2.0.192.in-addr.arpa.", False),
        ("ip6.arpa.", True),
        ("8.b.d.0.1.0.0.2.ip6.arpa.", True),
        ("8.B.d.0.1.0.0.2.ip6.arpa.", True),
        ("db8.2001.ip6.arpa.", False),
        (".".join("0" * 33) + ".ip6.arpa.", False),
        ("example.org.", True),
    ],
)
def test_reverse_zone_boundaries(zone, ok):
    assert (reverse_zone_problem(dns.name.from_text(zone)) is None) == ok


def test_corefile_refuses_a_reverse_zone_off_a_boundary():
    with pytest.raises(ConfigError, match="octet boundary"):
        parse_corefile(". {\n k8s_gateway example.org 256.2.0.192.in-addr.arpa\n}\n", filename="x")
    with pytest.raises(ConfigError, match="nibble boundary"):
        parse_corefile("db8.2001.ip6.arpa {\n k8s_gateway\n}\n", filename="x")
    parse_corefile(". {\n k8s_gateway example.org 2.0.192.in-addr.arpa 8.b.d.0.1.0.0.2.ip6.arpa\n}\n", filename="x")


@pytest.mark.parametrize("address", ["192.0.2.1", "10.0.0.255", "2001:db8::1", "fe80::1:2:3:4", "::"])
def test_reverse_key_is_dnspythons_reverse_name(address):
    assert reverse_key(parse_address(address).address) == NameKey.of(dns.reversename.from_address(address))


def test_large_owner_lists_stay_sorted_through_adds_and_removes(monkeypatch):
    monkeypatch.setattr(reverse_module, "_BUCKET", 4)  # small buckets: splits happen in a test
    index = ReverseIndex([dns.name.from_text("example.org.")], [dns.name.from_text("in-addr.arpa.")])
    a = parse_address("192.0.2.1")
    names = [NameKey.of(dns.name.from_text(f"n{i:03d}.example.org.")) for i in range(60)]
    changed: set[NameKey] = set()
    for name in reversed(names):
        index.update(name, {}, {a.rdtype: (a,)}, changed)
    for name in names[::3]:
        index.update(name, {a.rdtype: (a,)}, {}, changed)
    kept = [n for i, n in enumerate(names) if i % 3]
    key = reverse_key(a.address)
    assert index.owner_count(key) == len(kept)
    assert [NameKey.of(r.target) for r in index.ptr_rrsets(key)[dns.rdatatype.PTR]] == kept[:PTR_NAMES_MAX]
    for name in kept:
        index.update(name, {a.rdtype: (a,)}, {}, changed)
    assert index.ptr_rrsets(key) == {} and index.owner_count(key) == 0


def _changed_names(before, after) -> set[NameKey]:
    keys = set(before.nodes.keys()) | set(after.nodes.keys())
    return {k for k in keys if before.nodes.get(k) is not after.nodes.get(k)}


@pytest.mark.parametrize("sharing", [False, True])
def test_one_change_rewrites_the_same_names_whatever_the_cluster_size(sharing):
    """A change rewrites its own names, its old and new PTR names and the apexes (new serial):
    the same set at 50 and at 2,000 objects, also when they all share the changed address."""
    changed = []
    for size in (50, 2000):
        s = RecordStore(ZoneSettings(ZONES), ["Ingress"], clock=lambda: 1000.0)
        objs = [
            ingress(f"i{i}", [f"h{i}.example.org"], ["192.0.2.200" if sharing else f"192.0.2.{i % 250}"])
            for i in range(size)
        ]
        s.apply([Synced("Ingress", tuple(objs))])
        before = s.current
        s.apply([Upserted("Ingress", ingress("i1", ["h1.example.org"], ["192.0.2.251"]))])
        changed.append(sorted(map(str, _changed_names(before, s.current))))
        assert ptrs(s, "192.0.2.251") == ["h1.example.org."]
    assert changed[0] == changed[1]
    assert "251.2.0.192.in-addr.arpa." in changed[0]
