"""The kinds k8sgw can watch: where each lives in the API and which model reads it.

One row per kind; a new kind is a model in models.py plus a row here. A kind may list fallback
versions: the watcher tries `version` first and, when the API answers 404, each of
`fallback_versions` in turn (TLSRoute moved to v1 in Gateway API 1.5 and older or experimental
installs serve only v1alpha2). A fallback may name another group too, as `group/version`:
Traefik v3 serves `traefik.io`, Traefik v2 only `traefik.containo.us`. That is why `Kind` is a value and not a constant baked
into the watcher: `at_version` gives the same kind at another version.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from k8sgw.kubeapi.models import (
    DNSEndpoint,
    EndpointSlice,
    Gateway,
    GRPCRoute,
    HTTPRoute,
    Ingress,
    IngressRoute,
    IngressRouteTCP,
    IstioGateway,
    KubeObject,
    Node,
    Service,
    TCPRoute,
    TLSRoute,
    UDPRoute,
    VirtualService,
)

__all__ = [
    "DNSENDPOINT",
    "ENDPOINTSLICE",
    "GATEWAY",
    "GRPCROUTE",
    "HTTPROUTE",
    "INGRESS",
    "INGRESSROUTE",
    "INGRESSROUTETCP",
    "ISTIOGATEWAY",
    "NODE",
    "KINDS",
    "SERVICE",
    "TCPROUTE",
    "TLSROUTE",
    "UDPROUTE",
    "VIRTUALSERVICE",
    "CLAIMING_KINDS",
    "ISTIO_KINDS",
    "TRAEFIK_KINDS",
    "FEEDING_KINDS",
    "ROUTE_KINDS",
    "Kind",
]

ROUTE_KINDS = ("HTTPRoute", "TLSRoute", "GRPCRoute", "TCPRoute", "UDPRoute")
"""The Gateway API route kinds: each takes its addresses from its parent Gateways."""

TRAEFIK_KINDS = ("IngressRoute", "IngressRouteTCP")
"""Traefik's routers: each takes its addresses from its target annotation or the Traefik Service."""

ISTIO_KINDS = ("VirtualService", "IstioGateway")
"""Istio's routing objects: addressed by the ingress gateway Service an Istio Gateway selects."""

CLAIMING_KINDS = (*ROUTE_KINDS, "Ingress", *TRAEFIK_KINDS, *ISTIO_KINDS, "Service", "DNSEndpoint", "Node")
"""The kinds a Corefile's `resources` may name, in ownership order: where several kinds have
records for one name, the first in this order owns it (k8s_gateway's order). Traefik's and
Istio's routers come after the Ingress and before the Service: they are ingress controllers'
own Ingresses (more specific than the Service they route through, as an Ingress is), and the
standard, portable kinds go first. A VirtualService precedes the Istio Gateway it binds to: it
names one application where a Gateway's hosts are often a `*.` wildcard for many."""

FEEDING_KINDS = ("Gateway", "EndpointSlice")
"""Kinds watched only because claiming kinds read them: Gateways for routes, EndpointSlices for
Services with `k8s-gateway.dns/resolve-endpoints`. (Services are watched for Istio and Traefik
too, when `resources` does not name them: then they feed and claim nothing.)"""


@dataclass(frozen=True)
class Kind:
    """One watchable resource.

    Attributes:
        name: the Kind as the Corefile's `resources` and the events name it ("Ingress").
        group: API group; "" for the core group.
        version: API version within the group ("v1").
        plural: the resource name in URLs ("ingresses").
        model: the KubeObject subclass items are validated into.
        fallback_versions: versions to try, in order, when `version` is not served (404).
    """

    name: str
    group: str
    version: str
    plural: str
    model: type[KubeObject]
    fallback_versions: tuple[str, ...] = ()

    @property
    def versions(self) -> tuple[str, ...]:
        """Every version to try, preferred first."""
        return (self.version, *self.fallback_versions)

    def at_version(self, version: str) -> Kind:
        """The same kind at another API version: `v1beta1`, or `group/version` in another group."""
        group, _, version = version.rpartition("/")
        return dataclasses.replace(self, group=group or self.group, version=version)

    @property
    def api_version(self) -> str:
        """ "networking.k8s.io/v1", or "v1" for the core group."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def resource(self) -> str:
        """plural.group as RBAC rules and kubectl name it ("ingresses.networking.k8s.io", "services")."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def collection_path(self, namespace: str | None = None) -> str:
        """The collection URL path; all namespaces unless `namespace` is given."""
        prefix = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if namespace:
            prefix = f"{prefix}/namespaces/{namespace}"
        return f"{prefix}/{self.plural}"


_GATEWAY_API = "gateway.networking.k8s.io"

INGRESS = Kind("Ingress", "networking.k8s.io", "v1", "ingresses", Ingress)
SERVICE = Kind("Service", "", "v1", "services", Service)
ENDPOINTSLICE = Kind("EndpointSlice", "discovery.k8s.io", "v1", "endpointslices", EndpointSlice)
GATEWAY = Kind("Gateway", _GATEWAY_API, "v1", "gateways", Gateway)
HTTPROUTE = Kind("HTTPRoute", _GATEWAY_API, "v1", "httproutes", HTTPRoute)
GRPCROUTE = Kind("GRPCRoute", _GATEWAY_API, "v1", "grpcroutes", GRPCRoute)
# v1 from Gateway API 1.5 (standard channel); v1alpha2 before that (experimental channel).
TLSROUTE = Kind("TLSRoute", _GATEWAY_API, "v1", "tlsroutes", TLSRoute, fallback_versions=("v1alpha2",))
# Only in the experimental channel, at v1alpha2.
TCPROUTE = Kind("TCPRoute", _GATEWAY_API, "v1alpha2", "tcproutes", TCPRoute)
UDPROUTE = Kind("UDPRoute", _GATEWAY_API, "v1alpha2", "udproutes", UDPRoute)
NODE = Kind("Node", "", "v1", "nodes", Node)  # cluster-scoped
_TRAEFIK_V2 = "traefik.containo.us/v1alpha1"  # Traefik v2 before 2.10 serves only this group
INGRESSROUTE = Kind("IngressRoute", "traefik.io", "v1alpha1", "ingressroutes", IngressRoute, (_TRAEFIK_V2,))
INGRESSROUTETCP = Kind("IngressRouteTCP", "traefik.io", "v1alpha1", "ingressroutetcps", IngressRouteTCP, (_TRAEFIK_V2,))
# v1 from Istio 1.22; v1beta1 before that (both serve the same objects).
ISTIOGATEWAY = Kind("IstioGateway", "networking.istio.io", "v1", "gateways", IstioGateway, ("v1beta1",))
VIRTUALSERVICE = Kind("VirtualService", "networking.istio.io", "v1", "virtualservices", VirtualService, ("v1beta1",))
DNSENDPOINT = Kind("DNSEndpoint", "externaldns.k8s.io", "v1alpha1", "dnsendpoints", DNSEndpoint)

KINDS: dict[str, Kind] = {  # every name in CLAIMING_KINDS and FEEDING_KINDS
    kind.name: kind
    for kind in (
        INGRESS, SERVICE, ENDPOINTSLICE, GATEWAY, HTTPROUTE, GRPCROUTE, TLSROUTE, TCPROUTE, UDPROUTE, DNSENDPOINT, NODE,
        INGRESSROUTE, INGRESSROUTETCP, ISTIOGATEWAY, VIRTUALSERVICE,
    )
}
