"""external-dns's target and ttl annotations, and ExternalName Services: translation tables."""

from __future__ import annotations

import logging

import dns.name
import pytest

from k8sgw.kubeapi.models import Gateway, HTTPRoute, Ingress, Service
from k8sgw.records.annotations import TARGET_ANNOTATION, TTL_ANNOTATION, parse_ttl
from k8sgw.records.sources import Related, Scope, ingress_claims, route_claims, service_claims, translate
from tests.records.test_sources import texts

SCOPE = Scope((dns.name.from_text("example.org."),))


def service(annotations=None, type_="LoadBalancer", lb=(), external_ips=None, external_name=None):
    return Service.model_validate(
        {
            "metadata": {"name": "web", "namespace": "default", "annotations": annotations or {}},
            "spec": {"type": type_, "externalIPs": external_ips, "externalName": external_name},
            "status": {"loadBalancer": {"ingress": [{"ip": ip} for ip in lb]}},
        }
    )


def ingress(annotations=None, lb=("192.0.2.1",)):
    return Ingress.model_validate(
        {
            "metadata": {"name": "i", "namespace": "default", "annotations": annotations or {}},
            "spec": {"rules": [{"host": "web.example.org"}]},
            "status": {"loadBalancer": {"ingress": [{"ip": ip} for ip in lb]}},
        }
    )


def gateway(annotations=None):
    return Gateway.model_validate(
        {
            "metadata": {"name": "gw", "namespace": "infra", "annotations": annotations or {}},
            "spec": {"gatewayClassName": "example", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]},
            "status": {"addresses": [{"type": "IPAddress", "value": "192.0.2.100"}]},
        }
    )


def route(annotations=None):
    return HTTPRoute.model_validate(
        {
            "metadata": {"name": "r", "namespace": "app", "annotations": annotations or {}},
            "spec": {"parentRefs": [{"name": "gw", "namespace": "infra"}], "hostnames": ["shop.example.org"]},
        }
    )


def related(gw: Gateway) -> Related:
    return Related(gateways={("infra", "gw"): gw})


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("300", 300),
        (" 60 ", 60),
        ("0", 0),
        ("-5", -5),
        ("5m", 300),
        ("1h30m", 5400),
        ("1.5s", 1),  # fractions of a second are dropped, as external-dns does
        ("1.5h", 5400),
        ("500ms", 0),
        ("-1m", -60),
        ("2h0m0s", 7200),
        ("", None),
        ("5 m", None),
        ("m", None),
        ("5d", None),
        ("1h-5m", None),
        ("abc", None),
        ("9" * 5000, None),  # int() refuses numbers this long: must not raise
        ("1" * 400 + "h", None),
        ("1000000h", 3_600_000_000),  # out of range: the caller clamps it
    ],
)
def test_parse_ttl_seconds_and_go_durations(text, seconds):
    assert parse_ttl(text) == seconds


@pytest.mark.parametrize(
    ("value", "ttl", "warned"),
    [
        ("120", 120, False),
        ("2m", 120, False),
        ("0", 0, False),
        ("86400", 3600, True),  # clamped to the range of the `ttl` option
        ("-1", 0, True),
        ("soon", None, True),  # unreadable: the default TTL
    ],
)
def test_ttl_annotation_on_a_service(value, ttl, warned, caplog):
    caplog.set_level(logging.WARNING)
    claims = service_claims(service({TTL_ANNOTATION: value}, lb=["192.0.2.5"]), SCOPE)
    assert {c[2] for c in claims} == {ttl}
    assert ("Service default/web" in caplog.text and TTL_ANNOTATION in caplog.text) == warned


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("192.0.2.9", ["web.default.example.org. - A 192.0.2.9"]),
        (" 192.0.2.9 , 2001:db8::9 ", ["web.default.example.org. - A 192.0.2.9", "web.default.example.org. - AAAA 2001:db8::9"]),
        ("lb.example.net", ["web.default.example.org. - CNAME lb.example.net."]),
        ("LB.example.net.", ["web.default.example.org. - CNAME lb.example.net."]),
        ("a.example.net,192.0.2.9", ["web.default.example.org. - A 192.0.2.9"]),  # addresses win
        ("a.example.net,b.example.net", ["web.default.example.org. - CNAME a.example.net."]),
        ("", ["web.default.example.org. - A 192.0.2.5"]),  # empty: the object's own addresses
        ("bad_name!,", ["web.default.example.org. - A 192.0.2.5"]),  # nothing usable: likewise
    ],
)
def test_target_annotation_replaces_a_services_addresses(target, expected):
    assert texts(service_claims(service({TARGET_ANNOTATION: target}, lb=["192.0.2.5"]), SCOPE)) == expected


