"""Translation of each kind to claims: pure functions, table-style."""

from __future__ import annotations

import logging

import dns.name
import pytest

from k8sgw.kubeapi.models import DNSEndpoint, EndpointSlice, Gateway, HTTPRoute, Ingress, Service
from k8sgw.records.sources import (
    Related,
    Scope,
    dnsendpoint_claims,
    ingress_claims,
    intersect_hostnames,
    nameserver_rdatas,
    parse_hostname,
    parse_label_selector,
    route_claims,
    route_gateway_keys,
    service_claims,
)

SCOPE = Scope((dns.name.from_text("example.org."),))


def texts(claims) -> list[str]:
    """Claims as sorted "name TTL TYPE rdata" strings (TTL "-" when the default applies)."""
    import dns.rdatatype

    return sorted(
        f"{name} {'-' if ttl is None else ttl} {dns.rdatatype.to_text(rdata.rdtype)} {rdata}"
        for name, rdata, ttl in claims
    )


# --- helpers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("web.example.org", "web.example.org."),
        ("Web.Example.ORG.", "web.example.org."),
        (" *.web.example.org ", "*.web.example.org."),
        ("web_x.example.org", None),
        ("*", None),
        ("a.*.example.org", None),
        ("-a.example.org", None),
        ("192.0.2.1", None),
        ("", None),
        ("a" * 64 + ".example.org", None),
    ],
)
def test_parse_hostname(text, expected):
    name = parse_hostname(text)
    assert (name.to_text() if name else None) == expected


@pytest.mark.parametrize(
    ("route", "listener", "expected"),
    [
        ("a.example.org", None, "a.example.org"),
        ("a.example.org", "a.example.org", "a.example.org"),
        ("a.example.org", "b.example.org", None),
        ("a.example.org", "*.example.org", "a.example.org"),
        ("x.a.example.org", "*.example.org", "x.a.example.org"),
        ("example.org", "*.example.org", None),
        ("*.example.org", "a.example.org", "a.example.org"),
        ("*.a.example.org", "*.example.org", "*.a.example.org"),
        ("*.example.org", "*.a.example.org", "*.a.example.org"),
        ("*.example.org", "*.example.net", None),
    ],
)
def test_intersect_hostnames(route, listener, expected):
    assert intersect_hostnames(route, listener) == expected


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("app=web", {"app": "web"}, True),
        ("app==web", {"app": "db"}, False),
        ("app!=web", {}, True),
        ("tier in (a, b)", {"tier": "b"}, True),
        ("tier notin (a,b)", {"tier": "a"}, False),
        ("tier notin (a,b)", {}, True),
        ("app", {"app": ""}, True),
        ("!app", {"app": "x"}, False),
        ("app=web,tier in (a)", {"app": "web", "tier": "a"}, True),
        ("app=web,tier in (a)", {"app": "web", "tier": "b"}, False),
        ("n>3", {"n": "4"}, True),
        ("n<3", {"n": "x"}, False),
        ("example.com/h=", {"example.com/h": ""}, True),
        ("", {}, True),
    ],
)
def test_label_selector(selector, labels, expected):
    assert parse_label_selector(selector).matches(labels) is expected


def test_label_selector_rejects_garbage():
    with pytest.raises(ValueError):
        parse_label_selector("app in web")


# --- Ingress and Service ---------------------------------------------------------------------


def ingress(lb, hosts=("web.example.org",), labels=None, cls=None):
    return Ingress.model_validate(
        {
            "metadata": {"name": "i", "namespace": "default", "labels": labels or {}},
            "spec": {"ingressClassName": cls, "rules": [{"host": h} for h in hosts]},
            "status": {"loadBalancer": {"ingress": lb}},
        }
    )


