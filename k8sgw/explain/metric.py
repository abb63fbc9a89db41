"""k8sgw_objects_skipped{zones, kind, reason}: objects that claim a name in a zone but supply no
record, so an alert can say "3 Ingresses are filtered by class" before a user asks."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from prometheus_client.core import GaugeMetricFamily

from k8sgw.explain.skipped import skipped_counts
from k8sgw.records.noteindex import NoteSnapshot
from k8sgw.records.recordmap import RecordMap
from k8sgw.records.settings import ZoneSettings

__all__ = ["SkippedSource", "skipped_family"]


class SkippedSource(Protocol):
    """What the family reads of a store (a RecordStore): its settings, its map and notes."""

    @property
    def settings(self) -> ZoneSettings: ...
    def explained(self) -> tuple[RecordMap, NoteSnapshot]: ...


def skipped_family(stores: Iterable[tuple[str, SkippedSource]]) -> GaugeMetricFamily:
    """The family for (zones label, store) pairs, read from each store's published notes."""
    family = GaugeMetricFamily(
        "k8sgw_objects_skipped",
        "Objects that claim a name in a zone but supply no record, per kind and reason (k8sgw explain --skipped).",
        labels=["zones", "kind", "reason"],
    )
    for zones, store in stores:
        _records, notes = store.explained()
        for (kind, reason), count in sorted(skipped_counts(notes, store.settings).items()):
            family.add_metric([zones, kind, reason], count)
    return family
