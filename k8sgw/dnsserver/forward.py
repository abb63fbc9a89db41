"""The `forward` directive: names outside k8sgw's zones (and fallthrough names) asked of upstream servers.

UDP first, again over TCP when the answer is truncated; upstreams tried in the configured policy
order with failover; an upstream that failed max_fails times in a row is tried last until it
answers again; when all fail the client gets SERVFAIL. `loop` probes run through here too.
"""

from __future__ import annotations

import itertools
import logging
import random
import secrets
from dataclasses import dataclass
from typing import Protocol

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import trio

from k8sgw.config.dnsplugins import ForwardConfig
from k8sgw.dnsserver.cache import ResponseCache
from k8sgw.errors import K8sgwError

__all__ = ["ForwardObserver", "Forwarder", "LoopDetectedError", "LoopDetector"]

logger = logging.getLogger(__name__)

# Per attempt; CoreDNS's forward reads for 2 s too. Several upstreams → several attempts.
ATTEMPT_TIMEOUT = 2.0
OUR_PAYLOAD = 1232


class ForwardObserver(Protocol):
    """Who counts exchanges with upstreams (ops/metrics.py, for coredns_forward_*); `to` is
    "host:port"."""

    def request(self, to: str) -> None: ...
    def response(self, to: str, rcode: int, duration: float) -> None: ...
    def failed(self, to: str) -> None: ...


class LoopDetectedError(K8sgwError):
    """A query k8sgw forwarded came back to it: the upstream forwards to k8sgw (CoreDNS `loop`)."""


class LoopDetector:
    """Recognises k8sgw's own probe names coming back through the forwarder.

    CoreDNS `loop` sends `<random>.<random>.<zone> HINFO` to itself at start; seeing it come in
    more than twice means a loop. `detected` is set then, and app.py ends the server with an error.
    """

    THRESHOLD = 2

    def __init__(self) -> None:
        self.probes: dict[dns.name.Name, int] = {}
        self.detected = trio.Event()
        self.message = ""

    def new_probe(self, zone: dns.name.Name) -> dns.message.Message:
        labels = (str(secrets.randbits(63)).encode(), str(secrets.randbits(63)).encode())
        name = dns.name.Name(labels).concatenate(zone)
        self.probes[name] = 0
        return dns.message.make_query(name, dns.rdatatype.HINFO)

    def seen(self, name: dns.name.Name, upstream: str) -> None:
        count = self.probes.get(name)
        if count is None:
            return
        self.probes[name] = count + 1
        if count + 1 > self.THRESHOLD and not self.detected.is_set():
            self.message = (
                f"Loop ({upstream}) detected for zone {name.parent().parent()}: the upstream "
                f"sends queries back to k8sgw (see CoreDNS loop's troubleshooting: it is usually "
                f"a resolv.conf pointing at this server)"
            )
            self.detected.set()


@dataclass
class _Upstream:
    host: str
    port: int
    fails: int = 0

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


