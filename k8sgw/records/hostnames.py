"""Reading the names, addresses and numbers that objects carry, saying what is wrong when one is bad.

Every parser here returns the parsed value or raises `Rejected` with a short reason ("has an
empty label"); translators log that reason once per rejected part, with the object's
kind/namespace/name. Nothing here logs.

Decisions (README "What objects may say"):
- Host names are ASCII (RFC 1123 letters, digits, inner hyphens; `_` where a DNSEndpoint allows it).
  An internationalised name must be written in its IDNA form (`xn--bcher-kva.example.org`), as
  external-dns expects: the reason names that form.
- Addresses are what `ipaddress` reads, minus an IPv6 zone index (`fe80::1%eth0`): a zone index
  names an interface of one host and means nothing to whoever resolves the name. Unspecified
  (`0.0.0.0`, `::`), loopback and link-local addresses are published as they are, as
  external-dns publishes any address a load balancer reports.
- Numbers (MX preference, SRV priority/weight/port) are ASCII digits only: `str.isdigit()` and
  `int()` also accept other scripts' digits (`"²"`, `"٣"`).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA

if TYPE_CHECKING:
    from k8sgw.records.keys import NameKey
    from k8sgw.records.reasons import Why

__all__ = [
    "MAX_NAME_TEXT",
    "Rejected",
    "address_rdata",
    "Warner",
    "hostname",
    "in_each_zone",
    "parse_address",
    "parse_hostname",
    "parse_uint16",
    "zone_name",
]

MAX_NAME_TEXT = 253  # characters of a name without its trailing dot (255 octets on the wire)

_RFC1123_LABEL = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?")
_TARGET_LABEL = re.compile(r"[a-z0-9_](?:[-a-z0-9_]*[a-z0-9_])?")
_UINT = re.compile(r"[0-9]{1,5}")


class Warner(Protocol):
    """Where translation warnings go (sources.Report): each line names the object. It also keeps
    why each mentioned name answers or not (`note`, for explain) and the values warned about
    (`reject`, for the note that says why nothing answers)."""

    def warn(self, message: str, *args: object) -> None: ...
    def note(self, name: dns.name.Name | NameKey | str, why: Why, detail: str | None = None) -> None: ...
    def reject(self, text: str) -> None: ...


class Rejected(ValueError):
    """A value an object carries that k8sgw cannot use; str() is the reason."""


class _NotAscii(Rejected):
    """The reason names the IDNA form, computed only when a log line shows it (nameprep is slow)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        try:
            return f"is not ASCII (its IDNA form is {self.text.encode('idna').decode()!r})"
        except UnicodeError:
            return "is not ASCII, nor a name IDNA can write in ASCII"


def hostname(text: str, *, underscores: bool = False) -> dns.name.Name:
    """A host name (optionally `*.`-prefixed, trailing dot allowed) as an absolute, lower-case Name.

    `underscores` also allows `_` in labels (external-dns names such as `_sip._tcp.example.org`).

    Raises:
        Rejected: why it is not one.
    """
    text = text.strip().rstrip(".").lower()
    if not text:
        raise Rejected("is empty")
    if len(text) > MAX_NAME_TEXT:
        raise Rejected(f"is longer than {MAX_NAME_TEXT} characters")
    if not text.isascii():
        raise _NotAscii(text)
    labels = text.split(".")
    pattern = _TARGET_LABEL if underscores else _RFC1123_LABEL
    for i, label in enumerate(labels):
        if not label:
            raise Rejected("has an empty label")
        if len(label) > 63:
            raise Rejected(f"has a label of {len(label)} characters (at most 63)")
        if label == "*":
            if i == 0 and len(labels) > 1:
                continue
            raise Rejected("has a wildcard that is not the whole first label")
        if not pattern.fullmatch(label):
            allowed = "letters, digits, '-' and '_'" if underscores else "letters, digits and '-'"
            raise Rejected(f"has a label {label!r} that is not {allowed} (no '-' at either end)")
    if labels[-1].isdigit():
        raise Rejected("is an IP address or ends in a numeric label, not a host name")
    try:
        # The labels are checked ASCII without escapes, so they are the wire labels as they
        # stand; dns.name.from_text would parse them again (a third of an Ingress's translation).
        return dns.name.Name((*text.encode().split(b"."), b""))
    except dns.exception.DNSException as exc:  # what the checks above missed, if anything
        raise Rejected(f"is not a DNS name ({exc})") from None


