"""NameKey: k8sgw's own name key, and dnspython left exactly as it is."""

from __future__ import annotations

import dns.message
import dns.name
import dns.rdatatype
import dns.tsig
import dns.tsigkeyring
from hypothesis import given
from hypothesis import strategies as st

import k8sgw.app  # noqa: F401  (everything k8sgw imports at start, imported)
from k8sgw.kubeapi.events import Synced, Upserted
from k8sgw.kubeapi.models import Ingress
from k8sgw.records.keys import NameKey
from k8sgw.records.store import RecordStore, ZoneSettings

LABELS = st.lists(st.sampled_from([b"a", b"A", b"b", b"web", b"WeB", b"x.y", b"x", b"y", b"\x00", b"\xc3"]), max_size=4)
NAMES = st.builds(lambda labels: dns.name.Name([*labels, b""]), LABELS)


@given(NAMES, NAMES)
def test_keys_equal_exactly_when_the_names_are_equal(a, b):
    assert (NameKey.of(a) == NameKey.of(b)) == (a == b)
    if a == b:
        assert hash(NameKey.of(a)) == hash(NameKey.of(b))
    assert NameKey.of(a).name() == a


def test_parent_and_subdomain_mean_what_dnspython_says():
    name = dns.name.from_text("WWW.Example.org.")
    key = NameKey.of(name)
    assert key.parent() == NameKey.of(name.parent())
    assert key.is_subdomain(NameKey.of(dns.name.from_text("example.ORG.")))
    assert not key.is_subdomain(NameKey.of(dns.name.from_text("ample.org.")))
    assert str(key) == "www.example.org."


def test_dnspython_name_is_not_patched():
    assert dns.name.Name.__hash__.__module__ == "dns.name"
    assert dns.name.Name.__eq__.__module__ == "dns.name"


def test_tsig_sign_and_verify_in_the_same_process_as_a_store():
    """Importing k8sgw once replaced Name.__hash__, and dnspython's TSIG algorithm table, hashed
    before, then failed with KeyError: <DNS name hmac-sha256.>."""
    store = RecordStore(ZoneSettings(["example.org."]), ["Ingress"])
    ingress = Ingress.model_validate(
        {"metadata": {"name": "i", "namespace": "d"}, "spec": {"rules": [{"host": "a.example.org"}]},
         "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}}
    )
    store.apply([Synced("Ingress", (ingress,))])
    assert store.current.rdatas(dns.name.from_text("a.example.org."), dns.rdatatype.A)

    keyring = dns.tsigkeyring.from_text({"xfr-key.": ("hmac-sha256", "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0")})
    query = dns.message.make_query("example.org.", "SOA")
    query.use_tsig(keyring, keyname="xfr-key.", algorithm=dns.tsig.HMAC_SHA256)
    wire = query.to_wire()
    parsed = dns.message.from_wire(wire, keyring=keyring)
    assert parsed.had_tsig and parsed.tsig_error == 0
