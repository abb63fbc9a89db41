"""The secondaries harness proven without k8sgw: NSD as the primary, serving a zone file, and each
secondary (Knot, NSD) transferring from it, with and without TSIG.

What the k8sgw tests (test_secondaries.py) rely on is shown here against a primary that is known
to work: the first transfer is the whole zone, a changed zone file reaches the secondary by NOTIFY
and IXFR, `transfers()` tells an incremental transfer from a whole-zone one, a wrong key or an
address the primary does not list gets nothing, and a daemon that stops fails the test with
what it said.
"""

from __future__ import annotations

import random

import dns.name
import dns.rcode
import dns.zone
import pytest
import trio

from tests.transfer.secondaries import (
    Key,
    SecondaryExited,
    differences,
    free_port,
    knot_secondary,
    nsd_primary,
    nsd_secondary,
    questions,
    serial_ge,
)

ZONE = "harness.test."
KEY: Key = ("xfr.harness.test.", "hmac-sha256", "aGFybmVzcyB0ZXN0IGtleSwgMzIgYnl0ZXMgbG9uZy4=")
WRONG: Key = (KEY[0], KEY[1], "d3Jvbmcgc2VjcmV0LCBzYW1lIG5hbWUsIDMyIGJ5dGU=")
SECONDARIES = {"knot": knot_secondary, "nsd": nsd_secondary}


def zone_text(serial: int, version: int = 1) -> str:
    """The primary's zone; version 2 changes an address, a TXT and an MX, adds a name and drops one.
    (Only SOA and NS at the apex: NSD 4.6's create-ixfr lists every other apex RRset among the
    additions, changed or not, and an NSD secondary then refuses that IXFR, "adds existing RRs",
    and falls back to AXFR.)"""
    www = "192.0.2.1" if version == 1 else "192.0.2.2"
    txt = '"v=spf1 -all"' if version == 1 else '"v=spf1 ip4:192.0.2.0/24 -all"'
    mx = "10 mail" if version == 1 else "20 mail"
    gone = "old IN A 192.0.2.9" if version == 1 else ""
    added = "" if version == 1 else "new IN AAAA 2001:db8::7"
    return f"""\
$ORIGIN {ZONE}
$TTL 60
@ IN SOA ns1 hostmaster {serial} 7200 1800 86400 30
@ IN NS ns1
shop IN MX {mx}
shop IN TXT {txt}
ns1 IN A 192.0.2.53
www IN A {www}
www IN AAAA 2001:db8::1
mail 300 IN A 192.0.2.25
alias IN CNAME www
_sip._tcp IN SRV 10 5 5060 www
*.apps IN A 192.0.2.80
deep.ent.sub IN TXT "below an empty non-terminal"
{gone}
{added}
"""


def asked(text: str, seed: int = 1) -> list[tuple[str, str]]:
    """Every name of the zone text with every type, plus missing and wildcard-matched names."""
    zone = dns.zone.from_text(text, origin=ZONE, relativize=False)
    names = sorted({name.to_text() for name in zone.nodes} | {f"ent.sub.{ZONE}", f"sub.{ZONE}"})
    wildcards = [n for n in names if n.startswith("*.")]
    return questions(ZONE, [n for n in names if n not in wildcards], wildcards, random.Random(seed))


def test_serial_arithmetic_is_rfc_1982():
    assert serial_ge(5, 5) and serial_ge(6, 5) and not serial_ge(5, 6)
    assert serial_ge(3, 2**32 - 3)  # past the wrap, still later (RFC 1982 §3.2)
    assert not serial_ge(2**32 - 3, 3)
    assert not serial_ge(2**31 + 5, 5)  # exactly half-way or more: not later


