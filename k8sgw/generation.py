"""A generation: everything one Corefile starts, owned by one async context manager.

For each server block with k8s_gateway: a RecordStore (the indexer) fed by one watcher per kind it
needs, over an API client of its own; forwarders (and their caches and loop probes); the View of
server blocks each listening address serves; the routes each ops address serves. Leaving the
context cancels the watchers and closes the clients, so nothing of a replaced generation outlives
it (what metrics report is replaced when the next one is committed). Listening sockets are not a
generation's: app.py keeps them across reloads and points them at the current generation.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from functools import partial

import dns.name
import trio

from k8sgw.config import Config, GatewayConfig, ServerBlock
from k8sgw.config.models import KubeconfigRef
from k8sgw.dnsserver.answer import Authority, Block, View
from k8sgw.dnsserver.cache import ResponseCache
from k8sgw.dnsserver.forward import Forwarder, LoopDetectedError, LoopDetector
from k8sgw.dnsserver.sockets import ALL_ADDRESSES
from k8sgw.explain.observer import AvailabilityObserver
from k8sgw.kubeapi.client import KubeClient
from k8sgw.kubeapi.connection import Connection
from k8sgw.kubeapi.events import KubeEvent
from k8sgw.kubeapi.kinds import KINDS
from k8sgw.kubeapi.kubeconfig import resolve_connection
from k8sgw.kubeapi.watch import RetryPolicy, Watch, watch_forever
from k8sgw.memory import after_list
from k8sgw.ops.endpoints import routes_for
from k8sgw.ops.http import QueryRoute, Route
from k8sgw.ops.metrics import CacheMetrics, Metrics, StoreMetrics, server_label
from k8sgw.records.store import ClusterEvent, RecordStore, ZoneSettings
from k8sgw.transfer.feeds import ZoneSource
from k8sgw.transfer.serve import FeedLookup, TransferPolicy
from k8sgw.transfer.tsig import TsigPolicy

__all__ = ["Address", "Generation", "open_generation"]

logger = logging.getLogger(__name__)

Address = tuple[str, int]


@dataclass
class Generation:
    """What one Corefile built, as the listeners and the ops endpoints use it.

    Attributes:
        cfg: the Corefile.
        stores: the RecordStore of each k8s_gateway directive, in server-block order.
        views: listening address (from the Corefile; port 0 = any) → the blocks it serves.
        ops_routes: ops address (host, port) → path → route (/health, /ready, /metrics).
        reported: the stores' metrics, reported from the moment the generation serves.
        caches: the `cache` directives' metrics, reported likewise, with the listening address
            whose bound address names them.
        plugins: (listening address, zone, directive) for each directive of each block.
        transfers: zone → what its transfer feed follows, for each zone a `transfer` names.
        serving: set once listeners answer with this generation (loop probes wait for it).
    """

    cfg: Config
    stores: tuple[RecordStore, ...]
    views: Mapping[Address, View]
    ops_routes: Mapping[Address, Mapping[str, Route | QueryRoute]]
    reported: tuple[StoreMetrics, ...]
    caches: tuple[tuple[Address, CacheMetrics], ...] = ()
    plugins: tuple[tuple[Address, str, str], ...] = ()
    transfers: Mapping[dns.name.Name, ZoneSource] = field(default_factory=dict)
    serving: trio.Event = field(default_factory=trio.Event)

    async def wait_synced(self) -> None:
        """Until every store has synced (each enabled kind listed once)."""
        for store in self.stores:
            await store.wait_until(lambda m: m.ready)


@asynccontextmanager
async def open_generation(
    cfg: Config,
    *,
    metrics: Metrics,
    watch_policy: RetryPolicy,
    draining: Callable[[], bool],
    feeds: FeedLookup,
) -> AsyncIterator[Generation]:
    """Start everything `cfg` needs but the listening sockets; stop all of it on exit.

    Args:
        feeds: where the transferred zones' feeds are (process-wide, app.py's), which the blocks'
            AXFR/IXFR answers read; `Generation.transfers` says what they are to follow.

    Raises:
        KubeconfigError: a k8s_gateway block has no usable credentials (before anything starts).
        LoopDetectedError: from inside the context, when `loop` sees a forwarded query come back.
    """
    # Credentials first: a bad kubeconfig fails before anything is started.
    connections = {
        (id(b.gateway), name): _connection(b.gateway, ref) for b in cfg.servers if b.gateway
        for name, ref in _clusters(b.gateway)
    }
    async with AsyncExitStack() as stack:
        # Clients first, so they close only after the nursery has ended every watcher.
        clients = {k: await stack.enter_async_context(KubeClient(c)) for k, c in connections.items()}
        nursery = await stack.enter_async_context(trio.open_nursery())
        loop = LoopDetector()
        stores: list[RecordStore] = []
        reported: list[StoreMetrics] = []
        caches: list[tuple[Address, CacheMetrics]] = []
        plugins: list[tuple[Address, str, str]] = []
        blocks: list[tuple[int, tuple[str, ...], Block]] = []
        probes: list[tuple[Forwarder, dns.name.Name]] = []
        transfers: dict[dns.name.Name, ZoneSource] = {}
        for server in cfg.servers:
            authority = None
            transfer = None
            if server.gateway is not None:
                gw = server.gateway
                settings = ZoneSettings.from_config(gw)
                names = tuple(name for name, _ in _clusters(gw))
                store = RecordStore(settings, gw.resources, on_list_applied=after_list, clusters=names)
                store_metrics = metrics.store_metrics(store.kinds, store)
                _start_indexer(nursery, store, {n: clients[id(gw), n] for n in names}, watch_policy, store_metrics)
                stores.append(store)
                reported.append(store_metrics)
                authority = Authority(settings, store, _names(gw.fallthrough))
                transfer = _transfer(server, settings, store, feeds, transfers)
            forwarder = _forwarder(server, loop, metrics, caches)
            names = (["k8s_gateway"] if server.gateway else []) + list(server.plugins)
            plugins.extend(
                ((host, key.port), key.zone, name)
                for host in server.bind or (ALL_ADDRESSES,)
                for key in server.keys
                for name in names
            )
            for port in sorted({key.port for key in server.keys}):
                zones = tuple(dns.name.from_text(k.zone) for k in server.keys if k.port == port)
                block = Block(zones, authority, forwarder, server.loadbalance, server.log, transfer, server.tsig)
                blocks.append((port, server.bind, block))
                if forwarder is not None and server.loop:
                    probes.extend((forwarder, zone) for zone in zones)
        generation = Generation(
            cfg,
            tuple(stores),
            _views(blocks),
            routes_for(cfg, stores=tuple(stores), metrics=metrics, draining=draining),
            tuple(reported),
            tuple(caches),
            tuple(plugins),
            transfers,
        )
        if probes:
            nursery.start_soon(_detect_loops, loop, probes, generation.serving)
        try:
            yield generation
        finally:
            nursery.cancel_scope.cancel()


def _transfer(
    server: ServerBlock,
    settings: ZoneSettings,
    store: RecordStore,
    feeds: FeedLookup,
    transfers: dict[dns.name.Name, ZoneSource],
) -> TransferPolicy | None:
    """The block's `transfer`, and the feed source of each zone it names (added to transfers)."""
    config = server.transfer
    if config is None:
        return None
    zones = tuple(dns.name.from_text(z) for z in config.zones) or settings.zones
    tsig = TsigPolicy([(settings.zones, server.tsig)]) if server.tsig is not None else None
    for zone in zones:
        inner = tuple(z for z in settings.zones if z != zone and z.is_subdomain(zone))
        transfers[zone] = ZoneSource(store, settings.ttl, inner, config, tsig)
    return TransferPolicy(zones, config, feeds)


