"""Per kind: which DNS records a Kubernetes object claims, for one k8s_gateway instance.

A claim is (owner, rdata, ttl or None); the owner is a NameKey (keys.py). Objects arrive already
reduced by kubeapi/models.py; this module turns them into claims inside the configured zones and
drops everything else. A `*.` host is kept as the literal wildcard owner and is expanded at answer
time (RFC 4592).

Some kinds depend on others: a route's addresses are its parent Gateways', a Service with
`k8s-gateway.dns/resolve-endpoints: "true"` answers with its EndpointSlices' ready addresses. The
indexer (store.py) owns those objects and hands them in as `Related`; translation stays a pure
function of its inputs, so it is table-tested without a store.

Load-balancer and Gateway hostnames become CNAME records: k8sgw never resolves a name while
answering a query. A name cannot carry a CNAME and other data (RFC 1034 §3.6.2), so where an
object has both addresses and hostnames the addresses win.

`translate` is the boundary the indexer calls: whatever one object holds, it returns claims (maybe
none) and logs what was wrong at WARNING with the object's kind/namespace/name; it never raises.
It also enforces what no object may claim: a CNAME at a zone apex, anything at or below a
nameserver host, an RRset larger than any reply can carry.

Must not import trio or httpx.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CNAME
import dns.rdtypes.ANY.TXT

from k8sgw.kubeapi.kinds import CLAIMING_KINDS, ROUTE_KINDS
from k8sgw.kubeapi.models import (
    DNSEndpoint,
    EndpointSlice,
    Gateway,
    Ingress,
    IngressRoute,
    IngressRouteTCP,
    IstioGateway,
    KubeObject,
    Node,
    ParentReference,
    Route,
    Service,
    VirtualService,
)
from k8sgw.labels import LabelSelector, parse_label_selector
from k8sgw.records.annotations import (
    HOSTNAME_ANNOTATIONS,
    TARGET_ANNOTATION,
    annotation_targets,
    annotation_ttl,
    externalname_rdatas,
)
from k8sgw.records.hostnames import (
    Rejected,
    address_rdata,
    hostname,
    in_each_zone,
    parse_address,
    parse_hostname,
    parse_uint16,
)
from k8sgw.records.istio import istio_gateway_claims, virtualservice_claims
from k8sgw.records.keys import NameKey
from k8sgw.records.l4routes import with_annotation_hostnames
from k8sgw.records.nodes import node_claims, node_names
from k8sgw.records.rdatas import addresses as _addresses
from k8sgw.records.rdatas import claims as _claims
from k8sgw.records.rdatas import cname as _cname
from k8sgw.records.rdatas import host_in_zones as _host_in_zones
from k8sgw.records.rdatas import load_balancer as _load_balancer
from k8sgw.records.rdatas import prefer_addresses as _prefer_addresses
from k8sgw.records.rdatas import unique as _unique
from k8sgw.records.reasons import Note, Notes, Why, host_text, note
from k8sgw.records.traefik import traefik_claims

__all__ = [
    "wants_endpoints",
    "GATEWAY_API_GROUP",
    "HOSTNAME_ANNOTATIONS",
    "IGNORE_LABEL",
    "PRECEDENCE",
    "RESOLVE_ENDPOINTS_ANNOTATION",
    "ROUTE_KINDS",
    "SERVICE_NAME_LABEL",
    "TRANSLATORS",
    "Claim",
    "LogLine",
    "Report",
    "RRSET_BYTES_MAX",
    "LabelSelector",
    "Related",
    "Scope",
    "address_rdata",
    "dnsendpoint_claims",
    "hostname_in_zones",
    "ignored",
    "ingress_claims",
    "intersect_hostnames",
    "log_held",
    "nameserver_rdatas",
    "parse_hostname",
    "parse_label_selector",
    "route_claims",
    "route_gateway_keys",
    "service_claims",
    "service_names",
    "slice_service_key",
    "translate",
    "translate_noted",
    "translation_size",
]

logger = logging.getLogger(__name__)

ObjectKey = tuple[str, str]  # (namespace, name)
_T = TypeVar("_T")
Claim = tuple[NameKey, dns.rdata.Rdata, int | None]
"""(owner, rdata, TTL); TTL None = the k8s_gateway `ttl`."""

# The first kind in this order that has records for a name owns it (k8s_gateway's order).
PRECEDENCE = CLAIMING_KINDS

RESOLVE_ENDPOINTS_ANNOTATION = "k8s-gateway.dns/resolve-endpoints"
IGNORE_LABEL = "k8s-gateway.dns/ignore"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
GATEWAY_API_GROUP = "gateway.networking.k8s.io"

_MAX_TTL = 2**31 - 1  # RFC 2181 §8
_TXT_CHUNK = 255  # one <character-string> (RFC 1035 §3.3)
_RDATA_MAX = 65535  # RDLENGTH is 16 bits (RFC 1035 §3.2.1)
RRSET_BYTES_MAX = 65535 - 512
"""Bytes an RRset may take in a reply: a DNS message is at most 65,535 bytes (its length prefix over
TCP is 16 bits), and 512 are left for the header, the longest question and an OPT record."""
_WARNINGS_PER_OBJECT = 10


# --- reporting --------------------------------------------------------------------------------


LogLine = tuple[str, tuple[object, ...]]
"""A WARNING not yet logged: (format, args)."""


class Report:
    """The warnings and notes of one object's translation, each warning naming kind/namespace/name.

    At most ten lines per translation, then one line with the count of the rest: an object with
    10,000 bad addresses must not write 10,000 lines at every change. With `held`, lines are
    kept there instead of logged (a translation in a worker thread: log handlers may wake tasks
    of the event loop, which only its own thread may do); `log_held` logs them later.
    """

    def __init__(self, kind: str, obj: KubeObject, held: list[LogLine] | None = None) -> None:
        self.prefix = f"{kind} {obj.metadata.namespace}/{obj.metadata.name}"
        self.count = 0
        self._held = held
        self.notes: list[Note] = []
        self.rejected: list[str] = []  # the values warned about since the last `take_rejected`

    def warn(self, message: str, *args: object) -> None:
        self.count += 1
        if self.count <= _WARNINGS_PER_OBJECT:
            self._log("%s: " + message, (self.prefix, *args))

    def note(self, name: dns.name.Name | NameKey | str, why: Why, detail: str | None = None) -> None:
        """Keep why `name` answers from this object, or why it does not (see reasons.py)."""
        self.notes.append(note(name, why, detail))

    def note_all(self, names: Iterable[dns.name.Name | NameKey | str], why: Why, detail: str | None = None) -> None:
        for name in names:
            self.note(name, why, detail)

    def reject(self, text: str) -> None:
        """Remember a value that was warned about, for the note that says why nothing answers."""
        if len(self.rejected) < 3:
            self.rejected.append(text)

    def take_rejected(self) -> str | None:
        text = "; ".join(self.rejected) or None
        self.rejected = []
        return text

    def close(self) -> None:
        if self.count > _WARNINGS_PER_OBJECT:
            self._log("%s: %d more problems like these, not shown", (self.prefix, self.count - _WARNINGS_PER_OBJECT))
        self.count = 0

    def _log(self, message: str, args: tuple[object, ...]) -> None:
        if self._held is None:
            logger.warning(message, *args)
        else:
            self._held.append((message, args))


def log_held(lines: Iterable[LogLine]) -> None:
    """Log what a Report held (on the event loop's thread)."""
    for message, args in lines:
        logger.warning(message, *args)


class _Silent(Report):
    """The report of an object k8sgw acts as if it did not exist (ignored, filtered): the names it
    mentions are read to be noted, without warnings about them."""

    def warn(self, message: str, *args: object) -> None:
        pass

    def note(self, name: dns.name.Name | NameKey | str, why: Why, detail: str | None = None) -> None:
        pass


def _why_nothing(report: Report, default: Why) -> tuple[Why, str | None]:
    """`default`, or INVALID_ADDRESS when what the object reported was warned about as invalid."""
    rejected = report.take_rejected()
    return (Why.INVALID_ADDRESS, rejected) if rejected else (default, None)


# --- scope ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scope:
    """What translation needs from a k8s_gateway instance's configuration.

    Attributes:
        zones: the zones answered.
        ingress_classes: only Ingresses whose spec.ingressClassName is one of these; empty = all.
        gateway_classes: only routes via Gateways whose spec.gatewayClassName is one of these.
        service_selectors: a Service must match at least one (OR); empty = all Services.
        nameserver_hosts: `<apex>.<zone>` and `<secondary>.<zone>`, each with the (namespace, name)
            of the nameserver Service whose addresses it has; no object may claim them or names
            below them (the Service's own default name is one of them: dropped without a word).
        node_address_type: `nodeAddressType`, the type of Node address answered.
        traefik_service: `traefikService`, the (namespace, name) of the Service in front of
            Traefik: the addresses of IngressRoutes without a target annotation.
    """

    zones: tuple[dns.name.Name, ...]
    ingress_classes: frozenset[str] = frozenset()
    gateway_classes: frozenset[str] = frozenset()
    service_selectors: tuple[LabelSelector, ...] = ()
    nameserver_hosts: Mapping[NameKey, ObjectKey | None] = field(default_factory=dict)
    node_address_type: str = "InternalIP"
    traefik_service: ObjectKey | None = None
    apexes: frozenset[NameKey] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "apexes", frozenset(NameKey.of(z) for z in self.zones))

    def zone_of(self, name: dns.name.Name) -> dns.name.Name | None:
        """The longest configured zone containing name (a more specific zone wins), or None."""
        best = None
        for zone in self.zones:
            if name.is_subdomain(zone) and (best is None or len(zone) > len(best)):
                best = zone
        return best


