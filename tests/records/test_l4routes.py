"""TCPRoute and UDPRoute: hostname annotations name them; parents, sections and Accepted as any route."""

from __future__ import annotations

import logging

import dns.name
import pytest

from k8sgw.kubeapi.models import Gateway, TCPRoute, UDPRoute
from k8sgw.records.sources import Related, Scope, translate
from tests.records.test_sources import texts

SCOPE = Scope((dns.name.from_text("example.org."),))
LISTENERS = [
    {"name": "db", "port": 5432, "protocol": "TCP"},
    {"name": "dns", "port": 53, "protocol": "UDP"},
    {"name": "tls", "port": 443, "protocol": "TLS", "hostname": "*.tls.example.org"},
]


def gateway(annotations=None):
    return Gateway.model_validate(
        {
            "metadata": {"name": "gw", "namespace": "infra", "annotations": annotations or {}},
            "spec": {"gatewayClassName": "example", "listeners": LISTENERS},
            "status": {"addresses": [{"value": "192.0.2.100"}, {"value": "2001:db8::100"}]},
        }
    )


def l4route(model, annotations=None, section=None, parents=None, labels=None):
    ref = {"name": "gw", "namespace": "infra"} | ({"sectionName": section} if section else {})
    body = {
        "metadata": {"name": "r", "namespace": "app", "annotations": annotations or {}, "labels": labels or {}},
        "spec": {"parentRefs": [ref]},
    }
    if parents is not None:
        body["status"] = {"parents": parents}
    return model.model_validate(body)


RELATED = Related(gateways={("infra", "gw"): gateway()})
EXT = "external-dns.alpha.kubernetes.io/hostname"
BOTH = ["db.example.org. - A 192.0.2.100", "db.example.org. - AAAA 2001:db8::100"]


@pytest.mark.parametrize("model", [TCPRoute, UDPRoute])
@pytest.mark.parametrize(
    ("annotations", "section", "expected"),
    [
        ({EXT: "db.example.org"}, "db", BOTH),
        ({EXT: " DB.example.org. , other.net"}, "db", BOTH),  # outside every zone: not ours
        ({"coredns.io/hostname": "db.example.org", EXT: "x.example.org"}, "db", BOTH),  # coredns.io first
        ({EXT: "db.example.org"}, "missing", []),  # sectionName names no listener
        ({EXT: "db.example.org"}, "tls", []),  # narrowed away by the listener's hostname
        ({EXT: "a.tls.example.org"}, "tls", ["a.tls.example.org. - A 192.0.2.100", "a.tls.example.org. - AAAA 2001:db8::100"]),
        ({}, "db", []),  # no annotation, a listener without hostname: no name
        ({}, "tls", ["*.tls.example.org. - A 192.0.2.100", "*.tls.example.org. - AAAA 2001:db8::100"]),
        ({EXT: "bad_name.example.org"}, "db", []),
        ({EXT: "db.example.org", "external-dns.alpha.kubernetes.io/ttl": "45"}, "db",
         ["db.example.org. 45 A 192.0.2.100", "db.example.org. 45 AAAA 2001:db8::100"]),
    ],
)
def test_named_by_hostname_annotation(model, annotations, section, expected):
    kind = model.__name__
    assert texts(translate(kind, l4route(model, annotations, section), SCOPE, RELATED)) == expected


@pytest.mark.parametrize("model", [TCPRoute, UDPRoute])
def test_accepted_ignore_label_and_gateway_target(model, caplog):
    caplog.set_level(logging.WARNING)
    kind, ann = model.__name__, {EXT: "db.example.org"}
    ref = {"name": "gw", "namespace": "infra", "sectionName": "db"}
    refused = [{"parentRef": ref, "conditions": [{"type": "Accepted", "status": "False"}]}]
    assert translate(kind, l4route(model, ann, "db", parents=refused), SCOPE, RELATED) == ()
    accepted = [{"parentRef": ref, "conditions": [{"type": "Accepted", "status": "True"}]}]
    assert texts(translate(kind, l4route(model, ann, "db", parents=accepted), SCOPE, RELATED)) == BOTH
    ignored = l4route(model, ann, "db", labels={"k8s-gateway.dns/ignore": "true"})
    assert translate(kind, ignored, SCOPE, RELATED) == ()
    targeted = Related(gateways={("infra", "gw"): gateway({"external-dns.alpha.kubernetes.io/target": "lb.example.net"})})
    assert texts(translate(kind, l4route(model, ann, "db"), SCOPE, targeted)) == ["db.example.org. - CNAME lb.example.net."]
    translate(kind, l4route(model, {EXT: "bad_name.example.org"}, "db"), SCOPE, RELATED)
    assert f"{kind} app/r" in caplog.text and "bad_name.example.org" in caplog.text
