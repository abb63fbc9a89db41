"""NameKey: k8sgw's own dictionary key for a domain name.

dnspython's Name hashes with a Python loop over every character and compares through
fullcompare's relativity logic; the record map, the claims and the sets of changed names hash and
compare names millions of times in a 50,000-object sync. A NameKey is the name's labels, each
lower-cased (DNS names compare ASCII case-insensitively, RFC 4343), root label last, as a tuple:
hashing and equality are tuple and bytes methods in C. Names are converted at the boundary of the
record map and the indexer (`NameKey.of`) and back where a Name is needed (`name()`); nothing in
dnspython is changed.
"""

from __future__ import annotations

import dns.name

__all__ = ["NameKey"]


class NameKey(tuple[bytes, ...]):
    """A domain name's lower-cased labels, most specific first (as `dns.name.Name.labels`)."""

    __slots__ = ()

    @classmethod
    def of(cls, name: dns.name.Name) -> NameKey:
        return tuple.__new__(cls, [label.lower() for label in name.labels])

    def name(self) -> dns.name.Name:
        return dns.name.Name(self)

    def parent(self) -> NameKey:
        """The name one label up (the root has no parent: dnspython's NoParent)."""
        if len(self) <= 1:
            raise dns.name.NoParent
        return tuple.__new__(NameKey, self[1:])

    def is_subdomain(self, other: NameKey) -> bool:
        """self is other or below it (dns.name.Name.is_subdomain, for absolute names)."""
        n = len(other)
        return len(self) >= n and self[len(self) - n :] == other

    def __str__(self) -> str:
        return self.name().to_text()

    def __repr__(self) -> str:
        return f"NameKey({str(self)!r})"
