"""The indexer: events in, published RecordMaps out (precedence, deletes, relists, ENTs, serials)."""

from __future__ import annotations

import dns.name
import dns.rdatatype
import pytest
import trio
import trio.testing

from k8sgw.kubeapi.events import Deleted, Synced, Upserted
from k8sgw.kubeapi.models import Ingress, Service
from k8sgw.records import store as store_module
from k8sgw.records.store import RecordStore, ZoneSettings

ZONES = ("example.org.", "example.com.")


def ingress(name, hosts, ips, ns="default", cls=None):
    return Ingress.model_validate(
        {
            "metadata": {"name": name, "namespace": ns},
            "spec": {"ingressClassName": cls, "rules": [{"host": h} for h in hosts]},
            "status": {"loadBalancer": {"ingress": [{"ip": ip} for ip in ips]}},
        }
    )


def service(name, ips, ns="default", type_="LoadBalancer", annotations=None, external_ips=None):
    return Service.model_validate(
        {
            "metadata": {"name": name, "namespace": ns, "annotations": annotations or {}},
            "spec": {"type": type_, "externalIPs": external_ips},
            "status": {"loadBalancer": {"ingress": [{"ip": ip} for ip in ips]}},
        }
    )


def addrs(store: RecordStore, name: str, rdtype=dns.rdatatype.A) -> list[str]:
    return sorted(str(r) for r in store.current.rdatas(dns.name.from_text(name), rdtype))


def exists(store: RecordStore, name: str) -> bool:
    return store.current.get(dns.name.from_text(name)) is not None


@pytest.fixture
def store():
    s = RecordStore(ZoneSettings(ZONES), ["Ingress", "Service"], clock=lambda: 1000.0)
    s.apply([Synced("Ingress", ()), Synced("Service", ()), Synced("EndpointSlice", ())])
    return s


def test_ready_only_after_every_kind_synced():
    s = RecordStore(ZoneSettings(ZONES), ["Ingress", "Service"])
    assert not s.current.ready
    s.apply([Synced("Ingress", ())])
    assert not s.current.ready
    s.apply([Synced("Service", ())])
    assert not s.current.ready  # Services need their EndpointSlices (resolve-endpoints)
    s.apply([Synced("EndpointSlice", ())])
    assert s.current.ready


def test_ingress_hosts_in_zones_only(store):
    store.apply([Upserted("Ingress", ingress("a", ["web.example.org", "web.other.net", "Up.Example.COM"], ["192.0.2.1", "2001:db8::1"]))])
    assert addrs(store, "web.example.org.") == ["192.0.2.1"]
    assert addrs(store, "web.example.org.", dns.rdatatype.AAAA) == ["2001:db8::1"]
    assert addrs(store, "up.example.com.") == ["192.0.2.1"]
    assert not exists(store, "web.other.net.")


def test_service_default_name_per_zone_and_only_loadbalancer(store):
    store.apply([Upserted("Service", service("web", ["192.0.2.5"])), Upserted("Service", service("int", ["192.0.2.6"], type_="ClusterIP"))])
    assert addrs(store, "web.default.example.org.") == ["192.0.2.5"]
    assert addrs(store, "web.default.example.com.") == ["192.0.2.5"]
    assert not exists(store, "int.default.example.org.")
    assert exists(store, "default.example.org.")  # empty non-terminal


def test_service_external_ips_win_over_status(store):
    store.apply([Upserted("Service", service("web", ["192.0.2.5"], external_ips=["192.0.2.99"]))])
    assert addrs(store, "web.default.example.org.") == ["192.0.2.99"]


