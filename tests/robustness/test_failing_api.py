"""A failing API server: every fault mode of the dev API server, driven deterministically.

For each fault: k8sgw keeps answering every seeded name from its last good state, logs each failed
attempt exactly once (no floods: log lines are counted against the attempts the API saw), and
recovers within its backoff bound once the API is healthy again (a new object answers).
"""

from __future__ import annotations

import base64
import dataclasses
import re
import ssl
from functools import partial

import dns.rcode
import pytest
import trio
import trustme
import yaml

from k8sgw.devapi.server import serve_devapi
from tests.conftest import FAST_RETRY, addresses, corefile, has, query, start_k8sgw

# FAST_RETRY plus short stall bounds: a silent watch or a hung LIST is given up after 0.5 s.
POLICY = dataclasses.replace(FAST_RETRY, inactivity_timeout=0.5, request_timeout=0.5)

SEEDED = {
    "myservicea.foo.org.": ["192.0.2.10"],  # Ingress
    "web.default.foo.org.": ["192.0.2.20"],  # Service
    "shop.foo.org.": ["192.0.2.30"],  # Service with a hostname annotation
}

# The one line watch_forever logs per failed attempt (retry) and per relist after a 410.
RETRY_LINE = re.compile(
    r"^(WARNING|ERROR) k8sgw\.kubeapi\.watch: watch \w+: .*; (resume from resourceVersion \d+|relist) in [\d.]+s$"
)


def ingress(name: str, host: str, ip: str) -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"rules": [{"host": host}]},
        "status": {"loadBalancer": {"ingress": [{"ip": ip}]}},
    }


async def all_seeded_answer(addr) -> None:
    for name, ips in SEEDED.items():
        reply = await query(addr, name)
        assert reply.rcode() == dns.rcode.NOERROR and addresses(reply) == ips, (name, reply)


def failure_lines(logs, marker: str) -> list[str]:
    return [line for line in logs.lines if marker in line]


async def recovers(cluster, bound, name: str, bound_s: float) -> float:
    """Apply a new Ingress; the seconds until k8sgw answers it (asserted under bound_s)."""
    start = trio.current_time()
    cluster.apply(ingress(name, f"{name}.foo.org", "192.0.2.99"))
    await bound.stores[0].wait_until(has(f"{name}.foo.org.", "192.0.2.99"))
    took = trio.current_time() - start
    assert took < bound_s, f"recovered after {took:.2f}s (bound {bound_s:.2f}s)"
    assert addresses(await query(bound.udp[0], f"{name}.foo.org.")) == ["192.0.2.99"]
    await all_seeded_answer(bound.udp[0])
    return took


@pytest.fixture
async def gw(nursery, kubeconfig, cluster):
    bound = await start_k8sgw(nursery, corefile(kubeconfig), watch_policy=POLICY)
    with trio.fail_after(10):
        await bound.stores[0].wait_until(lambda m: m.ready)
        await cluster.wait_watch_count(len(bound.stores[0].kinds))
    return bound


# How soon after the API is healthy again a change must be answered: the longest backoff step,
# plus one stalled attempt still in flight, plus a generous second for list + watch on a busy CI.
RECOVERY = POLICY.max_backoff + POLICY.inactivity_timeout + 1.0


def retry_line(line: str) -> bool:
    return RETRY_LINE.match(line) is not None


def injected(line: str) -> bool:
    return "injected fault" in line


async def counted_fault(gw, cluster, logs, inject, match, expected_of, name: str) -> list[str]:
    """Inject a fault that ends by itself after a known number of failed attempts; while they
    happen every seeded name answers; then exactly that many lines, and recovery in bound."""
    since = len(logs.lines)
    expected = expected_of(inject(cluster.faults))
    for n in range(1, expected + 1):
        await logs.wait_count(match, n, since)
        await all_seeded_answer(gw.udp[0])  # last good state, during the fault
    await recovers(cluster, gw, f"after-{name}", RECOVERY)
    lines = [line for line in logs.lines[since:] if match(line)]
    assert len(lines) == expected, "\n".join(lines)  # once per failed attempt: no flood
    return lines


@pytest.mark.parametrize("code, reason", [(500, "InternalError"), (503, "ServiceUnavailable")])
async def test_5xx_is_retried_with_one_line_per_attempt(gw, cluster, logs, code, reason):
    def inject(faults):
        faults.fail_next(6, code, reason)
        faults.drop_watches()  # every watcher reconnects into the failures
        return 6

    with trio.fail_after(15):
        lines = await counted_fault(gw, cluster, logs, inject, injected, lambda n: n, "5xx")
    assert all(retry_line(line) for line in lines), lines
    # The delays logged follow the policy's steps (0.05, 0.1, 0.2 capped), never a hot loop.
    delays = {float(line.rsplit(" in ", 1)[1].rstrip("s")) for line in lines}
    assert delays <= {round(POLICY.backoff(i), 1) for i in range(10)} | {0.1, 0.2}, delays


async def test_429_retry_after_is_honoured(gw, cluster, logs):
    def inject(faults):
        faults.fail_next(2, 429, "TooManyRequests", retry_after=1)
        faults.drop_watches()
        return 2

    with trio.fail_after(15):
        lines = await counted_fault(gw, cluster, logs, inject, injected, lambda n: n, "429")
    # The watchers that got the 429 waited Retry-After (1 s), not the 0.05 s backoff step.
    assert all(line.endswith(" in 1.0s") for line in lines), lines