@pytest.mark.parametrize(
    ("lb", "expected"),
    [
        ([{"ip": "192.0.2.1"}], ["web.example.org. - A 192.0.2.1"]),
        ([{"hostname": "LB-1.elb.example.net"}], ["web.example.org. - CNAME lb-1.elb.example.net."]),
        ([{"hostname": "lb.example.net"}, {"ip": "2001:db8::1"}], ["web.example.org. - AAAA 2001:db8::1"]),
        ([{"hostname": "a.example.net"}, {"hostname": "b.example.net"}], ["web.example.org. - CNAME a.example.net."]),
        ([], []),
    ],
)
def test_ingress_load_balancer(lb, expected):
    assert texts(ingress_claims(ingress(lb), SCOPE)) == expected


def test_ingress_ignore_label_and_class():
    lb = [{"ip": "192.0.2.1"}]
    assert ingress_claims(ingress(lb, labels={"k8s-gateway.dns/ignore": "true"}), SCOPE) == ()
    assert ingress_claims(ingress(lb, labels={"k8s-gateway.dns/ignore": "false"}), SCOPE) != ()
    scoped = Scope(SCOPE.zones, ingress_classes=frozenset({"nginx"}))
    assert ingress_claims(ingress(lb, cls="traefik"), scoped) == ()
    assert ingress_claims(ingress(lb, cls="nginx"), scoped) != ()


def service(
    name="web", type_="LoadBalancer", annotations=None, labels=None, external_ips=None, lb=None, ns="default"
):
    return Service.model_validate(
        {
            "metadata": {"name": name, "namespace": ns, "annotations": annotations or {}, "labels": labels or {}},
            "spec": {"type": type_, "externalIPs": external_ips, "clusterIP": "10.0.0.1"},
            "status": {"loadBalancer": {"ingress": lb or []}},
        }
    )


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        ("A.example.org, b ,*.c.example.org", ["*.c.example.org.", "a.example.org.", "b.example.org."]),
        ("bad_name.example.org,ok.example.org", ["ok.example.org."]),
        ("-x, ,", []),
    ],
)
def test_service_hostname_annotation_list(annotation, expected, caplog):
    claims = service_claims(service(annotations={"coredns.io/hostname": annotation}, lb=[{"ip": "192.0.2.5"}]), SCOPE)
    assert sorted(str(n) for n, _, _ in claims) == expected
    if "bad_name" in annotation:
        assert "default/web" in caplog.text and "bad_name.example.org" in caplog.text


def test_service_external_ips_then_lb_ips_then_lb_hostname():
    assert texts(service_claims(service(external_ips=["192.0.2.9"], lb=[{"ip": "192.0.2.5"}]), SCOPE)) == [
        "web.default.example.org. - A 192.0.2.9"
    ]
    assert texts(service_claims(service(lb=[{"hostname": "lb.example.net"}]), SCOPE)) == [
        "web.default.example.org. - CNAME lb.example.net."
    ]
    assert service_claims(service(type_="ClusterIP", external_ips=["192.0.2.9"]), SCOPE) == ()


def slice_(name, service_name, endpoints, address_type="IPv4", labels=None):
    return EndpointSlice.model_validate(
        {
            "metadata": {
                "name": name,
                "namespace": "default",
                "labels": {"kubernetes.io/service-name": service_name, **(labels or {})},
            },
            "addressType": address_type,
            "endpoints": endpoints,
        }
    )


def test_service_resolve_endpoints_merges_ready_addresses():
    slices = {
        ("default", "web"): [
            slice_("web-1", "web", [{"addresses": ["192.0.2.1"], "conditions": {"ready": True}},
                                    {"addresses": ["192.0.2.2"], "conditions": {"ready": False}},
                                    {"addresses": ["192.0.2.3"]}]),
            slice_("web-2", "web", [{"addresses": ["192.0.2.1"]}, {"addresses": ["2001:db8::7"], "conditions": {}}],
                   address_type="IPv6"),
            slice_("web-3", "web", [{"addresses": ["x.example.net"]}], address_type="FQDN"),
            slice_("web-4", "web", [{"addresses": ["192.0.2.99"]}], labels={"k8s-gateway.dns/ignore": "true"}),
        ]
    }
    related = Related(endpoint_slices=lambda key: slices.get(key, ()))
    headless = service(type_="ClusterIP", annotations={"k8s-gateway.dns/resolve-endpoints": "true"})
    assert texts(service_claims(headless, SCOPE, related)) == [
        "web.default.example.org. - A 192.0.2.1",
        "web.default.example.org. - A 192.0.2.3",
        "web.default.example.org. - AAAA 2001:db8::7",
    ]
    assert service_claims(headless, SCOPE) == ()  # no slices: nothing


