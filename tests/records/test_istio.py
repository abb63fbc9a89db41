"""Istio Gateway and VirtualService: names from hosts, addresses from the ingress gateway Service the
Gateway's selector picks; binding rules; and the indexer's Service → Gateway → VirtualService chain."""

from __future__ import annotations

import logging

import dns.name
import pytest

from k8sgw.kubeapi.events import Deleted, Synced, Upserted
from k8sgw.kubeapi.models import IstioGateway, Service, VirtualService
from k8sgw.records.istio import binds, gateway_refs
from k8sgw.records.settings import ZoneSettings
from k8sgw.records.sources import Related, Scope, translate
from k8sgw.records.store import RecordStore
from tests.records.test_sources import texts

ZONE = dns.name.from_text("example.org.")
SCOPE = Scope((ZONE,))
TARGET = "external-dns.alpha.kubernetes.io/target"
SELECTOR = {"istio": "ingressgateway"}


def ingress_service(name="istio-ingressgateway", ns="istio-system", selector=None, ips=("192.0.2.70",), external_ips=()):
    return Service.model_validate(
        {
            "metadata": {"name": name, "namespace": ns},
            "spec": {"type": "LoadBalancer", "selector": SELECTOR if selector is None else selector,
                     "externalIPs": list(external_ips)},
            "status": {"loadBalancer": {"ingress": [{"ip": ip} for ip in ips]}},
        }
    )


def istio_gateway(hosts, name="gw", ns="istio-system", selector=None, annotations=None, labels=None):
    return IstioGateway.model_validate(
        {
            "metadata": {"name": name, "namespace": ns, "annotations": annotations or {}, "labels": labels or {}},
            "spec": {
                "selector": SELECTOR if selector is None else selector,
                "servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": list(hosts)}],
            },
        }
    )


def virtualservice(hosts, gateways=("istio-system/gw",), ns="app", export_to=(), annotations=None, name="vs"):
    return VirtualService.model_validate(
        {
            "metadata": {"name": name, "namespace": ns, "annotations": annotations or {}},
            "spec": {"hosts": list(hosts), "gateways": list(gateways), "exportTo": list(export_to)},
        }
    )


def related(*services: Service, gateways=()) -> Related:
    def selected(selector):
        return [s for s in services if all(s.spec.selector.get(k) == v for k, v in selector.items())]

    return Related(istio_gateways={g.key: g for g in gateways}, selected_services=selected)


A70 = "web.example.org. - A 192.0.2.70"


@pytest.mark.parametrize(
    ("hosts", "expected"),
    [
        (["web.example.org"], [A70]),
        (["app/web.example.org"], [A70]),  # the namespace part is not in the name
        (["./web.example.org"], [A70]),
        (["*"], []),
        (["*/*"], []),
        (["*.example.org"], ["*.example.org. - A 192.0.2.70"]),
        (["other.net"], []),
        (["a/b/web.example.org"], []),
        (["", "web.example.org", "web.example.org"], [A70]),
    ],
)
def test_istio_gateway_hosts(hosts, expected):
    assert texts(translate("IstioGateway", istio_gateway(hosts), SCOPE, related(ingress_service()))) == expected


@pytest.mark.parametrize(
    ("services", "annotations", "expected"),
    [
        ([ingress_service()], {}, [A70]),
        ([ingress_service(external_ips=("192.0.2.71",))], {}, ["web.example.org. - A 192.0.2.71"]),
        ([ingress_service(), ingress_service("second", ips=("192.0.2.72",))], {}, [A70, "web.example.org. - A 192.0.2.72"]),
        ([ingress_service(selector={"istio": "ingressgateway", "extra": "x"})], {}, [A70]),  # a superset selects
        ([ingress_service(selector={"istio": "other"})], {}, []),
        ([ingress_service(selector={})], {}, []),
        ([ingress_service()], {TARGET: "192.0.2.99"}, ["web.example.org. - A 192.0.2.99"]),
        ([], {}, []),
    ],
)
def test_istio_gateway_addresses(services, annotations, expected):
    gw = istio_gateway(["web.example.org"], annotations=annotations)
    assert texts(translate("IstioGateway", gw, SCOPE, related(*services))) == expected


