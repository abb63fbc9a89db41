"""Kubernetes label selectors (k8s.io/apimachinery labels): parsed once, matched many times.

One parser for both users: config/ checks `serviceLabelSelectors` with it at parse time, and
records/sources.py matches Services with the result. Imports nothing from k8sgw.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["LabelSelector", "Requirement", "parse_label_selector"]

# A KEY is [prefix/]name; a name or VALUE is at most 63 characters, alphanumerics with -_. inside.
_NAME = r"[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_KEY = rf"(?:[a-z0-9](?:[-a-z0-9.]{{0,251}}[a-z0-9])?/)?{_NAME}"
_SET = re.compile(rf"\s*({_KEY})\s+(in|notin)\s*\(\s*({_NAME}(?:\s*,\s*{_NAME})*)\s*\)\s*")
_EQ = re.compile(rf"\s*({_KEY})\s*(==|=|!=)\s*((?:{_NAME})?)\s*")
_CMP = re.compile(rf"\s*({_KEY})\s*([<>])\s*([0-9]+)\s*")
_EXISTS = re.compile(rf"\s*(!?)\s*({_KEY})\s*")

Requirement = tuple[str, str, tuple[str, ...]]  # (key, operator, values)


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A parsed selector: every requirement must hold."""

    text: str
    requirements: tuple[Requirement, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        for key, op, values in self.requirements:
            value = labels.get(key)
            if op == "exists":
                ok = value is not None
            elif op == "!exists":
                ok = value is None
            elif op in ("=", "==", "in"):
                ok = value is not None and value in values
            elif op in ("!=", "notin"):
                ok = value is None or value not in values
            else:  # "<" / ">": the label must hold an integer
                try:
                    number = int(value) if value is not None else None
                except ValueError:
                    number = None
                ok = number is not None and (number < int(values[0]) if op == "<" else number > int(values[0]))
            if not ok:
                return False
        return True


def _split_requirements(text: str) -> list[str]:
    """Split on the commas between requirements, not those inside `in (a,b)`."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def parse_label_selector(text: str) -> LabelSelector:
    """`a=b,c!=d,e in (f,g),h notin (i),j,!k,n>3` → LabelSelector. An empty selector matches all.

    Raises:
        ValueError: not a label selector; the message names the part that is not.
    """
    requirements: list[Requirement] = []
    if text.strip():
        for part in _split_requirements(text):
            if m := _SET.fullmatch(part):
                values = tuple(v.strip() for v in m.group(3).split(","))
                requirements.append((m.group(1), m.group(2), values))
            elif m := _EQ.fullmatch(part):
                requirements.append((m.group(1), m.group(2), (m.group(3),)))
            elif m := _CMP.fullmatch(part):
                requirements.append((m.group(1), m.group(2), (m.group(3),)))
            elif m := _EXISTS.fullmatch(part):
                requirements.append((m.group(2), "!exists" if m.group(1) else "exists", ()))
            else:
                raise ValueError(f"invalid label selector {text!r}: cannot parse {part.strip()!r}")
    return LabelSelector(text, tuple(requirements))