def _views(blocks: list[tuple[int, tuple[str, ...], Block]]) -> dict[Address, View]:
    """Group server blocks by the address they listen on; each address gets a View of its blocks."""
    by_address: dict[Address, list[Block]] = defaultdict(list)
    for port, binds, block in blocks:
        for host in binds or (ALL_ADDRESSES,):
            by_address[(host, port)].append(block)
    return {address: View(group) for address, group in by_address.items()}


def _names(zones: tuple[str, ...] | None) -> tuple[dns.name.Name, ...] | None:
    return None if zones is None else tuple(dns.name.from_text(z) for z in zones)


def _forwarder(
    server: ServerBlock, loop: LoopDetector, metrics: Metrics, caches: list[tuple[Address, CacheMetrics]]
) -> Forwarder | None:
    if server.forward is None:
        return None
    cache = None
    if server.cache is not None:
        # Labelled by the block's first listening address (app.py names it by its bound port).
        address = (server.bind[0] if server.bind else ALL_ADDRESSES, server.keys[0].port)
        counted = metrics.cache_metrics(server_label(*address), server.cache.zones or server.zones)
        cache = counted.cache = ResponseCache(server.cache, observer=counted)
        caches.append((address, counted))
    return Forwarder(server.forward, cache=cache, loop=loop if server.loop else None, observer=metrics.forward)


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


