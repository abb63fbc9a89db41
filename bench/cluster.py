"""The synthetic cluster: the same names as Kubernetes objects (for k8sgw), as a zone file (for NSD)
and as a dnsperf query file.

Pure data, no I/O beyond returning strings: everything is a function of the object count, so k8sgw
and NSD serve exactly the same names. Addresses come from 198.18.0.0/15 and 2001:2::/48, the
benchmarking ranges (RFC 2544, RFC 5180), so nothing here could ever be routed anywhere.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = [
    "APEX_ADDRESS",
    "NAMESPACES",
    "REVERSE_ZONES",
    "TTL",
    "ZONE",
    "Name",
    "changed_ingress",
    "names",
    "objects",
    "query_lines",
    "zone_text",
]

ZONE = "bench.example."
TTL = 60  # k8s_gateway's default `ttl`; NSD gets the same so answers are the same size
NAMESPACES = 10
IPV6_EVERY = 10  # one object in ten also has an IPv6 address (10% of names answer AAAA)
APEX_ADDRESS = "198.19.255.254"  # dns1.kube-system: the apex's nameserver glue
REVERSE_ZONES = ("18.198.in-addr.arpa", "19.198.in-addr.arpa", "2.0.0.0.1.0.0.2.ip6.arpa")
"""The reverse zones of every address below (`--reverse-zones`)."""
_V4_SERVICES = int(ipaddress.IPv4Address("198.18.0.0"))
_V4_INGRESSES = int(ipaddress.IPv4Address("198.19.0.0"))
_V4_SPAN = 65000  # per kind; beyond that addresses repeat, which DNS does not mind


@dataclass(frozen=True, slots=True)
class Name:
    """One owner name of the synthetic zone and what it answers."""

    fqdn: str
    kind: str  # "Service" | "Ingress"
    index: int
    ipv4: str
    ipv6: str | None


def _split(count: int) -> tuple[int, int]:
    services = count // 2
    return services, count - services


def _service_name(i: int) -> Name:
    v6 = f"2001:2::1:{i:x}" if i % IPV6_EVERY == 0 else None
    v4 = str(ipaddress.IPv4Address(_V4_SERVICES + i % _V4_SPAN))
    return Name(f"svc-{i:05d}.team-{i % NAMESPACES}.{ZONE}", "Service", i, v4, v6)


def _ingress_name(i: int) -> Name:
    v6 = f"2001:2::2:{i:x}" if i % IPV6_EVERY == 0 else None
    v4 = str(ipaddress.IPv4Address(_V4_INGRESSES + i % _V4_SPAN))
    return Name(f"ing-{i:05d}.{ZONE}", "Ingress", i, v4, v6)


def names(count: int) -> list[Name]:
    """Every name of a cluster of `count` objects: count//2 LoadBalancer Services, the rest Ingresses."""
    services, ingresses = _split(count)
    return [_service_name(i) for i in range(services)] + [_ingress_name(i) for i in range(ingresses)]


def _lb_status(name: Name, ipv4: str | None = None) -> dict[str, Any]:
    ips = [{"ip": ipv4 or name.ipv4}] + ([{"ip": name.ipv6}] if name.ipv6 else [])
    return {"loadBalancer": {"ingress": ips}}


def _service(name: Name) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name.fqdn.split(".")[0], "namespace": f"team-{name.index % NAMESPACES}"},
        "spec": {
            "type": "LoadBalancer",
            "selector": {"app": "bench"},
            "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}],
        },
        "status": _lb_status(name),
    }


def _ingress(name: Name, ipv4: str | None = None) -> dict[str, Any]:
    host = name.fqdn.rstrip(".")
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": host.split(".")[0], "namespace": f"team-{name.index % NAMESPACES}"},
        "spec": {
            "ingressClassName": "nginx",
            "rules": [
                {
                    "host": host,
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "web", "port": {"number": 80}}},
                            }
                        ]
                    },
                }
            ],
        },
        "status": _lb_status(name, ipv4),
    }


