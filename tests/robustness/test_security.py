"""Security properties, end to end: TLS verification, no secrets in logs or errors, exec plugin
timeouts through the watcher, and listening only where `bind` says.

RBAC (read-only: list and watch only) and the container (non-root, read-only root filesystem) are
tested where they are defined: tests/deploy/test_kustomize.py and tests/deploy/test_dockerfile.py.
"""

from __future__ import annotations

import base64
import dataclasses
import gc
import logging
import os
import socket
import ssl
import sys
import traceback
from functools import partial
from pathlib import Path

import dns.message
import dns.rcode
import pytest
import trio
import trustme
import yaml

from k8sgw.devapi.kubeconfig import write_kubeconfig
from k8sgw.devapi.server import serve_devapi
from k8sgw.kubeapi.auth import ExecAuth
from k8sgw.kubeapi.client import KubeClient
from k8sgw.kubeapi.connection import Connection
from k8sgw.kubeapi.errors import KubeError
from k8sgw.kubeapi.kinds import KINDS
from k8sgw.kubeapi.kubeconfig import resolve_connection
from k8sgw.kubeapi.watch import Watch, list_objects, watch_forever
from tests.conftest import FAST_RETRY, corefile, query, start_k8sgw

POLICY = dataclasses.replace(FAST_RETRY, inactivity_timeout=0.5, request_timeout=0.5)


