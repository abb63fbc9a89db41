"""Service-account discovery over a fake serviceaccount directory in tmp_path."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest
import trio
import trustme
import yaml

from k8sgw.kubeapi.auth import TokenAuth
from k8sgw.kubeapi.errors import KubeconfigError
from k8sgw.kubeapi.incluster import incluster_connection
from k8sgw.kubeapi.kubeconfig import resolve_connection

ENV = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
TOKEN = "service-account-token-1"


@pytest.fixture
def sa_dir(tmp_path: Path) -> Path:
    sa = tmp_path / "serviceaccount"
    sa.mkdir()
    (sa / "token").write_text(TOKEN)
    (sa / "namespace").write_text("k8sgw")
    trustme.CA().cert_pem.write_to_path(str(sa / "ca.crt"))
    return sa


def test_incluster(sa_dir: Path) -> None:
    conn = incluster_connection(ENV, str(sa_dir))
    assert conn is not None
    assert conn.base_url == "https://10.96.0.1:443"
    assert isinstance(conn.verify, ssl.SSLContext)
    assert conn.verify.verify_mode == ssl.CERT_REQUIRED
    assert len(conn.verify.get_ca_certs()) == 1  # only the cluster CA, not the system roots
    assert isinstance(conn.auth, TokenAuth)
    assert conn.source == "in-cluster service account (https://10.96.0.1:443)"
    assert TOKEN not in repr(conn)


def test_ipv6_host_gets_brackets(sa_dir: Path) -> None:
    env = {"KUBERNETES_SERVICE_HOST": "fd00:10:96::1", "KUBERNETES_SERVICE_PORT": "6443"}
    conn = incluster_connection(env, str(sa_dir))
    assert conn is not None
    assert conn.base_url == "https://[fd00:10:96::1]:6443"


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"KUBERNETES_SERVICE_HOST": "10.96.0.1"},
        {"KUBERNETES_SERVICE_HOST": "", "KUBERNETES_SERVICE_PORT": "443"},
    ],
)
def test_not_in_cluster(sa_dir: Path, env: dict[str, str]) -> None:
    assert incluster_connection(env, str(sa_dir)) is None


def test_no_token_file_is_not_in_cluster(tmp_path: Path) -> None:
    assert incluster_connection(ENV, str(tmp_path)) is None
    with pytest.raises(KubeconfigError, match="KUBERNETES_SERVICE_HOST is set but .*token does not exist"):
        resolve_connection(env=ENV, incluster_dir=str(tmp_path))


def test_missing_ca_uses_system_roots(sa_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    (sa_dir / "ca.crt").unlink()
    conn = incluster_connection(ENV, str(sa_dir))
    assert conn is not None
    assert isinstance(conn.verify, ssl.SSLContext)
    assert "ca.crt does not exist" in caplog.text


def test_bad_ca(sa_dir: Path) -> None:
    (sa_dir / "ca.crt").write_text("not a certificate")
    with pytest.raises(KubeconfigError, match="not a readable PEM certificate") as info:
        incluster_connection(ENV, str(sa_dir))
    assert info.value.filename == str(sa_dir / "ca.crt")


def test_order(sa_dir: Path, tmp_path: Path) -> None:
    kc = tmp_path / "config"
    kc.write_text(
        yaml.safe_dump(
            {
                "clusters": [{"name": "c", "cluster": {"server": "https://192.0.2.1"}}],
                "contexts": [{"name": "dev", "context": {"cluster": "c"}}],
                "current-context": "dev",
            }
        )
    )
    env = {**ENV, "KUBECONFIG": str(kc), "HOME": str(tmp_path)}
    # In-cluster beats $KUBECONFIG (as k8s_gateway) ...
    assert resolve_connection(env=env, incluster_dir=str(sa_dir)).source.startswith("in-cluster")
    # ... and an explicit kubeconfig beats in-cluster.
    conn = resolve_connection(str(kc), env=env, incluster_dir=str(sa_dir))
    assert conn.base_url == "https://192.0.2.1"


async def test_rotated_token_is_picked_up_after_401(sa_dir: Path) -> None:
    conn = incluster_connection(ENV, str(sa_dir))
    assert conn is not None
    valid = {TOKEN}
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        token = request.headers["Authorization"].removeprefix("Bearer ")
        seen.append(token)
        return httpx.Response(200 if token in valid else 401)

    with trio.fail_after(5):
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler), auth=conn.auth) as client:
            assert (await client.get(conn.base_url + "/version")).status_code == 200
            # The kubelet rotates the token; the API stops accepting the old one.
            (sa_dir / "token").write_text("service-account-token-2")
            valid = {"service-account-token-2"}
            assert (await client.get(conn.base_url + "/version")).status_code == 200
    assert seen == [TOKEN, TOKEN, "service-account-token-2"]
