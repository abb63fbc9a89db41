"""Per kind: which DNS records a Kubernetes object claims, for one k8s_gateway instance.

A claim is (owner name, rdata, ttl or None). Objects arrive already reduced by kubeapi/models.py;
this module turns them into claims inside the configured zones and drops everything else. Names are
canonical (lower-case) dnspython Names; a `*.` host is kept as the literal wildcard owner and is
expanded at answer time (RFC 4592).

Some kinds depend on others: a route's addresses are its parent Gateways', a Service with
`k8s-gateway.dns/resolve-endpoints: "true"` answers with its EndpointSlices' ready addresses. The
indexer (store.py) owns those objects and hands them in as `Related`; translation stays a pure
function of its inputs, so it is table-tested without a store.

Load-balancer and Gateway hostnames become CNAME records (DESIGN rule 8: never resolved on the
query path). A name cannot carry a CNAME and other data (RFC 1034 §3.6.2), so where an object has
both addresses and hostnames the addresses win.

Must not import trio or httpx.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CNAME
import dns.rdtypes.ANY.TXT
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA

from k8sgw.labels import LabelSelector, parse_label_selector

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
    "LabelSelector",
    "Related",
    "Scope",
    "address_rdata",
    "dnsendpoint_claims",
    "hostname_in_zones",
    "ignored",
    "ingress_claims",
    "intersect_hostnames",
    "nameserver_rdatas",
    "parse_hostname",
    "parse_label_selector",
    "route_claims",
    "route_gateway_keys",
    "service_claims",
    "service_names",
    "slice_service_key",
]

logger = logging.getLogger(__name__)

ObjectKey = tuple[str, str]  # (namespace, name)
Claim = tuple[dns.name.Name, dns.rdata.Rdata, int | None]
"""(owner, rdata, TTL); TTL None = the k8s_gateway `ttl`."""

# DESIGN rule 5: the first kind in this order that has records for a name owns it.
PRECEDENCE = ("HTTPRoute", "TLSRoute", "GRPCRoute", "Ingress", "Service", "DNSEndpoint")
ROUTE_KINDS = ("HTTPRoute", "TLSRoute", "GRPCRoute")

HOSTNAME_ANNOTATIONS = ("coredns.io/hostname", "external-dns.alpha.kubernetes.io/hostname")
RESOLVE_ENDPOINTS_ANNOTATION = "k8s-gateway.dns/resolve-endpoints"
IGNORE_LABEL = "k8s-gateway.dns/ignore"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
GATEWAY_API_GROUP = "gateway.networking.k8s.io"

_MAX_TTL = 2**31 - 1  # RFC 2181 §8
_TXT_CHUNK = 255  # one <character-string> (RFC 1035 §3.3)


# --- scope ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scope:
    """What translation needs from a k8s_gateway instance's configuration.

    Attributes:
        zones: the zones answered.
        ingress_classes: only Ingresses whose spec.ingressClassName is one of these; empty = all.
        gateway_classes: only routes via Gateways whose spec.gatewayClassName is one of these.
        service_selectors: a Service must match at least one (OR); empty = all Services.
    """

    zones: tuple[dns.name.Name, ...]
    ingress_classes: frozenset[str] = frozenset()
    gateway_classes: frozenset[str] = frozenset()
    service_selectors: tuple[LabelSelector, ...] = ()

    def zone_of(self, name: dns.name.Name) -> dns.name.Name | None:
        """The longest configured zone containing name (DESIGN rule 1), or None."""
        best = None
        for zone in self.zones:
            if name.is_subdomain(zone) and (best is None or len(zone) > len(best)):
                best = zone
        return best


def _empty_slices(key: ObjectKey) -> Iterable[Any]:
    return ()


@dataclass(frozen=True)
class Related:
    """Objects of other kinds that a translation reads, owned by the indexer.

    Attributes:
        gateways: every Gateway by (namespace, name).
        endpoint_slices: the EndpointSlices of a Service, by the Service's (namespace, name).
    """

    gateways: Mapping[ObjectKey, Any] = field(default_factory=dict)
    endpoint_slices: Callable[[ObjectKey], Iterable[Any]] = _empty_slices


NO_RELATED = Related()


# --- small helpers ------------------------------------------------------------------------------


def _key(obj: Any) -> ObjectKey:
    return obj.metadata.namespace, obj.metadata.name


def ignored(obj: Any) -> bool:
    """The object carries `k8s-gateway.dns/ignore: "true"`: k8sgw acts as if it did not exist."""
    return obj.metadata.labels.get(IGNORE_LABEL, "").strip().lower() == "true"


@functools.lru_cache(maxsize=4096)
def address_rdata(text: str) -> dns.rdata.Rdata | None:
    """An A or AAAA rdata for an IP address string, or None if it is not an IP address.

    Cached: many objects share an address (every Ingress of one controller), and parsing it twice
    (ipaddress, then dnspython) was a fifth of the indexer's time. Rdata objects are immutable.
    """
    try:
        ip = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    # The parsed address, not its text: dnspython would parse the text again.
    if ip.version == 4:
        return dns.rdtypes.IN.A.A(dns.rdataclass.IN, dns.rdatatype.A, ip)
    return dns.rdtypes.IN.AAAA.AAAA(dns.rdataclass.IN, dns.rdatatype.AAAA, ip)


_RFC1123_LABEL = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?")
_TARGET_LABEL = re.compile(r"[a-z0-9_](?:[-a-z0-9_]{0,61}[a-z0-9_])?")


def parse_hostname(text: str, *, underscores: bool = False) -> dns.name.Name | None:
    """A host name (RFC 1123, optionally `*.`-prefixed, trailing dot allowed) as an absolute Name.

    Case is folded. `underscores` also allows `_` in labels (external-dns names such as
    `_sip._tcp.example.org`). Returns None for anything else (IP addresses, empty labels, a `*`
    that is not the whole first label, over 253 characters).
    """
    text = text.strip().rstrip(".").lower()
    if not text or len(text) > 253:
        return None
    labels = text.split(".")
    pattern = _TARGET_LABEL if underscores else _RFC1123_LABEL
    for i, label in enumerate(labels):
        if label == "*" and i == 0 and len(labels) > 1:
            continue
        if not pattern.fullmatch(label):
            return None
    if all(label.isdigit() for label in labels[-1:]):
        return None  # an IP address or a numeric TLD, not a host name
    try:
        return dns.name.from_text(text, origin=dns.name.root)
    except dns.exception.DNSException:
        return None


def hostname_in_zones(text: str, scope: Scope) -> dns.name.Name | None:
    """A host such as `web.example.org` or `*.web.example.org` as a Name, if inside a zone."""
    name = parse_hostname(text)
    return name if name is not None and scope.zone_of(name) is not None else None


def _cname(target: dns.name.Name) -> dns.rdata.Rdata:
    return dns.rdtypes.ANY.CNAME.CNAME(dns.rdataclass.IN, dns.rdatatype.CNAME, target)


def _addresses(values: Iterable[str | None], what: str, obj: Any) -> list[dns.rdata.Rdata]:
    out = []
    for value in values:
        if not value:
            continue
        rdata = address_rdata(value)
        if rdata is None:
            logger.warning("%s %s/%s: %r is not an IP address; ignored", what, *_key(obj), value)
        elif rdata not in out:
            out.append(rdata)
    return out


def _hostnames(values: Iterable[str | None], what: str, obj: Any) -> list[dns.rdata.Rdata]:
    out = []
    for value in values:
        if not value:
            continue
        target = parse_hostname(value)
        if target is None:
            logger.warning("%s %s/%s: %r is not a host name; ignored", what, *_key(obj), value)
        elif (rdata := _cname(target)) not in out:
            out.append(rdata)
    return out


def _prefer_addresses(rdatas: Sequence[dns.rdata.Rdata], what: str, obj: Any) -> list[dns.rdata.Rdata]:
    """Addresses if there are any, else at most one CNAME: a name with a CNAME has nothing else."""
    addresses = [r for r in rdatas if r.rdtype != dns.rdatatype.CNAME]
    cnames = [r for r in rdatas if r.rdtype == dns.rdatatype.CNAME]
    if addresses:
        if cnames:
            logger.debug(
                "%s %s/%s: has addresses and host names; answering the addresses only", what, *_key(obj)
            )
        return addresses
    if len(cnames) > 1:
        logger.debug("%s %s/%s: several host names; answering a CNAME to the first", what, *_key(obj))
    return cnames[:1]


def _load_balancer(lb: Any, what: str, obj: Any) -> list[dns.rdata.Rdata]:
    """status.loadBalancer.ingress[]: IPs, or a CNAME to the first hostname when there is no IP."""
    ips = _addresses((i.ip for i in lb.ingress), what, obj)
    names = _hostnames((i.hostname for i in lb.ingress), what, obj)
    return _prefer_addresses(ips + names, what, obj)


def _claims(
    names: Iterable[dns.name.Name], rdatas: Sequence[dns.rdata.Rdata], ttl: int | None = None
) -> tuple[Claim, ...]:
    seen: dict[Claim, None] = {}
    for name in names:
        for rdata in rdatas:
            seen[(name, rdata, ttl)] = None
    return tuple(seen)


# --- Ingress (KUBEAPI §4.1) -------------------------------------------------------------------


def ingress_claims(obj: Any, scope: Scope, related: Related = NO_RELATED) -> tuple[Claim, ...]:
    """Every spec.rules[].host inside a zone → the load balancer IPs (or hostname, as CNAME)."""
    if ignored(obj):
        return ()
    if scope.ingress_classes and obj.spec.ingress_class_name not in scope.ingress_classes:
        return ()
    names = [n for rule in obj.spec.rules if rule.host and (n := hostname_in_zones(rule.host, scope))]
    if not names:
        return ()
    return _claims(names, _load_balancer(obj.status.load_balancer, "Ingress", obj))


# --- Service (KUBEAPI §4.2, §4.3) ---------------------------------------------------------------


def service_names(obj: Any, scope: Scope) -> list[dns.name.Name]:
    """The names a Service is answered under (DESIGN rule 5).

    A hostname annotation (`coredns.io/hostname`, else `external-dns.alpha.kubernetes.io/hostname`)
    replaces the default `name.namespace.<zone>`. It is a comma-separated list; each entry is
    trimmed, lower-cased and must be an RFC 1123 host name, optionally `*.`-prefixed (invalid ones
    are logged at WARNING and ignored). An entry inside a zone is taken as it is; any other gets
    each zone appended (a short name).
    """
    annotations = obj.metadata.annotations
    raw = next((annotations[a] for a in HOSTNAME_ANNOTATIONS if annotations.get(a, "").strip()), None)
    if raw is None:
        label = dns.name.Name([obj.metadata.name.lower().encode(), obj.metadata.namespace.lower().encode()])
        return [label.concatenate(zone) for zone in scope.zones]
    names: dict[dns.name.Name, None] = {}
    for entry in raw.split(","):
        if not entry.strip():
            continue
        absolute = parse_hostname(entry)
        if absolute is None:
            logger.warning("Service %s/%s: hostname %r is not a valid host name; ignored", *_key(obj), entry.strip())
            continue
        if scope.zone_of(absolute) is not None:
            names[absolute] = None
        else:
            relative = absolute.relativize(dns.name.root)
            names.update(dict.fromkeys(relative.concatenate(zone) for zone in scope.zones))
    return list(names)


def wants_endpoints(obj: Any) -> bool:
    return obj.metadata.annotations.get(RESOLVE_ENDPOINTS_ANNOTATION, "").strip().lower() == "true"


def _ready_endpoint_addresses(obj: Any, slices: Iterable[Any]) -> list[dns.rdata.Rdata]:
    """Ready addresses of every (not ignored) IPv4/IPv6 slice of the Service, duplicates removed."""
    values: list[str] = []
    for eps in sorted(slices, key=_key):
        if ignored(eps) or eps.address_type not in ("IPv4", "IPv6"):
            continue
        for endpoint in eps.endpoints:
            if endpoint.conditions.ready is False:  # null means ready (KUBEAPI §4.3)
                continue
            values.extend(endpoint.addresses)
    return _addresses(values, "EndpointSlice of Service", obj)


def service_claims(obj: Any, scope: Scope, related: Related = NO_RELATED) -> tuple[Claim, ...]:
    """A Service's names → its addresses.

    - `k8s-gateway.dns/resolve-endpoints: "true"` (any type, headless too): the ready addresses of
      its EndpointSlices;
    - else a LoadBalancer: spec.externalIPs when set, else the load balancer IPs in status, else a
      CNAME to the load balancer hostname;
    - anything else: nothing.

    Services that match none of `scope.service_selectors` (when there are any) claim nothing.
    """
    if ignored(obj):
        return ()
    if scope.service_selectors and not any(s.matches(obj.metadata.labels) for s in scope.service_selectors):
        return ()
    if wants_endpoints(obj):
        rdatas = _ready_endpoint_addresses(obj, related.endpoint_slices(_key(obj)))
    elif obj.spec.type != "LoadBalancer":
        return ()
    elif obj.spec.external_ips:
        rdatas = _addresses(obj.spec.external_ips, "Service", obj)
    else:
        rdatas = _load_balancer(obj.status.load_balancer, "Service", obj)
    if not rdatas:
        return ()
    return _claims(service_names(obj, scope), rdatas)


def slice_service_key(obj: Any) -> ObjectKey | None:
    """The (namespace, name) of the Service an EndpointSlice belongs to, from its label."""
    service = obj.metadata.labels.get(SERVICE_NAME_LABEL)
    return (obj.metadata.namespace, service) if service else None


def nameserver_rdatas(obj: Any) -> tuple[dns.rdata.Rdata, ...]:
    """A/AAAA of the nameserver's own Service (DESIGN rule 3): externalIPs, else LB ingress IPs.

    Any type; annotations, labels and filters do not matter: it is the server's own address.
    """
    values = obj.spec.external_ips or tuple(lb.ip for lb in obj.status.load_balancer.ingress)
    return tuple(_addresses(values, "nameserver Service", obj))


# --- Gateway API routes (KUBEAPI §4.4) ----------------------------------------------------------


def _parent_gateway_key(ref: Any, route_namespace: str) -> ObjectKey | None:
    """A parentRef's Gateway (namespace, name), or None when it points at something else."""
    group = GATEWAY_API_GROUP if ref.group is None else ref.group
    kind = "Gateway" if ref.kind is None else ref.kind
    if group != GATEWAY_API_GROUP or kind != "Gateway" or not ref.name:
        return None
    return (ref.namespace or route_namespace, ref.name)  # per ref: no namespace leaks between refs


