"""The `forward` directive: names outside k8sgw's zones (and fallthrough names) asked of upstream servers.

UDP first, again over TCP when the answer is truncated; upstreams tried in the configured policy
order with failover. Health as CoreDNS's `forward` keeps it: an upstream that failed max_fails
times in a row is down; a down upstream gets no client queries but one every HEALTH_INTERVAL, which
is its health check (any reply brings it back). When every upstream is down the client gets
SERVFAIL at once instead of waiting for a timeout (CoreDNS then tries a random one, which waits),
so a dead upstream costs a flood of forwarded names a dict lookup each, not a socket and a timer.
In flight at most max_concurrent (DEFAULT_MAX_CONCURRENT when unset): beyond it REFUSED. `loop`
probes run through here too.
"""

from __future__ import annotations

import errno
import itertools
import logging
import random
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

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
from k8sgw.dnsserver.replies import OUR_PAYLOAD, encode, make_reply
from k8sgw.dnsserver.throttle import LogThrottle, repeats_note
from k8sgw.errors import K8sgwError

if TYPE_CHECKING:
    from k8sgw.dnsserver.answer import Forwards

__all__ = ["ForwardObserver", "Forwarder", "LoopDetectedError", "LoopDetector", "Pending"]

logger = logging.getLogger(__name__)

# Per attempt; CoreDNS's forward reads for 2 s too. Several upstreams → several attempts.
ATTEMPT_TIMEOUT = 2.0
# How often a down upstream is tried again (CoreDNS's health_check default, 0.5 s).
HEALTH_INTERVAL = 0.5
# Forwarded queries in flight when `max_concurrent` is not set: each holds a socket and a timer,
# so a flood towards a slow upstream must not grow without end. CoreDNS's example value.
DEFAULT_MAX_CONCURRENT = 1000
# Seconds between two WARNING lines about one upstream's failures (the count in between is given).
FAILURE_LOG_INTERVAL = 10.0
# Errors opening a socket that say k8sgw itself is out of descriptors or memory.
LOCAL_SHORTAGE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


