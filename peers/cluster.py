"""A real control plane on 127.0.0.1: etcd and kube-apiserver, with certificates and keys made here.

    with RealCluster.start(workdir) as cluster:
        cluster.kubectl("apply", "-f", "objects.yaml")
        token = cluster.service_account_token("k8sgw", "k8sgw")

Synchronous (subprocesses and blocking HTTP), so pytest session fixtures and the benchmark can both use
it. Nothing listens beyond 127.0.0.1; every port is chosen free at start. The server certificate, the
admin's client certificate (group system:masters) and the service-account signing key are generated
per cluster; RBAC is the only authorizer, as in a production cluster.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import trustme
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from peers import build
from peers.process import stop, wait_ready

__all__ = ["ClusterError", "RealCluster", "free_port", "kubectl_binary"]

_START_TIMEOUT = 120.0


class ClusterError(RuntimeError):
    """The control plane did not come up; the message carries the tail of the failing log."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def etcd_binary() -> Path | None:
    """The built etcd, or None.

    Debian's etcd-server (3.4.23) does run under this kube-apiserver, but it lacks what the watch
    cache uses to move on while a kind is quiet (RequestWatchProgress, 3.4.31+, and a settable
    progress-notify interval), so BOOKMARKs would not come as they do in a production cluster.
    """
    return build.ETCD.binary if build.ETCD.binary.exists() else None


def kubectl_binary() -> str | None:
    """kubectl for the real API server.

    Google's kubectl dispatcher (the /usr/bin/kubectl here) picks its kubectl by the server's minor
    version and falls back to v1.32 for one it does not ship; the newest versioned binary beside it is
    nearer to the pinned apiserver than that fallback.
    """
    found = shutil.which("kubectl")
    if found is None:
        return None
    sdk = Path(os.path.realpath(found)).parent
    versioned = sorted(sdk.glob("kubectl.1.*"), key=lambda p: int(p.name.rsplit(".", 1)[1]))
    return str(versioned[-1]) if versioned else found


