"""external-dns's `target` and `ttl` annotations, and the addresses of an ExternalName Service.

Users who run external-dns beside k8sgw keep one set of annotations, read as external-dns reads
them:

- `external-dns.alpha.kubernetes.io/target` (comma list) replaces the addresses an object would
  otherwise answer with: on a Service or an Ingress its own (load balancer, externalIPs); for a
  route, its parent Gateway's (a target on the route itself is not read, as in external-dns). IPs
  become A/AAAA, a host name a CNAME; addresses win over host names, and of several host names
  the first is the CNAME.
- `external-dns.alpha.kubernetes.io/ttl`: seconds ("300") or a Go duration ("5m", "1h30m";
  fractions of a second dropped), on the object whose names it sets (the route, not its Gateway).
  k8sgw clamps it to 0-3600 like its `ttl` option.

Pure functions of one object, warning through the translation's report.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CNAME

from k8sgw.kubeapi.models import KubeObject, Service
from k8sgw.records.hostnames import Rejected, Warner, hostname, parse_address

__all__ = [
    "HOSTNAME_ANNOTATIONS",
    "TARGET_ANNOTATION",
    "TTL_ANNOTATION",
    "TTL_MAX",
    "annotation_targets",
    "annotation_ttl",
    "externalname_rdatas",
    "parse_ttl",
]

HOSTNAME_ANNOTATIONS = ("coredns.io/hostname", "external-dns.alpha.kubernetes.io/hostname")
"""The names of an object without names of its own in its spec (or more names), first non-empty wins."""
TARGET_ANNOTATION = "external-dns.alpha.kubernetes.io/target"
TTL_ANNOTATION = "external-dns.alpha.kubernetes.io/ttl"
TTL_MAX = 3600  # the bound of k8s_gateway's `ttl` option


def annotation_targets(obj: KubeObject, report: Warner) -> list[dns.rdata.Rdata]:
    """The object's target annotation as rdata (empty: no annotation, or nothing usable in it)."""
    raw = obj.metadata.annotations.get(TARGET_ANNOTATION, "")
    if not raw.strip():
        return []
    return _targets((t.strip() for t in raw.split(",")), "target annotation entry", report)


def externalname_rdatas(obj: Service, report: Warner) -> list[dns.rdata.Rdata]:
    """An ExternalName Service: its externalIPs when it has some (external-dns's rule), else
    spec.externalName, a CNAME target (or A/AAAA when it is an address, which a fake or old API
    may let through)."""
    if obj.spec.external_ips:
        return _targets(obj.spec.external_ips, "externalIP", report)
    name = (obj.spec.external_name or "").strip()
    if not name:
        report.warn("is an ExternalName Service without spec.externalName; it claims nothing")
        return []
    return _targets([name], "spec.externalName", report)


def _targets(values: Iterable[str], what: str, report: Warner) -> list[dns.rdata.Rdata]:
    """Addresses if any, else a CNAME to the first host name; each value checked."""
    addresses: dict[dns.rdata.Rdata, None] = {}
    names: list[dns.rdata.Rdata] = []
    for value in values:
        if not value:
            continue
        try:
            addresses[parse_address(value)] = None
            continue
        except Rejected:
            pass
        try:
            target = hostname(value)
        except Rejected as why:
            report.warn("%s %r is neither an IP address nor a host name (%s); ignored", what, value, why)
            continue
        if target.labels[0] == b"*":
            report.warn("%s %r is a wildcard, which cannot be a CNAME target; ignored", what, value)
            continue
        names.append(dns.rdtypes.ANY.CNAME.CNAME(dns.rdataclass.IN, dns.rdatatype.CNAME, target))
    if addresses:
        return list(addresses)
    return names[:1]


def annotation_ttl(obj: KubeObject, report: Warner) -> int | None:
    """The object's ttl annotation in seconds, clamped to 0-TTL_MAX; None: absent or unreadable."""
    raw = obj.metadata.annotations.get(TTL_ANNOTATION)
    if raw is None:
        return None
    seconds = parse_ttl(raw)
    if seconds is None:
        report.warn("%s %r is neither seconds nor a duration like 5m; the default TTL applies", TTL_ANNOTATION, raw)
        return None
    if not 0 <= seconds <= TTL_MAX:
        clamped = min(max(seconds, 0), TTL_MAX)
        report.warn("%s %r is outside 0-%d seconds; answering with %d", TTL_ANNOTATION, raw, TTL_MAX, clamped)
        return clamped
    return seconds


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_TTL_TEXT_MAX = 64  # longer than any TTL or duration a person writes
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def parse_ttl(text: str) -> int | None:
    """Whole seconds from "300" or a Go duration ("1m30s", "-5m", "1.5h"); None when neither.

    As external-dns: an integer is seconds; otherwise Go's time.ParseDuration syntax (a sign, then
    one or more number+unit parts), truncated to whole seconds.
    """
    text = text.strip()
    if len(text) > _TTL_TEXT_MAX:
        return None  # also keeps int() and float() away from 5,000-digit numbers
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-") if text[:1] in "+-" else text
    if body == "0":
        return 0
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(body):
        if match.start() != pos:
            return None
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos == 0 or pos != len(body):
        return None
    return sign * int(total)
