"""The short object fuzz of the suite (the long one: `python -m tests.robustness.object_fuzz`)."""

from __future__ import annotations

import logging

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import immutables

from k8sgw.records.recordmap import RecordMap, set_rrsets
from k8sgw.records.store import ZoneSettings
from tests.robustness.object_fuzz import ZONES, check_map, run


def test_random_objects_through_translation_and_the_indexer_raise_nothing():
    logging.disable(logging.WARNING)
    try:
        crashes, refused, reports = run(2500, seed=7, check_every=100)
    finally:
        logging.disable(logging.NOTSET)
    assert crashes == 0, "\n".join(reports)
    assert refused < 2500 * 0.1  # most objects reach the translators


def test_the_map_check_sees_a_cname_beside_other_data():
    settings = ZoneSettings(ZONES)
    mutation = immutables.Map().mutate()
    for zone in settings.zones:
        set_rrsets(mutation, zone, settings.apex_rrsets(zone, 1), stop_at=settings.zones)
    good = mutation.finish()
    assert check_map(RecordMap(nodes=good)) is None
    mutation = good.mutate()
    cname = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.CNAME, "t.example.net.")
    a = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.A, "192.0.2.1")
    set_rrsets(mutation, dns.name.from_text("x.foo.org."), {dns.rdatatype.CNAME: (cname,), dns.rdatatype.A: (a,)},
               stop_at=settings.zones)
    assert "CNAME beside other data" in check_map(RecordMap(nodes=mutation.finish()))
