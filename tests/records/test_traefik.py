"""Traefik IngressRoute and IngressRouteTCP: names from their rules, addresses from the target
annotation or the Traefik Service; and the indexer re-translating them when that Service changes."""

from __future__ import annotations

import logging

import dns.name
import pytest

from k8sgw.kubeapi.events import Deleted, Synced, Upserted
from k8sgw.kubeapi.models import IngressRoute, IngressRouteTCP, Service
from k8sgw.records.settings import ZoneSettings
from k8sgw.records.sources import Related, Scope, translate
from k8sgw.records.store import RecordStore
from k8sgw.records.traefik import HOST_MATCHERS, rule_hosts
from tests.records.test_sources import texts

ZONE = dns.name.from_text("example.org.")
TRAEFIK = ("traefik", "traefik")
SCOPE = Scope((ZONE,), traefik_service=TRAEFIK)
TARGET = "external-dns.alpha.kubernetes.io/target"


def front(ips=("192.0.2.80",), hostname=None, external_ips=()):
    lb = [{"ip": ip} for ip in ips] + ([{"hostname": hostname}] if hostname else [])
    return Service.model_validate(
        {
            "metadata": {"name": "traefik", "namespace": "traefik"},
            "spec": {"type": "LoadBalancer", "externalIPs": list(external_ips)},
            "status": {"loadBalancer": {"ingress": lb}},
        }
    )


def router(model=IngressRoute, *rules, annotations=None, labels=None, name="web"):
    return model.model_validate(
        {
            "metadata": {"name": name, "namespace": "app", "annotations": annotations or {}, "labels": labels or {}},
            "spec": {"routes": [{"match": rule} for rule in rules]},
        }
    )


def related(service: Service | None = None) -> Related:
    return Related(service=lambda key: service if key == TRAEFIK else None)


A80 = "web.example.org. - A 192.0.2.80"


class _Report:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def warn(self, message: str, *args: object) -> None:
        self.lines.append(message % args)


@pytest.mark.parametrize(
    ("rule", "kind", "hosts", "warned"),
    [
        ("Host(`web.example.org`)", "IngressRoute", ["web.example.org"], ""),
        ("Host(`a.example.org`) && PathPrefix(`/api`)", "IngressRoute", ["a.example.org"], ""),
        ("Host(`a.example.org`) || Host(`b.example.org`)", "IngressRoute", ["a.example.org", "b.example.org"], ""),
        ("Host(`a.example.org`, `b.example.org`)", "IngressRoute", ["a.example.org", "b.example.org"], ""),  # v2
        ('Host("q.example.org")', "IngressRoute", ["q.example.org"], ""),  # double quotes, as Traefik allows
        ("HostHeader(`h.example.org`)", "IngressRoute", ["h.example.org"], ""),
        ("Host ( `s.example.org` )", "IngressRoute", ["s.example.org"], ""),
        ("PathPrefix(`/`)", "IngressRoute", [], ""),
        ("HostRegexp(`^.+\\.example\\.org$`)", "IngressRoute", [], "is a pattern, not a name"),
        ("HostRegexp(`{sub:[a-z]+}.example.org`)", "IngressRoute", [], "is a pattern, not a name"),
        ("!Host(`no.example.org`) && PathPrefix(`/`)", "IngressRoute", [], "excludes hosts"),
        ("Host(`*`)", "IngressRoute", [], ""),
        ("HostSNI(`db.example.org`)", "IngressRoute", [], ""),  # an HTTP router's rule has no HostSNI
        ("HostSNI(`db.example.org`)", "IngressRouteTCP", ["db.example.org"], ""),
        ("HostSNI(`*`)", "IngressRouteTCP", [], ""),  # TLS passthrough for every name: no name
        ("HostSNIRegexp(`^.+\\.example\\.org$`)", "IngressRouteTCP", [], "is a pattern"),
        ("Host(`web.example.org`)", "IngressRouteTCP", [], ""),
        ("Host(`unclosed.example.org`", "IngressRoute", [], ""),
        ("", "IngressRoute", [], ""),
    ],
)
def test_rule_hosts(rule, kind, hosts, warned):
    report = _Report()
    assert rule_hosts(rule, HOST_MATCHERS[kind], report) == hosts
    assert (warned in " ".join(report.lines)) if warned else report.lines == []


def test_a_very_long_rule_is_cut_with_a_warning():
    report = _Report()
    rule = "Host(`a.example.org`) || " + "PathPrefix(`/x`) || " * 1000 + "Host(`late.example.org`)"
    assert rule_hosts(rule, ("Host",), report) == ["a.example.org"]
    assert "only its start is read" in report.lines[0]