@pytest.mark.parametrize("tsig", [False, True], ids=["no-key", "tsig"])
@pytest.mark.parametrize("kind", SECONDARIES)
async def test_secondary_follows_the_primary_by_notify_and_ixfr(tmp_path, kind, tsig):
    key = KEY if tsig else None
    port = free_port()
    async with (
        nsd_primary(tmp_path, ZONE, zone_text(1), notify=[("127.0.0.1", port)], key=key) as primary,
        SECONDARIES[kind](tmp_path, ZONE, primary.address, key, port=port) as secondary,
    ):
        with trio.fail_after(10):
            assert await secondary.wait_serial(1) == 1
            assert await secondary.wait_transfer(1) == ("AXFR", 1)
        assert secondary.transfers() == [("AXFR", 1)]
        assert await differences(primary.address, secondary.address, asked(zone_text(1))) == []

        await primary.load(zone_text(2, version=2))
        with trio.fail_after(2):  # NOTIFY, IXFR, served: the same second
            assert await secondary.wait_serial(2) == 2
            assert await secondary.wait_transfer(2) == ("IXFR", 2)
        assert secondary.transfers() == [("AXFR", 1), ("IXFR", 2)]
        assert await differences(primary.address, secondary.address, asked(zone_text(2, version=2), seed=2)) == []
        if kind == "nsd":
            assert secondary.tap is not None and secondary.tap.requests == ["AXFR", "IXFR"]
        if tsig:  # the primary verified the secondary's key (it logs refusals, not successes)
            assert "bad tsig" not in primary.daemon.output().lower()


@pytest.mark.parametrize("kind", SECONDARIES)
async def test_whole_zone_is_told_apart_from_an_increment(tmp_path, kind):
    """A primary without IXFR data answers the secondary's IXFR with the whole zone (RFC 1995 §4,
    AXFR-style): `transfers()` says AXFR, so a test that asserts IXFR can fail."""
    port = free_port()
    async with (
        nsd_primary(tmp_path, ZONE, zone_text(1), notify=[("127.0.0.1", port)], ixfr=False) as primary,
        SECONDARIES[kind](tmp_path, ZONE, primary.address, port=port) as secondary,
    ):
        with trio.fail_after(10):
            await secondary.wait_serial(1)
        await primary.load(zone_text(2, version=2))
        with trio.fail_after(5):
            await secondary.wait_serial(2)
            assert await secondary.wait_transfer(2) == ("AXFR", 2)
        assert secondary.transfers() == [("AXFR", 1), ("AXFR", 2)]
        if kind == "nsd":  # it did ask IXFR: the primary answered with the whole zone
            assert secondary.tap is not None and secondary.tap.requests == ["AXFR", "IXFR"]
        else:
            await secondary.wait_line(r"IXFR, incoming, remote \S+, receiving AXFR-style IXFR")


async def test_an_ixfr_nsd_refuses_counts_as_the_axfr_that_follows(tmp_path):
    """NSD applies an IXFR only if its deletions exist and its additions do not (else "Failed to
    apply IXFR cleanly ... starting AXFR"): `transfers()` lists what NSD served, not what passed.
    NSD 4.6's own create-ixfr repeats unchanged apex RRsets among the additions, so an apex MX
    makes such an IXFR; a fixed NSD applies it, and the increment is what must be listed then."""
    port = free_port()
    with_apex_mx = zone_text(1).replace("@ IN NS ns1\n", "@ IN NS ns1\n@ IN MX 10 mail\n")
    changed = zone_text(2, version=2).replace("@ IN NS ns1\n", "@ IN NS ns1\n@ IN MX 10 mail\n")
    async with (
        nsd_primary(tmp_path, ZONE, with_apex_mx, notify=[("127.0.0.1", port)]) as primary,
        nsd_secondary(tmp_path, ZONE, primary.address, port=port) as secondary,
    ):
        with trio.fail_after(10):
            await secondary.wait_serial(1)
            await primary.load(changed)
            await secondary.wait_serial(2)
            kind, _ = await secondary.wait_transfer(2)
        assert secondary.tap is not None and secondary.tap.transfers[:2] == [("AXFR", 1), ("IXFR", 2)]
        refused = "Failed to apply IXFR" in secondary.output()
        assert kind == ("AXFR" if refused else "IXFR")
        assert secondary.transfers() == [("AXFR", 1), (kind, 2)]
        assert await differences(primary.address, secondary.address, asked(changed)) == []


