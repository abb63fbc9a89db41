"""Journal: the differences between a zone's recent serials, for IXFR (RFC 1995).

Each Step holds the records one serial change removed and added, as the wire bytes of whole RRs
(owner, type, class, TTL, rdata), so the same record is the same bytes and a difference is two
sets. A client at serial N gets the steps since N condensed into one difference (RFC 1995 §5:
a record added and then removed again is in neither list). Bounded by steps and bytes: the
oldest steps go first, and a client older than what is left gets the whole zone instead.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_MAX_STEPS", "Difference", "Journal", "Step"]

DEFAULT_MAX_STEPS = 1000
DEFAULT_MAX_BYTES = 16 * 2**20


@dataclass(frozen=True, slots=True)
class Step:
    """One serial change of a zone.

    Attributes:
        old_serial, new_serial: the serials before and after.
        old_soa: the zone's SOA record (wire) at old_serial, which an IXFR reply names.
        removed, added: the other records (wire) the change removed and added.
    """

    old_serial: int
    new_serial: int
    old_soa: bytes
    removed: tuple[bytes, ...]
    added: tuple[bytes, ...]

    @property
    def size(self) -> int:
        return len(self.old_soa) + sum(map(len, self.removed)) + sum(map(len, self.added))


@dataclass(frozen=True, slots=True)
class Difference:
    """What a client at `old_soa`'s serial must remove and add to reach the current serial."""

    old_soa: bytes
    removed: tuple[bytes, ...]
    added: tuple[bytes, ...]


class Journal:
    """The steps of one zone, oldest first, within `max_steps` steps and `max_bytes` bytes."""

    def __init__(self, max_steps: int = DEFAULT_MAX_STEPS, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_steps = max_steps
        self.max_bytes = max_bytes
        self._steps: deque[Step] = deque()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._steps)

    @property
    def bytes(self) -> int:
        return self._bytes

    def bound(self, max_steps: int, max_bytes: int) -> None:
        """New bounds (a reload); steps beyond them go now."""
        self.max_steps, self.max_bytes = max_steps, max_bytes
        self._trim()

    def record(self, step: Step) -> None:
        """Keep step. A change that kept its serial (the data reached a state its serial already
        named) is folded into the step that reached that serial, so a client behind it still gets
        all of it."""
        steps = self._steps
        if step.old_serial == step.new_serial:
            if not steps or steps[-1].new_serial != step.new_serial:
                return  # nothing older to fold into: clients at this serial keep what they have
            last = steps.pop()
            self._bytes -= last.size
            folded = _condense((last, step))
            step = Step(last.old_serial, step.new_serial, last.old_soa, folded.removed, folded.added)
        steps.append(step)
        self._bytes += step.size
        self._trim()

    def since(self, serial: int) -> Difference | None:
        """The condensed difference from serial to the newest; None when serial is not a serial
        the journal starts a step at (older than it keeps, or never published here)."""
        steps = list(self._steps)
        for i, step in enumerate(steps):
            if step.old_serial == serial:
                return _condense(steps[i:])
        return None

    def clear(self) -> None:
        self._steps.clear()
        self._bytes = 0

    def _trim(self) -> None:
        steps = self._steps
        while steps and (len(steps) > self.max_steps or self._bytes > self.max_bytes):
            self._bytes -= steps.popleft().size


def _condense(steps: list[Step] | tuple[Step, ...]) -> Difference:
    # Ordered sets (dicts), so the output is stable: a record removed and added back, or added
    # and removed again, cancels out.
    removed: dict[bytes, None] = {}
    added: dict[bytes, None] = {}
    for step in steps:
        for rr in step.removed:
            if rr in added:
                del added[rr]
            else:
                removed[rr] = None
        for rr in step.added:
            if rr in removed:
                del removed[rr]
            else:
                added[rr] = None
    return Difference(steps[0].old_soa, tuple(removed), tuple(added))
