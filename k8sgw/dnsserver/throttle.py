"""At most one log line per key and interval: a fault repeated by every query is reported, not flooded."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

__all__ = ["LogThrottle", "repeats_note"]


class LogThrottle:
    """Decides whether a repeated fault is logged now, counting the repeats it held back.

    Args:
        interval: seconds between two lines for one key.
        max_keys: keys remembered at most (a flood of distinct names costs a bounded dict: past
            it the memory starts over, so at worst a key is logged once more).
    """

    def __init__(
        self, interval: float, *, max_keys: int = 4096, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval = interval
        self.max_keys = max_keys
        self._clock = clock
        self._last: dict[Hashable, tuple[float, int]] = {}  # key → (when logged, repeats held back)

    def report(self, key: Hashable) -> int | None:
        """None: stay quiet about key now. Else log now: the number of repeats held back since the
        last line (0 for the first)."""
        now = self._clock()
        seen = self._last.get(key)
        if seen is not None and now - seen[0] < self.interval:
            self._last[key] = (seen[0], seen[1] + 1)
            return None
        if seen is None and len(self._last) >= self.max_keys:
            self._last.clear()
        self._last[key] = (now, 0)
        return seen[1] if seen is not None else 0


def repeats_note(held_back: int) -> str:
    """The suffix a throttled line carries: how many like it were not logged."""
    return f" ({held_back} more since the last report)" if held_back else ""