def test_istio_gateway_with_an_empty_selector_has_no_addresses_and_says_why(caplog):
    with caplog.at_level(logging.WARNING):
        got = translate("IstioGateway", istio_gateway(["web.example.org"], selector={}), SCOPE, related(ingress_service()))
    assert got == ()
    assert "IstioGateway istio-system/gw: spec.selector is empty" in caplog.text


def test_the_ingress_annotation_is_not_read_and_says_so(caplog):
    gw = istio_gateway(["web.example.org"], annotations={"external-dns.alpha.kubernetes.io/ingress": "app/web"})
    with caplog.at_level(logging.WARNING):
        assert texts(translate("IstioGateway", gw, SCOPE, related(ingress_service()))) == [A70]
    assert "annotation is not read by k8sgw" in caplog.text


@pytest.mark.parametrize(
    ("gw_hosts", "vs_host", "vs_ns", "export_to", "bound"),
    [
        (["web.example.org"], "web.example.org", "app", (), True),
        (["WEB.example.org"], "web.example.org", "app", (), True),
        (["*"], "web.example.org", "app", (), True),
        (["*.example.org"], "web.example.org", "app", (), True),
        (["*.example.org"], "example.org", "app", (), False),
        (["other.example.org"], "web.example.org", "app", (), False),
        (["app/web.example.org"], "web.example.org", "app", (), True),
        (["shop/web.example.org"], "web.example.org", "app", (), False),  # another namespace's host
        (["./web.example.org"], "web.example.org", "app", (), False),  # `.`: the Gateway's own namespace
        (["./web.example.org"], "web.example.org", "istio-system", (), True),
        (["*/web.example.org"], "web.example.org", "app", (), True),
        (["web.example.org"], "web.example.org", "app", ("app",), False),  # not exported to the Gateway
        (["web.example.org"], "web.example.org", "app", (".",), False),
        (["web.example.org"], "web.example.org", "app", ("*",), True),
        (["web.example.org"], "web.example.org", "app", ("istio-system",), True),
        (["web.example.org"], "web.example.org", "istio-system", (".",), True),
    ],
)
def test_binding(gw_hosts, vs_host, vs_ns, export_to, bound):
    assert binds(virtualservice([vs_host], ns=vs_ns, export_to=export_to), istio_gateway(gw_hosts), vs_host) is bound


def test_gateway_refs():
    vs = virtualservice([], gateways=["gw", "istio-system/gw", "mesh", "", "a/b/c", " other/gw2 "])
    assert gateway_refs(vs) == {("app", "gw"), ("istio-system", "gw"), ("other", "gw2")}


def test_virtualservice_addresses_per_host_from_the_gateways_it_binds_to():
    public = istio_gateway(["*.example.org"], name="public")
    shop = istio_gateway(["shop.example.org"], name="shop", selector={"istio": "shop"})
    shop_service = ingress_service("shop-gw", selector={"istio": "shop"}, ips=("192.0.2.75",))
    vs = virtualservice(
        ["web.example.org", "shop.example.org", "*", "app/api.example.org"],
        gateways=["istio-system/public", "istio-system/shop", "mesh", "istio-system/missing"],
    )
    got = texts(translate("VirtualService", vs, SCOPE, related(ingress_service(), shop_service, gateways=[public, shop])))
    assert got == [
        "api.example.org. - A 192.0.2.70",
        "shop.example.org. - A 192.0.2.70",  # both Gateways admit it: both addresses
        "shop.example.org. - A 192.0.2.75",
        A70,
    ]


def test_virtualservice_target_annotation_and_ttl():
    vs = virtualservice(["web.example.org"], annotations={TARGET: "edge.example.net", "external-dns.alpha.kubernetes.io/ttl": "1m"})
    assert texts(translate("VirtualService", vs, SCOPE, related())) == ["web.example.org. 60 CNAME edge.example.net."]


def test_virtualservice_of_an_ignored_gateway_or_only_mesh_has_no_address():
    gw = istio_gateway(["*"], labels={"k8s-gateway.dns/ignore": "true"})
    assert translate("VirtualService", virtualservice(["web.example.org"]), SCOPE, related(ingress_service(), gateways=[gw])) == ()
    mesh = virtualservice(["web.example.org"], gateways=["mesh"])
    assert translate("VirtualService", mesh, SCOPE, related(ingress_service())) == ()


