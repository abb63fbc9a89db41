"""Nodes (`resources Node`, not watched by default): `<node name>.<zone>` → the Node's addresses.

Each Node is named by its metadata.name under every forward zone (a Node name is a DNS
subdomain, so `worker-1` → `worker-1.example.org`, `ip-10-0-0-7.ec2.internal` →
`ip-10-0-0-7.ec2.internal.example.org`), and answers with the `status.addresses` of the type
`nodeAddressType` names (InternalIP by default; or ExternalIP), IPv4 as A and IPv6 as AAAA.
Hostname-type addresses are not answered. A Node labelled `k8s-gateway.dns/ignore: "true"` is
skipped, like any object.

The ignore label and the report's prefix are handled by the caller (sources.py's translator);
each name is noted (reasons.py) as answering or, without an address, why not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import dns.name
import dns.rdata

from k8sgw.kubeapi.models import Node
from k8sgw.records.annotations import annotation_ttl
from k8sgw.records.hostnames import Rejected, hostname, in_each_zone, parse_address
from k8sgw.records.keys import NameKey
from k8sgw.records.reasons import Why

if TYPE_CHECKING:  # sources.py imports this module
    from k8sgw.records.sources import Claim, Report, Scope

__all__ = ["node_claims", "node_names"]


def node_claims(obj: Node, scope: Scope, report: Report) -> tuple[Claim, ...]:
    """The Node's name in each forward zone → its addresses of `scope.node_address_type`."""
    addresses: dict[dns.rdata.Rdata, None] = {}
    rejected: list[str] = []
    for address in obj.status.addresses:
        if address.type != scope.node_address_type or not address.address.strip():
            continue
        try:
            addresses[parse_address(address.address)] = None
        except Rejected as why:
            report.warn("%s %r %s; ignored", address.type, address.address, why)
            rejected.append(f"{address.type} {address.address!r} {why}")
    names = node_names(obj, scope, report)
    if not addresses:
        detail = "; ".join(rejected[:3]) or f"no {scope.node_address_type} in status.addresses"
        report.note_all(names, Why.NO_NODE_ADDRESS, detail)
        return ()
    ttl = annotation_ttl(obj, report)
    detail = f"status.addresses of type {scope.node_address_type}"
    claims: list[Claim] = []
    for name in names:
        key = NameKey.of(name)
        report.note(key, Why.NODE_NAME, detail)
        claims.extend((key, rdata, ttl) for rdata in addresses)
    return tuple(claims)


def node_names(obj: Node, scope: Scope, report: Report) -> list[dns.name.Name]:
    """`<node name>.<zone>` in each forward zone; none when the Node's name cannot be one
    (warned about and noted)."""
    try:
        relative = hostname(obj.metadata.name).relativize(dns.name.root)
    except Rejected as why:
        report.warn("name %r %s; the Node has no name in DNS", obj.metadata.name, why)
        report.note(obj.metadata.name, Why.INVALID_HOSTNAME, f"Node name {obj.metadata.name!r} {why}")
        return []
    if relative.labels and relative.labels[0] == b"*":
        report.warn("name %r is a wildcard; the Node has no name in DNS", obj.metadata.name)
        report.note(obj.metadata.name, Why.INVALID_HOSTNAME, f"Node name {obj.metadata.name!r} is a wildcard")
        return []
    return in_each_zone(relative, scope.zones, report)
