"""Rdata helpers every translator shares: addresses and CNAMEs from text, load balancers, claims.

Pure functions; warnings go to the translation's report (each line names the object).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CNAME

from k8sgw.kubeapi.models import LoadBalancerStatus, Service
from k8sgw.records.annotations import Warner
from k8sgw.records.hostnames import Rejected, hostname, parse_address
from k8sgw.records.keys import NameKey
from k8sgw.records.reasons import Why

if TYPE_CHECKING:  # sources.py imports this module
    from k8sgw.records.sources import Claim, Scope

__all__ = [
    "addresses",
    "claims",
    "cname",
    "host_in_zones",
    "hostnames",
    "load_balancer",
    "prefer_addresses",
    "service_front_rdatas",
    "unique",
]


def host_in_zones(text: str, scope: Scope, what: str, report: Warner) -> dns.name.Name | None:
    """hostname_in_zones, warning about a host that is not a host name (one outside every zone is
    another instance's business, not an error); either way the reason is noted for explain."""
    try:
        name = hostname(text)
    except Rejected as why:
        report.warn("%s %r %s; skipped", what, text, why)
        report.note(text, Why.INVALID_HOSTNAME, f"{what} {text.strip()!r} {why}")
        return None
    if scope.zone_of(name) is None:
        report.note(name, Why.OUTSIDE_ZONES)
        return None
    return name


def cname(target: dns.name.Name) -> dns.rdata.Rdata:
    return dns.rdtypes.ANY.CNAME.CNAME(dns.rdataclass.IN, dns.rdatatype.CNAME, target)


def unique(rdatas: list[dns.rdata.Rdata]) -> list[dns.rdata.Rdata]:
    """rdatas without repeats, in order, in linear time. A short list is scanned instead: hashing
    an rdata encodes it to wire form, which costs more than a few comparisons."""
    if len(rdatas) <= 8:
        out: list[dns.rdata.Rdata] = []
        for rdata in rdatas:
            if rdata not in out:
                out.append(rdata)
        return out
    return list(dict.fromkeys(rdatas))


def addresses(values: Iterable[str | None], what: str, report: Warner) -> list[dns.rdata.Rdata]:
    """The addresses among values, in order, each once."""
    out: list[dns.rdata.Rdata] = []
    for value in values:
        if not value:
            continue
        try:
            out.append(parse_address(value))
        except Rejected as why:
            report.warn("%s %r %s; ignored", what, value, why)
            report.reject(f"{what} {value!r} {why}")
    return unique(out)


def hostnames(values: Iterable[str | None], what: str, report: Warner) -> list[dns.rdata.Rdata]:
    out: list[dns.rdata.Rdata] = []
    for value in values:
        if not value:
            continue
        try:
            out.append(cname(hostname(value)))
        except Rejected as why:
            report.warn("%s %r %s; ignored", what, value, why)
            report.reject(f"{what} {value!r} {why}")
    return unique(out)


def prefer_addresses(rdatas: Sequence[dns.rdata.Rdata]) -> list[dns.rdata.Rdata]:
    """Addresses if there are any, else at most one CNAME: a name with a CNAME has nothing else.

    A load balancer reporting both an IP and a hostname is common, so this is not a warning.
    """
    ips = [r for r in rdatas if r.rdtype != dns.rdatatype.CNAME]
    if ips:
        return ips
    return [r for r in rdatas if r.rdtype == dns.rdatatype.CNAME][:1]


def load_balancer(lb: LoadBalancerStatus, report: Warner) -> list[dns.rdata.Rdata]:
    """status.loadBalancer.ingress[]: IPs, or a CNAME to the first hostname when there is no IP."""
    ips = addresses((i.ip for i in lb.ingress), "load balancer IP", report)
    names = hostnames((i.hostname for i in lb.ingress), "load balancer hostname", report)
    return prefer_addresses(ips + names)


def claims(
    names: Iterable[dns.name.Name],
    rdatas: Sequence[dns.rdata.Rdata],
    ttl: int | None = None,
    *,
    report: Warner | None = None,
    why: Why = Why.CLAIMED,
    detail: str | None = None,
) -> tuple[Claim, ...]:
    """Every name × every rdata; rdatas are already without repeats, so only names are deduplicated
    (by key: no rdata hashing). With a report, each name is noted as supplied through `why`."""
    keys = dict.fromkeys(NameKey.of(name) for name in names)
    if report is not None and rdatas:
        for key in keys:
            report.note(key, why, detail)  # the claims' own key: notes add no names to memory
    return tuple((key, rdata, ttl) for key in keys for rdata in rdatas)


def service_front_rdatas(obj: Service, report: Warner) -> list[dns.rdata.Rdata]:
    """What a proxy's own Service (Istio's ingress gateway, Traefik's) is reached at, as
    external-dns reads it: its externalIPs if it has any, else its load balancer's IPs, or a
    CNAME to the load balancer's hostname when it has no IP."""
    if obj.spec.external_ips:
        return addresses(obj.spec.external_ips, f"Service {obj.metadata.namespace}/{obj.metadata.name} externalIP", report)
    return load_balancer(obj.status.load_balancer, report)
