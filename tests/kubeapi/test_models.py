"""Models: lenient on input, frozen and hashable, only the fields DNS reads; the Kind table."""

from __future__ import annotations

import immutables
import pydantic
import pytest

from k8sgw.kubeapi import models
from k8sgw.kubeapi.kinds import INGRESS, KINDS, SERVICE, Kind
from k8sgw.kubeapi.models import Ingress, ObjectMeta, Service, Status

INGRESS_JSON = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "Ingress",
    "metadata": {
        "name": "web",
        "namespace": "prod",
        "resourceVersion": "42",
        "labels": {"app": "web"},
        "annotations": {"kubernetes.io/ingress.class": "nginx"},
        "uid": "ignored",
        "managedFields": [{"manager": "kubectl"}],
    },
    "spec": {
        "ingressClassName": "nginx",
        "rules": [
            {"host": "web.example.org", "http": {"paths": [{"path": "/"}]}},
            {"http": {"paths": []}},
        ],
        "tls": [{"hosts": ["web.example.org"]}],
    },
    "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}, {"hostname": "lb.example.org"}]}},
}

SERVICE_JSON = {
    "metadata": {"name": "dns", "namespace": "kube-system"},
    "spec": {
        "type": "LoadBalancer",
        "clusterIP": "10.0.0.10",
        "externalIPs": ["192.0.2.20", "192.0.2.21"],
        "ports": [{"port": 53}],
    },
    "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.30", "ipMode": "VIP"}]}},
}


def test_ingress_fields():
    ing = Ingress.model_validate(INGRESS_JSON)
    assert ing.key == ("prod", "web")
    assert ing.metadata.resource_version == "42"
    assert dict(ing.metadata.labels) == {"app": "web"}  # immutables.Map is not == dict
    assert ing.metadata.annotations["kubernetes.io/ingress.class"] == "nginx"
    assert ing.spec.ingress_class_name == "nginx"
    assert [r.host for r in ing.spec.rules] == ["web.example.org", None]
    lb = ing.status.load_balancer.ingress
    assert [(x.ip, x.hostname) for x in lb] == [("192.0.2.10", None), (None, "lb.example.org")]
    assert isinstance(ing.spec.rules, tuple)


def test_service_fields_and_acronym_aliases():
    svc = Service.model_validate(SERVICE_JSON)
    assert svc.key == ("kube-system", "dns")
    assert svc.spec.type == "LoadBalancer"
    assert svc.spec.cluster_ip == "10.0.0.10"
    assert svc.spec.external_ips == ("192.0.2.20", "192.0.2.21")
    assert svc.status.load_balancer.ingress[0].ip == "192.0.2.30"
    # by Python name too (validate_by_name), and back out with the Kubernetes spelling
    again = Service.model_validate(svc.model_dump())
    assert again == svc
    dumped = svc.model_dump(by_alias=True)
    assert dumped["spec"]["externalIPs"] == ("192.0.2.20", "192.0.2.21")
    assert dumped["spec"]["clusterIP"] == "10.0.0.10"


@pytest.mark.parametrize(
    "data",
    [
        {"metadata": {"name": "a"}},
        {"metadata": {"name": "a", "labels": None, "annotations": None}, "spec": None, "status": None},
        {"metadata": {"name": "a"}, "spec": {"externalIPs": None}, "status": {"loadBalancer": None}},
        {"metadata": {"name": "a"}, "status": {"loadBalancer": {"ingress": None}}},
    ],
)
def test_service_defaults_for_missing_and_null(data):
    svc = Service.model_validate(data)
    assert svc.key == ("", "a")
    assert svc.spec.type == "ClusterIP"
    assert svc.spec.cluster_ip is None
    assert svc.spec.external_ips == ()
    assert svc.status.load_balancer.ingress == ()
    assert len(svc.metadata.labels) == 0 and len(svc.metadata.annotations) == 0