_ZONE_LABEL = re.compile(r"[a-z0-9_](?:[-a-z0-9_]*[a-z0-9_])?")


def zone_name(text: str) -> dns.name.Name:
    """A zone as a Corefile names it (`example.com`, `Example.COM.`, `.`): absolute, lower-case.

    Labels are letters, digits, `-` and `_` (`_tcp.example.com` is a zone some serve).

    Raises:
        Rejected: why it is not one.
    """
    text = text.strip()
    if text == ".":
        return dns.name.root
    if text in ("", "@"):
        raise Rejected("is not a zone name")
    if not text.isascii():
        raise _NotAscii(text)  # as for host names: written in IDNA form, never converted
    try:
        name = dns.name.from_text(text, origin=dns.name.root)
    except (dns.exception.DNSException, UnicodeError) as exc:
        raise Rejected(f"is not a DNS name ({exc})") from None
    for label in name.labels[:-1]:
        if not label.isascii() or not _ZONE_LABEL.fullmatch(label.decode().lower()):
            raise Rejected(f"has a label {label.decode(errors='replace')!r} that is not letters, digits, '-' and '_'")
    return name.canonicalize()


def parse_hostname(text: str, *, underscores: bool = False) -> dns.name.Name | None:
    """`hostname`, with None for anything it rejects."""
    try:
        return hostname(text, underscores=underscores)
    except Rejected:
        return None


@functools.lru_cache(maxsize=4096)
def _address_rdata(text: str) -> dns.rdata.Rdata | str:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return "is not an IP address"
    if ip.version == 6 and ip.scope_id:
        return "has an IPv6 zone index (%...), which names an interface of one host"
    # The parsed address, not its text: dnspython would parse the text again.
    if ip.version == 4:
        return dns.rdtypes.IN.A.A(dns.rdataclass.IN, dns.rdatatype.A, ip)
    return dns.rdtypes.IN.AAAA.AAAA(dns.rdataclass.IN, dns.rdatatype.AAAA, ip)


def parse_address(text: str) -> dns.rdata.Rdata:
    """An A or AAAA rdata for an IP address string.

    Cached: many objects share an address (every Ingress of one controller), and parsing it twice
    (ipaddress, then dnspython) was a fifth of the indexer's time. Rdata objects are immutable.

    Raises:
        Rejected: why it is not a usable address.
    """
    result = _address_rdata(text.strip())
    if isinstance(result, str):
        raise Rejected(result)
    return result


def address_rdata(text: str) -> dns.rdata.Rdata | None:
    """`parse_address`, with None for anything it rejects."""
    result = _address_rdata(text.strip())
    return None if isinstance(result, str) else result


def parse_uint16(text: str, what: str) -> int:
    """An MX preference or SRV priority, weight or port: ASCII digits, 0-65535.

    Raises:
        Rejected: it is not.
    """
    if not _UINT.fullmatch(text) or int(text) > 65535:
        raise Rejected(f"{what} {text!r} is not a number from 0 to 65535")
    return int(text)


def in_each_zone(relative: dns.name.Name, zones: Iterable[dns.name.Name], report: Warner) -> list[dns.name.Name]:
    """`relative` under each zone; one that would be longer than a DNS name is warned about and left out."""
    out = []
    for zone in zones:
        try:
            out.append(relative.concatenate(zone))
        except dns.name.NameTooLong:
            report.warn("%s in zone %s is longer than a DNS name can be (255 bytes); skipped", relative, zone)
    return out
