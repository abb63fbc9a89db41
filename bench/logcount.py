"""Counting k8sgw's query-log lines in its log file, run by run: a line per answered query, none lost.

The file is read from where the last count stopped, so a run of a million lines is counted once.
k8sgw writes the lines in batches, so a count waits (up to a deadline) until the lines of the
queries dnsperf saw answered have all arrived.
"""

from __future__ import annotations

import re
from pathlib import Path

import trio

from bench.load import LoadResult

__all__ = ["QueryLogCount"]

# CoreDNS's common log format, after whatever prefix the logger gives it:
# `{remote}:{port} - {>id} "{type} {class} {name} {proto} ...`
_QUERY_LINE = re.compile(rb'^.*?:\d+ - \d+ "\S+ \S+ \S+ (?:udp|tcp) ', re.MULTILINE)
FLUSH_DEADLINE = 10.0  # seconds: a batch is written within milliseconds; this is a broken writer
_POLL = 0.02


class QueryLogCount:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self.total = 0

    def _read(self) -> int:
        """Query lines appended since the last read (whole lines only)."""
        with self.path.open("rb") as f:
            f.seek(self._offset)
            data = f.read()
        end = data.rfind(b"\n") + 1
        self._offset += end
        found = len(_QUERY_LINE.findall(data, 0, end))
        self.total += found
        return found

    async def lines_for(self, run: LoadResult) -> int:
        """The query lines written since the previous call, once they cover `run.completed`
        (or at the deadline, whatever has arrived)."""
        lines = self._read()
        with trio.move_on_after(FLUSH_DEADLINE):
            while lines < run.completed:
                await trio.sleep(_POLL)
                lines += self._read()
        return lines