def _empty_slices(key: ObjectKey) -> Iterable[EndpointSlice]:
    return ()


def _no_services(selector: Mapping[str, str]) -> Iterable[Service]:
    return ()


def _no_service(key: ObjectKey) -> Service | None:
    return None


@dataclass(frozen=True)
class Related:
    """Objects of other kinds that a translation reads, owned by the indexer.

    Attributes:
        gateways: every Gateway by (namespace, name).
        endpoint_slices: the EndpointSlices of a Service, by the Service's (namespace, name).
        istio_gateways: every Istio Gateway by (namespace, name).
        selected_services: the Services an Istio Gateway's selector picks (istio.selects).
        service: a Service by (namespace, name), if kept whole (the Traefik Service is).
    """

    gateways: Mapping[ObjectKey, Gateway] = field(default_factory=dict)
    endpoint_slices: Callable[[ObjectKey], Iterable[EndpointSlice]] = _empty_slices
    istio_gateways: Mapping[ObjectKey, IstioGateway] = field(default_factory=dict)
    selected_services: Callable[[Mapping[str, str]], Iterable[Service]] = _no_services
    service: Callable[[ObjectKey], Service | None] = _no_service


NO_RELATED = Related()


# --- small helpers ------------------------------------------------------------------------------


def ignored(obj: KubeObject) -> bool:
    """The object carries `k8s-gateway.dns/ignore: "true"`: k8sgw acts as if it did not exist."""
    return obj.metadata.labels.get(IGNORE_LABEL, "").strip().lower() == "true"


def hostname_in_zones(text: str, scope: Scope) -> dns.name.Name | None:
    """A host such as `web.example.org` or `*.web.example.org` as a Name, if inside a zone."""
    name = parse_hostname(text)
    return name if name is not None and scope.zone_of(name) is not None else None


