"""Istio's Gateway and VirtualService (`resources IstioGateway VirtualService`).

The rules of external-dns's istio-gateway and istio-virtualservice sources:

- An Istio Gateway is named by its spec.servers[].hosts: `host` or `namespace/host` (the
  namespace part says which VirtualServices may bind; it is dropped from the name), `*` is no
  name, `*.example.org` is a wildcard. Its hostname annotations add names.
- Its addresses: its `external-dns.alpha.kubernetes.io/target` annotation, else those of the
  ingress gateway Services its spec.selector picks: every Service, in any namespace, whose
  spec.selector has each of the Gateway's selector labels (the Service in front of the gateway
  Pods the Gateway configures); of each, its externalIPs, else its load balancer (IPs, or a CNAME
  to its hostname). An empty selector picks nothing (external-dns would take every Service of the
  cluster: no DNS answer should be that).
- A VirtualService is named by its spec.hosts (`*` is no name; a `namespace/` prefix is dropped)
  and its hostname annotations. Its addresses: its own target annotation, else, per name, those
  of each Gateway in spec.gateways (`name` in its namespace or `namespace/name`; `mesh`, the
  sidecars, has none) that the VirtualService binds to for that name: the VirtualService is
  exported to the Gateway's namespace (spec.exportTo empty, `*`, the namespace, or `.` when they
  share it), and one of the Gateway's hosts admits the name (its namespace part `*`, the
  VirtualService's namespace, or `.` when they share it; its host `*`, the name, or `*.suffix`
  for a name ending in `.suffix`).

external-dns's `external-dns.alpha.kubernetes.io/ingress` annotation (a Gateway addressed by an
Ingress) is not read: a WARNING says so.

The ignore label and the report's prefix are handled by the caller (sources.py's translator).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, TypeVar

import dns.name
import dns.rdata

from k8sgw.kubeapi.models import IstioGateway, KubeObject, Service, VirtualService
from k8sgw.records.annotations import HOSTNAME_ANNOTATIONS, Warner, annotation_targets, annotation_ttl
from k8sgw.records.keys import NameKey
from k8sgw.records.l4routes import annotation_hostnames
from k8sgw.records.rdatas import claims, host_in_zones, prefer_addresses, service_front_rdatas, unique

if TYPE_CHECKING:  # sources.py imports this module
    from k8sgw.records.sources import Claim, ObjectKey, Scope

__all__ = [
    "INGRESS_ANNOTATION",
    "MESH",
    "binds",
    "gateway_refs",
    "istio_gateway_claims",
    "selects",
    "virtualservice_claims",
]

_T = TypeVar("_T")
INGRESS_ANNOTATION = "external-dns.alpha.kubernetes.io/ingress"
MESH = "mesh"  # the reserved gateway name: every sidecar of the mesh, not an ingress

SelectedServices = Callable[[Mapping[str, str]], Iterable[Service]]
"""The Services whose spec.selector has every label of a Gateway's selector (the indexer's)."""


def selects(selector: Mapping[str, str], service: Service) -> bool:
    """The Gateway selector picks the Service: every one of its labels is in the Service's selector."""
    pods = service.spec.selector
    return bool(selector) and all(pods.get(k) == v for k, v in selector.items())


_ITEMS_MAX = 1000
"""Entries of one list read (hosts, gateways, servers): a VirtualService is read hosts × gateways ×
the Gateways' hosts, so a hostile list of 100,000 would hold the indexer for minutes."""


def _capped(items: tuple[_T, ...], field: str, report: Warner) -> tuple[_T, ...]:
    if len(items) <= _ITEMS_MAX:
        return items
    report.warn("%s has %d entries; only the first %d are read", field, len(items), _ITEMS_MAX)
    return items[:_ITEMS_MAX]


def _split(entry: str) -> tuple[str, str] | None:
    """`namespace/host` → (namespace, host); `host` → ("*", host); more slashes → None."""
    parts = entry.strip().split("/")
    if len(parts) == 1:
        return "*", parts[0]
    if len(parts) == 2:
        return parts[0], parts[1]
    return None


def _names(obj: KubeObject, hosts: Iterable[str], scope: Scope, report: Warner) -> list[dns.name.Name]:
    texts = []
    for entry in hosts:
        split = _split(entry)
        if split is None:
            report.warn("host %r is neither host nor namespace/host; skipped", entry)
            continue
        if split[1] and split[1] != "*":
            texts.append(split[1])
    texts.extend(annotation_hostnames(obj, HOSTNAME_ANNOTATIONS))
    return [n for text in texts if (n := host_in_zones(text, scope, "host", report)) is not None]


