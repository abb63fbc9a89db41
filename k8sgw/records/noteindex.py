"""NoteIndex: each object's notes (reasons.py), published with the record map they belong to.

The indexer sets an object's notes whenever it sets its claims, and publishes them whenever it
publishes a map: `published` is always the notes of exactly `store.current` (same version), so an
explanation read from both can never disagree with the answer being served.

Per kind, the notes are a persistent map (HAMT): a batch mutates it in place, publishing freezes it
in O(1) and the next batch shares every unchanged entry.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import immutables

from k8sgw.records.reasons import Notes
from k8sgw.records.settings import ObjectKey

__all__ = ["NoteIndex", "NoteSnapshot"]


@dataclass(frozen=True, slots=True)
class NoteSnapshot:
    """The notes of every object, as of record map `version`."""

    version: int
    by_kind: Mapping[str, immutables.Map[ObjectKey, Notes]]
    memo: dict[str, object] = field(default_factory=dict, compare=False)
    """What readers derive from this snapshot (the skipped objects), kept as long as it is current."""

    def items(self) -> Iterator[tuple[str, ObjectKey, Notes]]:
        for kind, notes in self.by_kind.items():
            for key, object_notes in notes.items():
                yield kind, key, object_notes


class NoteIndex:
    """Notes by kind and object key; the indexer task is the only writer."""

    def __init__(self, kinds: Iterable[str]) -> None:
        self._frozen: dict[str, immutables.Map[ObjectKey, Notes]] = {k: immutables.Map() for k in kinds}
        self._changing: dict[str, immutables.MapMutation[ObjectKey, Notes]] = {}
        self._changed = False
        self.published = NoteSnapshot(0, dict(self._frozen))

    def set(self, kind: str, key: ObjectKey, notes: Notes) -> None:
        """Replace one object's notes (none: forget it)."""
        mutation = self._changing.get(kind)
        if mutation is None:
            mutation = self._changing[kind] = self._frozen[kind].mutate()
        if notes:
            if mutation.get(key) != notes:
                mutation[key] = notes
                self._changed = True
        elif key in mutation:
            del mutation[key]
            self._changed = True

    def publish(self, version: int) -> None:
        """Freeze what was set since the last publish as the notes of map `version` (the same
        snapshot again when nothing changed: readers cache what they derive from one)."""
        if not self._changed and version == self.published.version:
            return
        for kind, mutation in self._changing.items():
            self._frozen[kind] = mutation.finish()
        self._changing.clear()
        self._changed = False
        self.published = NoteSnapshot(version, dict(self._frozen))
