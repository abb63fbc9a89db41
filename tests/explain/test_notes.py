"""The notes seam: a translator says why with `report.note`, the indexer keeps and publishes it with
the map of the same version, and explain/skipped read only that."""

from __future__ import annotations

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.IN.A

from k8sgw.config import parse_corefile
from k8sgw.explain.core import Explainer, explain_in_views, mentions, other_blocks, zones_of
from k8sgw.explain.skipped import skipped_objects
from k8sgw.kubeapi.events import Deleted, Synced, Upserted
from k8sgw.kubeapi.models import DNSEndpoint
from k8sgw.records import sources
from k8sgw.records.keys import NameKey
from k8sgw.records.reasons import Why
from k8sgw.records.store import RecordStore, ZoneSettings
from tests.records.test_store import ingress, service

ZONE = "example.org."


def store(*resources: str) -> RecordStore:
    s = RecordStore(ZoneSettings([ZONE], ingress_classes=["nginx"]), resources or ("Ingress", "DNSEndpoint"))
    s.apply(Synced(kind, ()) for kind in s.kinds)
    return s


def notes_of(s: RecordStore, kind: str, key: tuple[str, str]):
    """An object's notes; the store keys objects by (cluster, namespace, name), cluster "" here."""
    return s.explained()[1].by_kind[kind].get(("", *key))


def endpoint(name: str) -> DNSEndpoint:
    return DNSEndpoint.model_validate({"metadata": {"name": name, "namespace": "default"}, "spec": {"endpoints": []}})


def test_a_new_translator_reports_its_reasons_with_one_call(monkeypatch):
    """What a new kind's translator does: claim some names, `report.note` why another answers nothing."""
    good, bad = dns.name.from_text("new.example.org."), dns.name.from_text("pending.example.org.")
    address = dns.rdtypes.IN.A.A(dns.rdataclass.IN, dns.rdatatype.A, "192.0.2.9")

    def translator(obj, scope, related, report):
        report.note(bad, Why.NO_LOAD_BALANCER_ADDRESS, "no address yet")
        return ((NameKey.of(good), address, None),)  # noted CLAIMED for it, as it named no rule

    monkeypatch.setitem(sources.TRANSLATORS, "DNSEndpoint", translator)
    s = store()
    s.apply([Upserted("DNSEndpoint", endpoint("x"))])
    records, notes = s.explained()
    assert notes.version == records.version
    assert sorted(notes_of(s, "DNSEndpoint", ("default", "x"))) == sorted([
        (NameKey.of(good), Why.CLAIMED, None),
        (NameKey.of(bad), Why.NO_LOAD_BALANCER_ADDRESS, "no address yet"),
    ])
    supplying, not_counting = mentions(["pending.example.org."], notes)
    assert supplying == [] and [(m.name, m.why) for m in not_counting] == [("x", Why.NO_LOAD_BALANCER_ADDRESS)]


def test_a_supplying_note_without_an_admitted_claim_is_dropped(monkeypatch):
    """The notes can never say a name is supplied when the claims do not: translation checks them."""
    name = dns.name.from_text("said.example.org.")

    def translator(obj, scope, related, report):
        report.note(name, Why.DNSENDPOINT_NAME, "A")
        return ()

    monkeypatch.setitem(sources.TRANSLATORS, "DNSEndpoint", translator)
    s = store()
    s.apply([Upserted("DNSEndpoint", endpoint("y"))])
    assert notes_of(s, "DNSEndpoint", ("default", "y")) is None


def test_notes_are_published_with_the_map_and_forgotten_with_the_object():
    s = store()
    s.apply([Upserted("Ingress", ingress("other", ["other.example.org"], ["192.0.2.1"], cls="traefik"))])
    records, notes = s.explained()
    assert notes.version == records.version
    assert [(m.why, m.detail) for m in mentions(["other.example.org."], notes)[1]] == [
        (Why.FILTERED_INGRESS_CLASS, "ingressClassName 'traefik', not one of nginx")
    ]
    assert [x.name for x in skipped_objects(notes, s.settings)] == ["other"]
    before = notes
    s.apply([Upserted("Ingress", ingress("other", ["other.example.org"], ["192.0.2.1"], cls="traefik"))])
    assert s.explained()[1] is before  # nothing changed: the same snapshot, and what it memoised
    s.apply([Deleted("Ingress", "default", "other")])
    assert skipped_objects(s.explained()[1], s.settings) == []