def test_ingress_defaults():
    ing = Ingress.model_validate({"metadata": {"name": "a", "namespace": "n"}, "spec": {"rules": None}})
    assert ing.spec.rules == () and ing.spec.ingress_class_name is None
    assert ing.status.load_balancer.ingress == ()


def test_frozen_and_hashable():
    ing = Ingress.model_validate(INGRESS_JSON)
    with pytest.raises(pydantic.ValidationError):
        ing.metadata = ObjectMeta(name="x")  # type: ignore[misc]
    assert isinstance(ing.metadata.labels, immutables.Map)
    with pytest.raises(TypeError):
        ing.metadata.labels["app"] = "other"  # type: ignore[index]
    assert hash(ing) == hash(Ingress.model_validate(INGRESS_JSON))
    assert len({ing, Ingress.model_validate(INGRESS_JSON)}) == 1


@pytest.mark.parametrize(
    "data",
    [
        {},  # no metadata
        {"metadata": {"namespace": "n"}},  # no name
        {"metadata": {"name": "a", "labels": {"x": 1}}},  # label values are strings
        {"metadata": {"name": "a"}, "spec": {"externalIPs": "192.0.2.1"}},  # not a list
    ],
)
def test_invalid(data):
    with pytest.raises(pydantic.ValidationError):
        Service.model_validate(data)


def test_status():
    st = Status.model_validate(
        {
            "kind": "Status",
            "status": "Failure",
            "message": "Too large resource version: 20, current: 10",
            "reason": "Timeout",
            "code": 504,
            "details": {"causes": [{"reason": "ResourceVersionTooLarge"}], "retryAfterSeconds": 1},
        }
    )
    assert (st.code, st.reason, st.details.retry_after_seconds) == (504, "Timeout", 1)
    assert st.details.causes[0].reason == "ResourceVersionTooLarge"
    assert Status.model_validate({"metadata": {}}).code == 0


def test_kinds():
    assert set(KINDS) == {
        "Ingress", "Service", "EndpointSlice", "Gateway", "HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute", "UDPRoute",
        "DNSEndpoint", "Node", "IngressRoute", "IngressRouteTCP", "IstioGateway", "VirtualService",
    }
    assert KINDS["Ingress"] is INGRESS and KINDS["Service"] is SERVICE
    assert INGRESS.collection_path() == "/apis/networking.k8s.io/v1/ingresses"
    assert INGRESS.collection_path("prod") == "/apis/networking.k8s.io/v1/namespaces/prod/ingresses"
    assert SERVICE.collection_path() == "/api/v1/services"
    assert SERVICE.collection_path("kube-system") == "/api/v1/namespaces/kube-system/services"
    assert (INGRESS.api_version, SERVICE.api_version) == ("networking.k8s.io/v1", "v1")
    assert (INGRESS.resource, SERVICE.resource) == ("ingresses.networking.k8s.io", "services")
    assert INGRESS.model is Ingress and SERVICE.model is Service
    assert isinstance(INGRESS, Kind)


def test_every_kind_has_a_row_and_one_place_in_the_kind_lists():
    from k8sgw.kubeapi.kinds import CLAIMING_KINDS, FEEDING_KINDS, ROUTE_KINDS
    from k8sgw.records.sources import TRANSLATORS

    assert sorted(KINDS) == sorted([*CLAIMING_KINDS, *FEEDING_KINDS])
    assert set(ROUTE_KINDS) <= set(CLAIMING_KINDS) and set(TRANSLATORS) == set(CLAIMING_KINDS)


def test_all_matches_public_names():
    public = {
        name
        for name, value in vars(models).items()
        if not name.startswith("_") and getattr(value, "__module__", None) == models.__name__
    }
    assert public <= set(models.__all__)


