"""Metrics: CoreDNS's names, labels and buckets; store state read at scrape time; own registries."""

from __future__ import annotations

import dns.rcode
import dns.rdatatype
import pytest
from prometheus_client.parser import text_string_to_metric_families

import k8sgw.ops.metrics as metrics_module
from k8sgw.kubeapi.events import Synced
from k8sgw.kubeapi.models import Ingress
from k8sgw.ops.metrics import (
    DROPPED,
    NULL_WATCH_OBSERVER,
    SIZE_BUCKETS,
    TIME_BUCKETS,
    Metrics,
    server_label,
)
from k8sgw.records.store import RecordStore, ZoneSettings


def samples(m: Metrics) -> dict[tuple[str, frozenset], float]:
    out = {}
    for family in text_string_to_metric_families(m.render().decode()):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(m: Metrics, name: str, **labels: str) -> float:
    return samples(m)[(name, frozenset(labels.items()))]


def ingress(name: str, host: str, ip: str) -> Ingress:
    return Ingress.model_validate(
        {
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"rules": [{"host": host}]},
            "status": {"loadBalancer": {"ingress": [{"ip": ip}]}},
        }
    )


def test_public_api() -> None:
    public = {n for n in dir(metrics_module) if not n.startswith("_")}
    assert set(metrics_module.__all__) <= public
    assert {"Metrics", "server_label", "WatchObserver", "NULL_WATCH_OBSERVER"} <= set(metrics_module.__all__)


def test_coredns_buckets() -> None:
    assert TIME_BUCKETS[0] == 0.00025 and TIME_BUCKETS[-1] == pytest.approx(8.192) and len(TIME_BUCKETS) == 16
    assert SIZE_BUCKETS == (0, 100, 200, 300, 400, 511, 1023, 2047, 4095, 8291, 16e3, 32e3, 48e3, 64e3)


def test_server_label() -> None:
    assert server_label("", 53) == "dns://:53"
    assert server_label("::", 1053) == "dns://:1053"
    assert server_label("127.0.0.1", 53) == "dns://127.0.0.1:53"
    assert server_label("::1", 53) == "dns://[::1]:53"


def test_dns_metrics_have_coredns_names_and_labels() -> None:
    m = Metrics(version="9.9.9", revision="abc123", process_metrics=False)
    srv = "dns://:1053"
    m.observe("udp", 1, dns.rdatatype.A, dns.rcode.NOERROR, "example.org.", srv, 0.0003, 40, 90)
    m.observe("udp", 1, "A", "NOERROR", "example.org.", srv, 0.0002, 40, 90, do=True)
    m.observe("tcp", 2, dns.rdatatype.TYPE0 + 65280, 3, "example.org.", srv, 0.01, 50, 600)
    m.observe("udp", 1, "aaaa", "REFUSED", None, srv, 0.0001, 30, 30, plugin="")
    got = samples(m)
    build = ("coredns_build_info", frozenset({"version": "9.9.9", "revision": "abc123", "goversion": got and
             next(dict(k[1])["goversion"] for k in got if k[0] == "coredns_build_info")}.items()))
    assert got[build] == 1 and dict(build[1])["goversion"].startswith("python3.")
    common = {"server": srv, "zone": "example.org."}
    assert value(m, "coredns_dns_requests_total", **common, proto="udp", family="1", type="A") == 2
    assert value(m, "coredns_dns_requests_total", **common, proto="tcp", family="2", type="other") == 1
    assert value(m, "coredns_dns_requests_total", server=srv, zone=DROPPED, proto="udp", family="1", type="AAAA") == 1
    assert value(m, "coredns_dns_responses_total", **common, rcode="NOERROR", plugin="k8s_gateway") == 2
    assert value(m, "coredns_dns_responses_total", **common, rcode="NXDOMAIN", plugin="k8s_gateway") == 1
    assert value(m, "coredns_dns_responses_total", server=srv, zone="dropped", rcode="REFUSED", plugin="") == 1
    assert value(m, "coredns_dns_do_requests_total", **common) == 1
    # Histograms: CoreDNS's buckets, `le` written as Go writes it.
    dur = {**common, "type": "A"}
    assert value(m, "coredns_dns_request_duration_seconds_bucket", **dur, le="0.00025") == 1
    assert value(m, "coredns_dns_request_duration_seconds_bucket", **dur, le="0.0005") == 2
    assert value(m, "coredns_dns_request_duration_seconds_bucket", **dur, le="+Inf") == 2
    assert value(m, "coredns_dns_request_duration_seconds_count", **dur) == 2
    assert value(m, "coredns_dns_request_duration_seconds_sum", **dur) == pytest.approx(0.0005)
    size = {**common, "proto": "tcp"}
    assert value(m, "coredns_dns_request_size_bytes_bucket", **size, le="100") == 1
    assert value(m, "coredns_dns_response_size_bytes_bucket", **size, le="511") == 0
    assert value(m, "coredns_dns_response_size_bytes_bucket", **size, le="1023") == 1
    assert value(m, "coredns_dns_response_size_bytes_bucket", **size, le="64000") == 1
    assert value(m, "coredns_dns_response_size_bytes_sum", **size) == 600
    text = m.render().decode()
    assert 'le="16000"' in text and 'le="0.00025"' in text and "le=\"100.0\"" not in text