@pytest.mark.parametrize(
    ("annotations", "names"),
    [
        ({"coredns.io/hostname": "shop"}, ["shop.example.org.", "shop.example.com."]),
        ({"coredns.io/hostname": "shop.example.org"}, ["shop.example.org."]),
        ({"coredns.io/hostname": "a.example.org, b"}, ["a.example.org.", "b.example.org.", "b.example.com."]),
        ({"external-dns.alpha.kubernetes.io/hostname": "ext.example.com"}, ["ext.example.com."]),
        ({"coredns.io/hostname": "first.example.org", "external-dns.alpha.kubernetes.io/hostname": "second.example.org"}, ["first.example.org."]),
    ],
)
def test_service_hostname_annotations(store, annotations, names):
    store.apply([Upserted("Service", service("web", ["192.0.2.5"], annotations=annotations))])
    for name in names:
        assert addrs(store, name) == ["192.0.2.5"], name
    assert not exists(store, "web.default.example.org.")


def test_ingress_wins_over_service_for_the_same_name(store):
    store.apply([Upserted("Service", service("web", ["192.0.2.5"], annotations={"coredns.io/hostname": "both.example.org"}))])
    assert addrs(store, "both.example.org.") == ["192.0.2.5"]
    store.apply([Upserted("Ingress", ingress("web", ["both.example.org"], ["192.0.2.1"]))])
    assert addrs(store, "both.example.org.") == ["192.0.2.1"]
    store.apply([Deleted("Ingress", "default", "web")])
    assert addrs(store, "both.example.org.") == ["192.0.2.5"]


def test_two_objects_claiming_one_name_merge_and_unmerge(store):
    store.apply([Upserted("Ingress", ingress("a", ["web.example.org"], ["192.0.2.1"])), Upserted("Ingress", ingress("b", ["web.example.org"], ["192.0.2.1", "192.0.2.2"]))])
    assert addrs(store, "web.example.org.") == ["192.0.2.1", "192.0.2.2"]
    store.apply([Deleted("Ingress", "default", "b")])
    assert addrs(store, "web.example.org.") == ["192.0.2.1"]


def test_modify_and_delete(store):
    store.apply([Upserted("Ingress", ingress("a", ["x.y.example.org"], ["192.0.2.1"]))])
    assert exists(store, "y.example.org.")
    store.apply([Upserted("Ingress", ingress("a", ["x.y.example.org"], ["192.0.2.2"]))])
    assert addrs(store, "x.y.example.org.") == ["192.0.2.2"]
    store.apply([Deleted("Ingress", "default", "a")])
    assert not exists(store, "x.y.example.org.")
    assert not exists(store, "y.example.org.")  # the empty non-terminal went with its last child
    assert exists(store, "example.org.")  # the apex stays


def test_relist_drops_objects_that_vanished(store):
    store.apply([Upserted("Ingress", ingress("a", ["a.example.org"], ["192.0.2.1"])), Upserted("Ingress", ingress("b", ["b.example.org"], ["192.0.2.2"]))])
    store.apply([Synced("Ingress", (ingress("b", ["b.example.org"], ["192.0.2.3"]),))])
    assert not exists(store, "a.example.org.")
    assert addrs(store, "b.example.org.") == ["192.0.2.3"]


def test_ingress_class_filter():
    s = RecordStore(ZoneSettings(ZONES, ingress_classes=["nginx"]), ["Ingress"])
    s.apply([Synced("Ingress", (ingress("a", ["a.example.org"], ["192.0.2.1"], cls="nginx"), ingress("b", ["b.example.org"], ["192.0.2.2"], cls="traefik")))])
    assert exists(s, "a.example.org.") and not exists(s, "b.example.org.")


def test_invalid_address_is_skipped_and_logged(store, caplog):
    store.apply([Upserted("Ingress", ingress("a", ["a.example.org"], ["not-an-ip", "192.0.2.1"]))])
    assert addrs(store, "a.example.org.") == ["192.0.2.1"]
    assert "default/a" in caplog.text and "not-an-ip" in caplog.text


def test_serial_rises_on_change_only_and_versions_count_publishes(store):
    first = store.current
    store.apply([Upserted("Ingress", _with_rv(ingress("a", ["a.example.org"], ["192.0.2.1"]), "20"))])
    second = store.current
    assert second.serial > first.serial and second.version == first.version + 1
    soa = second.rdatas(dns.name.from_text("example.org."), dns.rdatatype.SOA)[0]
    assert soa.serial == second.serial
    store.apply([Upserted("Ingress", ingress("a", ["a.example.org"], ["192.0.2.1"]))])  # no change
    assert store.current is second


