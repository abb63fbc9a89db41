"""Pydantic models of the Kubernetes objects k8sgw reads, reduced to what DNS needs.

Objects are cut down at the edge (CoreDNS `object/service.go`): only the fields that produce
records are kept, everything else is ignored (`extra="ignore"`), so an API that adds fields never
breaks us and a full object is never held in memory. Models are frozen and hashable:

- sequences are tuples; a JSON `null` or a missing list becomes `()` (API servers have been seen
  sending `"items": null`);
- labels and annotations are `immutables.Map` (a hashable, read-only Mapping: the HAMT map the
  record map already depends on), so a model can be a dict key or a set member;
- a JSON `null` anywhere means "absent": the field takes its default.

This module must not import trio or httpx: records/ builds on it.

To add a kind: subclass `KubeObject`, declare the nested spec/status models with defaults, and
add a `Kind` to `kinds.py`.
Field names are snake_case; `to_camel` gives the JSON names, except where Kubernetes capitalises an
acronym (`externalIPs`, `clusterIP`): those get an explicit alias.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

import immutables
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    model_validator,
)
from pydantic.alias_generators import to_camel

__all__ = [
    "Condition",
    "DNSEndpoint",
    "DNSEndpointSpec",
    "Endpoint",
    "EndpointConditions",
    "EndpointSlice",
    "ExternalEndpoint",
    "FrozenMap",
    "GRPCRoute",
    "Gateway",
    "GatewayAddress",
    "GatewaySpec",
    "GatewayStatus",
    "IstioGateway",
    "IstioGatewaySpec",
    "IstioServer",
    "HTTPRoute",
    "Ingress",
    "IngressRoute",
    "IngressRouteTCP",
    "IngressRule",
    "IngressSpec",
    "IngressStatus",
    "KubeModel",
    "KubeObject",
    "LoadBalancerIngress",
    "LoadBalancerStatus",
    "Node",
    "NodeAddress",
    "NodeStatus",
    "ObjectMeta",
    "Seq",
    "Service",
    "ServiceSpec",
    "ServiceStatus",
    "Listener",
    "ParentReference",
    "Route",
    "RouteParentStatus",
    "RouteSpec",
    "RouteStatus",
    "Status",
    "StatusCause",
    "StatusDetails",
    "TCPRoute",
    "TLSRoute",
    "TraefikRoute",
    "TraefikRouteSpec",
    "UDPRoute",
    "VirtualService",
    "VirtualServiceSpec",
]

_T = TypeVar("_T")

Seq = Annotated[tuple[_T, ...], BeforeValidator(lambda v: () if v is None else v)]
"""A JSON list as a tuple; `null` is `()`."""

FrozenMap = Annotated[
    Mapping[str, str],
    AfterValidator(immutables.Map),
    PlainSerializer(dict),
]
"""A JSON string map as a hashable, read-only `immutables.Map`; dumps back to a dict."""

EMPTY_MAP: immutables.Map[str, str] = immutables.Map()


class KubeModel(BaseModel):
    """Base of every model: frozen, lenient, camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(
        frozen=True,
        extra="ignore",
        alias_generator=to_camel,
        validate_by_name=True,
    )

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: Any) -> Any:
        # Kubernetes (Go omitempty aside) sends `null` for empty lists, maps and structs; treat it
        # as "not set" so every field falls back to its default instead of failing validation.
        if isinstance(data, dict) and None in data.values():  # most objects have no null: no copy
            return {k: v for k, v in data.items() if v is not None}
        return data


class ObjectMeta(KubeModel):
    """metav1.ObjectMeta: identity and the labels/annotations some kinds are selected or named by."""

    name: str
    namespace: str = ""
    labels: FrozenMap = EMPTY_MAP
    annotations: FrozenMap = EMPTY_MAP
    resource_version: str = ""


class KubeObject(KubeModel):
    """An object with metadata: what a watch delivers and the indexer stores by `key`."""

    metadata: ObjectMeta

    @property
    def key(self) -> tuple[str, str]:
        """(namespace, name): unique within a kind."""
        return (self.metadata.namespace, self.metadata.name)


class LoadBalancerIngress(KubeModel):
    """One load-balancer address (Service and Ingress share the shape)."""

    ip: str | None = None
    hostname: str | None = None


class LoadBalancerStatus(KubeModel):
    ingress: Seq[LoadBalancerIngress] = ()


# --- networking.k8s.io/v1 Ingress -----------------------------------------------------------------


class IngressRule(KubeModel):
    """A rule; only the host matters to DNS. No host means "every host" (not a DNS name)."""

    host: str | None = None


class IngressSpec(KubeModel):
    ingress_class_name: str | None = None
    rules: Seq[IngressRule] = ()


class IngressStatus(KubeModel):
    load_balancer: LoadBalancerStatus = LoadBalancerStatus()


class Ingress(KubeObject):
    spec: IngressSpec = IngressSpec()
    status: IngressStatus = IngressStatus()


# --- v1 Service -----------------------------------------------------------------------------------


class ServiceSpec(KubeModel):
    type: str = "ClusterIP"
    cluster_ip: str | None = Field(None, alias="clusterIP")
    external_ips: Seq[str] = Field((), alias="externalIPs")
    external_name: str | None = None
    selector: FrozenMap = EMPTY_MAP
    """The Pod labels it routes to: an Istio Gateway's `selector` picks its ingress Service by it."""


class ServiceStatus(KubeModel):
    load_balancer: LoadBalancerStatus = LoadBalancerStatus()


class Service(KubeObject):
    spec: ServiceSpec = ServiceSpec()
    status: ServiceStatus = ServiceStatus()


# --- discovery.k8s.io/v1 EndpointSlice: no spec, every field is top-level -------------------------