def test_gateway_api_kinds_and_tlsroute_fallback():
    tls = KINDS["TLSRoute"]
    assert tls.versions == ("v1", "v1alpha2")
    assert tls.at_version("v1alpha2").collection_path() == "/apis/gateway.networking.k8s.io/v1alpha2/tlsroutes"
    assert tls.at_version("v1alpha2").name == "TLSRoute"
    # Traefik v2 before 2.10 serves its kinds only in another group: a fallback may name it.
    traefik = KINDS["IngressRoute"]
    assert traefik.versions == ("v1alpha1", "traefik.containo.us/v1alpha1")
    legacy = traefik.at_version("traefik.containo.us/v1alpha1")
    assert legacy.collection_path() == "/apis/traefik.containo.us/v1alpha1/ingressroutes"
    assert (legacy.resource, legacy.api_version) == ("ingressroutes.traefik.containo.us", "traefik.containo.us/v1alpha1")
    assert KINDS["VirtualService"].at_version("v1beta1").api_version == "networking.istio.io/v1beta1"
    assert KINDS["DNSEndpoint"].collection_path() == "/apis/externaldns.k8s.io/v1alpha1/dnsendpoints"
    assert KINDS["EndpointSlice"].resource == "endpointslices.discovery.k8s.io"
    assert KINDS["Gateway"].versions == ("v1",)


def test_gateway_and_route_shapes():
    gw = models.Gateway.model_validate(
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "metadata": {"name": "gw", "namespace": "infra"},
            "spec": {
                "gatewayClassName": "example",
                "listeners": [{"name": "web", "hostname": "*.example.org", "port": 443, "protocol": "HTTPS"}],
            },
            "status": {"addresses": [{"value": "192.0.2.1"}, {"type": "Hostname", "value": "lb.example.net"}]},
        }
    )
    assert gw.spec.gateway_class_name == "example"
    assert gw.spec.listeners[0].hostname == "*.example.org"
    assert [(a.type, a.value) for a in gw.status.addresses] == [(None, "192.0.2.1"), ("Hostname", "lb.example.net")]
    route = models.HTTPRoute.model_validate(
        {
            "metadata": {"name": "r", "namespace": "app"},
            "spec": {
                "parentRefs": [{"name": "gw", "namespace": "infra", "sectionName": "web", "port": 443}],
                "hostnames": ["a.example.org"],
                "rules": [{"backendRefs": [{"name": "svc", "port": 80}]}],
            },
            "status": {
                "parents": [
                    {
                        "parentRef": {"name": "gw", "namespace": "infra", "sectionName": "web"},
                        "controllerName": "example.net/gateway",
                        "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted"}],
                    }
                ]
            },
        }
    )
    ref = route.spec.parent_refs[0]
    assert (ref.group, ref.kind, ref.namespace, ref.name, ref.section_name, ref.port) == (None, None, "infra", "gw", "web", 443)
    assert route.status.parents[0].conditions[0].status == "True"
    assert hash(route) == hash(models.HTTPRoute.model_validate(route.model_dump(by_alias=True)))


def test_endpointslice_and_dnsendpoint_shapes():
    eps = models.EndpointSlice.model_validate(
        {
            "metadata": {"name": "web-abc", "namespace": "default", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "endpoints": [
                {"addresses": ["192.0.2.1"], "conditions": {"ready": True}},
                {"addresses": ["192.0.2.2"], "conditions": {"ready": None}},
                {"addresses": ["192.0.2.3"]},
            ],
            "ports": None,
        }
    )
    assert [e.conditions.ready for e in eps.endpoints] == [True, None, None]
    dep = models.DNSEndpoint.model_validate(
        {
            "metadata": {"name": "d", "namespace": "default"},
            "spec": {
                "endpoints": [
                    {"dnsName": "t.example.org", "recordType": "TXT", "targets": ["v=1"], "recordTTL": 30,
                     "labels": {"owner": "x"}, "providerSpecific": [{"name": "a", "value": "b"}]},
                    {"dnsName": "a.example.org", "recordType": "A", "targets": None},
                ]
            },
        }
    )
    assert [(e.dns_name, e.record_type, e.targets, e.record_ttl) for e in dep.spec.endpoints] == [
        ("t.example.org", "TXT", ("v=1",), 30),
        ("a.example.org", "A", (), 0),
    ]