FROM_TARGET = f"records from {TARGET_ANNOTATION}"
"""The detail of a supplying note whose records are external-dns's target annotation's."""


def _targets_or(
    obj: KubeObject, report: Report, own: Callable[[], list[dns.rdata.Rdata]]
) -> tuple[list[dns.rdata.Rdata], str | None]:
    """The object's target annotation, else its `own` addresses; with FROM_TARGET when the
    annotation supplied them (for the supplying note)."""
    if targets := annotation_targets(obj, report):
        return targets, FROM_TARGET
    return own(), None


def _quiet_names(obj: KubeObject, names: Callable[[Report], Iterable[dns.name.Name | str]]) -> list[dns.name.Name | str]:
    """The names an object mentions, read without warnings (for an object k8sgw acts as if absent)."""
    return list(names(_Silent("", obj)))


# --- Ingress ----------------------------------------------------------------------------------


def ingress_claims(obj: Ingress, scope: Scope, related: Related = NO_RELATED, report: Report | None = None) -> tuple[Claim, ...]:
    """Every spec.rules[].host inside a zone → the load balancer IPs (or hostname, as CNAME)."""
    report = report or Report("Ingress", obj)

    def hosts(r: Report) -> list[dns.name.Name]:
        return [n for rule in obj.spec.rules if rule.host and (n := _host_in_zones(rule.host, scope, "host", r))]

    if ignored(obj):
        report.note_all(_quiet_names(obj, hosts), Why.IGNORED_LABEL)
        return ()
    if scope.ingress_classes and obj.spec.ingress_class_name not in scope.ingress_classes:
        wanted = ", ".join(sorted(scope.ingress_classes))
        detail = f"ingressClassName {obj.spec.ingress_class_name!r}, not one of {wanted}"
        report.note_all(_quiet_names(obj, hosts), Why.FILTERED_INGRESS_CLASS, detail)
        return ()
    names = hosts(report)
    if not names:
        return ()
    rdatas, source = _targets_or(obj, report, lambda: _load_balancer(obj.status.load_balancer, report))
    if not rdatas:
        report.note_all(names, *_why_nothing(report, Why.NO_LOAD_BALANCER_ADDRESS))
    return _claims(names, rdatas, annotation_ttl(obj, report), report=report, why=Why.INGRESS_HOST, detail=source)


# --- Service ----------------------------------------------------------------------------------


def _default_service_names(obj: Service, scope: Scope, report: Report) -> list[dns.name.Name]:
    """`name.namespace.<zone>`: Kubernetes keeps both to DNS labels, but a fake or old API may not."""
    labels = [obj.metadata.name.lower(), obj.metadata.namespace.lower()]
    if not all(_DNS_LABEL.fullmatch(label) for label in labels):
        report.warn("name.namespace %r is not two DNS labels; the Service has no default name", ".".join(labels))
        return []
    relative = dns.name.Name([label.encode() for label in labels])
    return in_each_zone(relative, scope.zones, report)


_DNS_LABEL = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?")


def service_names(obj: Service, scope: Scope, report: Report | None = None) -> list[dns.name.Name]:
    """The names a Service is answered under.

    A hostname annotation (`coredns.io/hostname`, else `external-dns.alpha.kubernetes.io/hostname`)
    replaces the default `name.namespace.<zone>`. It is a comma-separated list; each entry is
    trimmed, lower-cased and must be an RFC 1123 host name, optionally `*.`-prefixed (invalid ones
    are logged at WARNING and ignored). An entry inside a zone is taken as it is; any other gets
    each zone appended (a short name), unless that makes it too long for a DNS name.
    """
    report = report or Report("Service", obj)
    annotations = obj.metadata.annotations
    raw = next((annotations[a] for a in HOSTNAME_ANNOTATIONS if annotations.get(a, "").strip()), None)
    if raw is None:
        return _default_service_names(obj, scope, report)
    names: dict[NameKey, dns.name.Name] = {}
    for entry in raw.split(","):
        if not entry.strip():
            continue
        try:
            absolute = hostname(entry)
        except Rejected as why:
            report.warn("hostname %r %s; ignored", entry.strip(), why)
            report.note(entry, Why.INVALID_HOSTNAME, f"hostname annotation entry {entry.strip()!r} {why}")
            continue
        if scope.zone_of(absolute) is not None:
            candidates = [absolute]
        else:
            candidates = in_each_zone(absolute.relativize(dns.name.root), scope.zones, report)
        for name in candidates:
            names.setdefault(NameKey.of(name), name)
    return list(names.values())


def wants_endpoints(obj: Service) -> bool:
    return obj.metadata.annotations.get(RESOLVE_ENDPOINTS_ANNOTATION, "").strip().lower() == "true"


def _ready_endpoint_addresses(slices: Iterable[EndpointSlice], report: Report) -> list[dns.rdata.Rdata]:
    """Ready addresses of every (not ignored) IPv4/IPv6 slice of the Service, duplicates removed."""
    values: list[str] = []
    for eps in sorted(slices, key=lambda s: s.key):
        if ignored(eps) or eps.address_type not in ("IPv4", "IPv6"):
            continue
        for endpoint in eps.endpoints:
            if endpoint.conditions.ready is False:  # null means ready, as the EndpointSlice API says
                continue
            values.extend(endpoint.addresses)
    return _addresses(values, "EndpointSlice address", report)