def apex_service() -> dict[str, Any]:
    """The nameserver's own Service (default `apex dns1.kube-system`): the zone's NS glue."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "dns1", "namespace": "kube-system"},
        "spec": {"type": "LoadBalancer", "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]},
        "status": {"loadBalancer": {"ingress": [{"ip": APEX_ADDRESS}]}},
    }


def objects(count: int) -> Iterator[dict[str, Any]]:
    """The Kubernetes objects of a cluster of `count` objects (plus the apex Service)."""
    yield apex_service()
    for name in names(count):
        yield _service(name) if name.kind == "Service" else _ingress(name)


def changed_ingress(name: Name, ipv4: str) -> dict[str, Any]:
    """The Ingress of `name` moved to a new load-balancer address (one watch MODIFIED event)."""
    return _ingress(name, ipv4)


def zone_text(count: int) -> str:
    """The same zone as NSD master file text: SOA, NS, glue and every name's A/AAAA."""
    apex = f"dns1.kube-system.{ZONE}"
    lines = [
        f"$ORIGIN {ZONE}",
        f"$TTL {TTL}",
        f"@ IN SOA {apex} hostmaster.{ZONE} 1 7200 1800 86400 {TTL}",
        f"@ IN NS {apex}",
        f"{apex} IN A {APEX_ADDRESS}",
    ]
    for name in names(count):
        lines.append(f"{name.fqdn} IN A {name.ipv4}")
        if name.ipv6:
            lines.append(f"{name.fqdn} IN AAAA {name.ipv6}")
    return "\n".join(lines) + "\n"


def query_lines(count: int, lines: int = 2000, *, seed: int = 6) -> list[str]:
    """A dnsperf query file: 80% A for existing names, 10% AAAA for existing names (half of them
    have an IPv6 address, half answer NODATA), 10% A for names that do not exist (NXDOMAIN).

    Lines are shuffled with a fixed seed, so every run and both servers see the same sequence.
    """
    rng = random.Random(seed)
    all_names = names(count)
    if not all_names:
        raise ValueError("the cluster needs at least one object")
    n_aaaa = lines // 10
    n_nx = lines // 10
    n_a = lines - n_aaaa - n_nx
    v6 = [n for n in all_names if n.ipv6]
    v4_only = [n for n in all_names if not n.ipv6] or all_names
    out = [f"{n.fqdn} A" for n in _sample(rng, all_names, n_a)]
    out += [f"{n.fqdn} AAAA" for n in _sample(rng, v6 or all_names, n_aaaa - n_aaaa // 2)]
    out += [f"{n.fqdn} AAAA" for n in _sample(rng, v4_only, n_aaaa // 2)]
    out += [f"nx-{i:05d}.{ZONE} A" for i in range(n_nx)]
    rng.shuffle(out)
    return out


TRAFFIC = ("new-names", "nxdomain", "0x20")
"""Query files of names no server has seen byte for byte (dnsperf replays a file line by line, so
every line must differ): "new-names": the zone's names in random order, each spelled in random
letter case; "nxdomain": a random-subdomain flood, a fresh random label under the zone per line;
"0x20": one name in random letter case (as hardened resolvers send it, RFC draft-vixie-dnsext-dns0x20)."""


def traffic_lines(kind: str, count: int, lines: int, *, seed: int = 17) -> list[str]:
    """`lines` query lines of one TRAFFIC kind for a cluster of `count` objects."""
    rng = random.Random(seed)
    all_names = names(count)
    if kind == "nxdomain":
        return [f"{rng.getrandbits(60):015x}.{ZONE} A" for _ in range(lines)]
    if kind == "0x20":
        return [f"{_spelled(rng, all_names[0].fqdn)} A" for _ in range(lines)]
    if kind == "new-names":
        return [f"{_spelled(rng, n.fqdn)} A" for n in _sample(rng, all_names, lines)]
    raise ValueError(f"unknown traffic {kind!r}")


def _spelled(rng: random.Random, name: str) -> str:
    flips = rng.getrandbits(len(name))
    return "".join(c.upper() if flips >> i & 1 else c for i, c in enumerate(name))


def _sample(rng: random.Random, population: list[Name], k: int) -> list[Name]:
    """k names, distinct while the population lasts, then repeating (tiny clusters)."""
    picked: list[Name] = []
    while len(picked) < k:
        picked += rng.sample(population, min(k - len(picked), len(population)))
    return picked
