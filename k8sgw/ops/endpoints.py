"""The /health, /ready and /metrics endpoints of a Config, and one task that serves them all.

``health``, ``ready`` and ``prometheus`` are process-wide in CoreDNS: they may appear in several
server blocks, and an address named more than once is served once. Different endpoints that name
the same address share one listener (``health :8080`` and ``ready :8080`` both work).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import NoReturn

import trio

from k8sgw.config import Config
from k8sgw.explain.routes import explain_endpoints
from k8sgw.ops.http import QueryRoute, Route, serve_ops
from k8sgw.ops.metrics import CONTENT_TYPE, Metrics, ReportedStore
from k8sgw.records.store import RecordStore

__all__ = [
    "HEALTH_PATH",
    "METRICS_PATH",
    "READY_PATH",
    "endpoints_for",
    "health_route",
    "lameduck_seconds",
    "metrics_enabled",
    "metrics_route",
    "probe_health",
    "ready_route",
    "routes_for",
    "serve_endpoints",
]

logger = logging.getLogger(__name__)

HEALTH_PATH, READY_PATH, METRICS_PATH = "/health", "/ready", "/metrics"
_TEXT = "text/plain; charset=utf-8"


def health_route() -> Route:
    """200 "OK" while the process runs (also during lameduck, as CoreDNS)."""
    return lambda: (200, _TEXT, b"OK")


def ready_route(stores: Sequence[ReportedStore], *, draining: Callable[[], bool] = lambda: False) -> Route:
    """200 "OK" once every store's map is ready; 503 before, and while draining (lameduck).

    Args:
        stores: the RecordStores.
        draining: true once shutdown has begun, e.g. ``lameduck_event.is_set``.
    """

    def ready() -> tuple[int, str, bytes]:
        if draining():
            return 503, _TEXT, b"shutting down\n"
        waiting = [s for s in stores if not s.current.ready]
        if not waiting:
            return 200, _TEXT, b"OK"
        # CoreDNS lists the plugins that are not ready; we also say which zones.
        names = ", ".join("k8s_gateway " + " ".join(str(z) for z in s.settings.zones) + _behind(s) for s in waiting)
        return 503, _TEXT, f"{names}\n".encode()

    return ready


def _behind(store: ReportedStore) -> str:
    """" (cluster b: Ingress, Service)": which of several clusters have not listed which kinds."""
    behind = {c: kinds for c, kinds in store.behind().items() if c}  # "" is the one cluster
    return "".join(f" (cluster {c}: {', '.join(kinds)})" for c, kinds in behind.items())


def metrics_route(metrics: Metrics) -> Route:
    """The Prometheus text format, rendered per scrape."""
    return lambda: (200, CONTENT_TYPE, metrics.render())


def endpoints_for(cfg: Config) -> dict[tuple[str, int], tuple[str, ...]]:
    """(host, port) → paths to serve there, from every server block's health/ready/prometheus."""
    out: dict[tuple[str, int], dict[str, None]] = {}
    for server in cfg.servers:
        for directive, path in ((server.health, HEALTH_PATH), (server.ready, READY_PATH), (server.prometheus, METRICS_PATH)):
            if directive is not None:
                out.setdefault((directive.host, directive.port), {})[path] = None
    return {address: tuple(paths) for address, paths in out.items()}


def routes_for(
    cfg: Config,
    *,
    stores: Sequence[RecordStore],
    metrics: Metrics | None,
    draining: Callable[[], bool] = lambda: False,
) -> dict[tuple[str, int], dict[str, Route | QueryRoute]]:
    """(host, port) → path → route, for every ops endpoint the Corefile asks for.

    Raises:
        ValueError: ``prometheus`` is configured but no ``metrics`` was given.
    """
    stores = tuple(stores)
    plan = endpoints_for(cfg)
    routes: dict[str, Route | QueryRoute] = {
        HEALTH_PATH: health_route(), READY_PATH: ready_route(stores, draining=draining)
    }
    # `explain` (k8sgw/explain/): its own directive, addresses and paths.
    explain_plan, explain_routes = explain_endpoints(cfg, stores)
    for address, paths in explain_plan.items():
        plan[address] = plan.get(address, ()) + paths
    routes.update(explain_routes)
    if any(METRICS_PATH in paths for paths in plan.values()):
        if metrics is None:
            raise ValueError("the prometheus directive needs a Metrics instance")
        routes[METRICS_PATH] = metrics_route(metrics)
    return {address: {p: routes[p] for p in paths} for address, paths in plan.items()}