def service_claims(obj: Service, scope: Scope, related: Related = NO_RELATED, report: Report | None = None) -> tuple[Claim, ...]:
    """A Service's names → its addresses.

    - external-dns's target annotation (any type): its IPs, or a CNAME to its host name;
    - else `k8s-gateway.dns/resolve-endpoints: "true"` (any type, headless too): the ready
      addresses of its EndpointSlices;
    - else an ExternalName Service: a CNAME to spec.externalName (its externalIPs when set);
    - else a LoadBalancer: spec.externalIPs when set, else the load balancer IPs in status, else a
      CNAME to the load balancer hostname;
    - anything else: nothing.

    Services that match none of `scope.service_selectors` (when there are any) claim nothing.
    """
    report = report or Report("Service", obj)
    annotation = _hostname_annotation(obj)
    answering = obj.spec.type in ("LoadBalancer", "ExternalName") or TARGET_ANNOTATION in obj.metadata.annotations
    if not (annotation or answering or wants_endpoints(obj)):
        return ()  # names nothing: no note, or every ClusterIP Service would have one

    def names(r: Report) -> list[dns.name.Name]:
        return service_names(obj, scope, r)

    if ignored(obj):
        report.note_all(_quiet_names(obj, names), Why.IGNORED_LABEL)
        return ()
    if scope.service_selectors and not any(s.matches(obj.metadata.labels) for s in scope.service_selectors):
        labels = ",".join(f"{k}={v}" for k, v in sorted(obj.metadata.labels.items())) or "none"
        report.note_all(_quiet_names(obj, names), Why.FILTERED_SERVICE_LABELS, f"labels {_short(labels)}")
        return ()
    nothing, source = Why.NO_LOAD_BALANCER_ADDRESS, None
    if targets := annotation_targets(obj, report):
        rdatas, source = targets, FROM_TARGET  # external-dns's target annotation replaces whatever the Service has
    elif wants_endpoints(obj):
        rdatas, nothing = _ready_endpoint_addresses(related.endpoint_slices(obj.key), report), Why.NO_READY_ENDPOINTS
    elif obj.spec.type == "ExternalName":
        rdatas, source = externalname_rdatas(obj, report), "ExternalName: spec.externalName (or its externalIPs)"
        nothing = Why.EXTERNALNAME_UNUSABLE
    elif obj.spec.type != "LoadBalancer":
        report.note_all(_quiet_names(obj, names), Why.NOT_LOAD_BALANCER, f"type {obj.spec.type or 'ClusterIP'}")
        return ()
    elif obj.spec.external_ips:
        rdatas = _addresses(obj.spec.external_ips, "externalIP", report)
    else:
        rdatas = _load_balancer(obj.status.load_balancer, report)
    found = names(report)
    if not rdatas:
        report.note_all(found, *_why_nothing(report, nothing))
        return ()
    why = Why.SERVICE_ANNOTATION if annotation else Why.SERVICE_DEFAULT_NAME
    detail = "; ".join(d for d in (annotation, source) if d) or None
    return _claims(found, rdatas, annotation_ttl(obj, report), report=report, why=why, detail=detail)


def _hostname_annotation(obj: Service) -> str | None:
    """The hostname annotation a Service's names come from, if any."""
    annotations = obj.metadata.annotations
    return next((a for a in HOSTNAME_ANNOTATIONS if annotations.get(a, "").strip()), None)


def slice_service_key(obj: EndpointSlice) -> ObjectKey | None:
    """The (namespace, name) of the Service an EndpointSlice belongs to, from its label."""
    service = obj.metadata.labels.get(SERVICE_NAME_LABEL)
    return (obj.metadata.namespace, service) if service else None


def nameserver_rdatas(obj: Service) -> tuple[dns.rdata.Rdata, ...]:
    """A/AAAA of the nameserver's own Service: externalIPs, else load balancer IPs.

    `<apex>.<zone>` (and `<secondary>.<zone>`) take these whatever the Service's type,
    annotations, labels and filters: it is the server's own address, the glue of the zone's NS.
    """
    values = obj.spec.external_ips or tuple(lb.ip for lb in obj.status.load_balancer.ingress)
    report = Report("nameserver Service", obj)
    try:
        return tuple(_addresses(values, "address", report))
    finally:
        report.close()


# --- Gateway API routes ------------------------------------------------------------------------


def _parent_gateway_key(ref: ParentReference, route_namespace: str) -> ObjectKey | None:
    """A parentRef's Gateway (namespace, name), or None when it points at something else."""
    group = GATEWAY_API_GROUP if ref.group is None else ref.group
    kind = "Gateway" if ref.kind is None else ref.kind
    if group != GATEWAY_API_GROUP or kind != "Gateway" or not ref.name:
        return None
    return (ref.namespace or route_namespace, ref.name)  # per ref: no namespace leaks between refs


def route_gateway_keys(obj: Route) -> frozenset[ObjectKey]:
    """Every Gateway a route names in spec.parentRefs (what the indexer keeps a reverse index of)."""
    keys = (_parent_gateway_key(ref, obj.metadata.namespace) for ref in obj.spec.parent_refs)
    return frozenset(k for k in keys if k is not None)


def _ref_identity(ref: ParentReference, route_namespace: str) -> tuple[str | int | None, ...]:
    return (
        GATEWAY_API_GROUP if ref.group is None else ref.group,
        "Gateway" if ref.kind is None else ref.kind,
        ref.namespace or route_namespace,
        ref.name,
        ref.section_name or None,
        ref.port,
    )


def _accepted(obj: Route, ref: ParentReference) -> bool:
    """Whether status.parents (when present) says the parent accepted the route."""
    if not obj.status.parents:
        return True  # no controller has reported yet: like k8s_gateway, trust spec
    ns = obj.metadata.namespace
    wanted = _ref_identity(ref, ns)
    for parent in obj.status.parents:
        if _ref_identity(parent.parent_ref, ns) == wanted:
            return any(c.type == "Accepted" and c.status == "True" for c in parent.conditions)
    return False


