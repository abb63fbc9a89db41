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

from k8sgw.config import Config, GatewayConfig
from k8sgw.dnsserver.answer import Authority, Block, View
from k8sgw.dnsserver.sockets import ALL_ADDRESSES, bind_dns_sockets
from k8sgw.dnsserver.tcp import TcpLimits, serve_tcp
from k8sgw.dnsserver.udp import serve_udp
from k8sgw.dnsserver.wire import handle_wire
from k8sgw.errors import ConfigError
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
        nursery = await stack.enter_async_context(trio.open_nursery())
        blocks: list[tuple[int, tuple[str, ...], Block]] = []
        stores: list[RecordStore] = []
        for server in cfg.servers:
            authority = None
            if server.gateway is not None:
                gw = server.gateway
                settings = ZoneSettings.from_config(gw)
                store = RecordStore(settings, gw.resources)
                client = await stack.enter_async_context(KubeClient(connections[id(gw)]))
                _start_indexer(nursery, store, client, gw, watch_policy or RetryPolicy())
                stores.append(store)
                authority = Authority(settings, store)
            block = Block(tuple(dns.name.from_text(z) for z in server.zones), authority)
            for port in sorted({key.port for key in server.keys}):
                block_zones = tuple(dns.name.from_text(k.zone) for k in server.keys if k.port == port)
                blocks.append((port, server.bind, Block(block_zones, block.authority)))
        udp, tcp = [], []
        for (host, port), view in _listeners(blocks):
            handle_udp, handle_tcp = _handlers(view)
            udp_sock, tcp_sock = await bind_dns_sockets(host, port)
            udp.append(await nursery.start(serve_udp, udp_sock, handle_udp))
            tcp.append(await nursery.start(partial(serve_tcp, limits=tcp_limits), tcp_sock, handle_tcp))
        for address in udp:
            logger.info("serving DNS on %s port %d (udp and tcp)", *address)
        task_status.started(Bound(tuple(udp), tuple(tcp), tuple(stores)))
        await trio.sleep_forever()
    raise AssertionError("unreachable")  # pragma: no cover


def _connection(gw: GatewayConfig):
    ref = gw.kubeconfig
    conn = resolve_connection(ref.path if ref else None, ref.context if ref else None)
    logger.info("k8s_gateway %s: Kubernetes API %s (%s)", " ".join(gw.zones), conn.base_url, conn.source)
    return conn


def _start_indexer(
    nursery: trio.Nursery, store: RecordStore, client: KubeClient, gw: GatewayConfig, policy: RetryPolicy
) -> None:
    events_send, events_recv = trio.open_memory_channel[KubeEvent](0)
    nursery.start_soon(store.consume, events_recv)
    with events_send:  # each watcher holds a clone; the original closes here
        for kind_name in gw.resources:
            selector = _label_selector(gw) if kind_name == "Service" else None
            watch = partial(watch_forever, label_selector=selector, policy=policy)
            nursery.start_soon(watch, client, KINDS[kind_name], events_send.clone(), name=f"watch {kind_name}")


def _label_selector(gw: GatewayConfig) -> str | None:
    selectors = gw.service_label_selectors
    if len(selectors) > 1:
        # The API takes one selector per request; OR-ing several needs one source per selector.
        raise ConfigError("serviceLabelSelectors: only one selector is supported so far", line=gw.line)
    return selectors[0] if selectors else None


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
    def handle_udp(wire: bytes) -> bytes | None:
        return handle_wire(wire, view, udp=True)

    def handle_tcp(wire: bytes) -> bytes | None:
        return handle_wire(wire, view, udp=False)

    return handle_udp, handle_tcp
