"""dns.name.Name hashing and equality at C speed, for names as dictionary and map keys.

dnspython hashes a Name with a Python loop over every character (into an ever-growing integer) and
tests equality through fullcompare's relativity logic. The record map, the claims and the sets of
changed names hash and compare names millions of times in a 50,000-object sync, where that was a
quarter of the indexer's time. install() gives Name a hash and an equality with the same meaning
(ASCII case-insensitive, absolute unlike relative) built on tuple and bytes methods; dnspython's
ordering and fullcompare are untouched. k8sgw.records installs it on import.
"""

from __future__ import annotations

import dns.name

__all__ = ["install"]


def _hash(self: dns.name.Name) -> int:
    # Equal names have equal lowercased labels, so equal joins. Labels holding a "." may collide
    # with other names; __eq__ still tells them apart.
    return hash(b".".join(self.labels).lower())


def _eq(self: dns.name.Name, other: object) -> bool:
    if not isinstance(other, dns.name.Name):
        return False
    mine, theirs = self.labels, other.labels
    if mine == theirs:  # the common case: both already lowercase
        return True
    return len(mine) == len(theirs) and all(a.lower() == b.lower() for a, b in zip(mine, theirs, strict=True))


def install() -> None:
    """Replace Name.__hash__ and Name.__eq__ (idempotent)."""
    dns.name.Name.__hash__ = _hash  # type: ignore[method-assign]
    dns.name.Name.__eq__ = _eq  # type: ignore[method-assign]