def intersect_hostnames(route: str, listener: str | None) -> str | None:
    """The hostnames a route hostname and a listener hostname both match (Gateway API rules).

    `*.example.org` matches any name below example.org (one or more labels), not example.org
    itself. The more specific of the two is returned; None when they do not overlap. A listener
    without hostname matches everything.
    """
    if listener is None:
        return route
    if route == listener:
        return route
    route_wild, listener_wild = route.startswith("*."), listener.startswith("*.")
    if listener_wild and route.endswith(listener[1:]):
        return route
    if route_wild and listener.endswith(route[1:]):
        return listener
    return None


def _gateway_rdatas(gw: Gateway, report: Report) -> list[dns.rdata.Rdata]:
    out: list[dns.rdata.Rdata] = []
    for address in gw.status.addresses:
        value = address.value.strip()
        if not value:
            continue
        try:
            if address.type in (None, "", "IPAddress"):
                rdata = parse_address(value)
            elif address.type == "Hostname":
                rdata = _cname(hostname(value))
            else:
                continue  # NamedAddress and implementation-specific types say nothing DNS can use
        except Rejected as why:
            report.warn(
                "parent Gateway %s/%s: address %r (%s) %s; ignored", *gw.key, value, address.type or "IPAddress", why
            )
            report.reject(f"address {value!r} {why}")
            continue
        out.append(rdata)
    return _unique(out)


_GATEWAY_API_MAX_ITEMS = {"spec.hostnames": 16, "spec.parentRefs": 32, "spec.listeners": 64}
"""The CRDs' maxItems: an API server refuses more, so more is hostile, and translation reads
hostnames × parents × listeners."""


def _within_limit(items: Sequence[_T], field: str, report: Report) -> Sequence[_T]:
    limit = _GATEWAY_API_MAX_ITEMS[field.rsplit(" ", 1)[-1]]
    if len(items) <= limit:
        return items
    report.warn("%s has %d items, more than the Gateway API allows (%d); the rest are ignored", field, len(items), limit)
    return items[:limit]


def route_claims(
    obj: Route, scope: Scope, related: Related = NO_RELATED, kind: str = "Route", report: Report | None = None
) -> tuple[Claim, ...]:
    """HTTPRoute / TLSRoute / GRPCRoute: its hostnames → the addresses of its parent Gateways.

    Per spec.parentRefs entry that names a Gateway (default group and kind; namespace the route's
    unless given, per ref): skipped when the Gateway is unknown, ignored, of a class outside
    `scope.gateway_classes`, or when status.parents is present and does not say Accepted=True for
    that ref. `sectionName` picks the one listener of that name. Each route hostname is intersected
    with each listener's hostname (wildcard-aware); a route without hostnames takes the listener's.
    A Gateway `Hostname` address is a CNAME target; addresses win over hostnames at a name.
    """
    report = report or Report(kind, obj)
    if ignored(obj):
        report.note_all(_quiet_names(obj, lambda r: _route_hostnames(obj, scope, r)[1]), Why.IGNORED_LABEL)
        return ()
    per_name: dict[NameKey, tuple[dns.name.Name, dict[dns.rdata.Rdata, None], str]] = {}
    hostnames, mentioned = _route_hostnames(obj, scope, report)
    if obj.spec.hostnames and not hostnames:
        return ()  # every hostname was bad: the listeners' would be a name nobody asked for
    parsed: dict[str, dns.name.Name | None] = {}  # intersections repeat across parents
    for ref in _within_limit(obj.spec.parent_refs, "spec.parentRefs", report):
        gw_key = _parent_gateway_key(ref, obj.metadata.namespace)
        if gw_key is None:
            continue
        gw = related.gateways.get(gw_key)
        parent = f"Gateway {gw_key[0]}/{gw_key[1]}"
        if gw is None or ignored(gw):
            detail = f"{parent} not found" if gw is None else f"{parent} carries {IGNORE_LABEL}"
            report.note_all(mentioned, Why.GATEWAY_MISSING, detail)
            continue
        # A route without hostnames mentions its listeners' (when it names no hostnames, the
        # listeners' hostnames are what it would answer).
        own = gw.spec.listeners[: _GATEWAY_API_MAX_ITEMS["spec.listeners"]]
        named = mentioned if hostnames else [n for lst in own if lst.hostname and (n := hostname_in_zones(lst.hostname, scope))]
        if scope.gateway_classes and gw.spec.gateway_class_name not in scope.gateway_classes:
            wanted = ", ".join(sorted(scope.gateway_classes))
            detail = f"{parent} has gatewayClassName {gw.spec.gateway_class_name!r}, not one of {wanted}"
            report.note_all(named, Why.FILTERED_GATEWAY_CLASS, detail)
            continue
        if not _accepted(obj, ref):
            report.note_all(named, Why.ROUTE_NOT_ACCEPTED, f"{parent}{_section(ref)} has not accepted it")
            continue
        listeners = _within_limit(gw.spec.listeners, f"parent Gateway {gw_key[0]}/{gw_key[1]} spec.listeners", report)
        if ref.section_name:
            listeners = tuple(lst for lst in listeners if lst.name == ref.section_name)
            if not listeners:
                known = ", ".join(lst.name for lst in gw.spec.listeners) or "none"
                detail = f"sectionName {ref.section_name!r} is not a listener of {parent} (listeners: {known})"
                report.note_all(named, Why.SECTION_NAME_MISMATCH, detail)
                continue
        elif not listeners:
            listeners = (None,)  # a Gateway that lists no listeners: as one without hostname
        names: list[tuple[str, str]] = []  # (name, through which listener)
        for listener in listeners:
            listener_host = listener.hostname.strip().rstrip(".").lower() if listener and listener.hostname else None
            through = f"listener {listener.name if listener else '(none)'} ({listener_host or 'any host'}) of {parent}"
            if not hostnames:
                if listener_host:
                    names.append((listener_host, through))
                continue
            # The listener alone as detail: shared (interned) by every route on it.
            names.extend((n, through) for h in hostnames if (n := intersect_hostnames(h, listener_host)) is not None)
        if not names:
            hosts = ", ".join(sorted({lst.hostname or "any host" for lst in listeners if lst is not None})) or "any host"
            report.note_all(named, Why.LISTENER_HOSTNAME_MISMATCH, f"listener hostnames of {parent}: {hosts}")
            continue
        rdatas, source = _targets_or(gw, report, partial(_gateway_rdatas, gw, report))
        if not rdatas:
            rejected = report.take_rejected()
            report.note_all(named, Why.GATEWAY_NO_ADDRESS, f"{parent}: {rejected}" if rejected else parent)
            continue
        for text, through in names:
            if text not in parsed:
                parsed[text] = hostname_in_zones(text, scope)
            if (name := parsed[text]) is not None:
                via = f"{through}; {source} of the Gateway" if source else through
                bucket = per_name.setdefault(NameKey.of(name), (name, {}, via))[1]
                bucket.update(dict.fromkeys(rdatas))
    claims: list[Claim] = []
    ttl = annotation_ttl(obj, report) if per_name else None
    for name, rdatas_at, through in per_name.values():
        claims.extend(
            _claims([name], _prefer_addresses(list(rdatas_at)), ttl, report=report, why=Why.ROUTE_HOSTNAME, detail=through)
        )
    return tuple(claims)


