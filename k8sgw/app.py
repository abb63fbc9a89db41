"""The root nursery: wiring only.

A *generation* is what one Corefile builds: for each server block with k8s_gateway, a RecordStore
(the indexer) fed by one watcher per kind it needs; forwarders; the View of server blocks each
listening address serves. *Listeners* (a UDP and a TCP socket per address) outlive generations:
`reload` builds the next generation beside the running one, waits until its watches have synced,
then swaps each listener's handler in one assignment and cancels the old generation, so no query
is dropped. Nothing here owns data; it only connects the owners.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import random
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from functools import partial
from typing import Any, NoReturn

import dns.name
import trio

from k8sgw.config import Config, GatewayConfig, ServerBlock, parse_corefile
from k8sgw.dnsserver.answer import Authority, Block, View
from k8sgw.dnsserver.cache import ResponseCache
from k8sgw.dnsserver.fastpath import FastPath
from k8sgw.dnsserver.forward import Forwarder, LoopDetectedError, LoopDetector
from k8sgw.dnsserver.sockets import ALL_ADDRESSES, bind_dns_sockets
from k8sgw.dnsserver.tcp import TcpLimits, serve_tcp
from k8sgw.dnsserver.udp import serve_udp
from k8sgw.dnsserver.wire import Handler, Handlers
from k8sgw.errors import ConfigError
from k8sgw.explain.observer import AvailabilityObserver
from k8sgw.kubeapi.client import KubeClient
from k8sgw.kubeapi.events import KubeEvent
from k8sgw.kubeapi.kinds import KINDS
from k8sgw.kubeapi.kubeconfig import resolve_connection
from k8sgw.kubeapi.watch import RetryPolicy, watch_forever
from k8sgw.ops.endpoints import metrics_enabled, serve_endpoints
from k8sgw.ops.instrument import instrument, needs_instrumenting
from k8sgw.ops.metrics import Metrics
from k8sgw.ops.reload import watch_corefile
from k8sgw.records.store import RecordStore, ZoneSettings

__all__ = ["Bound", "serve"]

logger = logging.getLogger(__name__)

Address = tuple[str, int]

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
    """

    udp: tuple[Address, ...]
    tcp: tuple[Address, ...]
    stores: tuple[RecordStore, ...]
    endpoints: Mapping[str, tuple[Address, ...]] = field(default_factory=dict)


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
        OSError: a listen address cannot be bound.
        LoopDetectedError: `loop` saw a forwarded query come back.
    """
    draining = draining if draining is not None else trio.Event()
    runtime = _Runtime(draining, tcp_limits, watch_policy or RetryPolicy())
    async with trio.open_nursery() as nursery:
        runtime.nursery = nursery
        generation = await runtime.start_generation(cfg)
        await runtime.switch_to(generation)
        task_status.started(runtime.bound())
        reload = next((r for s in cfg.servers if (r := s.plugin("reload")) is not None), None)
        if reload is None:
            await trio.sleep_forever()
        await runtime.follow_corefile(cfg, reload, reloaded or (lambda bound: None))
    raise AssertionError("unreachable")  # pragma: no cover


@dataclass
class _Listener:
    """One listening address: its sockets' servers, and the handlers they call (swapped on reload)."""

    udp_address: Address
    tcp_address: Address
    scope: trio.CancelScope
    handlers: Handlers = field(default_factory=Handlers)


@dataclass
class _Generation:
    """What one Corefile builds: stores and their watchers, forwarders, a View per address."""

    cfg: Config
    scope: trio.CancelScope
    stores: tuple[RecordStore, ...]
    views: dict[Address, View]
    serving: trio.Event = field(default_factory=trio.Event)
    """Set once its listeners answer with it (loop probes wait for that)."""


