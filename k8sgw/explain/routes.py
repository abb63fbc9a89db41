"""GET /explain?name=N&type=T and GET /explain/skipped: the explanation from the running server.

Each request reads a store's record map and the notes of that same version once (the route is
synchronous: no publish can come between), so what it explains is the answer being served.
"""

from __future__ import annotations

from collections.abc import Sequence

import dns.exception
import dns.name
import dns.rdatatype

from k8sgw.config import Config
from k8sgw.explain.core import (
    Explainer,
    explain_in_views,
    explainer_for,
    gateway_blocks,
    other_blocks,
)
from k8sgw.explain.directive import ExplainConfig
from k8sgw.explain.render import dumps, explanation_json, skipped_json
from k8sgw.explain.skipped import skipped_objects
from k8sgw.ops.http import QueryRoute, Route
from k8sgw.records.store import RecordStore

__all__ = ["EXPLAIN_PATH", "SKIPPED_PATH", "explain_addresses", "explain_endpoints", "explain_routes", "explainers_for"]

EXPLAIN_PATH, SKIPPED_PATH = "/explain", "/explain/skipped"
_JSON = "application/json"
_TEXT = "text/plain; charset=utf-8"


def explain_addresses(cfg: Config) -> list[tuple[str, int]]:
    """Where the `explain` directives of cfg listen (each address once)."""
    found: dict[tuple[str, int], None] = {}
    for server in cfg.servers:
        directive = server.plugin("explain")
        if isinstance(directive, ExplainConfig):
            found[(directive.host, directive.port)] = None
    return list(found)


def explainers_for(cfg: Config, stores: Sequence[RecordStore]) -> list[Explainer]:
    """One Explainer per k8s_gateway block, with the store the application made for it (the
    application makes one per such block, in block order)."""
    blocks = [index for index, _gw in gateway_blocks(cfg)]
    return [explainer_for(cfg, index, store, store.unavailable) for index, store in zip(blocks, stores, strict=True)]


def explain_endpoints(
    cfg: Config, stores: Sequence[RecordStore]
) -> tuple[dict[tuple[str, int], tuple[str, ...]], dict[str, Route | QueryRoute]]:
    """(address → paths, path → route) of the `explain` directives; both empty without one."""
    addresses = explain_addresses(cfg)
    if not addresses:
        return {}, {}
    return {a: (EXPLAIN_PATH, SKIPPED_PATH) for a in addresses}, explain_routes(cfg, stores)


def explain_routes(cfg: Config, stores: Sequence[RecordStore]) -> dict[str, Route | QueryRoute]:
    explainers = explainers_for(cfg, stores)
    others = other_blocks(cfg)

    def explain(params: dict[str, str]) -> tuple[int, str, bytes]:
        name, rdtype = params.get("name", "").strip(), params.get("type", "A").strip() or "A"
        if not name:
            return 400, _TEXT, b"explain: give ?name=NAME (and optionally &type=TYPE)\n"
        try:
            dns.rdatatype.from_text(rdtype)
            dns.name.from_text(name)
        except (dns.exception.DNSException, ValueError) as exc:
            return 400, _TEXT, f"explain: {exc}\n".encode()
        return 200, _JSON, dumps(explanation_json(explain_in_views(name, rdtype, explainers, others))).encode()

    def skipped() -> tuple[int, str, bytes]:
        blocks = []
        for store in stores:
            records, notes = store.explained()
            blocks.append({
                "zones": [z.to_text() for z in store.settings.zones],
                "version": records.version,
                "skipped": skipped_json(skipped_objects(notes, store.settings)),
            })
        return 200, _JSON, dumps(blocks).encode()

    return {EXPLAIN_PATH: QueryRoute(explain), SKIPPED_PATH: skipped}
