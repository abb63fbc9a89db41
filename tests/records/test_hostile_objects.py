"""Hostile objects through translation and the indexer: a WARNING each, nothing raised, every
other name unchanged (the same table the end-to-end test applies through the dev API)."""

from __future__ import annotations

import logging

import dns.name
import dns.rdatatype
import pytest

from k8sgw.kubeapi.events import Synced, Upserted
from k8sgw.kubeapi.kinds import KINDS
from k8sgw.records.store import RecordStore, ZoneSettings
from tests.conftest import EXAMPLES
from tests.hostile import GOOD, HOSTILE, ZONE, Hostile


def model(manifest):
    return KINDS[manifest["kind"]].model.model_validate(manifest)


def seeded_store() -> RecordStore:
    import yaml

    store = RecordStore(ZoneSettings([ZONE]), ["Ingress", "Service", "DNSEndpoint"])
    objects = [yaml.safe_load(p.read_text()) for p in sorted((EXAMPLES / "seed").glob("*.yaml"))]
    by_kind: dict[str, list] = {"Ingress": [], "Service": [], "DNSEndpoint": [], "EndpointSlice": []}
    for obj in objects:
        by_kind[obj["kind"]].append(model(obj))
    store.apply([Synced(kind, tuple(objs)) for kind, objs in by_kind.items()])
    assert store.current.ready
    return store


def answers(store: RecordStore, name: str, rdtype: str) -> list[str]:
    return sorted(str(r) for r in store.current.rdatas(dns.name.from_text(name), dns.rdatatype.from_text(rdtype)))


@pytest.mark.parametrize("row", HOSTILE, ids=lambda r: r.id)
def test_each_hostile_object_is_warned_about_and_costs_nobody_else(row: Hostile, caplog):
    store = seeded_store()
    for extra in row.extra:
        store.apply([Upserted(extra["kind"], model(extra))])
    caplog.clear()
    caplog.set_level(logging.WARNING, logger="k8sgw")
    store.apply([Upserted(row.kind, model(row.manifest))])
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(row.warning in line for line in lines), lines
    assert any(row.who in line for line in lines) or row.id == "cname-beside-a", lines
    assert len(lines) < 15, lines  # one line per problem, not one per record
    for name, rdtype, expected in GOOD:
        assert answers(store, name, rdtype) == sorted(expected)
    if row.probe is not None:
        found = answers(store, *row.probe)
        if row.count is not None:
            assert len(found) == row.count
        else:
            assert found == sorted(row.answer)
    node = store.current.get(dns.name.from_text(ZONE))
    assert dns.rdatatype.CNAME not in node.rrsets and dns.rdatatype.SOA in node.rrsets


def test_the_apex_nameserver_host_exists_without_its_service(caplog):
    """The NS names <apex>.<zone>: without the Service it is NODATA (it exists), with a WARNING
    naming the Service."""
    caplog.set_level(logging.INFO, logger="k8sgw")
    store = RecordStore(ZoneSettings([ZONE]), ["Service"])
    store.apply([Synced("Service", ()), Synced("EndpointSlice", ())])
    host = dns.name.from_text("dns1.kube-system.foo.org.")
    node = store.current.get(host)
    assert node is not None and not node.rrsets
    assert "nameserver Service kube-system/dns1 does not exist" in caplog.text
    caplog.clear()
    store.apply([Upserted("Service", model({"kind": "Service", "metadata": {"name": "other", "namespace": "x"}}))])
    assert "dns1" not in caplog.text  # at most once a minute
    dns1 = {"kind": "Service", "metadata": {"name": "dns1", "namespace": "kube-system"},
            "spec": {"externalIPs": ["192.0.2.53"]}}
    store.apply([Upserted("Service", model(dns1))])
    assert answers(store, "dns1.kube-system.foo.org.", "A") == ["192.0.2.53"]
    assert "has an address again" in caplog.text


def test_a_translator_that_raises_costs_only_its_object(monkeypatch, caplog):
    from k8sgw.records import sources

    def broken(obj, scope, related, report):
        raise RuntimeError("a bug")

    monkeypatch.setitem(sources.TRANSLATORS, "DNSEndpoint", broken)
    store = seeded_store()
    caplog.set_level(logging.WARNING, logger="k8sgw")
    store.apply([Upserted("DNSEndpoint", model(HOSTILE[1].manifest))])
    assert "DNSEndpoint hostile/mx: cannot be translated (RuntimeError: a bug" in caplog.text
    for name, rdtype, expected in GOOD:
        assert answers(store, name, rdtype) == sorted(expected)


async def test_the_missing_nameserver_warning_repeats_while_it_lasts(monkeypatch, logs):
    import trio

    from k8sgw.records import store as store_module

    monkeypatch.setattr(store_module, "_REMIND_EVERY", 0.1)
    store = RecordStore(ZoneSettings([ZONE]), ["Service"])
    send, recv = trio.open_memory_channel(10)
    missing = "nameserver Service kube-system/dns1 does not exist"
    async with trio.open_nursery() as nursery:
        nursery.start_soon(store.consume, recv)
        await send.send(Synced("Service", ()))
        await send.send(Synced("EndpointSlice", ()))
        with trio.fail_after(5):
            await logs.wait_count(lambda line: missing in line, 3)  # at start, then again and again
            dns1 = {"kind": "Service", "metadata": {"name": "dns1", "namespace": "kube-system"},
                    "spec": {"externalIPs": ["192.0.2.53"]}}
            await send.send(Upserted("Service", model(dns1)))
            await logs.wait_for("has an address again")
        assert store._next_reminder() == float("inf")  # nothing left to repeat
        await send.aclose()
