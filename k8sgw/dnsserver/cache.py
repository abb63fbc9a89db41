"""The `cache` directive: forwarded answers kept for their TTL, so repeated questions cost no upstream trip.

Only forwarded answers are cached: k8sgw's own answers change the moment the cluster does, and a
cache in front of them would hide that for up to a TTL.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import trio

from k8sgw.config.dnsplugins import CacheConfig

__all__ = ["CacheObserver", "ResponseCache"]

# Bytes of responses kept at most, whatever `capacity` says: 9,984 responses of up to 64 KB (an
# upstream's TCP answer) would be 640 MB. Least recently used ones go first.
MAX_BYTES = 16 * 2**20
# A cached entry's cost beyond its response bytes (key tuple, name, entry object, dict slot).
ENTRY_OVERHEAD = 256

CacheKey = tuple[dns.name.Name, int, int, bool, bool]


class CacheObserver(Protocol):
    """Who counts lookups (ops/metrics.py, for coredns_cache_*)."""

    def hit(self, denial: bool) -> None: ...
    def miss(self) -> None: ...


@dataclass(frozen=True, slots=True)
class _Entry:
    wire: bytes
    stored_at: float
    expires_at: float
    denial: bool = False  # NXDOMAIN or NODATA (CoreDNS counts them apart from successes)


class ResponseCache:
    """An LRU map from question (+DO, CD bits) to a finished response, each kept for its TTL."""

    def __init__(
        self,
        cfg: CacheConfig,
        *,
        clock: Callable[[], float] = trio.current_time,
        observer: CacheObserver | None = None,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self.cfg = cfg
        self.observer = observer
        self.max_bytes = max_bytes
        self.bytes = 0  # what the entries hold, as counted against max_bytes
        self._zones = tuple(dns.name.from_text(z) for z in cfg.zones)
        self._clock = clock
        self._entries: OrderedDict[CacheKey, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def sizes(self) -> tuple[int, int]:
        """Entries held: (successes, denials)."""
        denials = sum(1 for entry in self._entries.values() if entry.denial)
        return len(self._entries) - denials, denials

    def get(self, query: dns.message.Message) -> dns.message.Message | None:
        """A fresh copy of the cached response to query, TTLs lowered by its age; None on a miss."""
        key = self._key(query)
        entry = self._entries.get(key)
        now = self._clock()
        if entry is not None and now >= entry.expires_at:
            self._drop(key)
            entry = None
        if entry is None:
            if self.observer is not None:
                self.observer.miss()
            return None
        if self.observer is not None:
            self.observer.hit(entry.denial)
        self._entries.move_to_end(key)
        response = dns.message.from_wire(entry.wire)
        age = int(now - entry.stored_at)
        for section in (response.answer, response.authority, response.additional):
            for rrset in section:
                rrset.ttl = max(0, rrset.ttl - age)
        return response

    def put(self, query: dns.message.Message, response: dns.message.Message) -> None:
        """Keep response if it is cacheable: NOERROR or NXDOMAIN, not truncated, TTL above 0."""
        if response.rcode() not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN) or response.flags & dns.flags.TC:
            return
        name = query.question[0].name
        if self._zones and not any(name.is_subdomain(z) for z in self._zones):
            return
        ttl = self._ttl(response)
        if ttl <= 0:
            return
        now = self._clock()
        key = self._key(query)
        wire = response.to_wire()
        if len(wire) + ENTRY_OVERHEAD > self.max_bytes:
            return
        denial = response.rcode() == dns.rcode.NXDOMAIN or not response.answer
        self._drop(key)
        self._entries[key] = _Entry(wire, now, now + ttl, denial)
        self.bytes += len(wire) + ENTRY_OVERHEAD
        while len(self._entries) > self.cfg.capacity or self.bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: CacheKey) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.bytes -= len(entry.wire) + ENTRY_OVERHEAD

    def _ttl(self, response: dns.message.Message) -> int:
        rrsets = [*response.answer, *response.authority]
        if not rrsets:
            return 0
        ttls = [rrset.ttl for rrset in rrsets]
        # RFC 2308 §5: a negative answer lives min(SOA TTL, SOA minimum).
        ttls += [rrset[0].minimum for rrset in response.authority if rrset.rdtype == dns.rdatatype.SOA]
        return min(min(ttls), self.cfg.max_ttl)

    @staticmethod
    def _key(query: dns.message.Message) -> CacheKey:
        q = query.question[0]
        do = bool(query.ednsflags & dns.flags.DO)
        cd = bool(query.flags & dns.flags.CD)
        return (q.name, q.rdtype, q.rdclass, do, cd)