def test_service_selectors_are_ored_and_ignore_label():
    scoped = Scope(SCOPE.zones, service_selectors=(parse_label_selector("app=web"), parse_label_selector("tier in (edge)")))
    lb = [{"ip": "192.0.2.5"}]
    assert service_claims(service(labels={"app": "web"}, lb=lb), scoped) != ()
    assert service_claims(service(labels={"tier": "edge"}, lb=lb), scoped) != ()
    assert service_claims(service(labels={"app": "db"}, lb=lb), scoped) == ()
    assert service_claims(service(labels={"app": "web", "k8s-gateway.dns/ignore": "true"}, lb=lb), scoped) == ()


def test_nameserver_rdatas_any_type():
    assert [str(r) for r in nameserver_rdatas(service(type_="ClusterIP", external_ips=["192.0.2.53"]))] == ["192.0.2.53"]
    assert [str(r) for r in nameserver_rdatas(service(lb=[{"ip": "2001:db8::53"}]))] == ["2001:db8::53"]
    assert nameserver_rdatas(service(type_="ClusterIP")) == ()


# --- Gateway API routes ----------------------------------------------------------------------


def gateway(name="gw", ns="infra", addresses=(("IPAddress", "192.0.2.1"),), listeners=None, cls="example", labels=None):
    return Gateway.model_validate(
        {
            "metadata": {"name": name, "namespace": ns, "labels": labels or {}},
            "spec": {
                "gatewayClassName": cls,
                "listeners": listeners if listeners is not None else [{"name": "http", "port": 80, "protocol": "HTTP"}],
            },
            "status": {"addresses": [{"type": t, "value": v} if t else {"value": v} for t, v in addresses]},
        }
    )


def route(hostnames=("a.example.org",), refs=({"name": "gw", "namespace": "infra"},), parents=None, ns="app"):
    body = {
        "metadata": {"name": "r", "namespace": ns},
        "spec": {"parentRefs": list(refs), "hostnames": list(hostnames)},
    }
    if parents is not None:
        body["status"] = {"parents": parents}
    return HTTPRoute.model_validate(body)


def gateways(*gws):
    return Related(gateways={g.key: g for g in gws})


LISTENERS = [
    {"name": "all", "port": 80, "protocol": "HTTP"},
    {"name": "shop", "hostname": "shop.example.org", "port": 443, "protocol": "HTTPS"},
    {"name": "wild", "hostname": "*.apps.example.org", "port": 443, "protocol": "HTTPS"},
]


