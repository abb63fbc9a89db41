"""One table of hostile objects (zone foo.org, apex Service kube-system/dns1), shared by the
translation tests and the end-to-end tests through the dev API server.

Each row: the manifest, a text its WARNING must contain, and what the name it aims at must answer
afterwards (an rcode and the answer's records, as sorted text). Every other name keeps answering
exactly (`GOOD`): one bad object never costs another object its records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ZONE = "foo.org"


@dataclass(frozen=True)
class Hostile:
    id: str
    manifest: dict[str, Any]
    warning: str
    """Text the object's WARNING contains (kind and namespace/name are checked besides)."""
    probe: tuple[str, str] | None = None
    """(name, type) to ask once it is applied."""
    answer: tuple[str, ...] = ()
    """The probe's expected answer records (rdata text, sorted); () with NOERROR = NODATA."""
    rcode: str = "NOERROR"
    count: int | None = None
    """Instead of `answer`: how many records the probe answers (for huge RRsets)."""
    extra: tuple[dict[str, Any], ...] = field(default=())
    """Objects applied before `manifest` (the other half of a conflict)."""

    @property
    def kind(self) -> str:
        return self.manifest["kind"]

    @property
    def who(self) -> str:
        meta = self.manifest["metadata"]
        return f"{self.kind} {meta.get('namespace', 'default')}/{meta['name']}"


def service(name: str, *, ips: list[str] = (), hostname: str | None = None, annotations=None) -> dict[str, Any]:
    ann = dict(annotations or {})
    if hostname is not None:
        ann["coredns.io/hostname"] = hostname
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "hostile", "annotations": ann},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]},
        "status": {"loadBalancer": {"ingress": [{"ip": ip} for ip in ips]}},
    }


def ingress(name: str, hosts: list[str], *, ip: str | None = None, lb_hostname: str | None = None) -> dict[str, Any]:
    lb = [{"ip": ip}] if ip else [{"hostname": lb_hostname}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": "hostile"},
        "spec": {"rules": [{"host": h} for h in hosts]},
        "status": {"loadBalancer": {"ingress": lb}},
    }


def dnsendpoint(name: str, *endpoints: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "externaldns.k8s.io/v1alpha1",
        "kind": "DNSEndpoint",
        "metadata": {"name": name, "namespace": "hostile"},
        "spec": {"endpoints": list(endpoints)},
    }


def endpoint(dns_name: str, record_type: str, *targets: str) -> dict[str, Any]:
    return {"dnsName": dns_name, "recordType": record_type, "targets": list(targets)}


LONG_OUTSIDE = ".".join(["a" * 62] * 3 + ["a" * 59, "net"])  # 252 characters: a valid name alone

MANY_IPS = [f"10.{i // 65536}.{i // 256 % 256}.{i % 256}" for i in range(5000)]

