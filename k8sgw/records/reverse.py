"""ReverseIndex: which forward names own each address, and the PTR records that follow.

The publisher feeds it every name whose RRsets it rewrites (old and new A/AAAA); the index says
which reverse names changed, and what each now holds. So a PTR changes in the same record-map
version as the address it maps, and one change costs O(its addresses × log(owners of one
address)), independent of the cluster's size.

Rules:
- only addresses whose reverse name lies in a reverse zone of the same k8s_gateway block are
  kept (the others cost nothing);
- owners are names in the block's forward zones; wildcard owners (`*.example.org`) are skipped,
  since a PTR names a host;
- a reverse name lists its owners in DNS canonical order (RFC 4034 §6.1: compared label by
  label from the root), at most PTR_NAMES_MAX of them: the first in that order.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Iterator, Mapping

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.PTR

from k8sgw.arpa import reverse_key
from k8sgw.records.keys import NameKey

__all__ = ["PTR_NAMES_MAX", "ReverseIndex"]

PTR_NAMES_MAX = 16
"""PTR records at most per address: 16 names of 60 bytes fit a 1,232-byte UDP reply (the DNS
flag day's EDNS size); more would make every reverse lookup of a busy address fall back to TCP."""

_ADDRESS_TYPES = (dns.rdatatype.A, dns.rdatatype.AAAA)
_BUCKET = 512  # owners per bucket of a large owner list: insertion stays O(log n + _BUCKET)

_Order = tuple[bytes, ...]  # an owner's labels from the root: sorts in DNS canonical order


class _Buckets:
    """A sorted list of many owners, in buckets: add and remove cost O(log n + _BUCKET), not O(n)."""

    __slots__ = ("_buckets", "_lasts")

    def __init__(self, items: list[_Order]) -> None:
        self._buckets = [items[i : i + _BUCKET] for i in range(0, len(items), _BUCKET)]
        self._lasts = [b[-1] for b in self._buckets]

    def __len__(self) -> int:
        return sum(len(b) for b in self._buckets)  # O(n / _BUCKET): buckets, not owners

    def __bool__(self) -> bool:
        return bool(self._buckets)

    def add(self, item: _Order) -> None:
        i = min(bisect_left(self._lasts, item), len(self._buckets) - 1)
        bucket = self._buckets[i]
        insort(bucket, item)
        self._lasts[i] = bucket[-1]
        if len(bucket) > 2 * _BUCKET:
            self._buckets[i : i + 1] = [bucket[:_BUCKET], bucket[_BUCKET:]]
            self._lasts[i : i + 1] = [bucket[_BUCKET - 1], bucket[-1]]

    def remove(self, item: _Order) -> None:
        i = bisect_left(self._lasts, item)
        if i == len(self._buckets):
            return
        bucket = self._buckets[i]
        j = bisect_left(bucket, item)
        if j == len(bucket) or bucket[j] != item:
            return
        del bucket[j]
        if bucket:
            self._lasts[i] = bucket[-1]
        else:
            del self._buckets[i], self._lasts[i]

    def first(self, n: int) -> Iterator[_Order]:
        for bucket in self._buckets:
            for item in bucket:
                if n <= 0:
                    return
                n -= 1
                yield item


class ReverseIndex:
    """Owners by reverse name, for the addresses inside `reverse_zones`.

    Args:
        forward_zones: owners outside these are not indexed (names in the reverse zones themselves,
            such as a nameserver host there, do not map back).
        reverse_zones: the reverse zones answered.
    """

    def __init__(self, forward_zones: Iterable[dns.name.Name], reverse_zones: Iterable[dns.name.Name]) -> None:
        self._forward = tuple(NameKey.of(z) for z in forward_zones)
        self._reverse = tuple(NameKey.of(z) for z in reverse_zones)
        # A small owner list is a plain sorted list; a large one becomes _Buckets.
        self._owners: dict[NameKey, list[_Order] | _Buckets] = {}

    def update(
        self,
        owner: NameKey,
        old: Mapping[int, tuple[dns.rdata.Rdata, ...]],
        new: Mapping[int, tuple[dns.rdata.Rdata, ...]],
        changed: set[NameKey],
    ) -> None:
        """owner's RRsets went from old to new: re-index its addresses, adding to changed the
        reverse names whose owners changed."""
        if not self._owns(owner):
            return
        before = _addresses(old)
        after = _addresses(new)
        if before == after:
            return
        order = tuple(reversed(owner))
        for address in before - after:
            key = reverse_key(address)
            if self._in_reverse_zone(key) and self._remove(key, order):
                changed.add(key)
        for address in after - before:
            key = reverse_key(address)
            if self._in_reverse_zone(key):
                self._add(key, order)
                changed.add(key)

    def ptr_rrsets(self, name: NameKey) -> dict[int, tuple[dns.rdata.Rdata, ...]]:
        """What a reverse name holds: PTR to its first PTR_NAMES_MAX owners, or nothing."""
        owners = self._owners.get(name)
        if not owners:
            return {}
        first = owners[:PTR_NAMES_MAX] if isinstance(owners, list) else owners.first(PTR_NAMES_MAX)
        ptr = dns.rdatatype.PTR
        return {
            ptr: tuple(
                dns.rdtypes.ANY.PTR.PTR(dns.rdataclass.IN, ptr, dns.name.Name(tuple(reversed(o)))) for o in first
            )
        }

    def owner_count(self, name: NameKey) -> int:
        """How many names own the address of a reverse name (all of them, not only those answered)."""
        owners = self._owners.get(name)
        return len(owners) if owners is not None else 0

    def _owns(self, owner: NameKey) -> bool:
        if owner and owner[0] == b"*":
            return False
        return any(owner.is_subdomain(z) for z in self._forward) and not self._in_reverse_zone(owner)

    def _in_reverse_zone(self, key: NameKey) -> bool:
        return any(key.is_subdomain(z) for z in self._reverse)

    def _add(self, key: NameKey, order: _Order) -> None:
        owners = self._owners.get(key)
        if owners is None:
            self._owners[key] = [order]
        elif isinstance(owners, _Buckets):
            owners.add(order)
        else:
            i = bisect_left(owners, order)
            if i < len(owners) and owners[i] == order:
                return
            owners.insert(i, order)
            if len(owners) > 2 * _BUCKET:
                self._owners[key] = _Buckets(owners)

    def _remove(self, key: NameKey, order: _Order) -> bool:
        owners = self._owners.get(key)
        if owners is None:
            return False
        if isinstance(owners, _Buckets):
            owners.remove(order)
            if not owners:
                del self._owners[key]
            return True
        i = bisect_left(owners, order)
        if i == len(owners) or owners[i] != order:
            return False
        del owners[i]
        if not owners:
            del self._owners[key]
        return True


def _addresses(rrsets: Mapping[int, tuple[dns.rdata.Rdata, ...]]) -> set[str]:
    # By text: hashing dnspython rdata renders it to wire format each time, which costs more
    # than the rest of the index. Both types' texts are canonical, and never equal to each other.
    return {r.address for t in _ADDRESS_TYPES for r in rrsets.get(t, ())}