def _with_rv(obj, rv: str):
    return obj.model_copy(update={"metadata": obj.metadata.model_copy(update={"resource_version": rv})})


def test_serial_follows_the_resource_version_so_instances_agree():
    def run(batches):
        s = RecordStore(ZoneSettings(ZONES), ["Ingress", "Service"])
        for batch in batches:
            s.apply(batch)
        assert s.current.ready
        return s.current.serial

    synced = [Synced("Ingress", (), "100"), Synced("Service", (), "100"), Synced("EndpointSlice", (), "100")]
    change = Upserted("Ingress", _with_rv(ingress("a", ["a.example.org"], ["192.0.2.1"]), "105"))
    gone = Deleted("Ingress", "default", "a", "107")
    # The same events, grouped differently (one instance batches, the other does not): one serial.
    assert run([synced, [change], [gone]]) == run([synced[:1], synced[1:], [change, gone]]) == 107
    # A restart lists at a resourceVersion at least as high: the serial never goes back.
    assert run([[Synced(kind, (), "107") for kind in ("Ingress", "Service", "EndpointSlice")]]) == 107


def test_serial_rises_on_a_relist_that_only_dropped_objects():
    s = RecordStore(ZoneSettings(ZONES), ["Ingress"])
    s.apply([Synced("Ingress", (_with_rv(ingress("a", ["a.example.org"], ["192.0.2.1"]), "50"),), "60")])
    assert s.current.serial == 60
    s.apply([Synced("Ingress", (), "64")])  # deleted while disconnected: the relist's revision is newer
    assert s.current.serial == 64


def test_serial_from_the_clock_when_resource_versions_are_not_numbers():
    s = RecordStore(ZoneSettings(ZONES), ["Ingress"], clock=lambda: 1_700_000_000.5)
    s.apply([Synced("Ingress", (ingress("a", ["a.example.org"], ["192.0.2.1"]),), "opaque-token")])
    assert s.current.serial == 1_700_000_000
    s.apply([Deleted("Ingress", "default", "a", "another-token")])
    assert s.current.serial == 1_700_000_001  # the clock did not move: one more per change


def test_published_maps_are_never_mutated(store):
    store.apply([Upserted("Ingress", ingress("a", ["a.example.org"], ["192.0.2.1"]))])
    before = store.current
    store.apply([Deleted("Ingress", "default", "a")])
    assert [str(r) for r in before.rdatas(dns.name.from_text("a.example.org."), dns.rdatatype.A)] == ["192.0.2.1"]


async def test_consume_publishes_one_map_per_batch(store, nursery):
    send, recv = trio.open_memory_channel(10)
    version = store.current.version
    for i in range(5):
        send.send_nowait(Upserted("Ingress", ingress(f"i{i}", [f"i{i}.example.org"], ["192.0.2.1"])))
    nursery.start_soon(store.consume, recv)
    with trio.fail_after(5):
        current = await store.wait_until(lambda m: m.get(dns.name.from_text("i4.example.org.")) is not None)
    assert current.version == version + 1  # five queued events, one publish
    await send.aclose()


# --- every source: cross-kind indexes, nameserver hosts, TTLs, CNAMEs -------------------------

from k8sgw.kubeapi.models import DNSEndpoint, EndpointSlice, Gateway, HTTPRoute  # noqa: E402

ALL = ["HTTPRoute", "TLSRoute", "GRPCRoute", "Ingress", "Service", "DNSEndpoint"]


def gateway(name, ip, ns="infra"):
    return Gateway.model_validate(
        {"metadata": {"name": name, "namespace": ns}, "spec": {"gatewayClassName": "x", "listeners": [{"name": "h"}]},
         "status": {"addresses": [{"value": ip}]}}
    )