def route_gateway_keys(obj: Any) -> frozenset[ObjectKey]:
    """Every Gateway a route names in spec.parentRefs (what the indexer keeps a reverse index of)."""
    keys = (_parent_gateway_key(ref, obj.metadata.namespace) for ref in obj.spec.parent_refs)
    return frozenset(k for k in keys if k is not None)


def _ref_identity(ref: Any, route_namespace: str) -> tuple[Any, ...]:
    return (
        GATEWAY_API_GROUP if ref.group is None else ref.group,
        "Gateway" if ref.kind is None else ref.kind,
        ref.namespace or route_namespace,
        ref.name,
        ref.section_name or None,
        ref.port,
    )


def _accepted(obj: Any, ref: Any) -> bool:
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


def _gateway_rdatas(gw: Any, route: Any) -> list[dns.rdata.Rdata]:
    out: list[dns.rdata.Rdata] = []
    for address in gw.status.addresses:
        value = address.value.strip()
        if not value:
            continue
        if address.type in (None, "", "IPAddress"):
            rdata = address_rdata(value)
        elif address.type == "Hostname":
            target = parse_hostname(value)
            rdata = _cname(target) if target is not None else None
        else:
            continue  # NamedAddress and implementation-specific types say nothing DNS can use
        if rdata is None:
            logger.warning(
                "Gateway %s/%s (parent of %s/%s): address %r is not a valid %s; ignored",
                *_key(gw), *_key(route), value, address.type or "IPAddress",
            )
        elif rdata not in out:
            out.append(rdata)
    return out