@dataclass
class RealCluster:
    workdir: Path
    etcd_url: str
    api_url: str
    ca: trustme.CA
    admin_kubeconfig: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: dict[str, Path] = field(default_factory=dict)

    # ---- start and stop ----------------------------------------------------------------------------
    @classmethod
    @contextmanager
    def start(
        cls, workdir: Path, *, apiserver_args: Sequence[str] = (), etcd_args: Sequence[str] = ()
    ) -> Iterator[RealCluster]:
        """etcd and kube-apiserver running until the block ends (both are then stopped)."""
        cluster = cls._launch(workdir, list(apiserver_args), list(etcd_args))
        try:
            yield cluster
        finally:
            cluster.stop()

    @classmethod
    def _launch(cls, workdir: Path, apiserver_args: list[str], etcd_args: list[str]) -> RealCluster:
        apiserver = build.KUBE_APISERVER.binary
        etcd = etcd_binary()
        if not apiserver.exists():
            raise ClusterError(f"kube-apiserver is not built ({apiserver}); run `python -m peers.build`")
        if etcd is None:
            raise ClusterError("etcd is not built: run `python -m peers.build etcd`")
        workdir.mkdir(parents=True, exist_ok=True)
        pki = workdir / "pki"
        pki.mkdir(exist_ok=True)
        ca = trustme.CA(organization_name="k8sgw real-API tests")
        ca.cert_pem.write_to_path(str(pki / "ca.crt"))
        server = ca.issue_cert("127.0.0.1", "localhost", "kubernetes.default.svc")
        server.cert_chain_pems[0].write_to_path(str(pki / "server.crt"))
        server.private_key_pem.write_to_path(str(pki / "server.key"))
        # kube-apiserver maps a client certificate's CN to the user and its O to groups.
        admin = ca.issue_cert("admin.k8sgw.invalid", common_name="admin", organization_name="system:masters")
        admin.cert_chain_pems[0].write_to_path(str(pki / "admin.crt"))
        admin.private_key_pem.write_to_path(str(pki / "admin.key"))
        sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (pki / "sa.key").write_bytes(
            sa_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        (pki / "sa.pub").write_bytes(
            sa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

        etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        api_url = f"https://127.0.0.1:{api_port}"
        kubeconfig = workdir / "admin.kubeconfig"
        cluster = cls(workdir, etcd_url, api_url, ca, kubeconfig)
        cluster._write_kubeconfig(
            kubeconfig, {"client-certificate": str(pki / "admin.crt"), "client-key": str(pki / "admin.key")}
        )
        try:
            cluster._spawn(
                "etcd",
                [
                    str(etcd),
                    "--name",
                    "k8sgw-test",
                    "--data-dir",
                    str(workdir / "etcd"),
                    "--listen-client-urls",
                    etcd_url,
                    "--advertise-client-urls",
                    etcd_url,
                    "--listen-peer-urls",
                    f"http://127.0.0.1:{peer_port}",
                    "--initial-advertise-peer-urls",
                    f"http://127.0.0.1:{peer_port}",
                    "--initial-cluster",
                    f"k8sgw-test=http://127.0.0.1:{peer_port}",
                    # Compaction only when a test asks for it (a real 410 on demand).
                    "--auto-compaction-retention",
                    "0",
                    *etcd_args,
                ],
            )
            cluster._wait_ready("etcd", f"{etcd_url}/health")
            cluster._spawn(
                "kube-apiserver",
                [
                    str(apiserver),
                    "--etcd-servers",
                    etcd_url,
                    "--bind-address",
                    "127.0.0.1",
                    "--advertise-address",
                    "127.0.0.1",
                    "--secure-port",
                    str(api_port),
                    "--cert-dir",
                    str(pki),
                    "--tls-cert-file",
                    str(pki / "server.crt"),
                    "--tls-private-key-file",
                    str(pki / "server.key"),
                    "--client-ca-file",
                    str(pki / "ca.crt"),
                    "--authorization-mode",
                    "RBAC",
                    "--service-account-issuer",
                    "https://kubernetes.default.svc.cluster.local",
                    "--service-account-key-file",
                    str(pki / "sa.pub"),
                    "--service-account-signing-key-file",
                    str(pki / "sa.key"),
                    "--service-cluster-ip-range",
                    "10.96.0.0/16",
                    # The apiserver's own compaction would make 410s happen at random; tests compact.
                    "--etcd-compaction-interval",
                    "0",
                    "--endpoint-reconciler-type",
                    "none",
                    "--enable-priority-and-fairness=false",
                    "--profiling=false",
                    *apiserver_args,
                ],
            )
            cluster._wait_ready("kube-apiserver", f"{api_url}/readyz")
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = self.workdir / f"{name}.log"
        self.logs[name] = log
        out: IO[bytes] = log.open("wb")
        with out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.processes.append(proc)

    def _wait_ready(self, name: str, url: str) -> None:
        tls = self.admin_ssl_context() if url.startswith("https") else False
        try:
            wait_ready(
                self.processes[-1], name, url, self.logs[name], timeout=_START_TIMEOUT, tls=tls, interval=0.2
            )
        except RuntimeError as err:
            raise ClusterError(str(err)) from None

    def stop(self) -> None:
        """kube-apiserver first, then etcd (an apiserver whose etcd is gone retries instead of exiting)."""
        for proc in reversed(self.processes):
            stop(proc)
        self.processes.clear()

    # ---- clients -----------------------------------------------------------------------------------
    def _write_kubeconfig(self, path: Path, user: dict[str, str], server: str | None = None) -> Path:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "real",
                    "cluster": {
                        "server": server or self.api_url,
                        "certificate-authority": str(self.workdir / "pki" / "ca.crt"),
                    },
                }
            ],
            "users": [{"name": "user", "user": user}],
            "contexts": [{"name": "real", "context": {"cluster": "real", "user": "user"}}],
            "current-context": "real",
        }
        path.write_text(yaml.safe_dump(config))
        return path

    def token_kubeconfig(self, path: Path, token: str, *, server: str | None = None) -> Path:
        """A kubeconfig that authenticates with a bearer token (a ServiceAccount's); `server` points
        it elsewhere (a relay in front of the API server, say)."""
        return self._write_kubeconfig(path, {"token": token}, server)

    def admin_http(self) -> httpx.Client:
        """A blocking HTTP client authenticated as the cluster admin."""
        return httpx.Client(base_url=self.api_url, verify=self.admin_ssl_context(), timeout=30)

    def admin_ssl_context(self) -> ssl.SSLContext:
        """TLS that trusts this cluster's CA and presents the admin's client certificate."""
        pki = self.workdir / "pki"
        ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        return ctx

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, kubeconfig: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        binary = kubectl_binary()
        if binary is None:
            raise ClusterError("kubectl is not installed")
        env = {**os.environ, "KUBECACHEDIR": str(self.workdir / "kube-cache")}
        proc = subprocess.run(
            [binary, "--kubeconfig", str(kubeconfig or self.admin_kubeconfig), *args],
            input=input,
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        if check and proc.returncode != 0:
            raise ClusterError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    def apply(self, manifest: str | Path, *extra: str) -> None:
        if isinstance(manifest, Path):
            self.kubectl("apply", "-f", str(manifest), *extra)
        else:
            self.kubectl("apply", "-f", "-", *extra, input=manifest)

    def service_account_token(self, namespace: str, name: str, *, duration: str = "2h") -> str:
        return self.kubectl("create", "token", name, "-n", namespace, f"--duration={duration}").stdout.strip()

    # ---- etcd --------------------------------------------------------------------------------------
    def etcd_revision(self) -> int:
        with httpx.Client(timeout=10) as http:
            reply = http.post(f"{self.etcd_url}/v3/kv/range", json={"key": "AA=="}).json()
        return int(reply["header"]["revision"])

    def compact(self, revision: int | None = None) -> int:
        """Compact etcd at `revision` (default: its current one): every older revision is gone."""
        revision = revision or self.etcd_revision()
        with httpx.Client(timeout=30) as http:
            reply = http.post(
                f"{self.etcd_url}/v3/kv/compaction", json={"revision": str(revision), "physical": True}
            )
        if reply.status_code != 200:
            raise ClusterError(f"etcd compaction at {revision} failed: {reply.status_code} {reply.text}")
        return revision

    def wait_established(self, crd: str) -> None:
        self.kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{crd}")

    def server_version(self) -> dict[str, str]:
        with self.admin_http() as http:
            return json.loads(http.get("/version").text)
