"""Per-query `prometheus` counting, `log` lines and `errors` reporting, around a listener's handler.

Only listeners whose server blocks ask for these get the wrapper: without them the servers call
the fast path directly, and an answer costs nothing extra.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import dns.rcode

from k8sgw.dnsserver.answer import View
from k8sgw.dnsserver.assembly import read_question
from k8sgw.dnsserver.wire import Handler, Outbound, Pending
from k8sgw.ops.metrics import Metrics, QueryCells, server_label
from k8sgw.ops.querylog import MAX_KEY_BYTES, Memo, QueryLogger, memo_key, summarize
from k8sgw.records.keys import NameKey

__all__ = ["instrument", "needs_instrumenting"]

logger = logging.getLogger(__name__)


def needs_instrumenting(view: View, metrics: Metrics | None) -> bool:
    return metrics is not None or any(b.log is not None for b in view.blocks)


# What counting and logging need from a query depends only on its bytes minus the ID (and not on
# its EDNS options), so each distinct query is read once (a querylog.Memo, bounded in bytes) and an
# answer from the fast path is counted for the price of a dict lookup and a few increments.
_UNREAD = object()
_SERVER_RCODES = frozenset((dns.rcode.FORMERR, dns.rcode.NOTIMP, dns.rcode.REFUSED))


@dataclass(slots=True)
class _Query:
    """One distinct query, as record() needs it."""

    zone: str | None  # the zone of the block that answers it; None: no block (counted as dropped)
    plugin: str  # what answers it when k8sgw does: "k8s_gateway" (in one of its zones), or "" (the server)
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
    known = Memo()
    entries = known.entries
    perf_counter = time.perf_counter
    # A plain query's _Query depends on its name only through the longest of these zones it is
    # in (which block answers it, and whether k8s_gateway does): a query for a name never seen
    # before is read by a few dict lookups, not by dnspython (a random-subdomain flood).
    routes = frozenset(
        NameKey.of(zone)
        for b in view.blocks
        for zone in (*b.zones, *((*b.authority.settings.zones, *b.authority.settings.scope.zones) if b.authority else ()))
    )
    by_route: dict[tuple, _Query | None] = {}

    def read_plain(wire: bytes) -> _Query | None | object:
        q = read_question(wire)
        if q is None:
            return _UNREAD
        labels = q.labels
        route = None
        for i in range(len(labels)):
            if labels[i:] in routes:
                route = labels[i:]
                break
        key = (route, q.qtype, q.edns is not None and q.edns[1])
        summary = by_route.get(key, _UNREAD)
        if summary is _UNREAD:
            summary = by_route[key] = read(wire)
        return summary

    def read(wire: bytes) -> _Query | None:
        q = summarize(wire)
        if q is None or q.qname is None:
            return None  # not even a question: not counted (dropped or FORMERR)
        zone, block = view.zone_for(q.qname)
        # CoreDNS labels a reply no plugin wrote (REFUSED for a name no zone covers) plugin="".
        authority = block.authority if block is not None else None
        ours = authority is not None and authority.settings.scope.zone_of(q.qname) is not None
        return _Query(
            zone=str(zone) if zone else None,
            plugin="k8s_gateway" if ours else "",
            qtype=q.qtype or 0,
            do=q.do,
            header_rcode=not q.edns_version,
            log=loggers.get(id(block)) if block is not None else None,
        )

    def record(wire: bytes, reply: bytes | None, addr: Any, started: float, plugin: str) -> None:
        duration = perf_counter() - started
        key = wire[2:] if len(wire) <= MAX_KEY_BYTES else memo_key(wire)
        q = entries.get(key, _UNREAD) if key is not None else _UNREAD
        if q is _UNREAD:
            q = read_plain(wire)
            if q is _UNREAD:
                q = read(wire)
            if key is not None:
                known.put(key, q)
        if q is None:
            return
        if metrics is not None and reply is not None:
            family = 2 if ":" in addr[0] else 1
            if q.header_rcode and plugin == "k8s_gateway" and len(reply) >= 4:
                rcode = reply[3] & 0xF
                cells = q.cells.get(rcode << 2 | family)
                if cells is None:
                    # The checks before answering (FORMERR, NOTIMP, REFUSED for another class) are the server's.
                    by = q.plugin if rcode not in _SERVER_RCODES else ""
                    cells = metrics.cells(proto, family, q.qtype, rcode, q.zone, server, by)
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
        if type(reply) is Outbound:
            return reply  # a zone transfer logs itself when done; it is not a query's answer
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
