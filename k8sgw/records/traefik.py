"""Traefik's IngressRoute and IngressRouteTCP (`resources IngressRoute IngressRouteTCP`).

Names, as external-dns's traefik-proxy source reads them:

- each spec.routes[].match rule's `Host(...)` (and Traefik v2's `HostHeader(...)`) for an
  IngressRoute, `HostSNI(...)` for an IngressRouteTCP; every quoted argument is a name (Traefik v2
  takes several: Host(`a.example.org`, `b.example.org`)), in backticks or double quotes. The rule's
  logic is not evaluated: `Host(a) || Host(b)` names both, `Host(a) && PathPrefix(/x)` names a.
  `*` (HostSNI(`*`), TLS passthrough for every name) is no name; nor is a `HostRegexp` or
  `HostSNIRegexp` pattern, skipped with a WARNING, as is a negated `!Host(...)`.
- the hostname annotations (`coredns.io/hostname`, `external-dns.alpha.kubernetes.io/hostname`):
  a comma list of more names.

Addresses: the object's `external-dns.alpha.kubernetes.io/target` annotation, else those of the
Traefik Service the Corefile names (`traefikService NAMESPACE/NAME`): its externalIPs, else its
load balancer (IPs, or a CNAME to its hostname). external-dns reads only the annotation (or its
--default-targets); the Service is k8sgw's way of saying where Traefik listens once for all routes.

The ignore label and the report's prefix are handled by the caller (sources.py's translator).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from k8sgw.kubeapi.models import IngressRoute, IngressRouteTCP, Service
from k8sgw.records.annotations import HOSTNAME_ANNOTATIONS, Warner, annotation_targets, annotation_ttl
from k8sgw.records.l4routes import annotation_hostnames
from k8sgw.records.rdatas import claims, host_in_zones, prefer_addresses, service_front_rdatas

if TYPE_CHECKING:  # sources.py imports this module
    from collections.abc import Callable

    from k8sgw.records.sources import Claim, ObjectKey, Scope

__all__ = ["HOST_MATCHERS", "rule_hosts", "traefik_claims"]

HOST_MATCHERS = {"IngressRoute": ("Host", "HostHeader"), "IngressRouteTCP": ("HostSNI",)}
"""The rule functions whose arguments are host names, per kind."""

_PATTERN_MATCHERS = ("HostRegexp", "HostSNIRegexp")
_QUOTED = r"(?:`[^`]*`|\"[^\"]*\")"
_CALL = re.compile(rf"(!?)\s*([A-Za-z]+)\s*\(\s*({_QUOTED}(?:\s*,\s*{_QUOTED})*)\s*\)")
_RULE_MAX = 4096  # characters of one rule read: a longer rule is hostile, not a router


def rule_hosts(rule: str, matchers: tuple[str, ...], report: Warner) -> list[str]:
    """The host names one match rule names, in order (not yet checked as DNS names)."""
    if len(rule) > _RULE_MAX:
        report.warn("match rule of %d characters is longer than %d; only its start is read", len(rule), _RULE_MAX)
        rule = rule[:_RULE_MAX]
    hosts: list[str] = []
    for negated, function, args in _CALL.findall(rule):
        if function in _PATTERN_MATCHERS:
            report.warn("%s(%s) is a pattern, not a name; skipped", function, args)
            continue
        if function not in matchers:
            continue
        if negated:
            report.warn("!%s(%s) excludes hosts, it names none; skipped", function, args)
            continue
        for quoted in re.findall(_QUOTED, args):
            host = quoted[1:-1].strip()
            if host and host != "*":
                hosts.append(host)
    return hosts


def traefik_claims(
    kind: str,
    obj: IngressRoute | IngressRouteTCP,
    scope: Scope,
    service: Callable[[ObjectKey], Service | None],
    report: Warner,
) -> tuple[Claim, ...]:
    """The router's names inside the zones → its target annotation or the Traefik Service's addresses."""
    texts = list(annotation_hostnames(obj, HOSTNAME_ANNOTATIONS))
    for route in obj.spec.routes:
        texts.extend(rule_hosts(route.match, HOST_MATCHERS[kind], report))
    names = [n for text in texts if (n := host_in_zones(text, scope, "host", report)) is not None]
    if not names:
        return ()
    rdatas = annotation_targets(obj, report)
    if not rdatas:
        if scope.traefik_service is None:
            report.warn("has no target annotation and the Corefile names no `traefikService`; no addresses")
            return ()
        front = service(scope.traefik_service)
        rdatas = prefer_addresses(service_front_rdatas(front, report)) if front is not None else []
    return claims(names, rdatas, annotation_ttl(obj, report))