# What each secondary says when the primary's answer fails its key check.
KEY_FAILURE = {
    "knot": r"\] refresh, remote \S+(, address \S+)?, failed \(failed to verify TSIG\)",
    "nsd": r"xfrd: zone \S+, from \S+: bad tsig signature",
}


@pytest.mark.parametrize("kind", SECONDARIES)
async def test_a_wrong_key_gets_nothing(tmp_path, kind):
    port = free_port()
    async with (
        nsd_primary(tmp_path, ZONE, zone_text(1), notify=[("127.0.0.1", port)], key=KEY) as primary,
        SECONDARIES[kind](tmp_path, ZONE, primary.address, WRONG, port=port) as secondary,
    ):
        with trio.fail_after(10):
            await primary.daemon.wait_line(r"bad tsig signature for key \S+ from 127\.0\.0\.1")
            await secondary.wait_line(KEY_FAILURE[kind])
        assert secondary.transfers() == []
        assert await secondary.serial() is None
        reply = await secondary.query(f"www.{ZONE}", "A")
        assert reply.rcode() == dns.rcode.SERVFAIL  # a secondary zone with no data yet


# What each secondary says when the primary refuses it (NSD drops the unlisted request).
REFUSED = {
    "knot": r"\] refresh, remote \S+(, address \S+)?, failed",
    "nsd": r"xfrd: zone \S+ received error code REFUSED",
}


@pytest.mark.parametrize("kind", SECONDARIES)
async def test_an_unlisted_source_address_gets_nothing(tmp_path, kind):
    """The secondary on 127.0.0.2 transfers from 127.0.0.2 (Knot `via`, NSD `outgoing-interface`
    and its tap), so a primary that lists only 127.0.0.1 refuses it."""
    port = free_port("127.0.0.2")
    async with (
        nsd_primary(tmp_path, ZONE, zone_text(1), allow="127.0.0.1") as primary,
        SECONDARIES[kind](tmp_path, ZONE, primary.address, host="127.0.0.2", port=port) as secondary,
    ):
        assert secondary.address == ("127.0.0.2", port)
        with trio.fail_after(10):
            await primary.daemon.wait_line(r"axfr for \S+ from 127\.0\.0\.2 refused")
            await secondary.wait_line(REFUSED[kind])
        assert secondary.transfers() == []
        assert await secondary.serial() is None


@pytest.mark.parametrize("kind", SECONDARIES)
async def test_a_secondary_that_cannot_start_fails_with_its_words(tmp_path, kind):
    with pytest.raises(SecondaryExited) as failed:
        async with SECONDARIES[kind](tmp_path, ZONE, ("127.0.0.1", 9), (KEY[0], "hmac-nope", KEY[2])):
            pytest.fail("started with a key algorithm nobody has")
    assert "hmac-nope" in str(failed.value)  # its own complaint, quoted with the configuration


@pytest.mark.parametrize("kind", SECONDARIES)
async def test_a_secondary_that_dies_fails_the_block_with_its_output(tmp_path, kind):
    with pytest.raises(SecondaryExited) as failed:
        async with SECONDARIES[kind](tmp_path, ZONE, ("127.0.0.1", free_port())) as secondary:
            assert secondary.process is not None
            secondary.process.kill()
            with trio.fail_after(10):
                await secondary.wait_serial(1)  # never: the watcher ends the block instead
    assert "exited with status -9" in str(failed.value)
    assert dns.name.from_text(ZONE).to_text() in str(failed.value)  # the configuration is quoted
