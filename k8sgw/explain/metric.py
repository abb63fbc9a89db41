"""k8sgw_objects_skipped{zones, kind, reason}: objects that claim a name in a zone but supply no
record, so an alert can say "3 Ingresses are filtered by class" before a user asks."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import GaugeMetricFamily

from k8sgw.explain.skipped import skipped_counts
from k8sgw.records.store import RecordStore

__all__ = ["skipped_family"]


def skipped_family(stores: Iterable[tuple[str, RecordStore]]) -> GaugeMetricFamily:
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