@pytest.mark.parametrize(
    ("service", "annotations", "expected"),
    [
        (front(), {}, [A80]),
        (front(external_ips=("192.0.2.81",)), {}, ["web.example.org. - A 192.0.2.81"]),  # externalIPs first
        (front(ips=(), hostname="lb.example.net"), {}, ["web.example.org. - CNAME lb.example.net."]),
        (front(ips=("192.0.2.80",), hostname="lb.example.net"), {}, [A80]),  # addresses win
        (front(), {TARGET: "192.0.2.90"}, ["web.example.org. - A 192.0.2.90"]),  # the annotation wins
        (front(), {TARGET: "edge.example.net"}, ["web.example.org. - CNAME edge.example.net."]),
        (None, {}, []),  # the Traefik Service does not exist (yet)
        (None, {TARGET: "192.0.2.90"}, ["web.example.org. - A 192.0.2.90"]),
        (front(), {"external-dns.alpha.kubernetes.io/ttl": "300"}, ["web.example.org. 300 A 192.0.2.80"]),
    ],
)
def test_ingressroute_addresses(service, annotations, expected):
    obj = router(IngressRoute, "Host(`web.example.org`)", annotations=annotations)
    assert texts(translate("IngressRoute", obj, SCOPE, related(service))) == expected


def test_ingressroutetcp_names_from_hostsni():
    obj = router(IngressRouteTCP, "HostSNI(`web.example.org`)", "HostSNI(`*`)")
    assert texts(translate("IngressRouteTCP", obj, SCOPE, related(front()))) == [A80]


def test_names_outside_the_zones_bad_names_and_hostname_annotations(caplog):
    obj = router(
        IngressRoute,
        "Host(`web.example.org`) || Host(`other.net`) || Host(`bad_name.example.org`)",
        annotations={"external-dns.alpha.kubernetes.io/hostname": "extra.example.org"},
    )
    with caplog.at_level(logging.WARNING):
        got = texts(translate("IngressRoute", obj, SCOPE, related(front())))
    assert got == ["extra.example.org. - A 192.0.2.80", A80]
    assert "IngressRoute app/web: host 'bad_name.example.org'" in caplog.text


def test_without_target_or_traefik_service_a_warning_says_why(caplog):
    obj = router(IngressRoute, "Host(`web.example.org`)")
    with caplog.at_level(logging.WARNING):
        assert translate("IngressRoute", obj, Scope((ZONE,)), related(front())) == ()
    assert "no target annotation and the Corefile names no `traefikService`" in caplog.text


def test_hostregexp_is_skipped_with_the_objects_name(caplog):
    obj = router(IngressRoute, "HostRegexp(`^.+$`) || Host(`web.example.org`)")
    with caplog.at_level(logging.WARNING):
        assert texts(translate("IngressRoute", obj, SCOPE, related(front()))) == [A80]
    assert "IngressRoute app/web: HostRegexp(`^.+$`) is a pattern, not a name; skipped" in caplog.text


def test_ignore_label():
    obj = router(IngressRoute, "Host(`web.example.org`)", labels={"k8s-gateway.dns/ignore": "true"})
    assert translate("IngressRoute", obj, SCOPE, related(front())) == ()


# --- the indexer ---------------------------------------------------------------------------------


def _addrs(store: RecordStore, name: str) -> list[str]:
    return sorted(str(r) for r in store.current.rdatas(dns.name.from_text(name), 1))


def test_a_change_of_the_traefik_service_re_translates_the_routes_without_services_claiming():
    settings = ZoneSettings(["example.org."], traefik_service="traefik/traefik")
    store = RecordStore(settings, ["IngressRoute", "IngressRouteTCP"])
    assert "Service" in store.kinds and "EndpointSlice" not in store.kinds  # Service feeds, it does not claim
    store.apply([Synced(k, ()) for k in store.kinds])
    store.apply([Upserted("IngressRoute", router(IngressRoute, "Host(`web.example.org`)"))])
    store.apply([Upserted("IngressRouteTCP", router(IngressRouteTCP, "HostSNI(`db.example.org`)", name="db"))])
    assert _addrs(store, "web.example.org.") == []
    store.apply([Upserted("Service", front())])
    assert _addrs(store, "web.example.org.") == _addrs(store, "db.example.org.") == ["192.0.2.80"]
    assert store.current.get(dns.name.from_text("traefik.traefik.example.org.")) is None  # not a claiming kind
    store.apply([Upserted("Service", front(ips=("192.0.2.82",)))])
    assert _addrs(store, "web.example.org.") == _addrs(store, "db.example.org.") == ["192.0.2.82"]
    store.apply([Deleted("Service", "traefik", "traefik")])
    assert _addrs(store, "web.example.org.") == []