def test_hostile_host_lists_are_cut(caplog):
    vs = virtualservice([f"h{i}.example.org" for i in range(5000)], gateways=[f"g{i}" for i in range(5000)])
    with caplog.at_level(logging.WARNING):
        assert translate("VirtualService", vs, SCOPE, related()) == ()
    assert "spec.hosts has 5000 entries; only the first 1000 are read" in caplog.text
    assert "spec.gateways has 5000 entries" in caplog.text


# --- the indexer ---------------------------------------------------------------------------------


def _addrs(store: RecordStore, name: str) -> list[str]:
    return sorted(str(r) for r in store.current.rdatas(dns.name.from_text(name), 1))


@pytest.fixture
def store() -> RecordStore:
    s = RecordStore(ZoneSettings(["example.org."]), ["VirtualService", "IstioGateway"])
    assert set(s.kinds) == {"VirtualService", "IstioGateway", "Service"}
    s.apply([Synced(k, ()) for k in s.kinds])
    return s


def test_service_gateway_virtualservice_chain_follows_every_change(store):
    store.apply([Upserted("IstioGateway", istio_gateway(["gw.example.org", "*/web.example.org"]))])
    store.apply([Upserted("VirtualService", virtualservice(["web.example.org"]))])
    assert _addrs(store, "gw.example.org.") == _addrs(store, "web.example.org.") == []
    store.apply([Upserted("Service", ingress_service())])  # the ingress gateway Service appears
    assert _addrs(store, "gw.example.org.") == _addrs(store, "web.example.org.") == ["192.0.2.70"]
    store.apply([Upserted("Service", ingress_service(ips=("192.0.2.73",)))])  # its load balancer moves
    assert _addrs(store, "web.example.org.") == ["192.0.2.73"]
    store.apply([Upserted("Service", ingress_service(selector={"app": "other"}, ips=("192.0.2.73",)))])
    assert _addrs(store, "gw.example.org.") == _addrs(store, "web.example.org.") == []  # no longer selected
    store.apply([Upserted("Service", ingress_service(ips=("192.0.2.74",)))])
    assert _addrs(store, "web.example.org.") == ["192.0.2.74"]
    store.apply([Upserted("IstioGateway", istio_gateway(["gw.example.org"]))])  # no longer admits web
    assert _addrs(store, "web.example.org.") == [] and _addrs(store, "gw.example.org.") == ["192.0.2.74"]
    store.apply([Upserted("IstioGateway", istio_gateway(["*"]))])
    assert _addrs(store, "web.example.org.") == ["192.0.2.74"]
    store.apply([Deleted("IstioGateway", "istio-system", "gw")])
    assert _addrs(store, "web.example.org.") == []
    store.apply([Upserted("IstioGateway", istio_gateway(["*"]))])
    store.apply([Deleted("Service", "istio-system", "istio-ingressgateway")])
    assert _addrs(store, "web.example.org.") == []
    # a Service that is not the gateway's never claims a name here (Service is not in resources)
    store.apply([Upserted("Service", ingress_service("plain", ns="app", selector={"app": "web"}))])
    assert store.current.get(dns.name.from_text("plain.app.example.org.")) is None


def test_a_service_change_re_translates_only_the_gateways_that_select_it(store, monkeypatch):
    from k8sgw.records import store as store_module

    for i in range(50):
        store.apply([Upserted("IstioGateway", istio_gateway([f"g{i}.example.org"], name=f"g{i}", selector={"istio": f"gw{i}"}))])
    calls: list[str] = []
    real = store_module.translate_noted

    def counting(kind, obj, *args, **kwargs):
        calls.append(f"{kind} {obj.metadata.name}")
        return real(kind, obj, *args, **kwargs)

    monkeypatch.setattr(store_module, "translate_noted", counting)
    store.apply([Upserted("Service", ingress_service(selector={"istio": "gw7"}))])
    assert calls == ["IstioGateway g7"]
    assert _addrs(store, "g7.example.org.") == ["192.0.2.70"]