@dataclass(frozen=True, slots=True)
class Pending:
    """A forwarded query; the server awaits reply().

    `done` holds the reply already when the forwarder needed no I/O for it (answer_now(): a cache
    hit, or an error while every upstream is down): a server may send it at once instead of
    starting a task, so a flood of names for a dead upstream costs no task per query. It is still
    a Pending, so what counts and logs queries sees a forwarded answer.
    """

    query: dns.message.Message
    forwarder: Forwards
    udp: bool
    loadbalance: bool = False  # the block's `loadbalance`: the upstream's addresses are shuffled too
    done: bytes | None = None

    async def reply(self) -> bytes:
        if self.done is not None:
            return self.done
        try:
            response = await self.forwarder.forward(self.query)
        except Exception:
            logger.exception("bug while forwarding %s", self.query.question[0].name)
            response = make_reply(self.query, dns.rcode.SERVFAIL)
        return encode(response, self.query, udp=self.udp, loadbalance=self.loadbalance)


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
    fails: int = 0  # failures in a row
    next_check: float = 0.0  # when down: when the next query may try it (its health check)

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
        health_interval: float = HEALTH_INTERVAL,
    ) -> None:
        self.cfg = cfg
        self.observer = observer
        self.zone = dns.name.from_text(cfg.zone)
        self._excepts = tuple(dns.name.from_text(z) for z in cfg.excepts)
        self._upstreams = [_Upstream(u.host, u.port) for u in cfg.upstreams]
        self._next = itertools.count()
        self._in_flight = 0
        self.max_concurrent = cfg.max_concurrent or DEFAULT_MAX_CONCURRENT
        self._failures = LogThrottle(FAILURE_LOG_INTERVAL)
        self.cache = cache
        self.loop = loop
        self.attempt_timeout = attempt_timeout
        self.health_interval = health_interval

    def covers(self, name: dns.name.Name) -> bool:
        """Whether name is forwarded: at or below FROM and not below an `except` zone."""
        return name.is_subdomain(self.zone) and not any(name.is_subdomain(z) for z in self._excepts)

    async def resolve(self, query: dns.message.Message) -> dns.message.Message:
        """The upstream's answer, made a reply to query (ID, question as asked, our EDNS)."""
        reply = self.answer_now(query)
        return reply if reply is not None else await self.forward(query)

    def answer_now(self, query: dns.message.Message) -> dns.message.Message | None:
        """The reply when it needs no I/O: a cache hit, REFUSED when max_concurrent are in flight,
        SERVFAIL when every upstream is down; None: forward() must ask. Servers call this first,
        so a flood of names for a dead upstream costs no task and no socket per query."""
        question = query.question[0]
        if self.loop is not None:
            self.loop.seen(question.name, str(self._upstreams[0]))
        if self.cache is not None and (hit := self.cache.get(query)) is not None:
            return _as_reply(hit, query)
        if self._in_flight >= self.max_concurrent:
            return make_reply(query, dns.rcode.REFUSED)  # as CoreDNS: shed load, don't queue it
        if self._all_down():
            return make_reply(query, dns.rcode.SERVFAIL)
        return None

    async def forward(self, query: dns.message.Message) -> dns.message.Message:
        """Ask the upstreams (after answer_now() said it must): their answer, made a reply to query."""
        if self._in_flight >= self.max_concurrent:  # others started since answer_now()
            return make_reply(query, dns.rcode.REFUSED)
        upstreams = self._order()
        if not upstreams:
            return make_reply(query, dns.rcode.SERVFAIL)  # every upstream is down: fail fast
        self._in_flight += 1
        try:
            response = await self._ask_upstreams(query, upstreams)
        finally:
            self._in_flight -= 1
        if response is None:
            return make_reply(query, dns.rcode.SERVFAIL)
        if self.cache is not None:
            self.cache.put(query, response)
        return _as_reply(response, query)

    async def _ask_upstreams(
        self, query: dns.message.Message, upstreams: list[_Upstream]
    ) -> dns.message.Message | None:
        outbound = _outbound(query)
        observer = self.observer
        for upstream in upstreams:
            started = trio.current_time()
            if observer is not None:
                observer.request(str(upstream))
            try:
                with trio.fail_after(self.attempt_timeout):
                    response = await self._exchange(outbound, upstream)
            except OSError as exc:
                if exc.errno in LOCAL_SHORTAGE_ERRNOS:
                    # k8sgw has no socket to spare: not the upstream's fault, and no other
                    # upstream would fare better.
                    self._short_of_sockets(exc)
                    return None
                self._failed(upstream, query, exc)
                continue
            except (trio.TooSlowError, dns.exception.DNSException) as exc:
                self._failed(upstream, query, exc)
                continue
            if self._is_down(upstream):
                logger.info("forward: upstream %s answers again", upstream)
            upstream.fails = 0
            if observer is not None:
                observer.response(str(upstream), response.rcode(), trio.current_time() - started)
            return response
        return None

    def _is_down(self, upstream: _Upstream) -> bool:
        return bool(self.cfg.max_fails) and upstream.fails >= self.cfg.max_fails

    def _all_down(self) -> bool:
        """Every upstream is down and none is due for its health check."""
        if not all(self._is_down(u) for u in self._upstreams):
            return False
        now = trio.current_time()
        return all(now < u.next_check for u in self._upstreams)

    def _short_of_sockets(self, exc: OSError) -> None:
        held_back = self._failures.report(None)
        if held_back is not None:
            logger.warning(
                "forward: no socket for an upstream query (%s); answering SERVFAIL%s",
                _reason(exc, self.attempt_timeout), repeats_note(held_back),
            )

    def _failed(self, upstream: _Upstream, query: dns.message.Message, exc: BaseException) -> None:
        if self.observer is not None:
            self.observer.failed(str(upstream))
        upstream.fails += 1
        reason = _reason(exc, self.attempt_timeout)
        if self._is_down(upstream):
            upstream.next_check = trio.current_time() + self.health_interval
            if upstream.fails == self.cfg.max_fails:
                logger.warning(
                    "forward: upstream %s is down after %d failures in a row (last: %s); it is tried "
                    "again every %gs", upstream, upstream.fails, reason, self.health_interval,
                )
                return
        held_back = self._failures.report(str(upstream))
        if held_back is not None:
            logger.warning(
                "forward %s to %s failed: %s%s", query.question[0].name, upstream, reason, repeats_note(held_back)
            )

    async def _exchange(self, outbound: dns.message.Message, upstream: _Upstream) -> dns.message.Message:
        if self.cfg.force_tcp:
            return await dns.asyncquery.tcp(outbound, upstream.host, port=upstream.port)
        response = await dns.asyncquery.udp(outbound, upstream.host, port=upstream.port, ignore_trailing=True)
        if response.flags & dns.flags.TC and not self.cfg.prefer_udp:
            response = await dns.asyncquery.tcp(outbound, upstream.host, port=upstream.port)
        return response

    def _order(self) -> list[_Upstream]:
        """The upstreams this query may try, in order: healthy ones in the policy's order, then a
        down one whose health check is due (this query is that check). Empty: all down."""
        ups = list(self._upstreams)
        if self.cfg.policy == "random":
            random.shuffle(ups)
        elif self.cfg.policy == "round_robin":
            start = next(self._next) % len(ups)
            ups = ups[start:] + ups[:start]
        if not self.cfg.max_fails:
            return ups
        now = trio.current_time()
        tried = [u for u in ups if not self._is_down(u)]
        for u in ups:
            if self._is_down(u) and now >= u.next_check:
                u.next_check = now + self.health_interval  # one query per interval checks it
                tried.append(u)
        return tried


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


def _reason(exc: BaseException, timeout: float) -> str:
    """Why an attempt failed, in words: some of these exceptions have an empty str()."""
    if isinstance(exc, trio.TooSlowError):
        return f"no reply within {timeout:g}s"
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"{errno.errorcode.get(exc.errno, exc.errno)}: {exc.strerror}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
