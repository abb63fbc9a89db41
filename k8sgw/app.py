"""The root nursery: wiring only.

For each server block with a k8s_gateway directive: one RecordStore (the indexer) fed by one
watcher task per enabled kind. For each listening address and port: a UDP and a TCP server over
a View of the server blocks on that port. Nothing here owns data; it only connects the owners.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from functools import partial
from typing import NoReturn

import dns.name
import trio

from k8sgw.config import Config, GatewayConfig, ServerBlock
from k8sgw.dnsserver.answer import Authority, Block, View
from k8sgw.dnsserver.cache import ResponseCache
from k8sgw.dnsserver.fastpath import FastPath
from k8sgw.dnsserver.forward import Forwarder, LoopDetectedError, LoopDetector
from k8sgw.dnsserver.sockets import ALL_ADDRESSES, bind_dns_sockets
from k8sgw.dnsserver.tcp import TcpLimits, serve_tcp
from k8sgw.dnsserver.udp import serve_udp
from k8sgw.kubeapi.client import KubeClient
from k8sgw.kubeapi.events import KubeEvent
from k8sgw.kubeapi.kinds import KINDS
from k8sgw.kubeapi.kubeconfig import resolve_connection
from k8sgw.kubeapi.watch import RetryPolicy, watch_forever
from k8sgw.records.store import RecordStore, ZoneSettings

__all__ = ["Bound", "serve"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Bound:
    """What serve() reports once every socket is bound.

    Attributes:
        udp, tcp: the bound (host, port) of each listener, in server-block order.
        stores: the RecordStore of each k8s_gateway directive, in server-block order.
    """

    udp: tuple[tuple[str, int], ...]
    tcp: tuple[tuple[str, int], ...]
    stores: tuple[RecordStore, ...]


async def serve(
    cfg: Config,
    *,
    tcp_limits: TcpLimits | None = None,
    watch_policy: RetryPolicy | None = None,
    task_status: trio.TaskStatus[Bound] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Run k8sgw for a parsed Corefile until cancelled.

    Args:
        tcp_limits, watch_policy: override the defaults (tests use short timeouts and no jitter).

    Raises:
        KubeconfigError: a k8s_gateway block has no usable credentials (before anything is bound).
        OSError: a listen address cannot be bound.
    """
    connections = {id(b.gateway): _connection(b.gateway) for b in cfg.servers if b.gateway}
    async with AsyncExitStack() as stack:
        # Clients first, so they close only after the nursery has ended every watcher using them.
        clients = {key: await stack.enter_async_context(KubeClient(conn)) for key, conn in connections.items()}
        nursery = await stack.enter_async_context(trio.open_nursery())
        blocks: list[tuple[int, tuple[str, ...], Block]] = []
        stores: list[RecordStore] = []
        loop = LoopDetector()
        probes: list[tuple[Forwarder, dns.name.Name]] = []
        for server in cfg.servers:
            authority = None
            if server.gateway is not None:
                gw = server.gateway
                settings = ZoneSettings.from_config(gw)
                store = RecordStore(settings, gw.resources)
                _start_indexer(nursery, store, clients[id(gw)], gw, watch_policy or RetryPolicy())
                stores.append(store)
                authority = Authority(settings, store, _names(gw.fallthrough))
            forwarder = _forwarder(server, loop)
            for port in sorted({key.port for key in server.keys}):
                block_zones = tuple(dns.name.from_text(k.zone) for k in server.keys if k.port == port)
                block = Block(block_zones, authority, forwarder, server.plugin("loadbalance") is not None)
                blocks.append((port, server.bind, block))
                if forwarder is not None and server.plugin("loop") is not None:
                    probes.extend((forwarder, zone) for zone in block_zones)
        udp, tcp = [], []
        for (host, port), view in _listeners(blocks):
            handle_udp, handle_tcp = _handlers(view)
            udp_sock, tcp_sock = await bind_dns_sockets(host, port)
            udp.append(await nursery.start(serve_udp, udp_sock, handle_udp))
            tcp.append(await nursery.start(partial(serve_tcp, limits=tcp_limits), tcp_sock, handle_tcp))
        for address in udp:
            logger.info("serving DNS on %s port %d (udp and tcp)", *address)
        if probes:
            nursery.start_soon(_detect_loops, loop, probes)
        task_status.started(Bound(tuple(udp), tuple(tcp), tuple(stores)))
        await trio.sleep_forever()
    raise AssertionError("unreachable")  # pragma: no cover


def _names(zones: tuple[str, ...] | None) -> tuple[dns.name.Name, ...] | None:
    return None if zones is None else tuple(dns.name.from_text(z) for z in zones)


def _forwarder(server: ServerBlock, loop: LoopDetector) -> Forwarder | None:
    cfg = server.plugin("forward")
    if cfg is None:
        return None
    cache_cfg = server.plugin("cache")
    cache = ResponseCache(cache_cfg) if cache_cfg is not None else None
    return Forwarder(cfg, cache=cache, loop=loop if server.plugin("loop") is not None else None)


async def _detect_loops(loop: LoopDetector, probes: list[tuple[Forwarder, dns.name.Name]]) -> None:
    """CoreDNS `loop`: send each block a probe through its forwarder; fail if one comes back to us."""
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
    nursery: trio.Nursery, store: RecordStore, client: KubeClient, gw: GatewayConfig, policy: RetryPolicy
) -> None:
    """One indexer task and one watcher per kind the store needs (`store.kinds`: the enabled
    resources plus Gateways for routes and EndpointSlices for Services)."""
    events_send, events_recv = trio.open_memory_channel[KubeEvent](0)
    nursery.start_soon(store.consume, events_recv)
    with events_send:  # each watcher holds a clone; the original closes here
        for kind_name in store.kinds:
            watch = partial(watch_forever, label_selector=_label_selector(gw, kind_name), policy=policy)
            nursery.start_soon(watch, client, KINDS[kind_name], events_send.clone(), name=f"watch {kind_name}")


def _label_selector(gw: GatewayConfig, kind_name: str) -> str | None:
    """The server-side label selector of a kind's watch: always None.

    `serviceLabelSelectors` are OR-ed, which one API selector cannot say, so Services are watched
    unfiltered and the selectors are matched by the indexer (records/sources.py). One watch also
    keeps the nameserver's own Service visible whatever its labels (DESIGN rule 3), and an object
    whose labels move it from one selector to another is one MODIFIED, not a DELETED and an ADDED
    racing on two streams.
    """
    return None


def _listeners(
    blocks: list[tuple[int, tuple[str, ...], Block]],
) -> Iterator[tuple[tuple[str, int], View]]:
    """Group server blocks by the address they listen on; each address gets a View of its blocks."""
    by_address: dict[tuple[str, int], list[Block]] = defaultdict(list)
    for port, binds, block in blocks:
        for host in binds or (ALL_ADDRESSES,):
            by_address[(host, port)].append(block)
    for address, group in by_address.items():
        yield address, View(group)


def _handlers(view: View):
    fast = FastPath(view)
    return fast.handle_udp, fast.handle_tcp