@pytest.mark.parametrize(
    ("hostnames", "refs", "expected"),
    [
        # default namespace is the route's; explicit namespaces are per ref
        (["a.example.org"], [{"name": "gw"}], []),
        (["a.example.org"], [{"name": "gw", "namespace": "infra"}], ["a.example.org. - A 192.0.2.1"]),
        (["a.example.org"], [{"name": "gw", "namespace": "infra"}, {"name": "gw2"}],
         ["a.example.org. - A 192.0.2.1", "a.example.org. - A 192.0.2.2"]),
        # non-Gateway parents are not Gateways
        (["a.example.org"], [{"name": "gw", "namespace": "infra", "kind": "Service", "group": ""}], []),
        (["a.example.org"], [{"name": "gw", "namespace": "infra", "group": "gateway.networking.k8s.io", "kind": "Gateway"}],
         ["a.example.org. - A 192.0.2.1"]),
        # sectionName: that listener only, intersected with its hostname
        (["a.example.org"], [{"name": "gw", "namespace": "infra", "sectionName": "shop"}], []),
        (["shop.example.org"], [{"name": "gw", "namespace": "infra", "sectionName": "shop"}], ["shop.example.org. - A 192.0.2.1"]),
        (["x.apps.example.org", "y.example.org"], [{"name": "gw", "namespace": "infra", "sectionName": "wild"}],
         ["x.apps.example.org. - A 192.0.2.1"]),
        (["*.example.org"], [{"name": "gw", "namespace": "infra", "sectionName": "wild"}], ["*.apps.example.org. - A 192.0.2.1"]),
        (["a.example.org"], [{"name": "gw", "namespace": "infra", "sectionName": "nope"}], []),
        # no route hostnames: the listener's
        ([], [{"name": "gw", "namespace": "infra", "sectionName": "shop"}], ["shop.example.org. - A 192.0.2.1"]),
        ([], [{"name": "gw", "namespace": "infra"}], ["*.apps.example.org. - A 192.0.2.1", "shop.example.org. - A 192.0.2.1"]),
        # out of zone
        (["a.example.net"], [{"name": "gw", "namespace": "infra"}], []),
    ],
)
def test_route_parents_listeners_and_hostnames(hostnames, refs, expected):
    related = gateways(gateway(listeners=LISTENERS), gateway("gw2", "app", addresses=((None, "192.0.2.2"),)))
    assert texts(route_claims(route(hostnames, refs), SCOPE, related)) == expected


def test_route_gateway_keys_do_not_leak_namespaces():
    r = route(refs=[{"name": "a", "namespace": "x"}, {"name": "b"}, {"name": "c", "kind": "Service", "group": ""}])
    assert route_gateway_keys(r) == {("x", "a"), ("app", "b")}


ACCEPTED = [{"type": "Accepted", "status": "True"}]
REJECTED = [{"type": "Accepted", "status": "False", "reason": "NotAllowedByListeners"}]


@pytest.mark.parametrize(
    ("parents", "expected"),
    [
        (None, ["192.0.2.1", "192.0.2.2"]),
        ([{"parentRef": {"name": "gw", "namespace": "infra"}, "conditions": ACCEPTED}], ["192.0.2.1"]),
        ([{"parentRef": {"name": "gw", "namespace": "infra"}, "conditions": ACCEPTED},
          {"parentRef": {"name": "gw2", "namespace": "app", "group": "gateway.networking.k8s.io", "kind": "Gateway"},
           "conditions": ACCEPTED}], ["192.0.2.1", "192.0.2.2"]),
        ([{"parentRef": {"name": "gw", "namespace": "infra"}, "conditions": REJECTED},
          {"parentRef": {"name": "gw2"}, "conditions": ACCEPTED}], ["192.0.2.2"]),
    ],
)
def test_route_counts_only_accepting_parents(parents, expected):
    related = gateways(gateway(), gateway("gw2", "app", addresses=((None, "192.0.2.2"),)))
    r = route(refs=[{"name": "gw", "namespace": "infra"}, {"name": "gw2"}], parents=parents)
    assert sorted(str(rd) for _, rd, _ in route_claims(r, SCOPE, related)) == expected


def test_route_gateway_hostname_is_a_cname_and_ips_win():
    by_name = gateways(gateway(addresses=(("Hostname", "lb.example.net"),)))
    assert texts(route_claims(route(), SCOPE, by_name)) == ["a.example.org. - CNAME lb.example.net."]
    both = gateways(gateway(addresses=(("Hostname", "lb.example.net"), ("IPAddress", "192.0.2.1"))))
    assert texts(route_claims(route(), SCOPE, both)) == ["a.example.org. - A 192.0.2.1"]
    named = gateways(gateway(addresses=(("NamedAddress", "pool-1"),)))
    assert route_claims(route(), SCOPE, named) == ()


