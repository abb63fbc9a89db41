"""The IXFR journal: steps condensed per RFC 1995 §5, bounded by steps and bytes."""

from __future__ import annotations

from k8sgw.transfer.journal import Journal, Step
from k8sgw.transfer.serial import serial_newer


def _step(old: int, new: int, removed=(), added=()) -> Step:
    return Step(old, new, f"soa{old}".encode(), tuple(removed), tuple(added))


def test_condensed_difference_cancels_what_came_and_went():
    journal = Journal()
    journal.record(_step(1, 2, removed=[b"a"], added=[b"b"]))
    journal.record(_step(2, 3, removed=[b"b"], added=[b"c", b"a"]))
    journal.record(_step(3, 4, added=[b"d"]))
    since1 = journal.since(1)
    assert since1.old_soa == b"soa1"
    assert (since1.removed, since1.added) == ((), (b"c", b"d"))  # a went and came back; b came and went
    since3 = journal.since(3)
    assert (since3.old_soa, since3.removed, since3.added) == (b"soa3", (), (b"d",))
    assert journal.since(4) is None  # the newest serial starts no step: the caller answers one SOA
    assert journal.since(0) is None  # older than the journal: the whole zone


def test_bounded_by_steps_and_bytes():
    journal = Journal(max_steps=2, max_bytes=10_000)
    for serial in range(1, 5):
        journal.record(_step(serial, serial + 1, added=[b"x" * 10]))
    assert len(journal) == 2 and journal.since(2) is None and journal.since(3) is not None
    journal.bound(max_steps=100, max_bytes=len(b"soa4") + 10)
    assert len(journal) == 1 and journal.since(4).added == (b"x" * 10,)
    journal.record(_step(5, 6, added=[b"y" * 100]))  # larger than the whole bound: nothing kept
    assert len(journal) == 0 and journal.bytes == 0


def test_a_change_that_kept_its_serial_is_folded_into_the_step_that_reached_it():
    journal = Journal()
    journal.record(_step(1, 2, added=[b"a"]))
    journal.record(_step(2, 2, removed=[b"a"], added=[b"b"]))
    assert len(journal) == 1
    assert journal.since(1).added == (b"b",) and journal.since(1).removed == ()
    empty = Journal()
    empty.record(_step(7, 7, added=[b"z"]))  # nothing to fold into
    assert len(empty) == 0


def test_serials_compare_on_the_rfc_1982_circle():
    assert serial_newer(2, 1) and not serial_newer(1, 2) and not serial_newer(5, 5)
    assert serial_newer(3, 2**32 - 5)  # past the wrap, still newer
    assert not serial_newer(2**32 - 5, 3)
    assert not serial_newer(2**31 + 1, 1)  # exactly half way round or more: not newer


def test_the_serial_still_rises_when_the_resource_version_passes_2_to_the_32():
    import dns.name

    from k8sgw.records.keys import NameKey
    from k8sgw.records.publisher import Publisher
    from k8sgw.records.settings import ZoneSettings

    publisher = Publisher(ZoneSettings(["example.org."]), ready=True)
    serials = []
    for rv in (2**32 - 3, 2**32 - 1, 2**32 + 4, 2**32 + 2**30):  # steps under 2^31, as RFC 1982 needs
        publisher.seen_version(str(rv))
        touched = {NameKey.of(dns.name.from_text(f"n{rv}.example.org."))}  # a change at each revision
        for _ in publisher.publish(touched, True, lambda name: ({}, {})):
            pass
        serials.append(publisher.current.serial)
    assert serials[2] < serials[1]  # wrapped as a number...
    assert all(serial_newer(b, a) for a, b in zip(serials, serials[1:], strict=False))  # ...yet newer (RFC 1982)
    assert all(0 <= s < 2**32 for s in serials)
