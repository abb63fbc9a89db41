"""The indexer: events in, published RecordMaps out (precedence, deletes, relists, ENTs, serials)."""

from __future__ import annotations

import dns.name
import dns.rdatatype
import pytest
import trio
import trio.testing

from k8sgw.kubeapi.events import Deleted, Synced, Upserted
from k8sgw.kubeapi.models import Ingress, Service
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
    s.apply([Synced("Ingress", ()), Synced("Service", ())])
    return s


def test_ready_only_after_every_kind_synced():
    s = RecordStore(ZoneSettings(ZONES), ["Ingress", "Service"])
    assert not s.current.ready
    s.apply([Synced("Ingress", ())])
    assert not s.current.ready
    s.apply([Synced("Service", ())])
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
    store.apply([Upserted("Ingress", ingress("a", ["a.example.org"], ["192.0.2.1"]))])
    second = store.current
    assert second.serial > first.serial and second.version == first.version + 1
    soa = second.rdatas(dns.name.from_text("example.org."), dns.rdatatype.SOA)[0]
    assert soa.serial == second.serial
    store.apply([Upserted("Ingress", ingress("a", ["a.example.org"], ["192.0.2.1"]))])  # no change
    assert store.current is second


def test_serial_starts_from_the_clock():
    s = RecordStore(ZoneSettings(ZONES), [], clock=lambda: 1_700_000_000.5)
    assert s.current.serial == 1_700_000_000


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
