"""The root nursery: listeners, and the generation they answer with.

A *generation* (generation.py) is everything one Corefile starts: stores and their watchers,
forwarders, the View of server blocks each address serves, the routes of each ops address.
*Listeners* outlive generations: a UDP and a TCP socket per DNS address, and the HTTP sockets of
each health/ready/metrics address. A reload is two-phase:

    prepare(cfg)   start the new generation, bind every socket it needs that is not open yet,
                   wait until its watches have synced; any failure closes what it opened and
                   changes nothing
    commit(ready)  synchronous, no await that can fail: swap each listener's handlers (DNS) or
                   routes (ops) in one assignment, start serving the new sockets, close those
                   the new Corefile no longer names, cancel the old generation

so no query is dropped and a failed reload leaves the running configuration serving. Nothing here
owns data; it only connects the owners.
"""

from __future__ import annotations

import logging
import random
import socket
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import NoReturn, TypeVar

import trio

from k8sgw.config import Config, parse_corefile
from k8sgw.config.ops import ReloadConfig
from k8sgw.dnsserver.answer import View
from k8sgw.dnsserver.fastpath import FastPath
from k8sgw.dnsserver.sockets import bind_dns_sockets
from k8sgw.dnsserver.tcp import TcpLimits, serve_tcp
from k8sgw.dnsserver.udp import serve_udp
from k8sgw.dnsserver.wire import Handler, Handlers
from k8sgw.errors import ConfigError
from k8sgw.generation import Address, Generation, open_generation
from k8sgw.kubeapi.watch import RetryPolicy
from k8sgw.memory import after_zone_copy, reclaim_ended_generation
from k8sgw.ops.endpoints import metrics_enabled, probe_health
from k8sgw.ops.http import RouteTable, listen_error, open_ops_listeners, serve_ops_listeners
from k8sgw.ops.instrument import instrument, needs_instrumenting
from k8sgw.ops.metrics import Metrics, server_label
from k8sgw.ops.reload import watch_corefile
from k8sgw.records.store import RecordStore
from k8sgw.transfer.feeds import Feeds

__all__ = ["Bound", "serve"]

logger = logging.getLogger(__name__)

# A reloaded Corefile whose watches have not all synced by then is dropped (logged) and the
# running one kept: swapping in a generation that answers SERVFAIL would be worse than waiting.
RELOAD_SYNC_TIMEOUT = 60.0


@dataclass(frozen=True)
class Bound:
    """What serve() reports once every socket is bound (and again after each reload).

    Attributes:
        udp, tcp: the bound (host, port) of each listener, in server-block order.
        stores: the RecordStore of each k8s_gateway directive, in server-block order.
        endpoints: ops HTTP paths ("/health", "/ready", "/metrics") → bound addresses.
        feeds: the zone transfer feeds (process-wide: the same object after a reload).
    """

    udp: tuple[Address, ...]
    tcp: tuple[Address, ...]
    stores: tuple[RecordStore, ...]
    endpoints: Mapping[str, tuple[Address, ...]] = field(default_factory=dict)
    feeds: Feeds | None = None