def test_an_object_that_cannot_be_translated_notes_nothing_and_costs_nobody_else(monkeypatch):
    def translator(obj, scope, related, report):
        raise RuntimeError("boom")

    monkeypatch.setitem(sources.TRANSLATORS, "DNSEndpoint", translator)
    s = store()
    s.apply([Upserted("DNSEndpoint", endpoint("z")),
             Upserted("Ingress", ingress("web", ["web.example.org"], ["192.0.2.2"], cls="nginx"))])
    assert notes_of(s, "DNSEndpoint", ("default", "z")) is None
    explainer = Explainer(s.settings, (dns.name.from_text(ZONE),), None, None, s.explained)
    explained = explain_in_views("web.example.org.", "A", [explainer])
    assert explained.rcode == "NOERROR" and explained.answer == ["web.example.org. 60 IN A 192.0.2.2"]
    assert [(m.name, m.why) for m in explained.supplying] == [("web", Why.INGRESS_HOST)]


def test_a_name_of_a_block_without_k8s_gateway_is_explained_as_that_block_answers():
    cfg = parse_corefile(
        "example.org {\n k8s_gateway example.org\n}\nother.org {\n forward . 127.0.0.1:9\n}\nlast.org {\n}\n",
        default_port=0,
    )
    s = store()
    s.apply([Upserted("Ingress", ingress("far", ["www.other.org"], ["192.0.2.3"], cls="nginx"))])
    explainer = Explainer(s.settings, zones_of(cfg, 0), None, None, s.explained)
    forwarded = explain_in_views("www.other.org.", "A", [explainer], other_blocks(cfg))
    assert forwarded.forwarded and forwarded.rcode == "FORWARDED"
    assert [(m.name, m.why) for m in forwarded.not_counting] == [("far", Why.OUTSIDE_ZONES)]
    refused = explain_in_views("www.last.org.", "A", [explainer], other_blocks(cfg))
    assert refused.rcode == "REFUSED" and not refused.forwarded
    nowhere = explain_in_views("www.nowhere.net.", "A", [explainer], other_blocks(cfg))
    assert nowhere.rcode == "REFUSED" and nowhere.zone_note.startswith("no server block")


def test_an_object_is_skipped_as_shadowed_only_when_every_name_it_supplies_is_owned_by_an_earlier_kind():
    s = store("Ingress", "Service")
    hostname = "coredns.io/hostname"
    s.apply([
        Upserted("Ingress", ingress("first", ["a.example.org"], ["192.0.2.1"], cls="nginx")),
        Upserted("Service", service("both", ["192.0.2.2"], annotations={hostname: "a.example.org,b.example.org"})),
        Upserted("Service", service("only-a", ["192.0.2.3"], annotations={hostname: "a.example.org"})),
    ])
    skipped = skipped_objects(s.explained()[1], s.settings)
    assert [(x.kind, x.name, x.why, x.detail) for x in skipped] == [
        ("Service", "only-a", Why.SHADOWED, "Ingress owns a.example.org.")
    ]
    explainer = Explainer(s.settings, (dns.name.from_text(ZONE),), None, None, s.explained)
    b = explain_in_views("b.example.org.", "A", [explainer])
    assert b.answer == ["b.example.org. 60 IN A 192.0.2.2"] and [m.name for m in b.supplying] == ["both"]


def test_with_several_clusters_each_contribution_names_its_cluster():
    """The same namespace/name in two clusters are two objects: explain prints cluster/namespace."""
    s = RecordStore(ZoneSettings(["example.org."]), ["Ingress", "DNSEndpoint"], clusters=("east", "west"))
    s.apply([(c, Synced(k, ())) for c in ("east", "west") for k in ("Ingress", "DNSEndpoint")])
    s.apply([("east", Upserted("Ingress", ingress("web", ["web.example.org"], ["192.0.2.1"])))])
    s.apply([("west", Upserted("Ingress", ingress("web", ["web.example.org"], ["192.0.2.2"])))])
    s.apply([("west", Upserted("DNSEndpoint", DNSEndpoint.model_validate({
        "metadata": {"name": "d", "namespace": "default"},
        "spec": {"endpoints": [{"dnsName": "web.example.org", "recordType": "A", "targets": ["192.0.2.9"]}]},
    })))])
    supplying, not_counting = mentions(["web.example.org."], s.explained()[1])
    assert sorted((m.kind, m.namespace, m.name) for m in supplying) == [
        ("Ingress", "east/default", "web"), ("Ingress", "west/default", "web"),
    ]
    assert [(m.kind, m.namespace, m.name, m.why) for m in not_counting] == [
        ("DNSEndpoint", "west/default", "d", Why.SHADOWED),
    ]
