"""Reverse-mapping names: the zones under in-addr.arpa (RFC 1035 §3.5) and ip6.arpa (RFC 3596 §2.5).

An IPv4 address a.b.c.d is named d.c.b.a.in-addr.arpa; an IPv6 address by its 32 hex nibbles,
least significant first, then ip6.arpa. A reverse zone k8sgw serves must be cut on an octet
(IPv4) or a nibble (IPv6) boundary, so every address maps to exactly one name. Classless
delegation names (RFC 2317, `0/25.2.0.192.in-addr.arpa`) are not supported.

Pure functions on dnspython names and NameKeys: imported by the Corefile parser and the indexer.
"""

from __future__ import annotations

import ipaddress

import dns.name

from k8sgw.records.keys import NameKey

__all__ = ["IN_ADDR_ARPA", "IP6_ARPA", "is_reverse", "reverse_key", "reverse_zone_problem"]

IN_ADDR_ARPA = dns.name.from_text("in-addr.arpa.")
IP6_ARPA = dns.name.from_text("ip6.arpa.")
_IN_ADDR = NameKey.of(IN_ADDR_ARPA)
_IP6 = NameKey.of(IP6_ARPA)
_HEX = b"0123456789abcdef"
_NIBBLES = [bytes([c]) for c in _HEX]
_OCTETS = [str(i).encode() for i in range(256)]
# One bytes object per label value, shared by every reverse name (a 50,000-address index would
# otherwise hold 200,000 copies of "0" to "255").
_OCTET_LABELS = {label.decode(): label for label in _OCTETS}


def is_reverse(zone: dns.name.Name) -> bool:
    """The zone is in-addr.arpa or ip6.arpa or below them."""
    return zone.is_subdomain(IN_ADDR_ARPA) or zone.is_subdomain(IP6_ARPA)


def reverse_zone_problem(zone: dns.name.Name) -> str | None:
    """Why a zone under in-addr.arpa or ip6.arpa cannot be served as a reverse zone, or None.

    IPv4: at most four labels below in-addr.arpa, each a decimal octet 0-255 written without
    leading zeros. IPv6: at most 32 labels below ip6.arpa, each one hex digit.
    """
    if zone.is_subdomain(IN_ADDR_ARPA):
        labels = zone.relativize(IN_ADDR_ARPA).labels
        if len(labels) > 4 or not all(label in _OCTETS for label in labels):
            return "is not on an octet boundary (labels must be up to four decimal octets 0-255, like 2.0.192.in-addr.arpa)"
    elif zone.is_subdomain(IP6_ARPA):
        labels = zone.relativize(IP6_ARPA).labels
        if len(labels) > 32 or not all(label.lower() in _NIBBLES for label in labels):
            return "is not on a nibble boundary (labels must be up to 32 single hex digits, like 8.b.d.0.1.0.0.2.ip6.arpa)"
    return None


def reverse_key(address: str) -> NameKey:
    """The reverse-mapping name of an address as an A or AAAA rdata holds it (`rdata.address`:
    dotted quad, or IPv6 text), as a NameKey."""
    if ":" not in address:
        labels = [_OCTET_LABELS[label] for label in reversed(address.split("."))]
        return tuple.__new__(NameKey, (*labels, *_IN_ADDR))
    packed = ipaddress.IPv6Address(address).packed
    nibbles: list[bytes] = []
    for byte in reversed(packed):
        nibbles.append(_NIBBLES[byte & 0xF])
        nibbles.append(_NIBBLES[byte >> 4])
    return tuple.__new__(NameKey, (*nibbles, *_IP6))