async def serve(
    cfg: Config,
    *,
    draining: trio.Event | None = None,
    tcp_limits: TcpLimits | None = None,
    watch_policy: RetryPolicy | None = None,
    reloaded: Callable[[Bound], None] | None = None,
    task_status: trio.TaskStatus[Bound] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Run k8sgw for a parsed Corefile until cancelled.

    Args:
        draining: set during lameduck: /ready answers 503 while DNS keeps answering.
        tcp_limits, watch_policy: override the defaults (tests use short timeouts and no jitter).
        reloaded: called with the new Bound after each successful `reload`.

    Raises:
        KubeconfigError: a k8s_gateway block has no usable credentials (before anything is bound).
        ListenError: a listen address cannot be bound (an OSError naming the protocol and address).
        LoopDetectedError: `loop` saw a forwarded query come back.
    """
    draining = draining if draining is not None else trio.Event()
    async with _counting_panics() as metrics, trio.open_nursery() as nursery:
        runtime = _Runtime(nursery, metrics, draining, tcp_limits, watch_policy or RetryPolicy())
        runtime.commit(await runtime.prepare(cfg, wait_synced=False))
        task_status.started(runtime.bound())
        del task_status  # trio keeps the started value there: the first generation's stores
        reload = next((s.reload for s in cfg.servers if s.reload is not None), None)
        if reload is None:
            await trio.sleep_forever()
        await runtime.follow_corefile(cfg, reload, reloaded or (lambda bound: None))
    raise AssertionError("unreachable")  # pragma: no cover


@dataclass
class _Listener:
    """One DNS listening address: its sockets' servers, and the handlers they call (swapped on reload)."""

    udp_address: Address
    tcp_address: Address
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    handlers: Handlers = field(default_factory=Handlers)

    def addresses(self) -> tuple[Address, ...]:
        return (self.udp_address,)


@dataclass
class _OpsListener:
    """One ops HTTP address: its servers, and the routes they look up per request."""

    bound: tuple[Address, ...]
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    routes: RouteTable = field(default_factory=RouteTable)

    def addresses(self) -> tuple[Address, ...]:
        return self.bound


_L = TypeVar("_L", _Listener, _OpsListener)


@dataclass
class _Running:
    """A generation started in its own task; cancelling `scope` ends it and all it started."""

    generation: Generation
    scope: trio.CancelScope
    done: trio.Event = field(default_factory=trio.Event)
    """Set once everything the generation started has ended."""


@dataclass
class _Prepared:
    """A generation ready to serve, and the sockets bound for it that no listener holds yet."""

    running: _Running
    dns_sockets: dict[Address, tuple[trio.socket.SocketType, trio.socket.SocketType]]
    ops_sockets: dict[Address, list[trio.SocketListener]]

    def close(self) -> None:
        """Undo prepare(): close the new sockets and end the generation."""
        for udp_sock, tcp_sock in self.dns_sockets.values():
            udp_sock.close()
            tcp_sock.close()
        for listeners in self.ops_sockets.values():
            for listener in listeners:
                listener.socket.close()
        self.running.scope.cancel()


class _Runtime:
    """The listeners and the current generation, across reloads."""

    def __init__(
        self,
        nursery: trio.Nursery,
        metrics: Metrics,
        draining: trio.Event,
        tcp_limits: TcpLimits | None,
        watch_policy: RetryPolicy,
    ) -> None:
        self.nursery = nursery
        self.draining = draining
        self.tcp_limits = tcp_limits
        self.watch_policy = watch_policy
        # One registry for the process, so counters survive reloads; a generation whose Corefile
        # has no `prometheus` neither counts queries nor serves it.
        self.metrics = metrics
        self.listeners: dict[Address, _Listener] = {}
        self.ops: dict[Address, _OpsListener] = {}
        self.running: _Running | None = None
        # Zone transfer feeds outlive generations: a reload that keeps a zone keeps its journal.
        self.feeds = Feeds(nursery, after_copy=after_zone_copy)

    # -- the two phases ---------------------------------------------------------------------------

    async def prepare(self, cfg: Config, *, wait_synced: bool) -> _Prepared:
        """Start `cfg`'s generation and bind what it needs; changes nothing that serves.

        Raises:
            ConfigError (KubeconfigError): credentials that cannot be used.
            ListenError: an address cannot be bound.
            trio.TooSlowError: `wait_synced` and the watches did not sync in RELOAD_SYNC_TIMEOUT.
        """
        running: _Running = await self.nursery.start(self._run_generation, cfg)
        prepared = _Prepared(running, {}, {})
        try:
            generation = running.generation
            dns_running = self._by_any_address(self.listeners)
            for address in generation.views:
                if address not in dns_running:
                    prepared.dns_sockets[address] = await _bind_dns(*address)
            ops_running = self._by_any_address(self.ops)
            for address in generation.ops_routes:
                if address not in ops_running:
                    prepared.ops_sockets[address] = await open_ops_listeners(*address)
            if wait_synced:
                with trio.fail_after(RELOAD_SYNC_TIMEOUT):
                    await generation.wait_synced()
        except BaseException:
            prepared.close()
            raise
        return prepared

    def commit(self, prepared: _Prepared) -> _Running | None:
        """Serve the prepared generation from now on and end the one before (returned: its
        `done` is set once it has ended). Synchronous."""
        generation = prepared.running.generation
        metrics = self.metrics if metrics_enabled(generation.cfg) else None
        dns_running = self._by_any_address(self.listeners)
        listeners: dict[Address, _Listener] = {}
        for address, view in generation.views.items():
            listener = dns_running.get(address)
            if listener is None:
                udp_sock, tcp_sock = prepared.dns_sockets[address]
                listener = _Listener(udp_sock.getsockname()[:2], tcp_sock.getsockname()[:2])
                self.nursery.start_soon(_serve_listener, listener, udp_sock, tcp_sock, self.tcp_limits)
                logger.info("serving DNS on %s port %d (udp and tcp)", *listener.udp_address)
            listener.handlers.udp, listener.handlers.tcp = _handlers(listener, view, metrics)
            listeners[address] = listener
        ops_running = self._by_any_address(self.ops)
        ops: dict[Address, _OpsListener] = {}
        for address, routes in generation.ops_routes.items():
            ops_listener = ops_running.get(address)
            if ops_listener is None:
                sockets = prepared.ops_sockets[address]
                ops_listener = _OpsListener(tuple(s.socket.getsockname()[:2] for s in sockets))
                self.nursery.start_soon(_serve_ops, ops_listener, sockets, self.metrics)
                logger.info("serving %s on %s port %d", " ".join(routes), *ops_listener.bound[0])
            ops_listener.routes.routes = routes
            ops[address] = ops_listener
        _close_unless_kept(self.listeners.values(), listeners.values())
        _close_unless_kept(self.ops.values(), ops.values())
        self.listeners, self.ops = listeners, ops
        bound = {a: ln.udp_address for a, ln in listeners.items()}
        for address, cache in generation.caches:
            cache.server = server_label(*bound.get(address, address))
        self.metrics.report(
            generation.reported,
            (cache for _, cache in generation.caches),
            ((server_label(*bound.get(a, a)), zone, name) for a, zone, name in generation.plugins),
        )
        old, self.running = self.running, prepared.running
        self.feeds.commit(generation.transfers)
        if old is not None:
            old.scope.cancel()
        generation.serving.set()
        return old

    # -- reload -----------------------------------------------------------------------------------

    async def follow_corefile(self, cfg: Config, reload: ReloadConfig, reloaded: Callable[[Bound], None]) -> NoReturn:
        """`reload`: apply each changed Corefile that parses, binds and syncs; otherwise keep the running one."""
        path = cfg.filename
        with open(path, encoding="utf-8") as f:  # noqa: ASYNC230 - once, a few hundred bytes
            text = f.read()
        async with watch_corefile(path, reload.pick_interval(random.random()), initial=text) as changes:
            async for text in changes:
                try:
                    new_cfg = parse_corefile(text, filename=path, default_port=_default_port(cfg))
                    prepared = await self.prepare(new_cfg, wait_synced=True)
                except (ConfigError, OSError) as exc:
                    self._reload_failed(str(exc))
                    continue
                except trio.TooSlowError:
                    self._reload_failed(f"the new configuration did not sync within {RELOAD_SYNC_TIMEOUT:.0f}s")
                    continue
                old = self.commit(prepared)
                del prepared  # from now on self.running is the one reference to the generation
                if old is not None:
                    await old.done.wait()
                    del old
                    reclaim_ended_generation()
                logger.info("reload: %s applied", path)
                reloaded(self.bound())
        raise AssertionError("unreachable")  # pragma: no cover

    def _reload_failed(self, why: str) -> None:
        logger.error("reload: %s; keeping the running configuration", why)
        self.metrics.reload_failed()

    # -- reading ----------------------------------------------------------------------------------

    def bound(self) -> Bound:
        generation = self.running.generation if self.running else None
        order = list(generation.views) if generation else []
        endpoints: dict[str, list[Address]] = {}
        for listener in self.ops.values():
            for path in listener.routes:
                endpoints.setdefault(path, []).append(listener.bound[0])
        return Bound(
            tuple(self.listeners[a].udp_address for a in order),
            tuple(self.listeners[a].tcp_address for a in order),
            generation.stores if generation else (),
            {path: tuple(addresses) for path, addresses in endpoints.items()},
            self.feeds,
        )

    @staticmethod
    def _by_any_address(running: dict[Address, _L]) -> dict[Address, _L]:
        # A listener asked for port 0 is known by its bound port too, so a reloaded Corefile that
        # names that port keeps the socket.
        out: dict[Address, _L] = {}
        for address, listener in running.items():
            for other in listener.addresses():
                out[other] = listener
            out[address] = listener
        return out

    async def _run_generation(self, cfg: Config, *, task_status: trio.TaskStatus[_Running]) -> None:
        running = None
        try:
            with trio.CancelScope() as scope:
                async with open_generation(
                    cfg,
                    metrics=self.metrics,
                    watch_policy=self.watch_policy,
                    draining=self.draining.is_set,
                    feeds=self.feeds,
                ) as generation:
                    running = _Running(generation, scope)
                    task_status.started(running)
                    del generation  # the running generation is referenced from one place: self.running
                    await trio.sleep_forever()
        finally:
            if running is not None:
                running.done.set()


@asynccontextmanager
async def _counting_panics() -> AsyncIterator[Metrics]:
    """The process's Metrics, counting what k8sgw's loggers report with a traceback meanwhile."""
    metrics = Metrics()
    ours = logging.getLogger("k8sgw")
    ours.addHandler(metrics.panics)
    try:
        yield metrics
    finally:
        ours.removeHandler(metrics.panics)


def _close_unless_kept(old: Iterable[_Listener | _OpsListener], kept: Iterable[_Listener | _OpsListener]) -> None:
    keep = {id(listener) for listener in kept}
    for listener in old:
        if id(listener) not in keep:
            listener.scope.cancel()


def _handlers(listener: _Listener, view: View, metrics: Metrics | None) -> tuple[Handler, Handler]:
    fast = FastPath(view)
    if not needs_instrumenting(view, metrics):
        return fast.handle_udp, fast.handle_tcp
    return (
        instrument(fast.handle_udp, view, proto="udp", address=listener.udp_address, metrics=metrics),
        instrument(fast.handle_tcp, view, proto="tcp", address=listener.tcp_address, metrics=metrics),
    )


async def _bind_dns(host: str, port: int) -> tuple[trio.socket.SocketType, trio.socket.SocketType]:
    try:
        return await bind_dns_sockets(host, port)
    except OSError as exc:
        raise listen_error(exc, await _taken_protocol(host, port), host, port) from exc


async def _taken_protocol(host: str, port: int) -> str:
    """Which of TCP (bound first) and UDP host:port could not be bound with (asked only after a failure)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with trio.socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as sockets.bind_socket does
        try:
            await probe.bind((host, port))
        except OSError:
            return "tcp"
    return "udp"


async def _serve_listener(listener: _Listener, udp_sock, tcp_sock, limits: TcpLimits | None) -> None:
    # The servers look the handler up per message, so a reload swaps it under them.
    try:
        with listener.scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(serve_udp, udp_sock, listener.handlers)
                nursery.start_soon(partial(serve_tcp, limits=limits), tcp_sock, listener.handlers)
    finally:  # also when cancelled before the servers ran (they close their sockets themselves)
        udp_sock.close()
        tcp_sock.close()


async def _serve_ops(listener: _OpsListener, sockets: list[trio.SocketListener], metrics: Metrics) -> None:
    try:
        with listener.scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(serve_ops_listeners, sockets, listener.routes)
                nursery.start_soon(probe_health, listener.bound[0], listener.routes, metrics)
    finally:
        for s in sockets:
            s.socket.close()


def _default_port(cfg: Config) -> int:
    # Keys written without a port got -dns.port; a reload keeps the ports the running Corefile has.
    ports = {key.port for server in cfg.servers for key in server.keys}
    return ports.pop() if len(ports) == 1 else 53