def gateway_rdatas(gw: IstioGateway, selected: SelectedServices, report: Warner) -> list[dns.rdata.Rdata]:
    """The Gateway's addresses: its target annotation, else its ingress gateway Services'."""
    rdatas = annotation_targets(gw, report)
    if rdatas:
        return rdatas
    if gw.metadata.annotations.get(INGRESS_ANNOTATION, "").strip():
        report.warn("the %s annotation is not read by k8sgw; addressed by its selector", INGRESS_ANNOTATION)
    if not gw.spec.selector:
        report.warn("spec.selector is empty, which picks no ingress gateway Service; no addresses")
        return []
    found: list[dns.rdata.Rdata] = []
    for service in selected(gw.spec.selector):
        found.extend(service_front_rdatas(service, report))
    return prefer_addresses(unique(found))


def istio_gateway_claims(gw: IstioGateway, scope: Scope, selected: SelectedServices, report: Warner) -> tuple[Claim, ...]:
    servers = _capped(gw.spec.servers, "spec.servers", report)
    hosts = _capped(tuple(h for server in servers for h in server.hosts), "spec.servers[].hosts", report)
    names = _names(gw, hosts, scope, report)
    if not names:
        return ()
    return claims(names, gateway_rdatas(gw, selected, report), annotation_ttl(gw, report))


def gateway_refs(vs: VirtualService) -> frozenset[ObjectKey]:
    """The (namespace, name) of each Istio Gateway spec.gateways names (not `mesh`)."""
    out = set()
    for ref in vs.spec.gateways:
        ref = ref.strip()
        if not ref or ref == MESH:
            continue
        namespace, _, name = ref.rpartition("/")
        if name and "/" not in namespace:
            out.add((namespace or vs.metadata.namespace, name))
    return frozenset(out)


def binds(vs: VirtualService, gw: IstioGateway, host: str) -> bool:
    """The VirtualService binds to the Gateway for host (Istio's Gateway `hosts` rule)."""
    vs_ns, gw_ns = vs.metadata.namespace, gw.metadata.namespace
    exported = not vs.spec.export_to or any(
        ns == "*" or ns == gw_ns or (ns == "." and gw_ns == vs_ns) for ns in vs.spec.export_to
    )
    if not exported:
        return False
    host = host.lower().rstrip(".")
    for server in gw.spec.servers[:_ITEMS_MAX]:
        for entry in server.hosts[:_ITEMS_MAX]:
            split = _split(entry)
            if split is None:
                continue
            namespace, pattern = split[0], split[1].lower().rstrip(".")
            if not (namespace == "*" or namespace == vs_ns or (namespace == "." and vs_ns == gw_ns)):
                continue
            if pattern == "*" or pattern == host or (pattern.startswith("*.") and host.endswith(pattern[1:])):
                return True
    return False


def virtualservice_claims(
    vs: VirtualService,
    scope: Scope,
    gateways: Mapping[ObjectKey, IstioGateway],
    selected: SelectedServices,
    ignored: Callable[[KubeObject], bool],
    report: Warner,
) -> tuple[Claim, ...]:
    """Each name → the VirtualService's target annotation, else its bound Gateways' addresses."""
    names = _names(vs, _capped(vs.spec.hosts, "spec.hosts", report), scope, report)
    if not names:
        return ()
    ttl = annotation_ttl(vs, report)
    own = annotation_targets(vs, report)
    if own:
        return claims(names, own, ttl)
    refs = sorted(gateway_refs(vs))
    if len(refs) > _ITEMS_MAX:
        report.warn("spec.gateways has %d entries; only the first %d are read", len(refs), _ITEMS_MAX)
    bound = [gw for key in refs[:_ITEMS_MAX] if (gw := gateways.get(key)) is not None and not ignored(gw)]
    out: list[Claim] = []
    of_gateway: dict[ObjectKey, list[dns.rdata.Rdata]] = {}  # each Gateway's addresses, once
    for name in dict.fromkeys(names):
        text = name.to_text(omit_final_dot=True)
        found: list[dns.rdata.Rdata] = []
        for gw in bound:
            if binds(vs, gw, text):
                if gw.key not in of_gateway:
                    of_gateway[gw.key] = gateway_rdatas(gw, selected, report)
                found.extend(of_gateway[gw.key])
        out.extend((NameKey.of(name), rdata, ttl) for rdata in prefer_addresses(unique(found)))
    return tuple(out)
