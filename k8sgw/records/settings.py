"""ZoneSettings: the parts of a k8s_gateway block that shape its zones and what objects may claim."""

from __future__ import annotations

from collections.abc import Iterable

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.NS
import dns.rdtypes.ANY.SOA

from k8sgw.arpa import is_reverse
from k8sgw.config.models import GatewayConfig
from k8sgw.kubeapi.kinds import ISTIO_KINDS, ROUTE_KINDS, TRAEFIK_KINDS
from k8sgw.labels import parse_label_selector
from k8sgw.records.keys import NameKey
from k8sgw.records.sources import Scope

__all__ = ["ObjectKey", "ZoneSettings", "watched_kinds"]

ObjectKey = tuple[str, str]  # (namespace, name)


class ZoneSettings:
    """Zones, TTL, nameserver names and the filters of one k8s_gateway instance."""

    def __init__(
        self,
        zones: Iterable[str | dns.name.Name],
        *,
        ttl: int = 60,
        apex: str = "dns1.kube-system",
        secondary: str | None = None,
        ingress_classes: Iterable[str] = (),
        gateway_classes: Iterable[str] = (),
        service_label_selectors: Iterable[str] = (),
        node_address_type: str = "InternalIP",
        traefik_service: str | None = None,
    ) -> None:
        self.zones = tuple(dns.name.from_text(z) if isinstance(z, str) else z for z in zones)
        self.zone_keys = frozenset(NameKey.of(z) for z in self.zones)
        # Reverse zones hold only the PTR records derived from the forward zones' addresses (and
        # their apex SOA/NS): no object claims names in them.
        self.reverse_zones = tuple(z for z in self.zones if is_reverse(z))
        self.forward_zones = tuple(z for z in self.zones if not is_reverse(z))
        self.ttl = ttl
        self.apex = dns.name.from_text(apex, origin=None)
        self.secondary = dns.name.from_text(secondary, origin=None) if secondary else None
        # <apex>.<zone> and <secondary>.<zone> are the zone's NS targets; their addresses belong to
        # the Service named by the host's first two labels, name.namespace ("dns1.kube-system" →
        # Service kube-system/dns1), and no object may claim them.
        self.nameserver_hosts: dict[NameKey, ObjectKey | None] = {}
        for host in (self.apex, self.secondary):
            if host is None:
                continue
            labels = [label.decode().lower() for label in host.labels]
            key = (labels[1], labels[0]) if len(labels) >= 2 else None
            for zone in self.zones:
                self.nameserver_hosts[NameKey.of(host.concatenate(zone))] = key
        self._every_zone = Scope(self.zones)  # answers route by every zone, reverse ones too
        self.scope = Scope(
            self.forward_zones,
            frozenset(ingress_classes),
            frozenset(gateway_classes),
            tuple(parse_label_selector(s) for s in service_label_selectors),
            dict(self.nameserver_hosts),
            node_address_type,
            _object_key(traefik_service) if traefik_service else None,
        )

    @classmethod
    def from_config(cls, gw: GatewayConfig) -> ZoneSettings:
        return cls(
            gw.zones,
            ttl=gw.ttl,
            apex=gw.apex,
            secondary=gw.secondary,
            ingress_classes=gw.ingress_classes,
            gateway_classes=gw.gateway_classes,
            service_label_selectors=gw.service_label_selectors,
            node_address_type=gw.node_address_type,
            traefik_service=gw.traefik_service,
        )

    def zone_of(self, name: dns.name.Name) -> dns.name.Name | None:
        """The longest zone answered (forward or reverse) containing name, or None."""
        return self._every_zone.zone_of(name)

    def nameservers(self, zone: dns.name.Name) -> tuple[dns.name.Name, ...]:
        hosts = [self.apex] + ([self.secondary] if self.secondary else [])
        return tuple(h.concatenate(zone) for h in hosts)

    def nameserver_service_keys(self) -> frozenset[ObjectKey]:
        return frozenset(k for k in self.nameserver_hosts.values() if k is not None)

    def soa(self, zone: dns.name.Name, serial: int) -> dns.rdata.Rdata:
        # Timers follow k8s_gateway; minimum = TTL so negative answers live as long as positive ones.
        # mname: the first of apex and secondary in DNS order, so both members of a dual pair (each
        # the other's secondary) publish the same SOA, as zone checkers expect of a zone's servers.
        mname = min(self.apex, self.secondary or self.apex).concatenate(zone)
        return dns.rdtypes.ANY.SOA.SOA(
            dns.rdataclass.IN,
            dns.rdatatype.SOA,
            mname,
            dns.name.Name([b"hostmaster"]).concatenate(mname),
            serial,
            7200,
            1800,
            86400,
            self.ttl,
        )

    def apex_rrsets(self, zone: dns.name.Name, serial: int) -> dict[int, tuple[dns.rdata.Rdata, ...]]:
        ns = tuple(
            dns.rdtypes.ANY.NS.NS(dns.rdataclass.IN, dns.rdatatype.NS, host) for host in self.nameservers(zone)
        )
        return {dns.rdatatype.SOA: (self.soa(zone, serial),), dns.rdatatype.NS: ns}


def _object_key(text: str) -> ObjectKey:
    """`namespace/name` (checked by the Corefile parser) as (namespace, name)."""
    namespace, _, name = text.partition("/")
    return (namespace, name)


def watched_kinds(resources: Iterable[str]) -> tuple[str, ...]:
    """The kinds to watch for `resources`: Gateways when any route kind is on, EndpointSlices with
    Services (for `k8s-gateway.dns/resolve-endpoints`), Services for Istio (the ingress gateway
    Services) and Traefik (the Traefik Service) even when `resources` does not name them, Istio
    Gateways for VirtualServices."""
    kinds = list(dict.fromkeys(resources))
    if any(k in ROUTE_KINDS for k in kinds):
        kinds.append("Gateway")
    if "Service" in kinds:
        kinds.append("EndpointSlice")
    elif any(k in ISTIO_KINDS or k in TRAEFIK_KINDS for k in kinds):
        kinds.append("Service")
    if "VirtualService" in kinds and "IstioGateway" not in kinds:
        kinds.append("IstioGateway")
    return tuple(kinds)