def _route_hostnames(obj: Route, scope: Scope, report: Report) -> tuple[list[str], list[dns.name.Name]]:
    """spec.hostnames: the valid ones as text (bad ones warned about and noted), and those inside
    a zone as names (those outside noted)."""
    hostnames: list[str] = []
    mentioned: list[dns.name.Name] = []
    for text in _within_limit(obj.spec.hostnames, "spec.hostnames", report):
        if not text.strip():
            continue
        try:
            name = hostname(text)
        except Rejected as why:
            report.warn("hostname %r %s; skipped", text, why)
            report.note(text, Why.INVALID_HOSTNAME, f"hostname {text.strip()!r} {why}")
            continue
        hostnames.append(host_text(text))
        if scope.zone_of(name) is None:
            report.note(name, Why.OUTSIDE_ZONES)
        else:
            mentioned.append(name)
    return hostnames, mentioned


def _section(ref: ParentReference) -> str:
    return f" (sectionName {ref.section_name})" if ref.section_name else ""


def _route_translator(kind: str) -> Translator:
    def translate(obj: Route, scope: Scope, related: Related = NO_RELATED, report: Report | None = None) -> tuple[Claim, ...]:
        return route_claims(obj, scope, related, kind, report)

    translate.__name__ = f"{kind.lower()}_claims"
    return translate


# --- DNSEndpoint -------------------------------------------------------------------------------


def _txt(text: str) -> dns.rdata.Rdata:
    data = text.encode()
    chunks = [data[i : i + _TXT_CHUNK] for i in range(0, len(data), _TXT_CHUNK)] or [b""]
    if len(data) + len(chunks) > _RDATA_MAX:
        raise Rejected(f"is {len(data)} bytes, more than one record can hold (65,535 bytes of rdata)")
    return dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT, chunks)


def _endpoint_rdata(record_type: str, target: str) -> dns.rdata.Rdata:
    """One DNSEndpoint target as rdata of `record_type`.

    Raises:
        Rejected: it is not valid for the type.
    """
    if record_type in ("A", "AAAA"):
        rdata = parse_address(target)
        if dns.rdatatype.to_text(rdata.rdtype) != record_type:
            raise Rejected(f"is an {dns.rdatatype.to_text(rdata.rdtype)} address, not {record_type}")
        return rdata
    if record_type == "CNAME":
        name = hostname(target, underscores=True)
        if name.labels[0] == b"*":
            raise Rejected("is a wildcard, which cannot be a CNAME target")
        return _cname(name)
    if record_type == "TXT":
        return _txt(target)
    fields = target.split()  # MX and SRV
    wanted = ("preference",) if record_type == "MX" else ("priority", "weight", "port")
    if len(fields) != len(wanted) + 1:
        raise Rejected(f"is not {' '.join(w.upper() for w in wanted)} HOST")
    numbers = [parse_uint16(f, what) for f, what in zip(fields, wanted, strict=False)]
    # "." is the "no service" target (RFC 2782, RFC 7505)
    host = dns.name.root if fields[-1] == "." else hostname(fields[-1], underscores=True)
    try:
        return dns.rdata.from_text(dns.rdataclass.IN, record_type, " ".join([*map(str, numbers), host.to_text()]))
    except (dns.exception.DNSException, ValueError) as exc:
        raise Rejected(f"is not a valid {record_type} ({exc})") from None


SUPPORTED_RECORD_TYPES = ("A", "AAAA", "CNAME", "TXT", "MX", "SRV")