def lameduck_seconds(cfg: Config) -> float:
    """How long to keep serving DNS after SIGTERM: the longest ``health { lameduck }`` (0: none).

    CoreDNS adds up the lameduck of every health directive; the longest is what was meant.
    """
    return max((s.health.lameduck for s in cfg.servers if s.health is not None), default=0.0)


def metrics_enabled(cfg: Config) -> bool:
    """Whether any server block has ``prometheus`` (then create a Metrics and feed it)."""
    return any(s.prometheus is not None for s in cfg.servers)


async def serve_endpoints(
    cfg: Config,
    *,
    stores: Iterable[RecordStore],
    metrics: Metrics | None = None,
    draining: Callable[[], bool] = lambda: False,
    task_status: trio.TaskStatus[Mapping[str, tuple[tuple[str, int], ...]]] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Serve every ops endpoint the Corefile asks for until cancelled.

    Args:
        stores: every RecordStore, for /ready.
        metrics: required when a block has ``prometheus``.
        draining: see ``ready_route``.

    Calls ``task_status.started({path: (bound address, ...)})`` once every listener is bound
    (an empty mapping when the Corefile has none of these directives). Never returns unless
    cancelled.

    Raises:
        OSError: an address cannot be bound.
        ValueError: ``prometheus`` is configured but no ``metrics`` was given.
    """
    plan = routes_for(cfg, stores=tuple(stores), metrics=metrics, draining=draining)
    bound: dict[str, list[tuple[str, int]]] = {}
    async with trio.open_nursery() as nursery:
        for (host, port), paths in plan.items():
            address = await nursery.start(serve_ops, host, port, paths)
            logger.info("serving %s on %s port %d", " ".join(paths), *address)
            for path in paths:
                bound.setdefault(path, []).append(address)
        task_status.started({path: tuple(addresses) for path, addresses in bound.items()})
        await trio.sleep_forever()
    raise AssertionError("unreachable")  # pragma: no cover


HEALTH_PROBE_INTERVAL = 1.0
"""Seconds between two of k8sgw's own /health requests (CoreDNS's health plugin asks once a second)."""


async def probe_health(
    address: tuple[str, int], routes: Mapping[str, Route], metrics: Metrics, *, interval: float = HEALTH_PROBE_INTERVAL
) -> NoReturn:
    """Ask our own /health at `address` every `interval` seconds while `routes` has it, and tell
    `metrics` how long the answer took: a slow answer means the process is too busy to serve.

    Each probe is one HTTP/1.0 request on a new connection, with `interval` to complete.
    """
    host, port = address
    host = "127.0.0.1" if host in ("", "0.0.0.0") else "::1" if host == "::" else host
    request = f"GET {HEALTH_PATH} HTTP/1.0\r\nHost: k8sgw\r\n\r\n".encode()
    while True:
        await trio.sleep(interval)
        if HEALTH_PATH not in routes:
            continue
        started = trio.current_time()
        ok = False
        with trio.move_on_after(interval):
            try:
                async with await trio.open_tcp_stream(host, port) as stream:
                    await stream.send_all(request)
                    head = b""
                    while len(head) < 12 and (chunk := await stream.receive_some(4096)):
                        head += chunk
                    ok = head.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200"))
            except OSError:
                ok = False
        metrics.health_probed(trio.current_time() - started if ok else None)