def httproute(name, host, gw, ns="infra"):
    return HTTPRoute.model_validate(
        {"metadata": {"name": name, "namespace": ns}, "spec": {"hostnames": [host], "parentRefs": [{"name": gw}]}}
    )


def dnsendpoint(name, dns_name, rtype, targets, ttl=0):
    return DNSEndpoint.model_validate(
        {"metadata": {"name": name, "namespace": "default"},
         "spec": {"endpoints": [{"dnsName": dns_name, "recordType": rtype, "targets": targets, "recordTTL": ttl}]}}
    )


@pytest.fixture
def full():
    s = RecordStore(ZoneSettings(("example.org.",), apex="dns1.kube-system", secondary="ns2.kube-system"), ALL)
    assert s.kinds == (*ALL, "Gateway", "EndpointSlice")
    s.apply([Synced(k, ()) for k in s.kinds])
    assert s.current.ready
    return s


def test_gateway_change_retranslates_only_its_routes(full, monkeypatch):
    full.apply([Upserted("HTTPRoute", httproute("r1", "a.example.org", "gw1")),
                Upserted("HTTPRoute", httproute("r2", "b.example.org", "gw2"))])
    assert not exists(full, "a.example.org.")  # the Gateway is not known yet
    full.apply([Upserted("Gateway", gateway("gw1", "192.0.2.1")), Upserted("Gateway", gateway("gw2", "192.0.2.2"))])
    assert addrs(full, "a.example.org.") == ["192.0.2.1"] and addrs(full, "b.example.org.") == ["192.0.2.2"]
    calls = []
    translate = store_module.translate_noted
    monkeypatch.setattr(
        store_module, "translate_noted", lambda kind, obj, *args: (calls.append((kind, obj.key)), translate(kind, obj, *args))[1]
    )
    full.apply([Upserted("Gateway", gateway("gw1", "192.0.2.11"))])
    assert calls == [("HTTPRoute", ("infra", "r1"))]
    assert addrs(full, "a.example.org.") == ["192.0.2.11"] and addrs(full, "b.example.org.") == ["192.0.2.2"]
    full.apply([Upserted("HTTPRoute", httproute("r1", "a.example.org", "gw2"))])  # re-parented
    calls.clear()
    full.apply([Deleted("Gateway", "infra", "gw1")])
    assert calls == []
    assert addrs(full, "a.example.org.") == ["192.0.2.2"]


def test_endpointslice_change_retranslates_its_service(full):
    svc = service("hl", [], type_="ClusterIP", annotations={"k8s-gateway.dns/resolve-endpoints": "true"})
    full.apply([Upserted("Service", svc)])
    assert not exists(full, "hl.default.example.org.")

    def eps(name, ips):
        return EndpointSlice.model_validate(
            {"metadata": {"name": name, "namespace": "default", "labels": {"kubernetes.io/service-name": "hl"}},
             "addressType": "IPv4", "endpoints": [{"addresses": [ip]} for ip in ips]})

    full.apply([Upserted("EndpointSlice", eps("hl-1", ["192.0.2.1"])), Upserted("EndpointSlice", eps("hl-2", ["192.0.2.2", "192.0.2.1"]))])
    assert addrs(full, "hl.default.example.org.") == ["192.0.2.1", "192.0.2.2"]
    full.apply([Deleted("EndpointSlice", "default", "hl-2")])
    assert addrs(full, "hl.default.example.org.") == ["192.0.2.1"]


