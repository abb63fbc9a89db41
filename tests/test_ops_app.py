"""health, ready, prometheus, log, reload and lameduck, wired through app.serve and the CLI."""

from __future__ import annotations

import gc
import signal
import subprocess
import sys
import weakref
from functools import partial

import dns.rcode
import httpx
import trio

from k8sgw.app import serve
from k8sgw.config import load
from k8sgw.devapi.kubeconfig import write_kubeconfig
from tests.conftest import FAST_RETRY, addresses, query, start_k8sgw
from tests.test_app import ingress
from tests.test_cli import Lines


def ops_corefile(kubeconfig, *, extra: str = "", gateway_extra: str = "") -> str:
    return f"""
foo.org {{
    bind 127.0.0.1
    health 127.0.0.1:0 {{
        lameduck 1s
    }}
    ready 127.0.0.1:0
    prometheus 127.0.0.1:0
    errors
    log
    {extra}
    k8s_gateway foo.org {{
        kubeconfig {kubeconfig}
        {gateway_extra}
    }}
}}
"""


def url(bound, path: str) -> str:
    host, port = bound.endpoints[path][0]
    return f"http://{host}:{port}{path}"


async def test_health_ready_metrics_and_log(nursery, kubeconfig, logs):
    bound = await start_k8sgw(nursery, ops_corefile(kubeconfig))
    async with httpx.AsyncClient() as http:
        with trio.fail_after(10):
            assert (await http.get(url(bound, "/health"))).status_code == 200
            await bound.stores[0].wait_until(lambda m: m.ready)
            assert (await http.get(url(bound, "/ready"))).status_code == 200
            for _ in range(3):
                assert addresses(await query(bound.udp[0], "myservicea.foo.org.")) == ["192.0.2.10"]
            assert (await query(bound.tcp[0], "nothing.foo.org.", tcp=True)).rcode() == dns.rcode.NXDOMAIN
            metrics = (await http.get(url(bound, "/metrics"))).text
            line = await logs.wait_for('"A IN myservicea.foo.org. udp')
    assert 'coredns_dns_requests_total{family="1",proto="udp",server="dns://127.0.0.1:' in metrics
    assert 'zone="foo.org."' in metrics and 'type="A"' in metrics
    assert 'coredns_dns_responses_total{' in metrics and 'rcode="NXDOMAIN"' in metrics
    assert "coredns_dns_request_duration_seconds_bucket" in metrics
    assert "coredns_build_info{" in metrics
    assert 'k8sgw_objects{kind="Ingress"' in metrics
    assert "k8sgw_recordmap_version" in metrics
    assert "NOERROR" in line and "127.0.0.1:" in line


async def test_ready_is_503_until_synced(nursery, tmp_path):
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{port}")  # nothing listens
    bound = await start_k8sgw(nursery, ops_corefile(kubeconfig))
    async with httpx.AsyncClient() as http:
        with trio.fail_after(10):
            assert (await http.get(url(bound, "/ready"))).status_code == 503
            assert (await http.get(url(bound, "/health"))).status_code == 200


async def start_from_file(nursery, path, **kw):
    """serve() for a Corefile on disk (reload needs the file), retrying fast."""
    return await nursery.start(partial(serve, load(path, default_port=0), watch_policy=FAST_RETRY, **kw))


async def test_reload_applies_a_changed_corefile_without_failed_queries(nursery, kubeconfig, cluster, tmp_path, logs):
    path = tmp_path / "Corefile"
    path.write_text(ops_corefile(kubeconfig, extra="reload 2s 0s"))
    reloaded = trio.Event()
    bound = await start_from_file(nursery, path, reloaded=lambda b: reloaded.set())
    addr = bound.udp[0]
    with trio.fail_after(30):
        await bound.stores[0].wait_until(lambda m: m.ready)
        cluster.apply(ingress("web", "web.example.net", "192.0.2.77"))
        # The same address (its port pinned now), also answering example.net.
        path.write_text(
            ops_corefile(kubeconfig, extra="reload 2s 0s")
            .replace("foo.org {", f"foo.org:{addr[1]} example.net:{addr[1]} {{", 1)
            .replace("k8s_gateway foo.org {", "k8s_gateway foo.org example.net {")
        )
        answered = failures = 0
        while not reloaded.is_set():  # queries keep flowing while the new generation syncs
            reply = await query(addr, "myservicea.foo.org.")
            answered += 1
            failures += addresses(reply) != ["192.0.2.10"]
        after = await query(addr, "web.example.net.")
    assert answered > 0 and failures == 0
    assert addresses(after) == ["192.0.2.77"]
    assert "reload: " in await logs.wait_for(" applied")