def _clusters(gw: GatewayConfig) -> list[tuple[str, KubeconfigRef | None]]:
    """(name, kubeconfig) of each cluster the block watches; one unnamed cluster without
    several kubeconfig lines."""
    if len(gw.clusters) > 1:
        return [(ref.cluster, ref) for ref in gw.clusters]
    return [("", gw.kubeconfig)]


def _connection(gw: GatewayConfig, ref: KubeconfigRef | None) -> Connection:
    conn = resolve_connection(ref.path if ref else None, ref.context if ref else None)
    cluster = f" cluster {ref.cluster}" if len(gw.clusters) > 1 and ref else ""
    logger.info("k8s_gateway %s%s: Kubernetes API %s (%s)", " ".join(gw.zones), cluster, conn.base_url, conn.source)
    return conn


def _start_indexer(
    nursery: trio.Nursery,
    store: RecordStore,
    clients: Mapping[str, KubeClient],
    policy: RetryPolicy,
    observer: StoreMetrics,
) -> None:
    """One indexer task and one watcher per kind the store needs (`store.kinds`: the enabled
    resources plus Gateways for routes and EndpointSlices for Services).

    No kind is watched with a server-side labelSelector: `serviceLabelSelectors` are OR-ed, which
    one API selector cannot say, so the indexer matches them (records/sources.py). One unfiltered
    watch also keeps the nameserver's own Service visible whatever its labels (the apex Service
    must answer even when no selector matches it), and a Service whose labels change is one
    MODIFIED, not a DELETED and an ADDED racing on two streams.
    """
    events_send, events_recv = trio.open_memory_channel[KubeEvent | ClusterEvent](0)
    nursery.start_soon(store.consume, events_recv)
    with events_send:  # each watcher (or cluster's tagger) holds a clone; the original closes here
        for cluster, client in clients.items():
            if len(clients) == 1:
                send = events_send.clone()
            else:  # the cluster's own channel, its events tagged with its name on the way to the store
                send, recv = trio.open_memory_channel[KubeEvent](0)
                nursery.start_soon(_tag, cluster, recv, events_send.clone(), name=f"cluster {cluster}")
            with send:
                for kind_name in store.kinds:
                    per_cluster = observer.for_cluster(cluster) if len(clients) > 1 else observer
                    # Which kinds the API does not serve or RBAC forbids, kept for /explain.
                    watcher_observer = AvailabilityObserver(store, per_cluster)
                    watch = Watch(client, KINDS[kind_name], send.clone(), policy=policy, observer=watcher_observer)
                    name = f"watch {kind_name}" + (f" in {cluster}" if cluster else "")
                    nursery.start_soon(partial(watch_forever, watch), name=name)


async def _tag(
    cluster: str,
    events_recv: trio.MemoryReceiveChannel[KubeEvent],
    events_send: trio.MemorySendChannel[KubeEvent | ClusterEvent],
) -> None:
    async with events_recv, events_send:
        async for event in events_recv:
            await events_send.send((cluster, event))