def test_nameserver_hosts_own_their_names_and_below_is_nxdomain(full):
    full.apply([
        Upserted("Service", service("dns1", ["192.0.2.53"], ns="kube-system", type_="ClusterIP",
                                    annotations={"coredns.io/hostname": "other.example.org"})),
        Upserted("Service", service("ns2", [], ns="kube-system", external_ips=["192.0.2.54"])),
        Upserted("Ingress", ingress("steal", ["dns1.kube-system.example.org", "x.dns1.kube-system.example.org"], ["192.0.2.9"])),
        Upserted("DNSEndpoint", dnsendpoint("steal", "ns2.kube-system.example.org", "A", ["192.0.2.9"])),
    ])
    assert addrs(full, "dns1.kube-system.example.org.") == ["192.0.2.53"]
    assert addrs(full, "ns2.kube-system.example.org.") == ["192.0.2.54"]
    assert not exists(full, "x.dns1.kube-system.example.org.")
    assert not exists(full, "other.example.org.")  # ClusterIP without resolve-endpoints claims nothing
    full.apply([Upserted("Service", service("dns1", ["192.0.2.63"], ns="kube-system"))])
    assert addrs(full, "dns1.kube-system.example.org.") == ["192.0.2.63"]


def test_dnsendpoint_ttls_and_precedence(full):
    full.apply([Upserted("DNSEndpoint", dnsendpoint("t", "t.example.org", "TXT", ["a"], ttl=30)),
                Upserted("DNSEndpoint", dnsendpoint("t2", "t.example.org", "TXT", ["b"], ttl=20))])
    node = full.current.get(dns.name.from_text("t.example.org."))
    assert node.ttls == {dns.rdatatype.TXT: 20} and len(node.rrsets[dns.rdatatype.TXT]) == 2
    full.apply([Upserted("DNSEndpoint", dnsendpoint("w", "web.example.org", "A", ["192.0.2.9"]))])
    full.apply([Upserted("Gateway", gateway("gw", "192.0.2.1")), Upserted("HTTPRoute", httproute("r", "web.example.org", "gw"))])
    assert addrs(full, "web.example.org.") == ["192.0.2.1"]  # HTTPRoute before DNSEndpoint
    full.apply([Deleted("HTTPRoute", "infra", "r")])
    assert addrs(full, "web.example.org.") == ["192.0.2.9"]


def test_cname_never_shares_a_name(full):
    full.apply([Upserted("DNSEndpoint", dnsendpoint("c", "c.example.org", "CNAME", ["t.example.net"])),
                Upserted("DNSEndpoint", dnsendpoint("a", "c.example.org", "A", ["192.0.2.1"]))])
    node = full.current.get(dns.name.from_text("c.example.org."))
    assert set(node.rrsets) == {dns.rdatatype.A}
    full.apply([Deleted("DNSEndpoint", "default", "a")])
    assert [str(r) for r in full.current.rdatas(dns.name.from_text("c.example.org."), dns.rdatatype.CNAME)] == ["t.example.net."]


def test_objects_nothing_depends_on_are_not_kept_whole(store):
    store.apply([Upserted("Ingress", ingress("a", ["a.example.org"], ["192.0.2.1"]))])
    store.apply([Upserted("Service", service("web", ["192.0.2.5"]))])
    assert not isinstance(store._indexes[""].get("Ingress", ("default", "a")), Ingress)
    assert not isinstance(store._indexes[""].get("Service", ("default", "web")), Service)
    assert store.object_count("Ingress") == 1  # still counted, and still deletable
    store.apply([Deleted("Ingress", "default", "a")])
    assert not exists(store, "a.example.org.") and store.object_count("Ingress") == 0


