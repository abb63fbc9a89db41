"""Per kind: which DNS records a Kubernetes object claims, for one k8s_gateway instance.

A claim is (owner name, rdata). Objects arrive already reduced by kubeapi/models.py; this module
turns them into claims inside the configured zones and drops everything else. Names are
canonical (lower-case) dnspython Names; a `*.` host is kept as the literal wildcard owner and is
expanded at answer time (RFC 4592).

Must not import trio or httpx.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA

__all__ = ["PRECEDENCE", "TRANSLATORS", "Claim", "Scope", "address_rdata", "hostname_in_zones"]

logger = logging.getLogger(__name__)

Claim = tuple[dns.name.Name, dns.rdata.Rdata]

# DESIGN rule 5: the first kind in this order that has records for a name owns it.
PRECEDENCE = ("HTTPRoute", "TLSRoute", "GRPCRoute", "Ingress", "Service", "DNSEndpoint")

HOSTNAME_ANNOTATIONS = ("coredns.io/hostname", "external-dns.alpha.kubernetes.io/hostname")


@dataclass(frozen=True, slots=True)
class Scope:
    """What translation needs from a k8s_gateway instance's configuration."""

    zones: tuple[dns.name.Name, ...]
    ingress_classes: frozenset[str] = frozenset()

    def zone_of(self, name: dns.name.Name) -> dns.name.Name | None:
        """The longest configured zone containing name (DESIGN rule 1), or None."""
        best = None
        for zone in self.zones:
            if name.is_subdomain(zone) and (best is None or len(zone) > len(best)):
                best = zone
        return best


def address_rdata(text: str) -> dns.rdata.Rdata | None:
    """An A or AAAA rdata for an IP address string, or None if it is not an IP address."""
    try:
        ip = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if ip.version == 4:
        return dns.rdtypes.IN.A.A(dns.rdataclass.IN, dns.rdatatype.A, str(ip))
    return dns.rdtypes.IN.AAAA.AAAA(dns.rdataclass.IN, dns.rdatatype.AAAA, str(ip))


def hostname_in_zones(text: str, scope: Scope) -> dns.name.Name | None:
    """A host such as `web.example.org` or `*.web.example.org` as a Name, if inside a zone."""
    text = text.strip().rstrip(".").lower()
    if not text:
        return None
    try:
        name = dns.name.from_text(text)
    except dns.exception.DNSException:
        return None
    return name if scope.zone_of(name) is not None else None


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


def _key(obj: Any) -> tuple[str, str]:
    return obj.metadata.namespace, obj.metadata.name


def _claims(names: Iterable[dns.name.Name], rdatas: Sequence[dns.rdata.Rdata]) -> tuple[Claim, ...]:
    seen: dict[Claim, None] = {}
    for name in names:
        for rdata in rdatas:
            seen[(name, rdata)] = None
    return tuple(seen)


def ingress_claims(obj: Any, scope: Scope) -> tuple[Claim, ...]:
    """Every spec.rules[].host inside a zone → the load balancer IPs in status."""
    if scope.ingress_classes and obj.spec.ingress_class_name not in scope.ingress_classes:
        return ()
    names = [n for rule in obj.spec.rules if rule.host and (n := hostname_in_zones(rule.host, scope))]
    if not names:
        return ()
    ips = _addresses((lb.ip for lb in obj.status.load_balancer.ingress), "Ingress", obj)
    return _claims(names, ips)


def service_names(obj: Any, scope: Scope) -> list[dns.name.Name]:
    """The names a Service is answered under (DESIGN rule 5).

    A hostname annotation replaces the default `name.namespace.<zone>`; each comma-separated entry
    that lies inside a zone is taken as it is, any other gets each zone appended (a short name).
    """
    annotations = obj.metadata.annotations
    raw = next((annotations[a] for a in HOSTNAME_ANNOTATIONS if annotations.get(a)), None)
    if raw is None:
        label = dns.name.Name([obj.metadata.name.lower().encode(), obj.metadata.namespace.lower().encode()])
        return [label.concatenate(zone) for zone in scope.zones]
    names: list[dns.name.Name] = []
    for entry in raw.split(","):
        entry = entry.strip().rstrip(".").lower()
        if not entry:
            continue
        try:
            relative = dns.name.from_text(entry, origin=None)
        except dns.exception.DNSException:
            logger.warning("Service %s/%s: hostname %r is not a valid name; ignored", *_key(obj), entry)
            continue
        absolute = relative.derelativize(dns.name.root)
        if scope.zone_of(absolute) is not None:
            names.append(absolute)
        else:
            names.extend(relative.concatenate(zone) for zone in scope.zones)
    return names


def service_claims(obj: Any, scope: Scope) -> tuple[Claim, ...]:
    """A LoadBalancer Service → spec.externalIPs when set, else the load balancer IPs in status."""
    if obj.spec.type != "LoadBalancer":
        return ()
    if obj.spec.external_ips:
        ips = _addresses(obj.spec.external_ips, "Service", obj)
    else:
        ips = _addresses((lb.ip for lb in obj.status.load_balancer.ingress), "Service", obj)
    return _claims(service_names(obj, scope), ips)


TRANSLATORS: dict[str, Callable[[Any, Scope], tuple[Claim, ...]]] = {
    "Ingress": ingress_claims,
    "Service": service_claims,
}
