"""k8sgw.records.names: Name equality and hashing mean what dnspython's mean, only faster."""

from __future__ import annotations

import dns.name
from hypothesis import given
from hypothesis import strategies as st

import k8sgw.records  # noqa: F401  (installs the methods on import)
from k8sgw.records import names

LABELS = st.lists(st.sampled_from([b"a", b"A", b"b", b"web", b"WeB", b"x.y", b"x", b"y", b"\x00", b"\xc3"]), max_size=4)
NAMES = st.builds(
    lambda labels, absolute: dns.name.Name([*labels, b""] if absolute else labels), LABELS, st.booleans()
)


@given(NAMES, NAMES)
def test_equal_exactly_when_dnspython_says_so_and_equal_names_hash_alike(a, b):
    assert (a == b) == (a.fullcompare(b)[1] == 0)  # dnspython's own __eq__ is this
    if a == b:
        assert hash(a) == hash(b)
    assert (a != b) == (not a == b)


def test_installed_and_usable_as_keys():
    assert dns.name.Name.__hash__ is names._hash and dns.name.Name.__eq__ is names._eq
    keys = {dns.name.from_text("Web.Example.ORG."): 1}
    assert keys[dns.name.from_text("web.example.org.")] == 1
    assert dns.name.from_text("web", origin=None) not in keys  # relative is not absolute
    assert dns.name.from_text("web.example.org.") != "web.example.org."
