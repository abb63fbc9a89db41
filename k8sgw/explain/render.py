"""An Explanation, or a list of skipped objects, as text for a person or as JSON for a script."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from k8sgw.explain.core import Explanation, KindState, Mention
from k8sgw.explain.skipped import Skipped

__all__ = ["explanation_json", "explanation_text", "skipped_json", "skipped_text"]


def _mention(m: Mention) -> dict[str, Any]:
    return {
        "kind": m.kind, "namespace": m.namespace, "name": m.name, "at": m.at,
        "reason": m.why.value, "text": m.why.text, "detail": m.detail,
    }


def _kind(k: KindState) -> dict[str, Any]:
    return {"kind": k.kind, "watched": k.watched, "reason": k.reason}


def explanation_json(e: Explanation) -> dict[str, Any]:
    return {
        "name": e.name,
        "type": e.type,
        "zone": e.zone,
        "zone_note": e.zone_note,
        "version": e.version,
        "serial": e.serial,
        "ready": e.ready,
        "rcode": e.rcode,
        "forwarded": e.forwarded,
        "answer": e.answer,
        "authority": e.authority,
        "additional": e.additional,
        "chain": [{"name": s.name, "owner": s.owner, "result": s.result} for s in e.chain],
        "supplying": [_mention(m) for m in e.supplying],
        "not_counting": [_mention(m) for m in e.not_counting],
        "kinds": [_kind(k) for k in e.kinds],
    }


def _who(m: Mention | Skipped) -> str:
    return f"{m.kind} {m.namespace}/{m.name}" if m.namespace or m.name else m.kind


def explanation_text(e: Explanation) -> str:
    lines = [f"{e.name} {e.type}", f"  zone:    {e.zone_note}"]
    if e.zone is not None:
        lines.append(f"  map:     version {e.version}, serial {e.serial}" + ("" if e.ready else ", NOT READY (SERVFAIL)"))
    if e.forwarded:
        lines.append("  answer:  forwarded to the block's upstream (forward / fallthrough)")
    else:
        lines.append(f"  answer:  {e.rcode}")
        lines.extend(f"    {line}" for line in e.answer)
        lines.extend(f"    (authority) {line}" for line in e.authority)
        lines.extend(f"    (additional) {line}" for line in e.additional)
    if len(e.chain) > 1 or any(s.owner and s.owner != s.name for s in e.chain):
        lines.append("  lookup:")
        for s in e.chain:
            via = "" if s.owner in (None, s.name) else f" via wildcard {s.owner}"
            lines.append(f"    {s.name}{via}: {s.result}")
    lines.append("  supplied by:" if e.supplying else "  supplied by: nothing")
    for m in e.supplying:
        how = f"{m.why.text}: {m.detail}" if m.detail else m.why.text
        lines.append(f"    {_who(m)} at {m.at} through {how}")
    if e.not_counting:
        lines.append("  mentioned but not counting:")
        for m in e.not_counting:
            lines.append(f"    {_who(m)} at {m.at}: {m.why.text}" + (f" ({m.detail})" if m.detail else ""))
    unwatched = [k for k in e.kinds if not k.watched]
    if unwatched:
        lines.append("  kinds not watched:")
        lines.extend(f"    {k.kind}: {k.reason}" for k in unwatched)
    return "\n".join(lines) + "\n"


def skipped_json(skipped: Sequence[Skipped]) -> list[dict[str, Any]]:
    return [
        {
            "kind": s.kind, "namespace": s.namespace, "name": s.name, "reason": s.why.value,
            "text": s.why.text, "detail": s.detail, "names": list(s.names),
        }
        for s in skipped
    ]


def skipped_text(skipped: Sequence[Skipped]) -> str:
    if not skipped:
        return "no object claims a name in a zone without contributing a record\n"
    lines = []
    for s in skipped:
        detail = f" ({s.detail})" if s.detail else ""
        lines.append(f"{_who(s)}: {s.why.text}{detail}; names: {', '.join(s.names)}")
    return "\n".join(lines) + "\n"


def dumps(data: object) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