class EndpointConditions(KubeModel):
    """`ready`/`serving` are true when null (None here); `terminating` is false when null."""

    ready: bool | None = None
    serving: bool | None = None
    terminating: bool | None = None


class Endpoint(KubeModel):
    addresses: Seq[str] = ()
    conditions: EndpointConditions = EndpointConditions()


class EndpointSlice(KubeObject):
    address_type: str = "IPv4"
    endpoints: Seq[Endpoint] = ()


# --- gateway.networking.k8s.io --------------------------------------------------------------------


class Condition(KubeModel):
    """metav1.Condition: only type and status matter ("Accepted", "True")."""

    type: str = ""
    status: str = ""


class Listener(KubeModel):
    name: str = ""
    hostname: str | None = None


class GatewayAddress(KubeModel):
    """A Gateway address; `type` unset means IPAddress."""

    type: str | None = None
    value: str = ""


class GatewaySpec(KubeModel):
    gateway_class_name: str = ""
    listeners: Seq[Listener] = ()


class GatewayStatus(KubeModel):
    addresses: Seq[GatewayAddress] = ()


class Gateway(KubeObject):
    spec: GatewaySpec = GatewaySpec()
    status: GatewayStatus = GatewayStatus()


class ParentReference(KubeModel):
    """A route's parentRef; unset group/kind mean a Gateway, unset namespace the route's own."""

    group: str | None = None
    kind: str | None = None
    namespace: str | None = None
    name: str = ""
    section_name: str | None = None
    port: int | None = None


class RouteParentStatus(KubeModel):
    parent_ref: ParentReference = ParentReference()
    controller_name: str = ""
    conditions: Seq[Condition] = ()


class RouteSpec(KubeModel):
    parent_refs: Seq[ParentReference] = ()
    hostnames: Seq[str] = ()


class RouteStatus(KubeModel):
    parents: Seq[RouteParentStatus] = ()


class Route(KubeObject):
    """HTTPRoute, GRPCRoute, TLSRoute, TCPRoute and UDPRoute share everything DNS reads."""

    spec: RouteSpec = RouteSpec()
    status: RouteStatus = RouteStatus()


class HTTPRoute(Route):
    pass


class GRPCRoute(Route):
    pass


class TLSRoute(Route):
    pass


class TCPRoute(Route):
    """v1alpha2; no spec.hostnames: named by hostname annotations (records/l4routes.py)."""


class UDPRoute(Route):
    """v1alpha2; no spec.hostnames: named by hostname annotations (records/l4routes.py)."""


# --- core/v1 Node ------------------------------------------------------------------------------


class NodeAddress(KubeModel):
    type: str = ""
    address: str = ""


class NodeStatus(KubeModel):
    addresses: Seq[NodeAddress] = ()


class Node(KubeObject):
    """Cluster-scoped: its key's namespace is ""."""

    status: NodeStatus = NodeStatus()


# --- traefik.io/v1alpha1 (or traefik.containo.us/v1alpha1) IngressRoute, IngressRouteTCP ----------


class TraefikRoute(KubeModel):
    """One spec.routes[] entry: only its rule (`Host(`a.example`) && PathPrefix(`/`)`) names hosts."""

    match: str = ""


class TraefikRouteSpec(KubeModel):
    routes: Seq[TraefikRoute] = ()


class IngressRoute(KubeObject):
    """Traefik's HTTP router; named by `Host(...)` in its rules (records/traefik.py)."""

    spec: TraefikRouteSpec = TraefikRouteSpec()


class IngressRouteTCP(KubeObject):
    """Traefik's TCP router; named by `HostSNI(...)` in its rules (records/traefik.py)."""

    spec: TraefikRouteSpec = TraefikRouteSpec()


# --- networking.istio.io/v1 (or v1beta1) Gateway, VirtualService -----------------------------------


class IstioServer(KubeModel):
    """One spec.servers[] entry: its hosts, each `host` or `namespace/host`."""

    hosts: Seq[str] = ()


class IstioGatewaySpec(KubeModel):
    selector: FrozenMap = EMPTY_MAP
    """Labels of the ingress gateway Pods; the Service whose spec.selector has them addresses it."""
    servers: Seq[IstioServer] = ()


class IstioGateway(KubeObject):
    spec: IstioGatewaySpec = IstioGatewaySpec()


class VirtualServiceSpec(KubeModel):
    hosts: Seq[str] = ()
    gateways: Seq[str] = ()
    """`name` or `namespace/name` of Istio Gateways; `mesh` is the sidecars, no address."""
    export_to: Seq[str] = ()


class VirtualService(KubeObject):
    spec: VirtualServiceSpec = VirtualServiceSpec()


# --- externaldns.k8s.io/v1alpha1 DNSEndpoint ------------------------------------------------------


class ExternalEndpoint(KubeModel):
    """One spec.endpoints[] entry; `record_ttl` 0 means "the default TTL"."""

    dns_name: str = ""
    targets: Seq[str] = ()
    record_type: str = ""
    record_ttl: int = Field(0, alias="recordTTL")


class DNSEndpointSpec(KubeModel):
    endpoints: Seq[ExternalEndpoint] = ()


class DNSEndpoint(KubeObject):
    spec: DNSEndpointSpec = DNSEndpointSpec()


# --- metav1.Status: error bodies and watch ERROR events -------------------------------------------


class StatusCause(KubeModel):
    reason: str = ""
    message: str = ""
    field: str = ""


class StatusDetails(KubeModel):
    causes: Seq[StatusCause] = ()
    retry_after_seconds: int | None = None


class Status(KubeModel):
    """A metav1.Status; `code` 0 when the body did not say."""

    status: str = ""
    code: int = 0
    reason: str = ""
    message: str = ""
    details: StatusDetails = StatusDetails()
