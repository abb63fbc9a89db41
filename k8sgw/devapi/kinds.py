"""The resource table: every kind the dev API server serves is one `Kind` entry.

Adding a kind means adding one entry to `KINDS`; discovery, OpenAPI, routing and storage read this table.
It must not hold any state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["KINDS", "NAMESPACE_VERBS", "VERBS", "Kind"]

VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
# Namespaces cannot be deleted as a collection on a real API server.
NAMESPACE_VERBS = tuple(v for v in VERBS if v != "deletecollection")
# What the real server stores for a Service or Ingress created without a status.
_EMPTY_LB_STATUS: Mapping[str, Any] = {"loadBalancer": {}}


@dataclass(frozen=True)
class Kind:
    group: str
    versions: tuple[str, ...]
    """Served versions, preferred (storage) version first; all versions serve the same objects."""
    kind: str
    plural: str
    singular: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    has_status: bool = True
    builtin: bool = True
    """Built-in kinds drop kind/apiVersion from list items (CRs keep them), like the real API."""
    merge_keys: Mapping[str, str] = field(default_factory=dict, hash=False, compare=False)
    """Strategic-merge-patch list keys by dotted path, e.g. {"spec.ports": "port"}."""
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = VERBS
    empty_status: Mapping[str, Any] | None = field(default=None, hash=False, compare=False)
    """The status a new object gets when it was created without one."""

    @property
    def resource(self) -> str:
        """`ingresses.networking.k8s.io`, or `services` for the core group (as in error messages)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def group_version(self, version: str | None = None) -> str:
        version = version or self.versions[0]
        return f"{self.group}/{version}" if self.group else version


_GATEWAY = "gateway.networking.k8s.io"
_GATEWAY_API = ("gateway-api",)  # the category the Gateway API CRDs declare (`kubectl get gateway-api`)

KINDS: tuple[Kind, ...] = (
    Kind(
        "",
        ("v1",),
        "Namespace",
        "namespaces",
        "namespace",
        namespaced=False,
        short_names=("ns",),
        verbs=NAMESPACE_VERBS,
    ),
    Kind(
        "",
        ("v1",),
        "Service",
        "services",
        "service",
        short_names=("svc",),
        merge_keys={"spec.ports": "port", "status.conditions": "type"},
        categories=("all",),
        empty_status=_EMPTY_LB_STATUS,
    ),
    Kind(
        "networking.k8s.io",
        ("v1",),
        "Ingress",
        "ingresses",
        "ingress",
        short_names=("ing",),
        empty_status=_EMPTY_LB_STATUS,
    ),
    Kind("", ("v1",), "Node", "nodes", "node", namespaced=False, short_names=("no",)),
    Kind("discovery.k8s.io", ("v1",), "EndpointSlice", "endpointslices", "endpointslice", has_status=False),
    Kind(
        _GATEWAY,
        ("v1",),
        "Gateway",
        "gateways",
        "gateway",
        short_names=("gtw",),
        builtin=False,
        categories=_GATEWAY_API,
    ),
    Kind(_GATEWAY, ("v1",), "HTTPRoute", "httproutes", "httproute", builtin=False, categories=_GATEWAY_API),
    Kind(_GATEWAY, ("v1",), "GRPCRoute", "grpcroutes", "grpcroute", builtin=False, categories=_GATEWAY_API),
    Kind(
        _GATEWAY,
        ("v1", "v1alpha2"),
        "TLSRoute",
        "tlsroutes",
        "tlsroute",
        builtin=False,
        categories=_GATEWAY_API,
    ),
    Kind(_GATEWAY, ("v1alpha2",), "TCPRoute", "tcproutes", "tcproute", builtin=False, categories=_GATEWAY_API),
    Kind(_GATEWAY, ("v1alpha2",), "UDPRoute", "udproutes", "udproute", builtin=False, categories=_GATEWAY_API),
    Kind("traefik.io", ("v1alpha1",), "IngressRoute", "ingressroutes", "ingressroute", has_status=False, builtin=False),
    Kind(
        "traefik.io", ("v1alpha1",), "IngressRouteTCP", "ingressroutetcps", "ingressroutetcp", has_status=False, builtin=False
    ),
    Kind("networking.istio.io", ("v1", "v1beta1"), "Gateway", "gateways", "gateway", has_status=False, builtin=False),
    Kind(
        "networking.istio.io", ("v1", "v1beta1"), "VirtualService", "virtualservices", "virtualservice",
        short_names=("vs",), has_status=False, builtin=False,
    ),
    Kind("externaldns.k8s.io", ("v1alpha1",), "DNSEndpoint", "dnsendpoints", "dnsendpoint", builtin=False),
)