def route_claims(obj: Any, scope: Scope, related: Related = NO_RELATED, kind: str = "Route") -> tuple[Claim, ...]:
    """HTTPRoute / TLSRoute / GRPCRoute: its hostnames → the addresses of its parent Gateways.

    Per spec.parentRefs entry that names a Gateway (default group and kind; namespace the route's
    unless given, per ref): skipped when the Gateway is unknown, ignored, of a class outside
    `scope.gateway_classes`, or when status.parents is present and does not say Accepted=True for
    that ref. `sectionName` picks the one listener of that name. Each route hostname is intersected
    with each listener's hostname (wildcard-aware); a route without hostnames takes the listener's.
    A Gateway `Hostname` address is a CNAME target; addresses win over hostnames at a name.
    """
    if ignored(obj):
        return ()
    per_name: dict[dns.name.Name, list[dns.rdata.Rdata]] = {}
    hostnames = [h.strip().rstrip(".").lower() for h in obj.spec.hostnames if h.strip()]
    for ref in obj.spec.parent_refs:
        gw_key = _parent_gateway_key(ref, obj.metadata.namespace)
        if gw_key is None:
            continue
        gw = related.gateways.get(gw_key)
        if gw is None or ignored(gw):
            continue
        if scope.gateway_classes and gw.spec.gateway_class_name not in scope.gateway_classes:
            continue
        if not _accepted(obj, ref):
            continue
        listeners = gw.spec.listeners
        if ref.section_name:
            listeners = tuple(lst for lst in listeners if lst.name == ref.section_name)
        elif not listeners:
            listeners = (None,)  # a Gateway that lists no listeners: treat as one without hostname
        names: list[str] = []
        for listener in listeners:
            listener_host = listener.hostname.strip().rstrip(".").lower() if listener and listener.hostname else None
            if not hostnames:
                if listener_host:
                    names.append(listener_host)
                continue
            names.extend(n for h in hostnames if (n := intersect_hostnames(h, listener_host)) is not None)
        if not names:
            continue
        rdatas = _gateway_rdatas(gw, obj)
        for text in names:
            if (name := hostname_in_zones(text, scope)) is not None:
                bucket = per_name.setdefault(name, [])
                bucket.extend(r for r in rdatas if r not in bucket)
    claims: list[Claim] = []
    for name, rdatas in per_name.items():
        claims.extend(_claims([name], _prefer_addresses(rdatas, kind, obj)))
    return tuple(claims)


