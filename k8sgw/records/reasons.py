"""Why: what translation decided about each name an object mentions, kept next to its claims.

Translation knows, at the moment it reads an object, why a name the object mentions answers (the
rule that made the claim) or does not (a filter, a missing parent, a bad value). Translators say
so with one call, `report.note(name, Why.X, detail)` (sources.Report), and the indexer keeps the
notes per object beside its claims, published with the record map they belong to (noteindex.py).
`k8sgw explain` and the /explain endpoints only read them: nothing decides a second time.

A translator for a new kind needs nothing else: its claims are noted CLAIMED at their names when
it notes no rule of its own, and a new reason is one member here, `NAME = ("label",)`, or
`("label", True)` for a rule that supplies records, and its text.

A note is a small tuple (name, Why, detail): the name is the NameKey the claims use (or, for a
host that is not a valid name, its text), Why an enum member, detail a short interned string or
None. At 50,000 objects the notes must stay a small share of the process's memory.

Must not import trio or httpx.
"""

from __future__ import annotations

import enum
import sys

import dns.name

from k8sgw.records.keys import NameKey

__all__ = ["Note", "NoteName", "Notes", "Why", "host_text", "note"]


class Why(enum.Enum):
    """One rule that supplies a name, or one reason a mentioned name gets nothing from the object.

    The value is the label of the k8sgw_objects_skipped metric and of `-o json`; `supplies` is a
    plain attribute, as explain and the skipped list read it for every note of every object.
    """

    # supplies records
    INGRESS_HOST = ("ingress-rule-host", True)
    SERVICE_DEFAULT_NAME = ("service-name-namespace", True)
    SERVICE_ANNOTATION = ("hostname-annotation", True)
    ROUTE_HOSTNAME = ("route-hostname", True)
    DNSENDPOINT_NAME = ("dnsendpoint-dnsname", True)
    NODE_NAME = ("node-name", True)
    REVERSE_ADDRESS = ("reverse-address", True)  # a PTR: an address of names in the forward zones
    CLAIMED = ("claimed", True)  # a translator that named no rule
    NAMESERVER_HOST = ("nameserver-host", True)  # <apex>.<zone>: the nameserver's own Service
    ZONE_APEX = ("zone-apex", True)  # SOA and NS of the zone
    # supplies nothing
    SHADOWED = ("shadowed",)
    FILTERED_INGRESS_CLASS = ("filtered-ingress-class",)
    FILTERED_GATEWAY_CLASS = ("filtered-gateway-class",)
    FILTERED_SERVICE_LABELS = ("filtered-service-labels",)
    IGNORED_LABEL = ("ignored-label",)
    ROUTE_NOT_ACCEPTED = ("route-not-accepted",)
    SECTION_NAME_MISMATCH = ("section-name-mismatch",)
    LISTENER_HOSTNAME_MISMATCH = ("listener-hostname-mismatch",)
    GATEWAY_MISSING = ("gateway-missing",)
    GATEWAY_NO_ADDRESS = ("gateway-no-address",)
    NO_LOAD_BALANCER_ADDRESS = ("no-load-balancer-address",)
    NOT_LOAD_BALANCER = ("service-not-load-balancer",)
    NO_READY_ENDPOINTS = ("no-ready-endpoints",)
    EXTERNALNAME_UNUSABLE = ("externalname-unusable",)
    NO_NODE_ADDRESS = ("no-node-address",)
    INVALID_HOSTNAME = ("invalid-hostname",)
    INVALID_ADDRESS = ("invalid-address",)
    INVALID_RECORD = ("invalid-record",)
    RESERVED_NAME = ("reserved-name",)
    TOO_LARGE = ("rrset-too-large",)
    OUTSIDE_ZONES = ("outside-zones",)
    KIND_NOT_WATCHED = ("kind-not-watched",)

    supplies: bool

    def __new__(cls, label: str, supplies: bool = False) -> Why:
        member = object.__new__(cls)
        member._value_ = label
        member.supplies = supplies
        return member

    @property
    def text(self) -> str:
        """What it means, for a person (a member without a text says its value)."""
        return _TEXT.get(self, self.value)


