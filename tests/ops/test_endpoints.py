"""serve_endpoints: a Config's /health, /ready and /metrics on real sockets."""

from __future__ import annotations

from functools import partial

import httpx
import pytest
import trio

from k8sgw.config import parse_corefile
from k8sgw.kubeapi.events import Synced
from k8sgw.ops.endpoints import (
    endpoints_for,
    health_route,
    lameduck_seconds,
    metrics_enabled,
    probe_health,
    serve_endpoints,
)
from k8sgw.ops.http import serve_ops
from k8sgw.ops.metrics import Metrics
from k8sgw.records.store import RecordStore, ZoneSettings

COREFILE = """\
example.org:0 {
    health 127.0.0.1:0 { lameduck 3s }
    ready 127.0.0.1:0
    prometheus 127.0.0.1:0
    k8s_gateway
}
example.net:0 {
    health 127.0.0.1:0 { lameduck 7s }
    k8s_gateway
}
"""


def test_plan() -> None:
    cfg = parse_corefile(COREFILE, env={})
    assert endpoints_for(cfg) == {("127.0.0.1", 0): ("/health", "/ready", "/metrics")}
    assert lameduck_seconds(cfg) == 7.0 and metrics_enabled(cfg)
    bare = parse_corefile("example.org {\n k8s_gateway\n}\n", env={})
    assert endpoints_for(bare) == {} and lameduck_seconds(bare) == 0.0 and not metrics_enabled(bare)
    shared = parse_corefile("example.org {\n health :8080\n ready :8080\n}\nexample.net {\n health :8080\n}\n", env={})
    assert endpoints_for(shared) == {("", 8080): ("/health", "/ready")}


async def test_health_ready_metrics(nursery) -> None:
    cfg = parse_corefile(COREFILE, env={})
    store = RecordStore(ZoneSettings(["example.org."]), ["Ingress"])
    metrics = Metrics(process_metrics=False)
    metrics.track_store(store.kinds, store)
    draining = trio.Event()
    bound = await nursery.start(
        partial(serve_endpoints, cfg, stores=[store], metrics=metrics, draining=draining.is_set)
    )
    ((host, port),) = bound["/health"]
    base = f"http://{host}:{port}"
    with trio.fail_after(10):
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:
            assert (await client.get("/health")).text == "OK"
            r = await client.get("/ready")
            assert (r.status_code, r.text) == (503, "k8s_gateway example.org.\n")
            store.apply([Synced("Ingress", ())])
            r = await client.get("/ready")
            assert (r.status_code, r.text) == (200, "OK")
            r = await client.get("/metrics")
            assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
            assert 'k8sgw_ready{zones="example.org."} 1.0' in r.text
            draining.set()  # lameduck: not ready, still healthy
            assert (await client.get("/ready")).status_code == 503
            assert (await client.get("/health")).status_code == 200


async def test_no_endpoints_and_missing_metrics() -> None:
    async with trio.open_nursery() as nursery:
        bare = parse_corefile("example.org {\n k8s_gateway\n}\n", env={})
        assert await nursery.start(partial(serve_endpoints, bare, stores=[])) == {}
        nursery.cancel_scope.cancel()
    with pytest.raises(ValueError, match="needs a Metrics"):
        await serve_endpoints(parse_corefile(COREFILE, env={}), stores=[])


class _Probed(Metrics):
    """Metrics that also say when a health probe has been counted (the test waits on that)."""

    def __init__(self) -> None:
        super().__init__(process_metrics=False)
        self.probed = trio.Event()

    def health_probed(self, duration: float | None) -> None:
        super().health_probed(duration)
        self.probed.set()
        self.probed = trio.Event()


async def test_health_is_probed_and_timed_as_coredns_does(nursery) -> None:
    metrics = _Probed()
    routes = {"/health": health_route()}
    address = await nursery.start(serve_ops, "127.0.0.1", 0, routes)
    nursery.start_soon(partial(probe_health, address, routes, metrics, interval=0.01))
    with trio.fail_after(10):
        for _ in range(3):
            await metrics.probed.wait()
    text = metrics.render().decode()
    assert "coredns_health_request_duration_seconds_count 3.0" in text
    assert 'coredns_health_request_duration_seconds_bucket{le="0.00025"}' in text
    assert "coredns_health_request_failures_total 0.0" in text
    # Nothing listening any more: each probe is a failure.
    dead = {"/health": health_route()}
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        gone = sock.getsockname()
    nursery.start_soon(partial(probe_health, gone, dead, metrics, interval=0.01))
    with trio.fail_after(10):
        while "coredns_health_request_failures_total 0.0" in metrics.render().decode():
            await metrics.probed.wait()