def _route_translator(kind: str) -> Callable[[Any, Scope, Related], tuple[Claim, ...]]:
    def translate(obj: Any, scope: Scope, related: Related = NO_RELATED) -> tuple[Claim, ...]:
        return route_claims(obj, scope, related, kind)

    translate.__name__ = f"{kind.lower()}_claims"
    return translate


# --- DNSEndpoint (KUBEAPI §4.5) -----------------------------------------------------------------


def _txt(text: str) -> dns.rdata.Rdata:
    data = text.encode()
    chunks = [data[i : i + _TXT_CHUNK] for i in range(0, len(data), _TXT_CHUNK)] or [b""]
    return dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT, chunks)


def _endpoint_rdata(record_type: str, target: str) -> dns.rdata.Rdata | None:
    """One DNSEndpoint target as rdata of `record_type`, or None when it is not valid for it."""
    if record_type in ("A", "AAAA"):
        rdata = address_rdata(target)
        return rdata if rdata is not None and dns.rdatatype.to_text(rdata.rdtype) == record_type else None
    if record_type == "CNAME":
        name = parse_hostname(target, underscores=True)
        return _cname(name) if name is not None and not name.labels[0] == b"*" else None
    if record_type == "TXT":
        return _txt(target)
    if record_type in ("MX", "SRV"):
        fields = target.split()
        if len(fields) != (2 if record_type == "MX" else 4) or not all(f.isdigit() for f in fields[:-1]):
            return None
        if any(int(f) > 65535 for f in fields[:-1]):
            return None
        host = parse_hostname(fields[-1], underscores=True)
        if host is None and fields[-1] != ".":  # "." is the SRV/MX "no service" target (RFC 2782, 7505)
            return None
        try:
            return dns.rdata.from_text(
                dns.rdataclass.IN, record_type, " ".join([*fields[:-1], (host or dns.name.root).to_text()])
            )
        except (dns.exception.DNSException, ValueError):
            return None
    return None


