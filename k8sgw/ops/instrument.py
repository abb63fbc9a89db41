"""Per-query `prometheus` counting, `log` lines and `errors` reporting, around a listener's handler.

Only listeners whose server blocks ask for these get the wrapper: without them the servers call
the fast path directly, and an answer costs nothing extra.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from k8sgw.dnsserver.answer import View
from k8sgw.dnsserver.wire import Handler, Pending
from k8sgw.ops.metrics import Metrics, QueryCells, server_label
from k8sgw.ops.querylog import QueryLogger, remember, summarize

__all__ = ["instrument", "needs_instrumenting"]

logger = logging.getLogger(__name__)


def needs_instrumenting(view: View, metrics: Metrics | None) -> bool:
    return metrics is not None or any(b.log is not None for b in view.blocks)


# What counting and logging need from a query depends only on its bytes minus the ID, so each
# distinct query is read once (querylog.remember) and an answer from the fast path is counted for
# the price of a dict lookup and a few increments.
_UNREAD = object()


@dataclass(slots=True)
class _Query:
    """One distinct query, as record() needs it."""

    zone: str | None  # the zone of the block that answers it; None: no block (counted as dropped)
    plugin: str  # what answers it when k8sgw does: "k8s_gateway", or "" (no block: the server)
    qtype: int
    do: bool
    header_rcode: bool  # no EDNS version > 0: our reply's rcode is in its header (never BADVERS)
    log: QueryLogger | None
    cells: dict[int, QueryCells] = field(default_factory=dict)  # by rcode << 2 | family


def instrument(
    handle: Handler, view: View, *, proto: str, address: tuple[str, int], metrics: Metrics | None
) -> Handler:
    """A handler that answers like `handle` and also counts, logs and reports what it answered."""
    server = server_label(*address)
    loggers = {id(b): QueryLogger(b.log) for b in view.blocks if b.log is not None}
    known: dict[bytes, _Query | None] = {}
    perf_counter = time.perf_counter

    def read(wire: bytes) -> _Query | None:
        q = summarize(wire)
        if q is None or q.qname is None:
            return None  # not even a question: not counted (dropped or FORMERR)
        zone, block = view.zone_for(q.qname)
        return _Query(
            zone=str(zone) if zone else None,
            plugin="k8s_gateway" if block is not None else "",
            qtype=q.qtype or 0,
            do=q.do,
            header_rcode=not q.edns_version,
            log=loggers.get(id(block)) if block is not None else None,
        )

    def record(wire: bytes, reply: bytes | None, addr: Any, started: float, plugin: str) -> None:
        duration = perf_counter() - started
        q = known.get(wire[2:], _UNREAD)
        if q is _UNREAD:
            q = remember(known, wire[2:], read(wire))
        if q is None:
            return
        if metrics is not None and reply is not None:
            family = 2 if ":" in addr[0] else 1
            if q.header_rcode and plugin == "k8s_gateway" and len(reply) >= 4:
                rcode = reply[3] & 0xF
                cells = q.cells.get(rcode << 2 | family)
                if cells is None:
                    cells = metrics.cells(proto, family, q.qtype, rcode, q.zone, server, q.plugin)
                    q.cells[rcode << 2 | family] = cells
                cells.count(duration, len(wire), len(reply), q.do)
            else:  # BADVERS, or an upstream's reply: the extended bits are in its OPT record
                r = summarize(reply)
                metrics.observe(
                    proto, family, q.qtype, r.rcode if r else 2, q.zone, server, duration, len(wire),
                    len(reply), plugin=plugin if q.plugin else "", do=q.do,
                )
        if q.log is not None:
            q.log.log(wire, reply, remote=addr, proto=proto, duration=duration)

    def handler(wire: bytes, addr: Any) -> bytes | Pending | None:
        started = perf_counter()
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
