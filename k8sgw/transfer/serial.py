"""SOA serial arithmetic (RFC 1982): serials compare on a circle of 2^32, so one that wrapped
past zero is still newer."""

from __future__ import annotations

__all__ = ["serial_newer"]

_HALF = 2**31


def serial_newer(a: int, b: int) -> bool:
    """a is newer than b (RFC 1982 §3.2: a > b when 0 < (a - b) mod 2^32 < 2^31)."""
    return 0 < (a - b) % 2**32 < _HALF