def dnsendpoint_claims(
    obj: DNSEndpoint, scope: Scope, related: Related = NO_RELATED, report: Report | None = None
) -> tuple[Claim, ...]:
    """Each spec.endpoints[] entry → records of its recordType at its own dnsName only.

    recordTTL > 0 sets the TTL of those records. Targets that are not valid for the type, and
    types other than A, AAAA, CNAME, TXT, MX and SRV, are logged at WARNING (with namespace/name)
    and skipped. TXT targets longer than 255 bytes are split into 255-byte strings.
    """
    report = report or Report("DNSEndpoint", obj)
    if ignored(obj):
        quiet = (parse_hostname(e.dns_name, underscores=True) for e in obj.spec.endpoints)
        report.note_all((n for n in quiet if n is not None and scope.zone_of(n) is not None), Why.IGNORED_LABEL)
        return ()
    claims: dict[Claim, None] = {}
    for endpoint in obj.spec.endpoints:
        try:
            name = hostname(endpoint.dns_name, underscores=True)
        except Rejected as why:
            report.warn("dnsName %r %s; skipped", endpoint.dns_name, why)
            report.note(endpoint.dns_name, Why.INVALID_HOSTNAME, f"dnsName {endpoint.dns_name.strip()!r} {why}")
            continue
        if scope.zone_of(name) is None:
            report.note(name, Why.OUTSIDE_ZONES)
            continue
        record_type = endpoint.record_type.strip().upper()
        if record_type not in SUPPORTED_RECORD_TYPES:
            report.warn(
                "recordType %r of %s is not supported (only %s); skipped",
                endpoint.record_type, endpoint.dns_name, ", ".join(SUPPORTED_RECORD_TYPES),
            )
            report.note(name, Why.INVALID_RECORD, f"recordType {_short(endpoint.record_type)!r} is not supported")
            continue
        ttl = min(endpoint.record_ttl, _MAX_TTL) if endpoint.record_ttl > 0 else None
        targets: list[dns.rdata.Rdata] = []
        for target in endpoint.targets:
            try:
                targets.append(_endpoint_rdata(record_type, target if record_type == "TXT" else target.strip()))
            except Rejected as why:
                report.warn("%s target %r for %s %s; skipped", record_type, _short(target), endpoint.dns_name, why)
                report.reject(f"{record_type} target {_short(target)!r} {why}")
        found = _unique(targets)
        rejected = report.take_rejected()
        if not found:
            report.note(name, Why.INVALID_RECORD, rejected or f"no {record_type} targets")
        if record_type == "CNAME" and len(found) > 1:
            report.warn(
                "%s has %d CNAME targets; a name has one CNAME, answering %s",
                endpoint.dns_name, len(found), found[0].target,
            )
            found = found[:1]
        claims.update(dict.fromkeys(_claims([name], found, ttl, report=report, why=Why.DNSENDPOINT_NAME, detail=record_type)))
    return tuple(claims)


def _short(text: str) -> str:
    """A target as a log line shows it: a 70 KB TXT target is not repeated whole."""
    return text if len(text) <= 80 else f"{text[:60]}... ({len(text)} characters)"


Translator = Callable[..., tuple[Claim, ...]]
"""(object, Scope, Related, Report | None) → claims; the object is the kind's model."""


def _annotated_route_translator(kind: str) -> Translator:
    """TCPRoute / UDPRoute: the route rule over the names of its hostname annotation."""

    def translate(obj: Route, scope: Scope, related: Related = NO_RELATED, report: Report | None = None) -> tuple[Claim, ...]:
        return route_claims(with_annotation_hostnames(obj, HOSTNAME_ANNOTATIONS), scope, related, kind, report)

    translate.__name__ = f"{kind.lower()}_claims"
    return translate


def _node_claims(obj: Node, scope: Scope, related: Related = NO_RELATED, report: Report | None = None) -> tuple[Claim, ...]:
    report = report or Report("Node", obj)
    if ignored(obj):
        report.note_all(node_names(obj, scope, _Silent("", obj)), Why.IGNORED_LABEL)
        return ()
    return node_claims(obj, scope, report)


def _traefik_translator(kind: str) -> Translator:
    def translate(
        obj: IngressRoute | IngressRouteTCP, scope: Scope, related: Related = NO_RELATED, report: Report | None = None
    ) -> tuple[Claim, ...]:
        report = report or Report(kind, obj)
        return () if ignored(obj) else traefik_claims(kind, obj, scope, related.service, report)

    translate.__name__ = f"{kind.lower()}_claims"
    return translate


def _istio_gateway_claims(
    obj: IstioGateway, scope: Scope, related: Related = NO_RELATED, report: Report | None = None
) -> tuple[Claim, ...]:
    report = report or Report("IstioGateway", obj)
    return () if ignored(obj) else istio_gateway_claims(obj, scope, related.selected_services, report)


def _virtualservice_claims(
    obj: VirtualService, scope: Scope, related: Related = NO_RELATED, report: Report | None = None
) -> tuple[Claim, ...]:
    report = report or Report("VirtualService", obj)
    if ignored(obj):
        return ()
    return virtualservice_claims(obj, scope, related.istio_gateways, related.selected_services, ignored, report)


TRANSLATORS: dict[str, Translator] = {
    "HTTPRoute": _route_translator("HTTPRoute"),
    "TLSRoute": _route_translator("TLSRoute"),
    "GRPCRoute": _route_translator("GRPCRoute"),
    "TCPRoute": _annotated_route_translator("TCPRoute"),
    "UDPRoute": _annotated_route_translator("UDPRoute"),
    "Ingress": ingress_claims,
    "Service": service_claims,
    "DNSEndpoint": dnsendpoint_claims,
    "Node": _node_claims,
    "IngressRoute": _traefik_translator("IngressRoute"),
    "IngressRouteTCP": _traefik_translator("IngressRouteTCP"),
    "IstioGateway": _istio_gateway_claims,
    "VirtualService": _virtualservice_claims,
}
"""Kinds that claim names, each with its translation; Gateway and EndpointSlice only feed them."""


# --- the boundary the indexer calls -------------------------------------------------------------


def translate(
    kind: str, obj: KubeObject, scope: Scope, related: Related = NO_RELATED, *, held: list[LogLine] | None = None
) -> tuple[Claim, ...]:
    """The claims of one object (translate_noted without its notes)."""
    return translate_noted(kind, obj, scope, related, held=held)[0]