class Forwarder:
    """Asks upstreams on behalf of clients, for the names of one `forward` directive."""

    def __init__(
        self,
        cfg: ForwardConfig,
        *,
        cache: ResponseCache | None = None,
        loop: LoopDetector | None = None,
        attempt_timeout: float = ATTEMPT_TIMEOUT,
        observer: ForwardObserver | None = None,
    ) -> None:
        self.cfg = cfg
        self.observer = observer
        self.zone = dns.name.from_text(cfg.zone)
        self._excepts = tuple(dns.name.from_text(z) for z in cfg.excepts)
        self._upstreams = [_Upstream(u.host, u.port) for u in cfg.upstreams]
        self._next = itertools.count()
        self._in_flight = 0
        self.cache = cache
        self.loop = loop
        self.attempt_timeout = attempt_timeout

    def covers(self, name: dns.name.Name) -> bool:
        """Whether name is forwarded: at or below FROM and not below an `except` zone."""
        return name.is_subdomain(self.zone) and not any(name.is_subdomain(z) for z in self._excepts)

    async def resolve(self, query: dns.message.Message) -> dns.message.Message:
        """The upstream's answer, made a reply to query (ID, question as asked, our EDNS)."""
        question = query.question[0]
        if self.loop is not None:
            self.loop.seen(question.name, str(self._upstreams[0]))
        if self.cache is not None and (hit := self.cache.get(query)) is not None:
            return _as_reply(hit, query)
        if self.cfg.max_concurrent and self._in_flight >= self.cfg.max_concurrent:
            return _error_reply(query, dns.rcode.REFUSED)  # as CoreDNS: shed load, don't queue it
        self._in_flight += 1
        try:
            response = await self._ask_upstreams(query)
        finally:
            self._in_flight -= 1
        if response is None:
            return _error_reply(query, dns.rcode.SERVFAIL)
        if self.cache is not None:
            self.cache.put(query, response)
        return _as_reply(response, query)

    async def _ask_upstreams(self, query: dns.message.Message) -> dns.message.Message | None:
        outbound = _outbound(query)
        observer = self.observer
        for upstream in self._order():
            started = trio.current_time()
            if observer is not None:
                observer.request(str(upstream))
            try:
                with trio.fail_after(self.attempt_timeout):
                    response = await self._exchange(outbound, upstream)
            except (trio.TooSlowError, OSError, dns.exception.DNSException) as exc:
                if observer is not None:
                    observer.failed(str(upstream))
                upstream.fails += 1
                logger.warning("forward %s to %s failed: %s", query.question[0].name, upstream, exc or "timeout")
                continue
            upstream.fails = 0
            if observer is not None:
                observer.response(str(upstream), response.rcode(), trio.current_time() - started)
            return response
        return None

    async def _exchange(self, outbound: dns.message.Message, upstream: _Upstream) -> dns.message.Message:
        if self.cfg.force_tcp:
            return await dns.asyncquery.tcp(outbound, upstream.host, port=upstream.port)
        response = await dns.asyncquery.udp(outbound, upstream.host, port=upstream.port, ignore_trailing=True)
        if response.flags & dns.flags.TC and not self.cfg.prefer_udp:
            response = await dns.asyncquery.tcp(outbound, upstream.host, port=upstream.port)
        return response

    def _order(self) -> list[_Upstream]:
        ups = list(self._upstreams)
        if self.cfg.policy == "random":
            random.shuffle(ups)
        elif self.cfg.policy == "round_robin":
            start = next(self._next) % len(ups)
            ups = ups[start:] + ups[:start]
        if self.cfg.max_fails:
            # Stable sort: healthy upstreams keep the policy's order, failing ones go last.
            ups.sort(key=lambda u: u.fails >= self.cfg.max_fails)
        return ups


def _outbound(query: dns.message.Message) -> dns.message.Message:
    """A clean query for the upstream: the question, RD/CD and DO of the client, our EDNS size."""
    q = query.question[0]
    use_edns = 0 if query.edns >= 0 else -1
    want_dnssec = bool(query.ednsflags & dns.flags.DO)
    outbound = dns.message.make_query(
        q.name, q.rdtype, q.rdclass, use_edns=use_edns, payload=OUR_PAYLOAD, want_dnssec=want_dnssec
    )
    outbound.flags = (outbound.flags & ~dns.flags.RD) | (query.flags & (dns.flags.RD | dns.flags.CD))
    return outbound


def _as_reply(response: dns.message.Message, query: dns.message.Message) -> dns.message.Message:
    reply = response
    reply.id = query.id
    reply.flags &= ~dns.flags.AA  # k8sgw relays this answer; it is not the authority for it
    reply.question = list(query.question)  # echo the question as the client spelled it
    rcode = reply.rcode()
    if query.edns >= 0:
        reply.use_edns(0, ednsflags=reply.ednsflags & dns.flags.DO, payload=OUR_PAYLOAD, options=[])
    else:
        reply.use_edns(-1)
    reply.set_rcode(rcode)
    return reply


def _error_reply(query: dns.message.Message, rcode: int) -> dns.message.Message:
    reply = dns.message.make_response(query, our_payload=OUR_PAYLOAD)
    reply.set_rcode(rcode)
    return reply
