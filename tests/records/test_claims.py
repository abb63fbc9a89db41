"""ClaimIndex: votes at one name as objects of one or several kinds come and go."""

from __future__ import annotations

import dns.name

from k8sgw.records.claims import ClaimIndex
from k8sgw.records.hostnames import parse_address
from k8sgw.records.keys import NameKey
from k8sgw.records.sources import PRECEDENCE

NAME = NameKey.of(dns.name.from_text("www.example.org."))
A1, A2 = parse_address("192.0.2.1"), parse_address("192.0.2.2")


def _set(index: ClaimIndex, kind: str, obj: str, claims: tuple) -> set[NameKey]:
    touched: set[NameKey] = set()
    for _ in index.set(kind, ("", "ns", obj), claims, touched):
        pass
    return touched


def _addresses(index: ClaimIndex) -> list[str]:
    rrsets, _ttls = index.winning(NAME)
    return sorted(str(r) for rdatas in rrsets.values() for r in rdatas)


def test_one_record_voted_by_two_objects_stays_until_both_are_gone() -> None:
    index = ClaimIndex(("Ingress", "Service"))
    assert _set(index, "Ingress", "a", ((NAME, A1, None),)) == {NAME}
    _set(index, "Ingress", "b", ((NAME, parse_address("192.0.2.1"), None),))  # equal, not the same object
    _set(index, "Ingress", "c", ((NAME, A2, None),))
    assert _addresses(index) == ["192.0.2.1", "192.0.2.2"]
    _set(index, "Ingress", "a", ())
    assert _addresses(index) == ["192.0.2.1", "192.0.2.2"]
    _set(index, "Ingress", "b", ())
    assert _addresses(index) == ["192.0.2.2"]
    _set(index, "Ingress", "c", ())
    assert index.winning(NAME) == ({}, {})


def test_the_kind_first_in_precedence_wins_and_the_other_returns_when_it_goes() -> None:
    index = ClaimIndex(("Ingress", "Service"))
    _set(index, "Service", "s", ((NAME, A1, None), (NAME, A2, 30)))
    assert _addresses(index) == ["192.0.2.1", "192.0.2.2"]
    assert index.winning(NAME)[1] == {A2.rdtype: 30}
    _set(index, "Ingress", "i", ((NAME, A2, None),))
    first = next(k for k in PRECEDENCE if k in ("Ingress", "Service"))
    assert _addresses(index) == (["192.0.2.2"] if first == "Ingress" else ["192.0.2.1", "192.0.2.2"])
    _set(index, "Ingress", "i", ())
    assert _addresses(index) == ["192.0.2.1", "192.0.2.2"]
    _set(index, "Service", "s", ())
    _set(index, "Ingress", "i", ((NAME, A2, None),))
    assert _addresses(index) == ["192.0.2.2"]


def test_an_object_repeating_a_record_takes_back_both_votes() -> None:
    index = ClaimIndex(("Ingress",))
    _set(index, "Ingress", "a", ((NAME, A1, None), (NAME, A1, None)))
    assert _addresses(index) == ["192.0.2.1"]
    _set(index, "Ingress", "a", ((NAME, A1, None),))
    assert _addresses(index) == ["192.0.2.1"]
    _set(index, "Ingress", "a", ())
    assert index.winning(NAME) == ({}, {})


def test_many_records_at_one_name_come_and_go() -> None:
    index = ClaimIndex(("Service",))
    many = tuple((NAME, parse_address(f"192.0.2.{i}"), None) for i in range(1, 12))
    _set(index, "Service", "s", many)
    assert _addresses(index) == sorted(f"192.0.2.{i}" for i in range(1, 12))
    _set(index, "Service", "s", many[:3])
    assert _addresses(index) == ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
    _set(index, "Service", "s", ())
    assert index.winning(NAME) == ({}, {})
