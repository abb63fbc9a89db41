"""The /health, /ready and /metrics endpoints of a Config, and one task that serves them all.

``health``, ``ready`` and ``prometheus`` are process-wide in CoreDNS: they may appear in several
server blocks, and an address named more than once is served once. Different endpoints that name
the same address share one listener (``health :8080`` and ``ready :8080`` both work).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NoReturn

import trio

from k8sgw.config import Config
from k8sgw.config.ops import HealthConfig, PrometheusConfig, ReadyConfig
from k8sgw.explain.routes import explain_endpoints
from k8sgw.ops.http import QueryRoute, Route, serve_ops
from k8sgw.ops.metrics import CONTENT_TYPE, Metrics

__all__ = [
    "HEALTH_PATH",
    "METRICS_PATH",
    "READY_PATH",
    "endpoints_for",
    "health_route",
    "lameduck_seconds",
    "metrics_enabled",
    "metrics_route",
    "ready_route",
    "serve_endpoints",
]

logger = logging.getLogger(__name__)

HEALTH_PATH, READY_PATH, METRICS_PATH = "/health", "/ready", "/metrics"
_TEXT = "text/plain; charset=utf-8"

_DIRECTIVES: tuple[tuple[str, type, str], ...] = (
    ("health", HealthConfig, HEALTH_PATH),
    ("ready", ReadyConfig, READY_PATH),
    ("prometheus", PrometheusConfig, METRICS_PATH),
)


def health_route() -> Route:
    """200 "OK" while the process runs (also during lameduck, as CoreDNS)."""
    return lambda: (200, _TEXT, b"OK")


def ready_route(stores: Sequence[Any], *, draining: Callable[[], bool] = lambda: False) -> Route:
    """200 "OK" once every store's map is ready; 503 before, and while draining (lameduck).

    Args:
        stores: RecordStores (anything with ``.current.ready`` and ``.settings.zones``).
        draining: true once shutdown has begun, e.g. ``lameduck_event.is_set``.
    """

    def ready() -> tuple[int, str, bytes]:
        if draining():
            return 503, _TEXT, b"shutting down\n"
        waiting = [s for s in stores if not s.current.ready]
        if not waiting:
            return 200, _TEXT, b"OK"
        # CoreDNS lists the plugins that are not ready; we also say which zones.
        names = ", ".join("k8s_gateway " + " ".join(str(z) for z in s.settings.zones) for s in waiting)
        return 503, _TEXT, f"{names}\n".encode()

    return ready


def metrics_route(metrics: Metrics) -> Route:
    """The Prometheus text format, rendered per scrape."""
    return lambda: (200, CONTENT_TYPE, metrics.render())


def endpoints_for(cfg: Config) -> dict[tuple[str, int], tuple[str, ...]]:
    """(host, port) → paths to serve there, from every server block's health/ready/prometheus."""
    out: dict[tuple[str, int], dict[str, None]] = {}
    for server in cfg.servers:
        for name, _model, path in _DIRECTIVES:
            directive = server.plugin(name)
            if directive is not None:
                out.setdefault((directive.host, directive.port), {})[path] = None
    return {address: tuple(paths) for address, paths in out.items()}


def lameduck_seconds(cfg: Config) -> float:
    """How long to keep serving DNS after SIGTERM: the longest ``health { lameduck }`` (0: none).

    CoreDNS adds up the lameduck of every health directive; the longest is what was meant.
    """
    return max((h.lameduck for s in cfg.servers if (h := s.plugin("health")) is not None), default=0.0)


def metrics_enabled(cfg: Config) -> bool:
    """Whether any server block has ``prometheus`` (then create a Metrics and feed it)."""
    return any(s.plugin("prometheus") is not None for s in cfg.servers)


async def serve_endpoints(
    cfg: Config,
    *,
    stores: Iterable[Any],
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
    bound: dict[str, list[tuple[str, int]]] = {}
    async with trio.open_nursery() as nursery:
        for (host, port), paths in plan.items():
            address = await nursery.start(serve_ops, host, port, {p: routes[p] for p in paths})
            logger.info("serving %s on %s port %d", " ".join(paths), *address)
            for path in paths:
                bound.setdefault(path, []).append(address)
        task_status.started({path: tuple(addresses) for path, addresses in bound.items()})
        await trio.sleep_forever()
    raise AssertionError("unreachable")  # pragma: no cover
