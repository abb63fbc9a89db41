"""Build record maps from zone-file text, so answer() tests read like CoreDNS's test.Case tables."""

from __future__ import annotations

from dataclasses import dataclass

import dns.name
import dns.rdatatype
import dns.rrset
import immutables

from k8sgw.dnsserver.answer import Authority, Block, View
from k8sgw.records.recordmap import RecordMap, set_rrsets
from k8sgw.records.store import ZoneSettings


@dataclass
class FixedStore:
    """A store whose map the test sets directly."""

    current: RecordMap


def recordmap_from_text(text: str, settings: ZoneSettings, *, ready: bool = True, serial: int = 7) -> RecordMap:
    """Each non-blank line `NAME TTL IN TYPE RDATA` adds one record (TTL is ignored: settings.ttl rules)."""
    rrsets: dict[dns.name.Name, dict[int, list]] = {}
    for line in text.strip().splitlines():
        if not line.strip():
            continue
        name, _ttl, rdclass, rdtype, *rdata = line.split()
        rrset = dns.rrset.from_text(name, 60, rdclass, rdtype, " ".join(rdata))
        rrsets.setdefault(rrset.name, {}).setdefault(rrset.rdtype, []).extend(rrset)
    mutation = immutables.Map().mutate()
    for zone in settings.zones:
        set_rrsets(mutation, zone, settings.apex_rrsets(zone, serial), stop_at=settings.zones)
    for name, by_type in rrsets.items():
        set_rrsets(mutation, name, {t: tuple(r) for t, r in by_type.items()}, stop_at=settings.zones)
    return RecordMap(nodes=mutation.finish(), version=1, serial=serial, ready=ready)


def view_from_text(text: str, zones=("example.org.",), ready: bool = True, **settings_kw) -> tuple[View, FixedStore]:
    settings = ZoneSettings(zones, **settings_kw)
    store = FixedStore(recordmap_from_text(text, settings, ready=ready))
    block = Block(settings.zones, Authority(settings, store))
    return View([block]), store