def test_target_annotation_on_any_service_type_and_over_resolve_endpoints():
    clusterip = service({TARGET_ANNOTATION: "192.0.2.9"}, type_="ClusterIP")
    assert texts(service_claims(clusterip, SCOPE)) == ["web.default.example.org. - A 192.0.2.9"]
    assert service_claims(service(type_="ClusterIP"), SCOPE) == ()
    endpoints = service({TARGET_ANNOTATION: "192.0.2.9", "k8s-gateway.dns/resolve-endpoints": "true"})
    assert texts(service_claims(endpoints, SCOPE)) == ["web.default.example.org. - A 192.0.2.9"]


def test_target_and_ttl_annotations_on_an_ingress(caplog):
    caplog.set_level(logging.WARNING)
    annotated = ingress({TARGET_ANNOTATION: "edge.example.net", TTL_ANNOTATION: "30s"})
    assert texts(ingress_claims(annotated, SCOPE)) == ["web.example.org. 30 CNAME edge.example.net."]
    bad = ingress({TARGET_ANNOTATION: "-nope-"})
    assert texts(ingress_claims(bad, SCOPE)) == ["web.example.org. - A 192.0.2.1"]
    assert "Ingress default/i" in caplog.text and "'-nope-'" in caplog.text


def test_route_reads_target_from_its_gateway_and_ttl_from_itself():
    plain = route_claims(route(), SCOPE, related(gateway()))
    assert texts(plain) == ["shop.example.org. - A 192.0.2.100"]
    on_gateway = route_claims(route(), SCOPE, related(gateway({TARGET_ANNOTATION: "192.0.2.200", TTL_ANNOTATION: "5"})))
    assert texts(on_gateway) == ["shop.example.org. - A 192.0.2.200"]  # the Gateway's ttl is not read
    on_route = route_claims(route({TARGET_ANNOTATION: "192.0.2.7", TTL_ANNOTATION: "10m"}), SCOPE, related(gateway()))
    assert texts(on_route) == ["shop.example.org. 600 A 192.0.2.100"]  # the route's target is not read


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"external_name": "db.example.net"}, ["web.default.example.org. - CNAME db.example.net."]),
        ({"external_name": "DB.Example.NET."}, ["web.default.example.org. - CNAME db.example.net."]),
        ({"external_name": "db.example.org"}, ["web.default.example.org. - CNAME db.example.org."]),  # in-zone
        ({"external_name": "192.0.2.44"}, ["web.default.example.org. - A 192.0.2.44"]),
        ({"external_name": "db.example.net", "external_ips": ["192.0.2.45"]}, ["web.default.example.org. - A 192.0.2.45"]),
        ({"external_name": "not a name"}, []),
        ({"external_name": "*.example.net"}, []),
        ({"external_name": ""}, []),
        ({}, []),
    ],
)
def test_externalname_service_is_a_cname(spec, expected, caplog):
    caplog.set_level(logging.WARNING)
    obj = service(type_="ExternalName", **spec)
    assert texts(translate("Service", obj, SCOPE)) == expected
    if not expected:
        assert "Service default/web" in caplog.text


def test_externalname_service_takes_hostname_annotations_and_ttl():
    obj = service(
        {"coredns.io/hostname": "db.example.org", TTL_ANNOTATION: "90"}, type_="ExternalName", external_name="rds.example.net"
    )
    assert texts(service_claims(obj, SCOPE)) == ["db.example.org. 90 CNAME rds.example.net."]


def test_hostile_annotations_are_bounded_and_never_raise(caplog):
    caplog.set_level(logging.WARNING)
    many = ",".join(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}" for i in range(20000))
    claims = translate("Ingress", ingress({TARGET_ANNOTATION: many, TTL_ANNOTATION: "9" * 5000}), SCOPE)
    assert 0 < len(claims) < 20000  # capped at what one reply can carry
    assert {c[2] for c in claims} == {None}
    assert "more than a reply can carry" in caplog.text and TTL_ANNOTATION in caplog.text
    junk = ",".join(["x" * 300, "*.example.net", "1.2.3", "::g", " , "])
    assert translate("Service", service({TARGET_ANNOTATION: junk}, lb=["192.0.2.5"]), SCOPE)
    assert translate("Service", service(type_="ExternalName", external_name="a." * 200), SCOPE) == ()
