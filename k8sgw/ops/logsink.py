"""The query log's writer: lines appended in memory while answering, written in large writes.

A DNS server answering 100,000 queries a second cannot afford a logging call and a write(2) per
answer, nor wait on a slow reader of its stderr (a terminal, a pipe to a log collector). The
answering thread appends each finished line to a list (a lock and an append, no system call);
one writer thread takes the whole list and writes it with one write and one flush.

A thread rather than a trio task: a write to a full pipe blocks, and in a trio task it would stop
the event loop and every answer with it; stderr cannot be made non-blocking without changing the
file description every other writer of it shares (logging, child processes). The thread releases
the GIL while write(2) blocks, so answering goes on.

Never drop, bounded memory: the lines waiting (and being written) are bounded by ``max_bytes``.
Past it the appending thread waits until the writer has written some (backpressure: answering
slows to the speed of the log's reader instead of losing lines or growing without bound); each
such wait is counted in ``waits``. Lines whose write fails (stderr closed: EPIPE, EBADF) are
counted in ``unwritten``; the others in ``written``.

Shutdown: close() writes everything appended so far and stops the writer; after it, append()
writes at once. The CLI calls shutdown() once trio.run returns (SIGTERM, SIGINT, a fatal error)
and atexit calls it at interpreter exit, so no line appended while the process runs is lost.

Lines share the stream with the logging handler's records and take its lock for each write, so
they never interleave within a line; a query line may appear up to one batch (``linger``
seconds) after a record logged later.
"""

from __future__ import annotations

import atexit
import threading
import time
from collections.abc import Callable
from typing import TextIO

__all__ = [
    "LINGER",
    "LOG_FORMAT",
    "MAX_PENDING_BYTES",
    "LineSink",
    "Prefix",
    "install",
    "installed",
    "shutdown",
]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
"""The CLI's log format; Prefix renders the part before the message the way logging does."""

MAX_PENDING_BYTES = 8 * 2**20
"""About 80,000 common-format lines: most of a second at 100,000 queries/s before answering waits."""

BATCH_BYTES = 256 * 1024
"""A batch this large is written without waiting out the linger."""

LINGER = 0.02
"""Seconds the writer lets a batch grow after its first line: at high rates one write carries
thousands of lines; a lone query's line appears within this."""


class LineSink:
    """Finished lines (each ending in a newline) on their way to `stream`, written by one thread.

    Args:
        stream: where lines go (a text stream: sys.stderr).
        lock: taken around each write; the logging handler's lock when it writes the same stream.
        max_bytes: characters waiting or being written before append() waits (backpressure).
        batch_bytes, linger: a batch is written once it is this large, or this old.
        on_wait: called (holding the sink's lock) each time an append() starts waiting.
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        lock: threading.RLock | threading.Lock | None = None,
        max_bytes: int = MAX_PENDING_BYTES,
        batch_bytes: int = BATCH_BYTES,
        linger: float = LINGER,
        on_wait: Callable[[], None] | None = None,
    ) -> None:
        self._stream = stream
        self._stream_lock = lock if lock is not None else threading.Lock()
        self._max_bytes = max_bytes
        self._batch_bytes = min(batch_bytes, max_bytes)
        self._linger = linger
        self._on_wait = on_wait
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # the writer waits here for lines
        self._room = threading.Condition(self._lock)  # appenders wait here, past max_bytes
        self._pending: list[str] = []
        self._bytes = 0  # characters in _pending and in the write under way
        self._idle = False  # the writer waits for a first line
        self._lingering = False  # the writer lets a batch grow
        self._closing = False
        self._stopped = False
        self.appended = 0
        """Lines given to append()."""
        self.written = 0
        """Lines written to the stream."""
        self.unwritten = 0
        """Lines whose write failed (the stream was closed or broken)."""
        self.waits = 0
        """Times an append() waited for the writer (the pending lines had reached max_bytes)."""
        self.writes = 0
        """Writes made (each a batch of lines)."""
        self._thread = threading.Thread(target=self._run, name="k8sgw-query-log", daemon=True)
        self._thread.start()

    def append(self, line: str) -> None:
        """Queue one line; returns at once unless max_bytes are already waiting."""
        with self._lock:
            if self._stopped:
                self.appended += 1
                direct = True
            else:
                direct = False
                self._pending.append(line)
                self._bytes += len(line)
                self.appended += 1
                if self._idle or (self._lingering and self._bytes >= self._batch_bytes):
                    self._idle = self._lingering = False  # one wake-up per batch
                    self._work.notify()
                if self._bytes > self._max_bytes:
                    self.waits += 1
                    if self._on_wait is not None:
                        self._on_wait()
                    while self._bytes > self._max_bytes and not self._stopped:
                        self._room.wait()
        if direct:
            self._write([line])

    def close(self) -> None:
        """Write every line appended so far, then stop the writer (idempotent)."""
        with self._lock:
            self._closing = True
            self._work.notify()
        self._thread.join()

    def _run(self) -> None:
        try:
            while True:
                with self._lock:
                    while not self._pending and not self._closing:
                        self._idle = True
                        self._work.wait()
                    self._idle = False
                    if not self._closing and self._bytes < self._batch_bytes:
                        self._lingering = True
                        self._work.wait(self._linger)
                        self._lingering = False
                    batch, self._pending = self._pending, []
                    if not batch and self._closing:
                        return
                size = self._write(batch)
                with self._lock:
                    self._bytes -= size
                    self._room.notify_all()
        finally:
            with self._lock:
                self._stopped = True
                self._room.notify_all()

    def _write(self, batch: list[str]) -> int:
        """Write `batch` in one write; returns its length in characters."""
        text = "".join(batch)
        try:
            with self._stream_lock:
                self._stream.write(text)
                self._stream.flush()
        except (OSError, ValueError):  # EPIPE, EBADF; ValueError: the stream was closed
            with self._lock:
                self.unwritten += len(batch)
        else:
            with self._lock:
                self.written += len(batch)
                self.writes += 1
        return len(text)


class Prefix:
    """What LOG_FORMAT puts before a message of `level` on logger `name`, for a time.time() value:
    ``2024-05-01 12:00:00,123 INFO k8sgw.query: `` (logging.Formatter's default asctime).

    Rendered once per millisecond: the lines of one millisecond share it."""

    __slots__ = ("_msecs", "_second", "_second_text", "_tail", "_text")

    def __init__(self, level: str, name: str) -> None:
        self._tail = f" {level} {name}: "
        self._second = -1
        self._second_text = ""
        self._msecs = -1
        self._text = ""

    def __call__(self, now: float) -> str:
        second = int(now)
        msecs = int((now - second) * 1000)  # as logging.LogRecord computes it
        if second != self._second:
            self._second = second
            self._second_text = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
            self._msecs = -1
        if msecs != self._msecs:
            self._msecs = msecs
            self._text = f"{self._second_text},{msecs:03d}{self._tail}"
        return self._text


_installed: LineSink | None = None


def install(stream: TextIO, lock: threading.RLock | threading.Lock | None = None) -> LineSink:
    """Start the process's query-log sink on `stream` (closing one started before)."""
    global _installed
    shutdown()
    _installed = LineSink(stream, lock=lock)
    atexit.register(shutdown)
    return _installed


def installed() -> LineSink | None:
    """The process's query-log sink, or None: query lines go through logging."""
    return _installed


def shutdown() -> None:
    """Flush and stop the process's sink (idempotent); later lines go through logging."""
    global _installed
    sink, _installed = _installed, None
    if sink is not None:
        sink.close()