async def test_malformed_list_body(gw, cluster, logs):
    def inject(faults):
        faults.garble_lists(3)
        return faults.garble_watches()  # garbled streams relist, and the lists are garbled too

    with trio.fail_after(15):
        lines = await counted_fault(
            gw, cluster, logs, inject, lambda line: "not JSON" in line, lambda n: n + 3, "badlist"
        )
    assert sum("GET http" in line for line in lines) == 3  # the list failures name the request


async def test_malformed_line_mid_stream(gw, cluster, logs):
    with trio.fail_after(15):
        lines = await counted_fault(
            gw,
            cluster,
            logs,
            lambda f: f.garble_watches(),
            lambda line: "not JSON" in line,
            lambda n: n,
            "garbled",
        )
    assert all(retry_line(line) and " relist in " in line for line in lines), lines  # the position is unknown
    assert len(lines) == len(gw.stores[0].kinds)


async def test_stream_cut_mid_object(gw, cluster, logs):
    with trio.fail_after(15):
        lines = await counted_fault(
            gw, cluster, logs, lambda f: f.cut_watches(), retry_line, lambda n: n, "cut"
        )
    assert len(lines) == len(gw.stores[0].kinds)


async def test_repeated_410_relists_with_backoff(gw, cluster, logs):
    def inject(faults):
        faults.expire_watches(3 * len(gw.stores[0].kinds))
        faults.drop_watches()
        return 3 * len(gw.stores[0].kinds)

    with trio.fail_after(20):
        lines = await counted_fault(gw, cluster, logs, inject, injected, lambda n: n, "410")
    # Each 410 is one line: the first relists at once (INFO), later ones, right after a fresh
    # list, back off (WARNING) instead of looping.
    assert any(line.startswith("INFO") and "relisting" in line for line in lines)
    assert any(
        retry_line(line) and line.endswith(tuple(f"relist in {POLICY.backoff(i):.1f}s" for i in range(1, 5)))
        for line in lines
    )


@pytest.mark.parametrize("what", ["watch", "list"])
async def test_api_that_accepts_and_never_answers(gw, cluster, logs, what):
    """Requests are read, then not even headers come back: each attempt is given up after
    inactivity_timeout (watch) or request_timeout (list), logged once, and retried."""
    kinds = len(gw.stores[0].kinds)
    match = (
        (lambda line: "no data for" in line) if what == "watch" else (lambda line: "no answer within" in line)
    )
    with trio.fail_after(20):
        since, before = len(logs.lines), cluster.faults.requests
        start = trio.current_time()
        cluster.faults.stall_requests()
        if what == "watch":
            cluster.faults.drop_watches()  # the re-watches hang
        else:
            cluster.faults.garble_watches()  # garbled streams relist; the lists hang
        for n in range(1, 2 * kinds + 1):  # two hung attempts per kind, roughly
            await logs.wait_count(match, n, since)
            await all_seeded_answer(gw.udp[0])
        window = trio.current_time() - start
        attempts = cluster.faults.requests - before
        failures = logs.count(match, since)
        cluster.faults.resume()
        await recovers(cluster, gw, f"after-stall-{what}", RECOVERY)
    assert failures <= attempts, (failures, attempts)  # at most one line per attempt
    # ... and attempts are paced: one per (timeout + backoff) per kind, plus the first.
    assert attempts <= kinds * (window / POLICY.inactivity_timeout + 2), (attempts, window)


async def test_401_after_token_rotation(nursery, cluster, tmp_path, logs):
    """The API rotates the token: k8sgw logs each 401 once per backoff step (ERROR: an operator
    must look), keeps answering, and recovers as soon as the mounted token file is rotated too,
    without a restart (the token file is re-read after a 401)."""
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    api_url = await nursery.start(
        partial(serve_devapi, cluster, ssl_context=server_ctx, token="tok-first-5d1c")
    )
    token_file = tmp_path / "token"
    token_file.write_text("tok-first-5d1c")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "dev",
                "clusters": [
                    {
                        "name": "dev",
                        "cluster": {
                            "server": api_url,
                            "certificate-authority-data": base64.b64encode(ca.cert_pem.bytes()).decode(),
                        },
                    }
                ],
                "users": [{"name": "dev", "user": {"tokenFile": str(token_file)}}],
                "contexts": [{"name": "dev", "context": {"cluster": "dev", "user": "dev"}}],
            }
        )
    )
    gw = await start_k8sgw(nursery, corefile(kubeconfig), watch_policy=POLICY)
    kinds = len(gw.stores[0].kinds)
    with trio.fail_after(15):
        await gw.stores[0].wait_until(lambda m: m.ready)
        await cluster.wait_watch_count(kinds)
        since, before = len(logs.lines), cluster.faults.requests
        cluster.set_token("tok-second-77ab")
        cluster.faults.drop_watches()

        def unauthorized(line: str) -> bool:
            return line.startswith("ERROR") and "401" in line and "credentials" in line

        for n in range(1, 2 * kinds + 1):
            await logs.wait_count(unauthorized, n, since)
            await all_seeded_answer(gw.udp[0])
        attempts = cluster.faults.requests - before
        failures = logs.count(unauthorized, since)
        token_file.write_text("tok-second-77ab")
        await recovers(cluster, gw, "after-401", RECOVERY)
    assert failures <= attempts, (failures, attempts)
    assert "tok-first-5d1c" not in logs.text and "tok-second-77ab" not in logs.text
