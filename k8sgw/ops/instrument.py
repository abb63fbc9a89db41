"""Per-query `prometheus` counting, `log` lines and `errors` reporting, around a listener's handler.

Only listeners whose server blocks ask for these get the wrapper: without them the servers call
the fast path directly, and an answer costs nothing extra.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from k8sgw.dnsserver.answer import View
from k8sgw.dnsserver.wire import Handler, Pending
from k8sgw.ops.metrics import Metrics, server_label
from k8sgw.ops.querylog import QueryLogger, summarize

__all__ = ["instrument", "needs_instrumenting"]

logger = logging.getLogger(__name__)


def needs_instrumenting(view: View, metrics: Metrics | None) -> bool:
    return metrics is not None or any(b.log is not None for b in view.blocks)


def instrument(
    handle: Handler, view: View, *, proto: str, address: tuple[str, int], metrics: Metrics | None
) -> Handler:
    """A handler that answers like `handle` and also counts, logs and reports what it answered."""
    server = server_label(*address)
    loggers = {id(b): QueryLogger(b.log) for b in view.blocks if b.log is not None}

    def record(wire: bytes, reply: bytes | None, addr: Any, started: float, plugin: str) -> None:
        duration = time.perf_counter() - started
        q = summarize(wire)
        if q is None or q.qname is None:
            return
        zone, block = view.zone_for(q.qname)
        if metrics is not None and reply is not None:
            r = summarize(reply)
            metrics.observe(
                proto, 2 if ":" in addr[0] else 1, q.qtype or 0, r.rcode if r else 2, str(zone) if zone else None,
                server, duration, len(wire), len(reply), plugin=plugin if block is not None else "", do=q.do,
            )
        ql = loggers.get(id(block)) if block is not None else None
        if ql is not None:
            ql.log(wire, reply, remote=addr, proto=proto, duration=duration)

    def handler(wire: bytes, addr: Any) -> bytes | Pending | None:
        started = time.perf_counter()
        reply = handle(wire, addr)
        if isinstance(reply, Pending):
            return _Observed(reply, lambda out: record(wire, out, addr, started, "forward"))
        try:
            record(wire, reply, addr, started, "k8s_gateway")
        except Exception:
            logger.exception("counting or logging a query failed")
        return reply

    return handler


class _Observed:
    """A Pending whose reply is counted and logged when it is ready (the servers await reply())."""

    def __init__(self, pending: Pending, done) -> None:
        self._pending = pending
        self._done = done

    async def reply(self) -> bytes:
        out = await self._pending.reply()
        try:
            self._done(out)
        except Exception:
            logger.exception("counting or logging a query failed")
        return out