class _Runtime:
    """The listeners, the current generation and the ops endpoints, across reloads."""

    def __init__(self, draining: trio.Event, tcp_limits: TcpLimits | None, watch_policy: RetryPolicy) -> None:
        self.draining = draining
        self.tcp_limits = tcp_limits
        self.watch_policy = watch_policy
        # One registry for the process, so counters survive reloads; a generation whose Corefile
        # has no `prometheus` neither counts queries nor serves it.
        self.metrics = Metrics()
        self.nursery: trio.Nursery = None  # type: ignore[assignment]
        self.listeners: dict[Address, _Listener] = {}
        self.generation: _Generation | None = None
        self.endpoints: Mapping[str, tuple[Address, ...]] = {}
        self._endpoints_scope: trio.CancelScope | None = None

    async def start_generation(self, cfg: Config) -> _Generation:
        # Credentials first: a bad kubeconfig fails before anything is started.
        connections = {id(b.gateway): _connection(b.gateway) for b in cfg.servers if b.gateway}
        return await self.nursery.start(self._run_generation, cfg, connections)

    async def _run_generation(self, cfg: Config, connections, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        with trio.CancelScope() as scope:
            async with AsyncExitStack() as stack:
                # Clients first, so they close only after the nursery has ended every watcher.
                clients = {k: await stack.enter_async_context(KubeClient(c)) for k, c in connections.items()}
                nursery = await stack.enter_async_context(trio.open_nursery())
                loop = LoopDetector()
                stores: list[RecordStore] = []
                blocks: list[tuple[int, tuple[str, ...], Block]] = []
                probes: list[tuple[Forwarder, dns.name.Name]] = []
                for server in cfg.servers:
                    authority = None
                    if server.gateway is not None:
                        gw = server.gateway
                        settings = ZoneSettings.from_config(gw)
                        store = RecordStore(settings, gw.resources, on_list_applied=_after_list)
                        observer = AvailabilityObserver(store, self.metrics.track_store(store.kinds, store))
                        _start_indexer(nursery, store, clients[id(gw)], self.watch_policy, observer)
                        stores.append(store)
                        authority = Authority(settings, store, _names(gw.fallthrough))
                    forwarder = _forwarder(server, loop)
                    for port in sorted({key.port for key in server.keys}):
                        zones = tuple(dns.name.from_text(k.zone) for k in server.keys if k.port == port)
                        block = Block(
                            zones, authority, forwarder, server.plugin("loadbalance") is not None, server.plugin("log")
                        )
                        blocks.append((port, server.bind, block))
                        if forwarder is not None and server.plugin("loop") is not None:
                            probes.extend((forwarder, zone) for zone in zones)
                generation = _Generation(cfg, scope, tuple(stores), _views(blocks))
                if probes:
                    nursery.start_soon(_detect_loops, loop, probes, generation.serving)
                task_status.started(generation)
                await trio.sleep_forever()

    async def switch_to(self, generation: _Generation) -> None:
        """Serve `generation`: bind new addresses, swap handlers, close addresses it no longer has.

        Raises:
            OSError: a new address cannot be bound; nothing has changed then.
        """
        # A listener asked for port 0 is known by its bound port too, so a reloaded Corefile that
        # names that port keeps the socket.
        running = {**{ln.udp_address: ln for ln in self.listeners.values()}, **self.listeners}
        kept = {a: running[a] for a in generation.views if a in running}
        sockets = {}
        try:  # every new address is bound before anything changes, so a failure changes nothing
            for address in generation.views:
                if address not in running:
                    sockets[address] = await bind_dns_sockets(*address)
        except OSError:
            for udp_sock, tcp_sock in sockets.values():
                udp_sock.close()
                tcp_sock.close()
            raise
        metrics = self.metrics if metrics_enabled(generation.cfg) else None
        fresh = {
            a: _Listener(udp.getsockname()[:2], tcp.getsockname()[:2], trio.CancelScope())
            for a, (udp, tcp) in sockets.items()
        }
        for address, view in generation.views.items():
            listener = kept.get(address) or fresh[address]
            listener.handlers.udp, listener.handlers.tcp = self._handlers(listener, view, metrics)
        for address, (udp_sock, tcp_sock) in sockets.items():
            listener = fresh[address]
            await self.nursery.start(_serve_listener, listener.scope, udp_sock, tcp_sock, listener, self.tcp_limits)
            logger.info("serving DNS on %s port %d (udp and tcp)", *listener.udp_address)
        for listener in self.listeners.values():
            if all(listener is not k for k in kept.values()):
                listener.scope.cancel()
        self.listeners = {**kept, **fresh}
        old, self.generation = self.generation, generation
        if old is not None:
            self.metrics.forget_stores(old.stores)
            old.scope.cancel()
        await self._restart_endpoints(generation)
        generation.serving.set()

    def bound(self) -> Bound:
        gen = self.generation
        order = list(gen.views) if gen else []
        return Bound(
            tuple(self.listeners[a].udp_address for a in order),
            tuple(self.listeners[a].tcp_address for a in order),
            gen.stores if gen else (),
            self.endpoints,
        )

    async def follow_corefile(self, cfg: Config, reload, reloaded: Callable[[Bound], None]) -> NoReturn:
        """`reload`: apply each changed Corefile that parses and syncs; otherwise keep the running one."""
        path = cfg.filename
        with open(path, encoding="utf-8") as f:  # noqa: ASYNC230 - once, a few hundred bytes
            text = f.read()
        async with watch_corefile(path, reload.pick_interval(random.random()), initial=text) as changes:
            async for text in changes:
                try:
                    new_cfg = parse_corefile(text, filename=path, default_port=_default_port(cfg))
                    generation = await self.start_generation(new_cfg)
                except ConfigError as exc:
                    logger.error("reload: %s; keeping the running configuration", exc)
                    continue
                with trio.move_on_after(RELOAD_SYNC_TIMEOUT) as waited:
                    for store in generation.stores:
                        await store.wait_until(lambda m: m.ready)
                if waited.cancelled_caught:
                    logger.error(
                        "reload: the new configuration did not sync within %.0fs; keeping the running one",
                        RELOAD_SYNC_TIMEOUT,
                    )
                    generation.scope.cancel()
                    continue
                try:
                    await self.switch_to(generation)
                except OSError as exc:
                    logger.error("reload: %s; keeping the running configuration", exc)
                    generation.scope.cancel()
                    continue
                logger.info("reload: %s applied", path)
                reloaded(self.bound())
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _handlers(listener: _Listener, view: View, metrics: Metrics | None) -> tuple[Handler, Handler]:
        fast = FastPath(view)
        if not needs_instrumenting(view, metrics):
            return fast.handle_udp, fast.handle_tcp
        return (
            instrument(fast.handle_udp, view, proto="udp", address=listener.udp_address, metrics=metrics),
            instrument(fast.handle_tcp, view, proto="tcp", address=listener.tcp_address, metrics=metrics),
        )

    async def _restart_endpoints(self, generation: _Generation) -> None:
        # The old endpoints close before the new bind, since they usually share addresses.
        if self._endpoints_scope is not None:
            self._endpoints_scope.cancel()
        self._endpoints_scope = trio.CancelScope()
        self.endpoints = await self.nursery.start(
            _run_in_scope,
            self._endpoints_scope,
            partial(
                serve_endpoints,
                generation.cfg,
                stores=generation.stores,
                metrics=self.metrics if metrics_enabled(generation.cfg) else None,
                draining=self.draining.is_set,
            ),
        )


async def _run_in_scope(
    scope: trio.CancelScope, fn: Callable[..., Awaitable[Any]], *, task_status=trio.TASK_STATUS_IGNORED
) -> None:
    with scope:
        await fn(task_status=task_status)


async def _serve_listener(
    scope: trio.CancelScope, udp_sock, tcp_sock, listener: _Listener, limits, *, task_status=trio.TASK_STATUS_IGNORED
) -> None:
    # The servers look the handler up per message, so a reload swaps it under them.
    with scope:
        async with trio.open_nursery() as nursery:
            await nursery.start(serve_udp, udp_sock, listener.handlers)
            await nursery.start(partial(serve_tcp, limits=limits), tcp_sock, listener.handlers)
            task_status.started()


def _default_port(cfg: Config) -> int:
    # Keys written without a port got -dns.port; a reload keeps the ports the running Corefile has.
    ports = {key.port for server in cfg.servers for key in server.keys}
    return ports.pop() if len(ports) == 1 else 53


def _views(blocks: list[tuple[int, tuple[str, ...], Block]]) -> dict[Address, View]:
    """Group server blocks by the address they listen on; each address gets a View of its blocks."""
    by_address: dict[Address, list[Block]] = defaultdict(list)
    for port, binds, block in blocks:
        for host in binds or (ALL_ADDRESSES,):
            by_address[(host, port)].append(block)
    return {address: View(group) for address, group in by_address.items()}


def _names(zones: tuple[str, ...] | None) -> tuple[dns.name.Name, ...] | None:
    return None if zones is None else tuple(dns.name.from_text(z) for z in zones)


def _forwarder(server: ServerBlock, loop: LoopDetector) -> Forwarder | None:
    cfg = server.plugin("forward")
    if cfg is None:
        return None
    cache_cfg = server.plugin("cache")
    cache = ResponseCache(cache_cfg) if cache_cfg is not None else None
    return Forwarder(cfg, cache=cache, loop=loop if server.plugin("loop") is not None else None)


async def _detect_loops(
    loop: LoopDetector, probes: list[tuple[Forwarder, dns.name.Name]], serving: trio.Event
) -> None:
    """CoreDNS `loop`: send each block a probe through its forwarder; fail if one comes back to us."""
    await serving.wait()  # a probe sent before our own sockets listen could not come back
    async with trio.open_nursery() as nursery:
        for forwarder, zone in probes:
            nursery.start_soon(forwarder.resolve, loop.new_probe(zone))
        await loop.detected.wait()
        raise LoopDetectedError(loop.message)


def _connection(gw: GatewayConfig):
    ref = gw.kubeconfig
    conn = resolve_connection(ref.path if ref else None, ref.context if ref else None)
    logger.info("k8s_gateway %s: Kubernetes API %s (%s)", " ".join(gw.zones), conn.base_url, conn.source)
    return conn


def _start_indexer(
    nursery: trio.Nursery, store: RecordStore, client: KubeClient, policy: RetryPolicy, observer: Any
) -> None:
    """One indexer task and one watcher per kind the store needs (`store.kinds`: the enabled
    resources plus Gateways for routes and EndpointSlices for Services).

    No kind is watched with a server-side labelSelector: `serviceLabelSelectors` are OR-ed, which
    one API selector cannot say, so the indexer matches them (records/sources.py). One unfiltered
    watch also keeps the nameserver's own Service visible whatever its labels (DESIGN rule 3), and
    a Service whose labels change is one MODIFIED, not a DELETED and an ADDED racing on two streams.
    """
    events_send, events_recv = trio.open_memory_channel[KubeEvent](0)
    nursery.start_soon(store.consume, events_recv)
    with events_send:  # each watcher holds a clone; the original closes here
        for kind_name in store.kinds:
            watch = partial(watch_forever, policy=policy, observer=observer)
            nursery.start_soon(watch, client, KINDS[kind_name], events_send.clone(), name=f"watch {kind_name}")


def _after_list(complete: bool) -> None:
    """Process-wide memory housekeeping after a store applied list pages (RecordStore's hook).

    A large list leaves ~40 long-lived objects per name: gc.freeze() moves them out of the
    collector's generations, so full collections (which scan every tracked object) neither pause
    the servers for a second at 50,000 objects nor take a third of the sync while pages arrive.
    Once a large list is complete, malloc_trim gives the heap its parsed pages used back to the OS
    (glibc only); without it the process keeps that peak as resident memory for good.
    """
    gc.freeze()
    if complete:
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass
