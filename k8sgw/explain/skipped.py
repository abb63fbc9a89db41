"""The objects that claim a name in a zone but contribute no record, each with its reason.

Read from one NoteSnapshot: an object is skipped when it has notes about names inside a zone and
none of its supplying notes counts (its kind does not own the name: shadowed). Its reason is the
first of its notes that says why.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from k8sgw.records.claims import owner_kind
from k8sgw.records.noteindex import NoteSnapshot
from k8sgw.records.reasons import NoteName, Why
from k8sgw.records.settings import ZoneSettings

__all__ = ["Skipped", "skipped_counts", "skipped_objects"]


@dataclass(frozen=True, slots=True)
class Skipped:
    kind: str
    namespace: str
    name: str
    why: Why
    detail: str | None
    names: tuple[str, ...]  # the names it mentions inside a zone


def skipped_objects(notes: NoteSnapshot, settings: ZoneSettings) -> list[Skipped]:
    """Every skipped object of the snapshot, in kind, namespace, name order (computed once per
    snapshot: the metric and /explain/skipped ask again and again between two changes).

    The nameserver's own Service is never skipped: its default name is the nameserver host, which
    its addresses answer through the zone's rule rather than through a claim."""
    found = notes.memo.get("skipped")
    if found is None:
        nameservers = settings.nameserver_service_keys()
        found = notes.memo["skipped"] = [
            s for s in _skipped_objects(notes) if not (s.kind == "Service" and (s.namespace, s.name) in nameservers)
        ]
    return found  # type: ignore[return-value]


def skipped_counts(notes: NoteSnapshot, settings: ZoneSettings) -> Counter[tuple[str, str]]:
    """How many objects are skipped, by (kind, reason)."""
    return Counter((s.kind, s.why.value) for s in skipped_objects(notes, settings))


def _skipped_objects(notes: NoteSnapshot) -> list[Skipped]:
    owners: dict[NoteName, str] = {}  # name → the kind that owns it (of those that supply it)
    for kind, _key, object_notes in notes.items():
        for at, why, _detail in object_notes:
            if why.supplies:
                other = owners.setdefault(at, kind)
                if other != kind:
                    owners[at] = owner_kind((other, kind)) or kind
    out = []
    for kind, (namespace, name), object_notes in notes.items():
        reason: tuple[Why, str | None] | None = None
        names: dict[str, None] = {}
        counts = False
        for at, why, detail in object_notes:
            if why is Why.OUTSIDE_ZONES:
                continue  # another instance's name, not one this zone misses
            names[str(at)] = None
            if why.supplies:
                owner = owners[at]
                if owner == kind:
                    counts = True
                    break
                reason = reason or (Why.SHADOWED, f"{owner} owns {at}")
            elif reason is None or reason[0] is Why.SHADOWED:
                reason = (why, detail)
        if not counts and reason is not None:
            out.append(Skipped(kind, namespace, name, reason[0], reason[1], tuple(names)))
    out.sort(key=lambda s: (s.kind, s.namespace, s.name))
    return out
