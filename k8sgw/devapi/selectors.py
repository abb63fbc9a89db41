"""Label and field selectors as the API server parses them (`labelSelector=`, `fieldSelector=`).

Pure functions: a selector string becomes a predicate over an object dict. Parse errors raise
ApiError 400 BadRequest.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .errors import ApiError

__all__ = ["parse_field_selector", "parse_label_selector"]

Predicate = Callable[[dict[str, Any]], bool]

_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
_VALUE = r"[-A-Za-z0-9_.]*"
_SET_RE = re.compile(rf"^({_KEY})\s+(in|notin)\s*\(([^)]*)\)$")
_EQ_RE = re.compile(rf"^({_KEY})\s*(==|=|!=)\s*({_VALUE})$")
_EXISTS_RE = re.compile(rf"^(!?)\s*({_KEY})$")
_FIELDS = ("metadata.name", "metadata.namespace")


def _split_top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


def _bad(selector: str, why: str) -> ApiError:
    return ApiError(400, "BadRequest", f"unable to parse requirement: {why} in {selector!r}")


def parse_label_selector(selector: str | None) -> Predicate | None:
    """`a=b,c!=d,e in (f,g),h notin (i),j,!k` → predicate over an object's metadata.labels."""
    if not selector or not selector.strip():
        return None
    tests: list[Callable[[dict[str, str]], bool]] = []
    for part in _split_top_level(selector):
        if m := _SET_RE.match(part):
            key, op, raw = m.group(1), m.group(2), m.group(3)
            values = frozenset(v.strip() for v in raw.split(",") if v.strip())
            if op == "in":
                tests.append(lambda labels, k=key, vs=values: k in labels and labels[k] in vs)
            else:
                tests.append(lambda labels, k=key, vs=values: labels.get(k) not in vs)
        elif m := _EQ_RE.match(part):
            key, op, value = m.groups()
            if op == "!=":
                tests.append(lambda labels, k=key, v=value: labels.get(k) != v)
            else:
                tests.append(lambda labels, k=key, v=value: labels.get(k) == v)
        elif m := _EXISTS_RE.match(part):
            neg, key = m.groups()
            if neg:
                tests.append(lambda labels, k=key: k not in labels)
            else:
                tests.append(lambda labels, k=key: k in labels)
        else:
            raise _bad(selector, f"invalid requirement {part!r}")

    def predicate(obj: dict[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(test(labels) for test in tests)

    return predicate


def parse_field_selector(selector: str | None) -> Predicate | None:
    """Only metadata.name and metadata.namespace with =, ==, != (as for Ingress, Service and CRs)."""
    if not selector or not selector.strip():
        return None
    tests: list[Callable[[dict[str, Any]], bool]] = []
    for part in _split_top_level(selector):
        m = re.match(r"^([A-Za-z0-9.]+)\s*(==|=|!=)\s*(.*)$", part)
        if not m:
            raise ApiError(400, "BadRequest", f"invalid selector: {selector!r}; can't understand {part!r}")
        name, op, value = m.group(1), m.group(2), m.group(3).strip()
        if name not in _FIELDS:
            raise ApiError(400, "BadRequest", f"field label not supported: {name}")
        attr = name.split(".", 1)[1]
        if op == "!=":
            tests.append(lambda obj, a=attr, v=value: (obj.get("metadata") or {}).get(a, "") != v)
        else:
            tests.append(lambda obj, a=attr, v=value: (obj.get("metadata") or {}).get(a, "") == v)
    return lambda obj: all(test(obj) for test in tests)
