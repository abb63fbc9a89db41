"""The root of k8sgw's own exceptions.

    K8sgwError
    ├── ConfigError          a Corefile (or kubeconfig) that cannot be used: names file, line, what was expected
    └── kubeapi.errors.KubeError   see k8sgw/kubeapi/errors.py
"""

from __future__ import annotations

import re

__all__ = ["MAX_ECHOED", "ConfigError", "K8sgwError", "cap_echoed"]


class K8sgwError(Exception):
    """Base of every error k8sgw raises on purpose."""


class ConfigError(K8sgwError):
    """A configuration that cannot be used.

    str() is `FILE:LINE: MESSAGE` when a line is known, so the CLI can print it as it is.
    """

    def __init__(self, message: str, *, filename: str | None = None, line: int | None = None) -> None:
        message = cap_echoed(message)
        self.message = message
        self.filename = filename
        self.line = line
        where = filename or "<config>"
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {message}")


MAX_ECHOED = 200
"""Characters of one word an error message repeats from its input; the rest is elided, so a
50,000-character token in a Corefile gives a short error (paths stay whole)."""

_LONG_WORD = re.compile(r"[^\s\"]{" + str(MAX_ECHOED + 1) + ",}")


def cap_echoed(message: str) -> str:
    """`message` with every word longer than MAX_ECHOED characters cut short, saying how long it was."""
    return _LONG_WORD.sub(lambda m: f"{m.group(0)[:MAX_ECHOED]}...({len(m.group(0))} characters)", message)