HOSTILE: tuple[Hostile, ...] = (
    Hostile(
        "hostname-too-long-with-zone",
        service("long", ips=["192.0.2.201"], hostname=LONG_OUTSIDE),
        "longer than a DNS name can be",
    ),
    Hostile(
        "mx-unicode-digit",
        dnsendpoint("mx", endpoint("mx.foo.org", "MX", "² mail.foo.org"), endpoint("mx.foo.org", "TXT", "kept")),
        "preference '²' is not a number",
        probe=("mx.foo.org", "MX"),
    ),
    Hostile(
        "srv-unicode-digit",
        dnsendpoint("srv", endpoint("_sip._tcp.foo.org", "SRV", "1 ¹ 443 host.foo.org")),
        "weight '¹' is not a number",
        probe=("_sip._tcp.foo.org", "SRV"),
        rcode="NXDOMAIN",
    ),
    Hostile(
        "cname-at-apex",
        dnsendpoint("apex", endpoint("foo.org", "CNAME", "elsewhere.example.net")),
        "CNAME at the zone apex",
        probe=("foo.org", "MX"),
    ),
    Hostile(
        "ingress-at-apex-with-lb-hostname",
        ingress("apex", ["foo.org"], lb_hostname="lb.example.net"),
        "CNAME at the zone apex",
        probe=("foo.org", "CNAME"),
    ),
    Hostile(
        "cname-beside-a",
        dnsendpoint("both-cname", endpoint("both.foo.org", "CNAME", "t.example.net")),
        "claim a CNAME and other data",
        probe=("both.foo.org", "A"),
        answer=("192.0.2.202",),
        extra=(dnsendpoint("both-a", endpoint("both.foo.org", "A", "192.0.2.202")),),
    ),
    Hostile(
        "empty-label",
        ingress("empty-label", ["a..b.foo.org"], ip="192.0.2.203"),
        "has an empty label",
    ),
    Hostile(
        "not-ascii",
        ingress("not-ascii", ["bücher.foo.org"], ip="192.0.2.203"),
        "xn--bcher-kva.foo.org",
        probe=("xn--bcher-kva.foo.org", "A"),
        rcode="NXDOMAIN",
    ),
    Hostile(
        "inner-wildcard",
        ingress("inner-wildcard", ["a.*.b.foo.org"], ip="192.0.2.203"),
        "wildcard that is not the whole first label",
    ),
    Hostile(
        "label-64",
        ingress("label-64", ["x" * 64 + ".foo.org"], ip="192.0.2.203"),
        "label of 64 characters",
    ),
    Hostile(
        "bad-characters",
        ingress("bad-characters", ["bad_host!.foo.org"], ip="192.0.2.203"),
        "'bad_host!' that is not",
    ),
    Hostile(
        "zone-index",
        service("zone-index", ips=["fe80::1%eth0", "192.0.2.204"], hostname="zi.foo.org"),
        "zone index",
        probe=("zi.foo.org", "AAAA"),
    ),
    Hostile(
        "claims-nameserver-host",
        ingress("ns-host", ["dns1.kube-system.foo.org", "below.dns1.kube-system.foo.org"], ip="192.0.2.205"),
        "at or below a nameserver host",
        probe=("dns1.kube-system.foo.org", "A"),
        answer=("192.0.2.53",),
    ),
    Hostile(
        "txt-70k",
        dnsendpoint("txt", endpoint("txt.foo.org", "TXT", "x" * 70_000)),
        "more than one record can hold",
        probe=("txt.foo.org", "TXT"),
        rcode="NXDOMAIN",
    ),
    Hostile(
        "5000-ips",
        service("many", ips=MANY_IPS, hostname="many.foo.org"),
        "more than a reply can carry",
        probe=("many.foo.org", "A"),
        count=4063,
    ),
    Hostile(
        "bad-ips",
        service("bad-ips", ips=["192.0.2.300", "not-an-ip", "192.0.2.206"], hostname="badips.foo.org"),
        "'192.0.2.300' is not an IP address",
        probe=("badips.foo.org", "A"),
        answer=("192.0.2.206",),
    ),
)

GOOD: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("myservicea.foo.org", "A", ("192.0.2.10",)),
    ("shop.foo.org", "A", ("192.0.2.30",)),
    ("dns1.kube-system.foo.org", "A", ("192.0.2.53",)),
)
"""Names of the seeded cluster (tests/conftest.py `cluster`) and what they answer."""


def marker(kind: str, i: int) -> tuple[dict[str, Any], str, str]:
    """An object of `kind` answering marker-i.foo.org with 198.51.100.i: events of one kind arrive
    in order, so once it answers, every object of that kind applied before it has been indexed."""
    host, ip = f"marker-{i}.foo.org", f"198.51.100.{i}"
    if kind == "Service":
        obj = service(f"marker-{i}", ips=[ip], hostname=host)
    elif kind == "Ingress":
        obj = ingress(f"marker-{i}", [host], ip=ip)
    else:
        obj = dnsendpoint(f"marker-{i}", endpoint(host, "A", ip))
    return obj, host + ".", ip