SUPPORTED_RECORD_TYPES = ("A", "AAAA", "CNAME", "TXT", "MX", "SRV")


def dnsendpoint_claims(obj: Any, scope: Scope, related: Related = NO_RELATED) -> tuple[Claim, ...]:
    """Each spec.endpoints[] entry → records of its recordType at its own dnsName only.

    recordTTL > 0 sets the TTL of those records. Targets that are not valid for the type, and
    types other than A, AAAA, CNAME, TXT, MX and SRV, are logged at WARNING (with namespace/name)
    and skipped. TXT targets longer than 255 bytes are split into 255-byte strings.
    """
    if ignored(obj):
        return ()
    claims: dict[Claim, None] = {}
    for endpoint in obj.spec.endpoints:
        name = parse_hostname(endpoint.dns_name, underscores=True)
        if name is None:
            logger.warning("DNSEndpoint %s/%s: dnsName %r is not a valid name; skipped", *_key(obj), endpoint.dns_name)
            continue
        if scope.zone_of(name) is None:
            continue
        record_type = endpoint.record_type.strip().upper()
        if record_type not in SUPPORTED_RECORD_TYPES:
            logger.warning(
                "DNSEndpoint %s/%s: recordType %r of %s is not supported (only %s); skipped",
                *_key(obj), endpoint.record_type, endpoint.dns_name, ", ".join(SUPPORTED_RECORD_TYPES),
            )
            continue
        ttl = min(endpoint.record_ttl, _MAX_TTL) if endpoint.record_ttl > 0 else None
        rdatas: list[dns.rdata.Rdata] = []
        for target in endpoint.targets:
            rdata = _endpoint_rdata(record_type, target if record_type == "TXT" else target.strip())
            if rdata is None:
                logger.warning(
                    "DNSEndpoint %s/%s: target %r is not a valid %s target for %s; skipped",
                    *_key(obj), target, record_type, endpoint.dns_name,
                )
            elif rdata not in rdatas:
                rdatas.append(rdata)
        if record_type == "CNAME" and len(rdatas) > 1:
            logger.warning(
                "DNSEndpoint %s/%s: %s has %d CNAME targets; a name has one CNAME, answering %s",
                *_key(obj), endpoint.dns_name, len(rdatas), rdatas[0].target,
            )
            rdatas = rdatas[:1]
        claims.update(dict.fromkeys(_claims([name], rdatas, ttl)))
    return tuple(claims)


TRANSLATORS: dict[str, Callable[[Any, Scope, Related], tuple[Claim, ...]]] = {
    "HTTPRoute": _route_translator("HTTPRoute"),
    "TLSRoute": _route_translator("TLSRoute"),
    "GRPCRoute": _route_translator("GRPCRoute"),
    "Ingress": ingress_claims,
    "Service": service_claims,
    "DNSEndpoint": dnsendpoint_claims,
}
"""Kinds that claim names, each with its translation; Gateway and EndpointSlice only feed them."""