_TEXT = {
    Why.INGRESS_HOST: "Ingress spec.rules[].host",
    Why.SERVICE_DEFAULT_NAME: "the Service's default name, name.namespace.<zone>",
    Why.SERVICE_ANNOTATION: "hostname annotation",
    Why.ROUTE_HOSTNAME: "route hostname ∩ listener hostname",
    Why.DNSENDPOINT_NAME: "DNSEndpoint spec.endpoints[].dnsName",
    Why.NODE_NAME: "Node metadata.name in the zone, its status.addresses of nodeAddressType",
    Why.REVERSE_ADDRESS: "reverse zone: PTR to the forward names with this address",
    Why.CLAIMED: "claimed by its translation",
    Why.NAMESERVER_HOST: "nameserver host: the addresses of k8sgw's own Service (externalIPs, else load balancer)",
    Why.ZONE_APEX: "zone apex: SOA and NS, from the Corefile",
    Why.SHADOWED: "shadowed: a kind earlier in the ownership order has records at this name",
    Why.FILTERED_INGRESS_CLASS: "filtered by ingressClasses",
    Why.FILTERED_GATEWAY_CLASS: "filtered by gatewayClasses (its parent Gateway's class)",
    Why.FILTERED_SERVICE_LABELS: "filtered by serviceLabelSelectors",
    Why.IGNORED_LABEL: "ignored by the label k8s-gateway.dns/ignore",
    Why.ROUTE_NOT_ACCEPTED: "route not Accepted by that parent (status.parents)",
    Why.SECTION_NAME_MISMATCH: "parentRef sectionName names no listener of the Gateway",
    Why.LISTENER_HOSTNAME_MISMATCH: "route hostname does not match the listener hostname",
    Why.GATEWAY_MISSING: "parent Gateway missing (or ignored)",
    Why.GATEWAY_NO_ADDRESS: "parent Gateway has no usable address in status.addresses",
    Why.NO_LOAD_BALANCER_ADDRESS: "load balancer has no address yet",
    Why.NOT_LOAD_BALANCER: (
        "Service is neither of type LoadBalancer nor ExternalName, has no target annotation and does not resolve its endpoints"
    ),
    Why.NO_READY_ENDPOINTS: "resolve-endpoints Service has no ready endpoint address",
    Why.EXTERNALNAME_UNUSABLE: "ExternalName Service without a usable spec.externalName",
    Why.NO_NODE_ADDRESS: "Node has no usable address of the nodeAddressType answered",
    Why.INVALID_HOSTNAME: "invalid hostname",
    Why.INVALID_ADDRESS: "invalid address",
    Why.INVALID_RECORD: "invalid record",
    Why.RESERVED_NAME: "name reserved by the zone (nameserver host, or a CNAME at the apex)",
    Why.TOO_LARGE: "more records than a reply can carry",
    Why.OUTSIDE_ZONES: "outside every zone of this k8s_gateway",
    Why.KIND_NOT_WATCHED: "kind not watched",
}

NoteName = NameKey | str
"""The name a note is about: a NameKey, or the lower-cased text of a host that is not a name."""
Note = tuple[NoteName, Why, str | None]
Notes = tuple[Note, ...]


def note(name: dns.name.Name | NameKey | str, why: Why, detail: str | None = None) -> Note:
    """One note; strings are interned, as thousands of objects share a class, a label or a text."""
    if isinstance(name, dns.name.Name):
        key: NoteName = NameKey.of(name)
    elif isinstance(name, NameKey):
        key = name
    else:
        key = sys.intern(host_text(name))
    return (key, why, sys.intern(detail) if detail is not None else None)


def host_text(text: str) -> str:
    """A host as written in an object, compared as a name is: trimmed, lower-case, no final dot."""
    return text.strip().rstrip(".").lower()