async def test_reload_keeps_running_config_when_new_one_is_bad(nursery, kubeconfig, tmp_path, logs):
    path = tmp_path / "Corefile"
    path.write_text(ops_corefile(kubeconfig, extra="reload 2s 0s"))
    bound = await start_from_file(nursery, path)
    with trio.fail_after(30):
        await bound.stores[0].wait_until(lambda m: m.ready)
        path.write_text(path.read_text() + "\nbroken {\n  nonsense\n}\n")
        line = await logs.wait_for("keeping the running configuration")
        assert "nonsense" in line and f"{path}:" in line
        assert addresses(await query(bound.udp[0], "myservicea.foo.org.")) == ["192.0.2.10"]


async def test_sigterm_lameduck_keeps_answering_then_exits_zero(kubeconfig, tmp_path):
    path = tmp_path / "Corefile"
    path.write_text(ops_corefile(kubeconfig).replace("lameduck 1s", "lameduck 2s"))
    with trio.fail_after(30):
        proc = await trio.lowlevel.open_process(
            [sys.executable, "-m", "k8sgw", "-conf", str(path), "-dns.port", "0"], stderr=subprocess.PIPE
        )
        try:
            lines = Lines(proc.stderr)
            dns_port = int((await lines.until(r"serving DNS on 127\.0\.0\.1 port (\d+)")).group(1))
            ready = await lines.until(r"serving .*/ready.* on 127\.0\.0\.1 port (\d+)")
            ready_url = f"http://127.0.0.1:{ready.group(1)}/ready"
            await lines.seen_or_until("ready: every watched kind has synced")
            async with httpx.AsyncClient() as http:
                assert (await http.get(ready_url)).status_code == 200
                proc.send_signal(signal.SIGTERM)
                await lines.until("lameduck")
                started = trio.current_time()
                # During lameduck DNS still answers, and /ready turns load balancers away.
                assert addresses(await query(("127.0.0.1", dns_port), "myservicea.foo.org.")) == ["192.0.2.10"]
                assert (await http.get(ready_url)).status_code == 503
            assert await proc.wait() == 0
            assert trio.current_time() - started >= 1.5  # it served out the lameduck period
        finally:
            proc.kill()
            await proc.wait()


async def test_reload_to_an_address_in_use_keeps_everything_running(nursery, kubeconfig, tmp_path, logs):
    path = tmp_path / "Corefile"
    path.write_text(ops_corefile(kubeconfig, extra="reload 2s 0s"))
    bound = await start_from_file(nursery, path)
    with trio.socket.socket() as busy:  # a TCP port someone else holds
        await busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        with trio.fail_after(30):
            await bound.stores[0].wait_until(lambda m: m.ready)
            path.write_text(ops_corefile(kubeconfig, extra="reload 2s 0s").replace("foo.org {", f"foo.org:{port} {{", 1))
            line = await logs.wait_for("keeping the running configuration")
            assert "in use" in line
            assert addresses(await query(bound.udp[0], "myservicea.foo.org.")) == ["192.0.2.10"]
            assert addresses(await query(bound.tcp[0], "myservicea.foo.org.", tcp=True)) == ["192.0.2.10"]


async def test_reloads_leave_exactly_one_index_alive(nursery, kubeconfig, tmp_path):
    """Each reload ends the previous generation whole: its RecordStore (which holds its index, the
    RecordMap) is freed. Only weak references are kept here, so what keeps one alive is k8sgw."""
    path = tmp_path / "Corefile"
    text = ops_corefile(kubeconfig, extra="reload 2s 0s")
    path.write_text(text)
    stores: list[weakref.ref] = []
    reloaded = trio.Event()

    def on_reload(bound) -> None:
        stores.append(weakref.ref(bound.stores[0]))
        reloaded.set()

    bound = await start_from_file(nursery, path, reloaded=on_reload)
    addr = bound.udp[0]
    on_reload(bound)
    with trio.fail_after(60):
        await bound.stores[0].wait_until(lambda m: m.ready)
        del bound
        for n in range(2):
            reloaded = trio.Event()
            path.write_text(text + f"\n# reload {n}\n")
            await reloaded.wait()
        assert addresses(await query(addr, "myservicea.foo.org.")) == ["192.0.2.10"]
    gc.collect()
    assert [ref() is not None for ref in stores] == [False, False, True]