def test_each_metrics_has_its_own_registry() -> None:
    a, b = Metrics(process_metrics=False), Metrics()
    a.observe("udp", 1, "A", "NOERROR", "example.org.", "dns://:53", 0.001, 40, 80)
    assert "coredns_dns_requests_total{" in a.render().decode()
    assert "coredns_dns_requests_total{" not in b.render().decode()
    assert "process_cpu_seconds_total" in b.render().decode()
    assert "process_cpu_seconds_total" not in a.render().decode()


def test_store_metrics_read_at_scrape_time() -> None:
    now = [100.0]
    m = Metrics(process_metrics=False, clock=lambda: now[0])
    store = RecordStore(ZoneSettings(["example.org."]), ["Ingress", "Service"], clock=lambda: 1000.0)
    watch = m.track_store(["Ingress", "Service"], store)
    z = {"zones": "example.org."}
    assert value(m, "k8sgw_ready", **z) == 0
    assert value(m, "k8sgw_recordmap_version", **z) == 0
    assert value(m, "k8sgw_objects", **z, kind="Ingress") == 0
    store.apply([Synced("Ingress", (ingress("a", "a.example.org", "192.0.2.1"), ingress("b", "b.example.org", "192.0.2.2"))),
                 Synced("Service", ()), Synced("EndpointSlice", ())])
    assert value(m, "k8sgw_ready", **z) == 1
    assert value(m, "k8sgw_objects", **z, kind="Ingress") == 2
    assert value(m, "k8sgw_objects", **z, kind="Service") == 0
    assert value(m, "k8sgw_recordmap_version", **z) == store.current.version == 1
    # apex, the nameserver host (it exists: the NS names it) and its parent, a, b
    assert value(m, "k8sgw_recordmap_names", **z) == len(store.current) == 5
    assert value(m, "k8sgw_recordmap_serial", **z) == store.current.serial
    # Watch hooks.
    assert ("k8sgw_watch_last_event_age_seconds", frozenset({**z, "kind": "Ingress"}.items())) not in samples(m)
    watch.event_seen("Ingress")
    watch.watch_restarted("Ingress")
    watch.watch_restarted("Ingress")
    watch.relisted("Service")
    now[0] = 112.5
    assert value(m, "k8sgw_watch_last_event_age_seconds", **z, kind="Ingress") == 12.5
    assert value(m, "k8sgw_watch_restarts_total", **z, kind="Ingress") == 2
    assert value(m, "k8sgw_watch_restarts_total", **z, kind="Service") == 0
    assert value(m, "k8sgw_watch_relists_total", **z, kind="Service") == 1


def test_null_watch_observer_does_nothing() -> None:
    NULL_WATCH_OBSERVER.watch_restarted("Ingress")
    NULL_WATCH_OBSERVER.relisted("Ingress")
    NULL_WATCH_OBSERVER.event_seen("Ingress")


def test_observe_is_cheap() -> None:
    """The query path: after the first call per label set, no new objects (one dict lookup)."""
    m = Metrics(process_metrics=False)
    args = ("udp", 1, 1, 0, "example.org.", "dns://:53", 0.0001, 40, 80)
    m.observe(*args)
    cells = dict(m._cells)
    for _ in range(1000):
        m.observe(*args)
    assert m._cells == cells and len(cells) == 1
    assert value(m, "coredns_dns_requests_total", server="dns://:53", zone="example.org.", proto="udp", family="1",
                 type="A") == 1001


def test_cluster_series_say_which_cluster_is_behind() -> None:
    now = [100.0]
    m = Metrics(process_metrics=False, clock=lambda: now[0])
    store = RecordStore(ZoneSettings(["example.org."]), ["Ingress"], clusters=("east", "west"))
    tracked = m.store_metrics(store.kinds, store)
    m.report([tracked])
    east, west = tracked.for_cluster("east"), tracked.for_cluster("west")
    z = {"zones": "example.org."}
    store.apply([("east", Synced("Ingress", ()))])
    east.event_seen("Ingress")
    now[0] = 130.0
    assert value(m, "k8sgw_cluster_ready", **z, cluster="east") == 1
    assert value(m, "k8sgw_cluster_ready", **z, cluster="west") == 0
    assert value(m, "k8sgw_cluster_last_event_age_seconds", **z, cluster="east") == 30.0
    assert ("k8sgw_cluster_last_event_age_seconds", frozenset({**z, "cluster": "west"}.items())) not in samples(m)
    west.event_seen("Ingress")
    store.apply([("west", Synced("Ingress", ()))])
    assert value(m, "k8sgw_cluster_ready", **z, cluster="west") == 1
    assert value(m, "k8sgw_cluster_last_event_age_seconds", **z, cluster="west") == 0.0
    # a store of one cluster has no cluster series
    single = RecordStore(ZoneSettings(["example.net."]), ["Ingress"])
    m.report([m.store_metrics(single.kinds, single)])
    assert not any(name.startswith("k8sgw_cluster_") for name, _ in samples(m))