def translate_noted(
    kind: str, obj: KubeObject, scope: Scope, related: Related = NO_RELATED, *, held: list[LogLine] | None = None
) -> tuple[tuple[Claim, ...], Notes]:
    """The claims of one object, never an exception: what cannot be used is logged (or, with
    `held`, kept there to log later: see Report) and dropped.

    With them, the object's notes (reasons.py): why each name it mentions answers or does not.
    A name is noted as supplied only where a claim at it was admitted, so the notes always say
    what the claims do.

    Besides each translator's own checks, no object may claim:
    - a name at or below a nameserver host (`<apex>.<zone>`): its addresses are the nameserver
      Service's, the glue of the zone's NS records;
    - a CNAME at a zone apex: a CNAME shares its name with nothing (RFC 1034 §3.6.2), and the
      apex has SOA and NS;
    - more records of one type at one name than fit in a reply (RRSET_BYTES_MAX): the first that
      fit are kept.
    """
    report = Report(kind, obj, held)
    try:
        claims = _admit(TRANSLATORS[kind](obj, scope, related, report), scope, report, (kind, obj.key))
        return claims, _checked_notes(claims, report.notes)
    except Exception as exc:  # one bad object must never stop the indexer or lose other objects
        where = traceback.extract_tb(exc.__traceback__)[-1]
        report.warn(
            "cannot be translated (%s: %s, at %s:%d); it claims nothing",
            type(exc).__name__, exc, where.filename.rsplit("/", 1)[-1], where.lineno,
        )
        return (), ()
    finally:
        report.close()


def _checked_notes(claims: tuple[Claim, ...], notes: list[Note]) -> Notes:
    """Notes that agree with the admitted claims: a supplying note only where a claim is, and a
    CLAIMED note for a claimed name its translator did not note; each note once."""
    owners = dict.fromkeys(owner for owner, _rdata, _ttl in claims)
    kept = dict.fromkeys(n for n in notes if not n[1].supplies or n[0] in owners)
    supplied = {n[0] for n in kept if n[1].supplies}
    kept.update(dict.fromkeys(note(o, Why.CLAIMED) for o in owners if o not in supplied))
    return tuple(kept)


def _admit(
    claims: tuple[Claim, ...], scope: Scope, report: Report, source: tuple[str, ObjectKey]
) -> tuple[Claim, ...]:
    if not claims:
        return claims
    hosts = scope.nameserver_hosts
    depths = {len(h) for h in hosts}  # a claim is at or below a host when its last labels are one
    kept: list[Claim] = []
    sizes: dict[tuple[NameKey, int], int] = {}
    refused: set[tuple[NameKey, int]] = set()
    over: dict[tuple[NameKey, int], int] = {}
    for claim in claims:
        owner, rdata, _ttl = claim
        if depths and any(owner[len(owner) - d :] in hosts for d in depths if d <= len(owner)):
            own = source[0] == "Service" and hosts.get(owner) == source[1]  # its default name
            if not own and (owner, -1) not in refused:
                refused.add((owner, -1))
                report.warn("claims %s, at or below a nameserver host of the zone; skipped", owner)
                report.note(owner, Why.RESERVED_NAME, "at or below a nameserver host of the zone")
            continue
        if rdata.rdtype == dns.rdatatype.CNAME and owner in scope.apexes:
            if (owner, rdata.rdtype) not in refused:
                refused.add((owner, rdata.rdtype))
                report.warn("claims a CNAME at the zone apex %s, beside its SOA and NS; skipped", owner)
                report.note(owner, Why.RESERVED_NAME, "a CNAME at the zone apex, beside its SOA and NS")
            continue
        slot = (owner, rdata.rdtype)
        size = sizes.get(slot, 0) + record_bytes(rdata)
        if size > RRSET_BYTES_MAX:
            over[slot] = over.get(slot, 0) + 1
            continue
        sizes[slot] = size
        kept.append(claim)
    for (owner, rdtype), dropped in over.items():
        report.warn(
            "%s %s: %d records more than a reply can carry (%d bytes); answering the first that fit",
            owner, dns.rdatatype.to_text(rdtype), dropped, RRSET_BYTES_MAX,
        )
        report.note(owner, Why.TOO_LARGE, f"{dropped} {dns.rdatatype.to_text(rdtype)} records dropped")
    return tuple(kept) if len(kept) != len(claims) else claims


_FIXED_RDATA = {dns.rdatatype.A: 4, dns.rdatatype.AAAA: 16}


def record_bytes(rdata: dns.rdata.Rdata) -> int:
    """What one record of an RRset takes in a reply: a compressed owner (2), type, class, TTL and
    length (10), then its rdata."""
    size = _FIXED_RDATA.get(rdata.rdtype)
    return 12 + (size if size is not None else len(rdata.to_wire()))


def translation_size(kind: str, obj: KubeObject, related: Related = NO_RELATED) -> int:
    """About how many values translating obj reads: the indexer hands large objects to a thread."""
    if isinstance(obj, Ingress):  # annotations: a target annotation may list thousands of addresses
        size = len(obj.spec.rules) + len(obj.status.load_balancer.ingress)
        return size + sum(len(v) for v in obj.metadata.annotations.values()) // 16
    if isinstance(obj, Service):
        size = len(obj.spec.external_ips) + len(obj.status.load_balancer.ingress)
        size += sum(len(v) for v in obj.metadata.annotations.values()) // 16
        if wants_endpoints(obj):
            size += sum(len(e.addresses) + 1 for s in related.endpoint_slices(obj.key) for e in s.endpoints)
        return size
    if isinstance(obj, Route):
        return (len(obj.spec.hostnames) + 1) * (len(obj.spec.parent_refs) + 1)
    if isinstance(obj, IngressRoute | IngressRouteTCP):
        return len(obj.spec.routes) + sum(len(r.match) for r in obj.spec.routes) // 64
    if isinstance(obj, IstioGateway):
        return 1 + sum(len(server.hosts) for server in obj.spec.servers)
    if isinstance(obj, VirtualService):
        return (len(obj.spec.hosts) + 1) * (len(obj.spec.gateways) + 1)
    if isinstance(obj, DNSEndpoint):
        return sum(1 + len(e.targets) + sum(len(t) for t in e.targets) // 256 for e in obj.spec.endpoints)
    return 1