def test_paged_sync_applies_pages_and_drops_the_unlisted_at_the_end(store):
    from k8sgw.kubeapi.events import SyncPage

    store.apply([Upserted("Ingress", ingress("old", ["old.example.org"], ["192.0.2.9"]))])
    store.apply([SyncPage("Ingress", (ingress("a", ["a.example.org"], ["192.0.2.1"]),), first=True)])
    assert addrs(store, "a.example.org.") == ["192.0.2.1"]
    assert exists(store, "old.example.org.")  # not yet: the list is not complete
    store.apply([SyncPage("Ingress", (ingress("b", ["b.example.org"], ["192.0.2.2"]),), first=False)])
    store.apply([Synced("Ingress", (ingress("c", ["c.example.org"], ["192.0.2.3"]),), "90")])
    assert [addrs(store, f"{n}.example.org.") for n in "abc"] == [["192.0.2.1"], ["192.0.2.2"], ["192.0.2.3"]]
    assert not exists(store, "old.example.org.")
    # A relist that restarts (first=True again) forgets the pages of the abandoned one.
    store.apply([SyncPage("Ingress", (ingress("a", ["a.example.org"], ["192.0.2.1"]),), first=True)])
    store.apply([SyncPage("Ingress", (ingress("b", ["b.example.org"], ["192.0.2.2"]),), first=True)])
    store.apply([Synced("Ingress", (), "95")])
    assert not exists(store, "a.example.org.") and not exists(store, "c.example.org.")
    assert addrs(store, "b.example.org.") == ["192.0.2.2"]


def test_a_gateway_target_annotation_change_re_translates_its_routes():
    from k8sgw.kubeapi.models import Gateway, HTTPRoute

    def gw(annotations):
        return Gateway.model_validate({
            "metadata": {"name": "gw", "namespace": "infra", "annotations": annotations},
            "spec": {"gatewayClassName": "x", "listeners": [{"name": "http"}]},
            "status": {"addresses": [{"value": "192.0.2.100"}]},
        })

    s = RecordStore(ZoneSettings(ZONES), ["HTTPRoute"])
    s.apply([Synced(k, ()) for k in s.kinds])
    s.apply([Upserted("Gateway", gw({}))])
    s.apply([Upserted("HTTPRoute", HTTPRoute.model_validate({
        "metadata": {"name": "r", "namespace": "infra"},
        "spec": {"parentRefs": [{"name": "gw"}], "hostnames": ["web.example.com"]},
    }))])
    assert addrs(s, "web.example.com.") == ["192.0.2.100"]
    s.apply([Upserted("Gateway", gw({"external-dns.alpha.kubernetes.io/target": "192.0.2.101"}))])
    assert addrs(s, "web.example.com.") == ["192.0.2.101"]


def test_several_clusters_merge_by_kind_and_keep_their_objects_apart():
    from k8sgw.kubeapi.models import DNSEndpoint

    s = RecordStore(ZoneSettings(ZONES), ["Ingress", "DNSEndpoint"], clusters=("east", "west"))
    s.apply([("east", Synced("Ingress", ())), ("east", Synced("DNSEndpoint", ()))])
    assert not s.current.ready and s.behind() == {"west": ("Ingress", "DNSEndpoint")}
    s.apply([("west", Synced("Ingress", ())), ("west", Synced("DNSEndpoint", ()))])
    assert s.current.ready and s.behind() == {}
    # the same namespace/name in two clusters are two objects; one kind's addresses merge
    s.apply([("east", Upserted("Ingress", ingress("web", ["web.example.org"], ["192.0.2.1"])))])
    s.apply([("west", Upserted("Ingress", ingress("web", ["web.example.org"], ["192.0.2.2"])))])
    assert addrs(s, "web.example.org.") == ["192.0.2.1", "192.0.2.2"]
    # a DNSEndpoint in west does not take a name an Ingress in east owns
    s.apply([("west", Upserted("DNSEndpoint", DNSEndpoint.model_validate({
        "metadata": {"name": "d", "namespace": "default"},
        "spec": {"endpoints": [{"dnsName": "web.example.org", "recordType": "A", "targets": ["192.0.2.9"]}]},
    })))])
    assert addrs(s, "web.example.org.") == ["192.0.2.1", "192.0.2.2"]
    # a relist of west that lost its Ingress drops west's only
    s.apply([("west", Synced("Ingress", ()))])
    assert addrs(s, "web.example.org.") == ["192.0.2.1"]
    s.apply([("east", Deleted("Ingress", "default", "web"))])
    assert addrs(s, "web.example.org.") == ["192.0.2.9"]  # now the DNSEndpoint's
    assert s.object_count("Ingress") == 0 and s.object_count("DNSEndpoint") == 1
