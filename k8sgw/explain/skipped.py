"""The objects that claim a name in a zone but contribute no record, each with its reason.

Read from one NoteSnapshot: an object is skipped when it has notes about names inside a zone and
none of its supplying notes counts (its kind does not own the name: shadowed). Its reason is the
first of its notes that says why.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from k8sgw.explain.objectkeys import object_namespace
from k8sgw.records.noteindex import NoteSnapshot
from k8sgw.records.reasons import NoteName, Why
from k8sgw.records.settings import ZoneSettings
from k8sgw.records.sources import PRECEDENCE

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
    # One pass over every note of every object, kind by kind in ownership order: a name a kind
    # supplies is owned by the first kind in PRECEDENCE that supplies it, as claims.owner_kind says.
    out = []
    outside = Why.OUTSIDE_ZONES
    owners: dict[NoteName, str] = {}  # names supplied by the kinds done so far → the first of them
    for kind in sorted(notes.by_kind, key=_rank):
        supplied: list[NoteName] = []
        for key, object_notes in notes.by_kind[kind].items():
            namespace, name = object_namespace(key), key[-1]
            reason: tuple[Why, str | None] | None = None
            counts = False
            for at, why, detail in object_notes:
                if why.supplies:
                    supplied.append(at)
                    owner = owners.get(at)
                    if owner is None:
                        counts = True
                    elif reason is None:
                        reason = (Why.SHADOWED, f"{owner} owns {at}")
                elif why is not outside and (reason is None or reason[0] is Why.SHADOWED):
                    reason = (why, detail)  # (a name outside the zones is another instance's)
            if not counts and reason is not None:
                names = tuple(dict.fromkeys(str(n[0]) for n in object_notes if n[1] is not outside))
                out.append(Skipped(kind, namespace, name, reason[0], reason[1], names))
        for at in supplied:
            owners.setdefault(at, kind)
    out.sort(key=lambda s: (s.kind, s.namespace, s.name))
    return out


def _rank(kind: str) -> int:
    return PRECEDENCE.index(kind) if kind in PRECEDENCE else len(PRECEDENCE)
