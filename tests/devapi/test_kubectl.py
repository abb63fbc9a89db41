"""The real kubectl (v1.32 via Google's dispatcher, KUBEAPI.md §0) against the dev API server."""

from __future__ import annotations

import os
import ssl
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from subprocess import PIPE

import pytest
import trio
import trustme

from k8sgw.devapi import ApiError, DevCluster, serve_devapi, write_kubeconfig

from .conftest import EXAMPLES

KUBECTL = Path("/usr/bin/kubectl")
pytestmark = pytest.mark.skipif(not KUBECTL.exists(), reason="/usr/bin/kubectl is not installed")

Kubectl = Callable[..., Awaitable[str]]


def _command(kubeconfig: Path, tmp_path: Path, *args: str) -> tuple[list[str], dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env["HOME"] = str(tmp_path)
    argv = [str(KUBECTL), "--kubeconfig", str(kubeconfig), "--cache-dir", str(tmp_path / "cache"), *args]
    return argv, env


def _runner(kubeconfig: Path, tmp_path: Path) -> Kubectl:
    async def run(*args: str, check: bool = True) -> str:
        argv, env = _command(kubeconfig, tmp_path, *args)
        result = await trio.run_process(argv, capture_stdout=True, capture_stderr=True, env=env, check=False)
        output = result.stdout.decode() + result.stderr.decode()
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {output}")
        return output

    return run


@pytest.fixture
def kubeconfig(base_url: str, tmp_path: Path) -> Path:
    return write_kubeconfig(tmp_path / "kubeconfig", base_url)


@pytest.fixture
def kubectl(kubeconfig: Path, tmp_path: Path) -> Kubectl:
    return _runner(kubeconfig, tmp_path)


async def test_get(kubectl: Kubectl) -> None:
    with trio.fail_after(10):
        out = await kubectl("get", "ingress")
        assert "myservicea" in out.splitlines()[1]
        out = await kubectl("get", "svc", "-A")
        assert any(line.split()[:2] == ["kube-system", "dns1"] for line in out.splitlines())
        assert "No resources found" in await kubectl("get", "dnsendpoints,httproutes,gtw")


async def test_get_prints_the_server_side_columns(kubectl: Kubectl) -> None:
    """kubectl prints the Table the server sends: a Service's type, addresses and ports."""
    with trio.fail_after(10):
        out = (await kubectl("get", "svc", "web", "-o", "wide")).splitlines()
        assert out[0].split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR"]
        assert out[1].split()[:5] == ["web", "LoadBalancer", "<none>", "192.0.2.20", "80/TCP"]
        assert out[1].split()[6] == "app=web"
        out = (await kubectl("get", "ingress")).splitlines()
        assert out[0].split() == ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"]
        assert out[1].split()[:5] == ["myservicea", "nginx", "myservicea.foo.org", "192.0.2.10", "80"]


async def test_apply_update_and_delete(kubectl: Kubectl, cluster: DevCluster, tmp_path: Path) -> None:
    with trio.fail_after(20):
        assert "myserviceb created" in await kubectl("apply", "-f", str(EXAMPLES / "myserviceb.yaml"))
        ingress = cluster.get("networking.k8s.io/v1", "Ingress", "default", "myserviceb")
        assert ingress["status"]["loadBalancer"]["ingress"] == [{"ip": "192.0.2.11"}]
        assert "myservicea configured" in await kubectl(
            "apply", "-f", str(EXAMPLES / "myservicea-moved.yaml")
        )
        moved = cluster.get("networking.k8s.io/v1", "Ingress", "default", "myservicea")
        assert moved["status"]["loadBalancer"]["ingress"] == [{"ip": "192.0.2.12"}]
        assert "unchanged" in await kubectl("apply", "-f", str(EXAMPLES / "myservicea-moved.yaml"))
        assert "deleted" in await kubectl("delete", "-f", str(EXAMPLES / "myserviceb.yaml"))
        with pytest.raises(ApiError):
            cluster.get("networking.k8s.io/v1", "Ingress", "default", "myserviceb")


async def test_apply_server_side_crd_kind(kubectl: Kubectl, cluster: DevCluster, tmp_path: Path) -> None:
    manifest = tmp_path / "dnsendpoint.yaml"
    manifest.write_text(
        "apiVersion: externaldns.k8s.io/v1alpha1\nkind: DNSEndpoint\nmetadata:\n  name: extra\n"
        "spec:\n  endpoints:\n  - dnsName: extra.foo.org\n    recordType: A\n    targets: [192.0.2.40]\n"
    )
    with trio.fail_after(20):
        assert "serverside-applied" in await kubectl("apply", "--server-side", "-f", str(manifest))
        obj = cluster.get("externaldns.k8s.io/v1alpha1", "DNSEndpoint", "default", "extra")
        assert obj["spec"]["endpoints"][0]["targets"] == ["192.0.2.40"]
        manifest.write_text(manifest.read_text().replace("192.0.2.40", "192.0.2.41"))
        assert "configured" in await kubectl("apply", "-f", str(manifest))  # client-side: merge patch for CRs
        obj = cluster.get("externaldns.k8s.io/v1alpha1", "DNSEndpoint", "default", "extra")
        assert obj["spec"]["endpoints"][0]["targets"] == ["192.0.2.41"]


async def test_get_watch(kubeconfig: Path, cluster: DevCluster, tmp_path: Path) -> None:
    argv, env = _command(
        kubeconfig,
        tmp_path,
        "get",
        "ingress",
        "-w",
        "-o",
        "custom-columns=NAME:.metadata.name,IP:.status.loadBalancer.ingress[0].ip",
    )
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            process = await nursery.start(partial(trio.run_process, argv, stdout=PIPE, env=env, check=False))
            output = b""

            async def read_until(text: bytes) -> None:
                nonlocal output
                while text not in output:
                    chunk = await process.stdout.receive_some()
                    assert chunk, f"kubectl -w ended: {output!r}"
                    output += chunk

            await read_until(b"192.0.2.10")
            cluster.load_manifests([EXAMPLES / "myservicea-moved.yaml"])
            await read_until(b"192.0.2.12")
            process.kill()
    assert any(line.split() == ["myservicea", "192.0.2.12"] for line in output.decode().splitlines())


async def test_https_with_token(nursery, cluster: DevCluster, tmp_path: Path) -> None:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    with trio.fail_after(20):
        url = await nursery.start(partial(serve_devapi, cluster, ssl_context=server_ctx, token="s3cret"))
        good = write_kubeconfig(tmp_path / "good", url, token="s3cret", ca_pem=ca.cert_pem.bytes())
        assert "myservicea" in await _runner(good, tmp_path)("get", "ing")
        bad = write_kubeconfig(tmp_path / "bad", url, token="wrong", ca_pem=ca.cert_pem.bytes())
        out = await _runner(bad, tmp_path / "other")("get", "ing", check=False)
        assert "You must be logged in to the server" in out  # kubectl's wording for a 401