def server_tls(ca: trustme.CA, client_ca: trustme.CA | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    if client_ca is not None:  # mTLS: only client certificates from client_ca
        ctx.verify_mode = ssl.CERT_REQUIRED
        client_ca.configure_trust(ctx)
    return ctx


class AllRecords(logging.Handler):
    """Every record of every logger (httpx and httpcore included), formatted with its traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self.texts: list[str] = []
        self._event = trio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(self.format(record))
        self._event.set()
        self._event = trio.Event()

    async def wait_count(self, text: str, n: int) -> None:
        while sum(text in t for t in self.texts) < n:
            await self._event.wait()


@pytest.fixture
def all_logs():
    handler = AllRecords()
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(old)


# Cancelling k8sgw while a watcher's TLS connect is in flight leaves that socket to the garbage
# collector (httpcore's trio backend); it is collected (and its warning swallowed) in this test, not
# in whichever test runs next. Steady-state retries leak nothing (the fd count stays flat).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_wrong_ca_never_connects_and_is_logged(nursery, cluster, tmp_path, logs):
    url = await nursery.start(partial(serve_devapi, cluster, ssl_context=server_tls(trustme.CA())))
    other_ca = trustme.CA()  # the kubeconfig trusts a CA that did not sign the server's certificate
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", url, ca_pem=other_ca.cert_pem.bytes())
    async with trio.open_nursery() as inner:
        bound = await start_k8sgw(inner, corefile(kubeconfig), watch_policy=POLICY)
        with trio.fail_after(10):
            line = await logs.wait_for("CERTIFICATE_VERIFY_FAILED")
            # The reason is in the line (httpx alone says only "ConnectError").
            assert (
                line.startswith("WARNING k8sgw.kubeapi.watch: watch ") and "certificate verify failed" in line
            )
            reply = await query(bound.udp[0], "myservicea.foo.org.")
            assert reply.rcode() == dns.rcode.SERVFAIL  # never synced: nothing was believed
        inner.cancel_scope.cancel()
    gc.collect()
    assert cluster.faults.requests == 0  # not one HTTP request got through the handshake


async def test_insecure_skip_tls_verify_is_the_only_way_around(nursery, cluster, tmp_path):
    url = await nursery.start(partial(serve_devapi, cluster, ssl_context=server_tls(trustme.CA())))
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", url, insecure_skip_tls_verify=True)
    bound = await start_k8sgw(nursery, corefile(kubeconfig), watch_policy=POLICY)
    with trio.fail_after(10):
        await bound.stores[0].wait_until(lambda m: m.ready)


def _secret_forms(secret: bytes) -> list[str]:
    text = secret.decode()
    forms = [text, base64.b64encode(secret).decode()]
    # Any long line of a PEM body (the key material itself).
    forms += [line for line in text.splitlines() if len(line) >= 40 and not line.startswith("-----")]
    return forms


def _exception_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc) + str(exc)


@pytest.mark.parametrize("client_cert_accepted", [True, False], ids=["401", "mtls-refused"])
async def test_tokens_and_keys_never_in_logs_or_errors(
    nursery, cluster, tmp_path, all_logs, client_cert_accepted
):
    server_ca, client_ca = trustme.CA(), trustme.CA()
    trusted_client_ca = client_ca if client_cert_accepted else trustme.CA()
    url = await nursery.start(
        partial(
            serve_devapi,
            cluster,
            ssl_context=server_tls(server_ca, trusted_client_ca),
            token="tok-right-0a1b",
        )
    )
    client_cert = client_ca.issue_cert("k8sgw")
    key_pem = client_cert.private_key_pem.bytes()
    token = "tok-wrong-SECRET-9f8e7d6c5b4a"
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
                            "server": url,
                            "certificate-authority-data": base64.b64encode(
                                server_ca.cert_pem.bytes()
                            ).decode(),
                        },
                    }
                ],
                "users": [
                    {
                        "name": "dev",
                        "user": {
                            "token": token,
                            "client-certificate-data": base64.b64encode(
                                client_cert.cert_chain_pems[0].bytes()
                            ).decode(),
                            "client-key-data": base64.b64encode(key_pem).decode(),
                        },
                    }
                ],
                "contexts": [{"name": "dev", "context": {"cluster": "dev", "user": "dev"}}],
            }
        )
    )
    bound = await start_k8sgw(nursery, corefile(kubeconfig), watch_policy=POLICY)
    errors: list[BaseException] = []
    with trio.fail_after(10):
        marker = "401" if client_cert_accepted else "SSL"
        await all_logs.wait_count(marker, 2 * len(bound.stores[0].kinds))
        async with KubeClient(resolve_connection(str(kubeconfig))) as client:
            for kind in ("Ingress", "Service"):
                try:
                    await list_objects(client, KINDS[kind])
                except KubeError as exc:
                    errors.append(exc)
    assert len(errors) == 2
    texts = all_logs.texts + [_exception_text(e) for e in errors]
    for secret in [token, *_secret_forms(key_pem)]:
        leaks = [t for t in texts if secret in t]
        assert not leaks, f"secret leaked: {leaks[:3]}"


async def test_exec_plugin_timeout_through_the_watcher(nursery, cluster, tmp_path, logs):
    """A credential plugin that hangs is killed after exec_timeout; the watcher logs it and keeps
    retrying (it never hangs with it), and DNS keeps answering (SERVFAIL: never synced)."""
    ca = trustme.CA()
    url = await nursery.start(partial(serve_devapi, cluster, ssl_context=server_tls(ca), token="tok-0c1d"))
    pidfile = tmp_path / "plugin.pid"
    plugin = tmp_path / "hang.py"
    plugin.write_text(
        "import os, sys, time\n"
        f"open({str(pidfile)!r}, 'a').write(str(os.getpid()) + '\\n')\n"
        "time.sleep(3600)\n"
    )
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca.cert_pem.bytes())
    ctx = ssl.create_default_context(cafile=str(ca_file))
    auth = ExecAuth(sys.executable, [str(plugin)], exec_timeout=0.3)
    conn = Connection(base_url=url, verify=ctx, auth=auth, source="test")
    send, recv = trio.open_memory_channel(0)
    async with KubeClient(conn) as client, trio.open_nursery() as inner:
        inner.start_soon(partial(watch_forever, Watch(client, KINDS["Ingress"], send, policy=POLICY)))
        with trio.fail_after(10):
            since = len(logs.lines)
            await logs.wait_count(lambda line: "did not finish within 0.3 s" in line, 2, since)
        inner.cancel_scope.cancel()
    pids = [int(p) for p in pidfile.read_text().split()]
    assert len(pids) >= 2  # run again on the retry
    for pid in pids:  # each hung plugin was killed, not left behind
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert cluster.faults.requests == 0  # no request went out without a credential


def _listeners(port: int) -> set[tuple[str, str]]:
    """(proto, local address hex) of every socket bound to `port`, from /proc/net/{udp,tcp}{,6}."""
    found = set()
    for proto in ("udp", "tcp", "udp6", "tcp6"):
        path = Path("/proc/net") / proto
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            local = line.split()[1]
            addr, port_hex = local.rsplit(":", 1)
            if int(port_hex, 16) == port:
                found.add((proto, addr))
    return found


@pytest.mark.skipif(not Path("/proc/net/udp").exists(), reason="needs Linux /proc/net")
async def test_binds_only_where_configured(k8sgw):
    host, port = k8sgw.udp[0]
    assert host == "127.0.0.1"
    listeners = _listeners(port)
    assert ("udp", "0100007F") in listeners and ("tcp", "0100007F") in listeners
    assert all(addr == "0100007F" for _, addr in listeners), listeners  # no 0.0.0.0, no ::
    # Another loopback address, same port: nothing there.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.2", port), timeout=2).close()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.connect(("127.0.0.2", port))
        udp.settimeout(2)
        udp.send(dns.message.make_query("myservicea.foo.org.", "A").to_wire())
        with pytest.raises(ConnectionRefusedError):  # ICMP port unreachable
            udp.recv(512)