def test_route_gateway_class_filter_and_ignore():
    scoped = Scope(SCOPE.zones, gateway_classes=frozenset({"example"}))
    assert route_claims(route(), scoped, gateways(gateway(cls="example"))) != ()
    assert route_claims(route(), scoped, gateways(gateway(cls="other"))) == ()
    ignored_gw = gateway(labels={"k8s-gateway.dns/ignore": "true"})
    assert route_claims(route(), SCOPE, gateways(ignored_gw)) == ()


# --- DNSEndpoint -----------------------------------------------------------------------------


def dnsendpoint(*endpoints):
    return DNSEndpoint.model_validate(
        {"metadata": {"name": "d", "namespace": "ops"}, "spec": {"endpoints": list(endpoints)}}
    )


LONG = "v=" + "x" * 300


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ({"dnsName": "a.example.org", "recordType": "A", "targets": ["192.0.2.1", "2001:db8::1"]}, ["a.example.org. - A 192.0.2.1"]),
        ({"dnsName": "a.example.org", "recordType": "AAAA", "targets": ["2001:db8::1"], "recordTTL": 30}, ["a.example.org. 30 AAAA 2001:db8::1"]),
        ({"dnsName": "c.example.org", "recordType": "CNAME", "targets": ["Target.Example.org."]}, ["c.example.org. - CNAME target.example.org."]),
        ({"dnsName": "t.example.org", "recordType": "TXT", "targets": ["hello world"]}, ['t.example.org. - TXT "hello world"']),
        ({"dnsName": "t.example.org", "recordType": "TXT", "targets": [LONG]}, [f't.example.org. - TXT "{LONG[:255]}" "{LONG[255:]}"']),
        ({"dnsName": "m.example.org", "recordType": "MX", "targets": ["10 mail.example.org"]}, ["m.example.org. - MX 10 mail.example.org."]),
        ({"dnsName": "_sip._tcp.example.org", "recordType": "SRV", "targets": ["10 5 5060 sip.example.org"], "recordTTL": 120},
         ["_sip._tcp.example.org. 120 SRV 10 5 5060 sip.example.org."]),
        ({"dnsName": "*.w.example.org", "recordType": "A", "targets": ["192.0.2.7"]}, ["*.w.example.org. - A 192.0.2.7"]),
        ({"dnsName": "a.example.net", "recordType": "A", "targets": ["192.0.2.1"]}, []),
        ({"dnsName": "m.example.org", "recordType": "MX", "targets": ["mail.example.org", "70000 mail.example.org"]}, []),
        ({"dnsName": "s.example.org", "recordType": "SRV", "targets": ["1 2 x host.example.org"]}, []),
        ({"dnsName": "n.example.org", "recordType": "NS", "targets": ["ns.example.net"]}, []),
    ],
)
def test_dnsendpoint_record_types(endpoint, expected):
    assert texts(dnsendpoint_claims(dnsendpoint(endpoint), SCOPE)) == expected


def test_dnsendpoint_invalid_targets_are_logged_with_the_object(caplog):
    caplog.set_level(logging.WARNING)
    claims = dnsendpoint_claims(
        dnsendpoint({"dnsName": "a.example.org", "recordType": "A", "targets": ["nope", "192.0.2.1"]}), SCOPE
    )
    assert texts(claims) == ["a.example.org. - A 192.0.2.1"]
    assert "ops/d" in caplog.text and "'nope'" in caplog.text


@pytest.mark.parametrize(
    ("text", "expected"),
    [("example.com", "example.com."), ("Example.COM.", "example.com."), (".", "."), ("_tcp.example.com", "_tcp.example.com."),
     ("", None), ("@", None), ("a..b", None), ("bücher.de", None), ("a b.com", None), ("a" * 64 + ".com", None)],
)
def test_zone_name(text, expected):
    from k8sgw.records.hostnames import Rejected, zone_name

    try:
        assert zone_name(text).to_text() == expected
    except Rejected:
        assert expected is None