async def test_reload_to_a_taken_ops_port_keeps_everything_serving(nursery, kubeconfig, tmp_path, logs):
    path = tmp_path / "Corefile"
    path.write_text(ops_corefile(kubeconfig, extra="reload 2s 0s"))
    bound = await start_from_file(nursery, path)
    with trio.socket.socket() as busy:  # the TCP port the new metrics address names is someone else's
        await busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        async with httpx.AsyncClient() as http:
            with trio.fail_after(30):
                await bound.stores[0].wait_until(lambda m: m.ready)
                path.write_text(
                    ops_corefile(kubeconfig, extra="reload 2s 0s").replace(
                        "prometheus 127.0.0.1:0", f"prometheus 127.0.0.1:{port}"
                    )
                )
                line = await logs.wait_for("keeping the running configuration")
                assert f"listen tcp 127.0.0.1:{port}: address already in use" in line
                assert "Errno" not in line
                assert addresses(await query(bound.udp[0], "myservicea.foo.org.")) == ["192.0.2.10"]
                assert (await http.get(url(bound, "/health"))).status_code == 200
                assert (await http.get(url(bound, "/ready"))).status_code == 200
                metrics = (await http.get(url(bound, "/metrics"))).text
    assert "coredns_reload_failed_total 1.0" in metrics


async def test_the_metrics_coredns_dashboards_read(nursery, kubeconfig):
    from tests.dnsserver.test_forward import Upstream_

    up = Upstream_("www.example.net. 60 IN A 198.51.100.1", zones=("example.net.",))
    host, port = await up.start(nursery)
    text = ops_corefile(kubeconfig, extra=f"forward example.net {host}:{port}\n    cache 30 example.net")
    bound = await start_k8sgw(nursery, text.replace("foo.org {", "foo.org example.net {", 1))
    addr = bound.udp[0]
    async with httpx.AsyncClient() as http:
        with trio.fail_after(10):
            await bound.stores[0].wait_until(lambda m: m.ready)
            for _ in range(3):  # one miss and upstream exchange, then two cache hits
                assert addresses(await query(addr, "www.example.net.")) == ["198.51.100.1"]
            metrics = (await http.get(url(bound, "/metrics"))).text
    server = f'server="dns://127.0.0.1:{addr[1]}"'
    for name in ("k8s_gateway", "forward", "cache", "prometheus", "log", "health", "ready"):
        assert f'coredns_plugin_enabled{{name="{name}",{server},zone="foo.org."}} 1.0' in metrics
    assert f'coredns_cache_hits_total{{{server},type="success",zones="example.net."}} 2.0' in metrics
    assert f'coredns_cache_misses_total{{{server},zones="example.net."}} 1.0' in metrics
    assert f'coredns_cache_requests_total{{{server},zones="example.net."}} 3.0' in metrics
    assert f'coredns_cache_entries{{{server},type="success",zones="example.net."}} 1.0' in metrics
    to = f'to="{host}:{port}"'
    assert f"coredns_forward_requests_total{{{to}}} 1.0" in metrics
    assert f'coredns_forward_responses_total{{rcode="NOERROR",{to}}} 1.0' in metrics
    assert f'coredns_forward_request_duration_seconds_count{{rcode="NOERROR",{to}}} 1.0' in metrics
    assert "coredns_panics_total 0.0" in metrics and "coredns_reload_failed_total 0.0" in metrics
    assert "coredns_health_request_failures_total 0.0" in metrics


async def test_reload_swaps_the_routes_of_an_ops_listener_it_keeps(nursery, kubeconfig, tmp_path):
    path = tmp_path / "Corefile"
    path.write_text(ops_corefile(kubeconfig, extra="reload 2s 0s"))
    reloaded = trio.Event()
    bound = await start_from_file(nursery, path, reloaded=lambda b: reloaded.set())
    (health,) = bound.endpoints["/health"]
    async with httpx.AsyncClient() as http:
        with trio.fail_after(30):
            await bound.stores[0].wait_until(lambda m: m.ready)
            assert (await http.get(url(bound, "/metrics"))).status_code == 200
            # The same ops address (its port pinned now), without prometheus.
            path.write_text(
                ops_corefile(kubeconfig, extra="reload 2s 0s")
                .replace("127.0.0.1:0", f"127.0.0.1:{health[1]}")
                .replace(f"prometheus 127.0.0.1:{health[1]}", "")
            )
            await reloaded.wait()
            assert (await http.get(url(bound, "/metrics"))).status_code == 404
            assert (await http.get(url(bound, "/health"))).status_code == 200
            assert (await http.get(url(bound, "/ready"))).status_code == 200
