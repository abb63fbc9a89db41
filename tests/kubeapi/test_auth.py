"""TokenAuth, BasicAuth and ExecAuth against httpx.MockTransport; exec plugins are real Python scripts."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import httpx
import pytest
import trio

from k8sgw.kubeapi import auth as auth_module
from k8sgw.kubeapi import incluster as incluster_module
from k8sgw.kubeapi import kubeconfig as kubeconfig_module
from k8sgw.kubeapi import tls as tls_module
from k8sgw.kubeapi.auth import BasicAuth, ExecAuth, TokenAuth
from k8sgw.kubeapi.errors import KubeconfigError
from tests.publicapi import public_names

V1 = "client.authentication.k8s.io/v1"


@pytest.mark.parametrize("module", [auth_module, kubeconfig_module, incluster_module, tls_module])
def test_all(module: ModuleType) -> None:
    assert set(module.__all__) == public_names(module)


class FakeApi:
    """Accepts only the tokens in `valid`; records the token of every request."""

    def __init__(self, *valid: str) -> None:
        self.valid = set(valid)
        self.seen: list[str] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        self.seen.append(token)
        return httpx.Response(200 if token in self.valid else 401, json={"kind": "Status"})

    def client(self, auth: httpx.Auth) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handler), auth=auth)


# ---------------------------------------------------------------- TokenAuth


async def test_static_token_no_retry() -> None:
    api = FakeApi("good")
    auth = TokenAuth("bad-static-token")
    assert repr(auth) == "TokenAuth(token=<hidden>)"
    with trio.fail_after(5):
        async with api.client(auth) as client:
            assert (await client.get("https://192.0.2.1/api")).status_code == 401
    assert api.seen == ["bad-static-token"]  # the same token would be refused again


async def test_token_file_reread_every_interval(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("one\n")
    now = [1000.0]
    auth = TokenAuth("ignored", token_file=token_file, clock=lambda: now[0])
    api = FakeApi("one", "two")
    with trio.fail_after(5):
        async with api.client(auth) as client:
            await client.get("https://192.0.2.1/api")
            token_file.write_text("two")
            now[0] += 59.0
            await client.get("https://192.0.2.1/api")
            now[0] += 1.0
            await client.get("https://192.0.2.1/api")
    assert api.seen == ["one", "one", "two"]


async def test_token_file_rotation_after_401(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("one")
    auth = TokenAuth(token_file=token_file, clock=lambda: 0.0)
    api = FakeApi("one")
    with trio.fail_after(5):
        async with api.client(auth) as client:
            assert (await client.get("https://192.0.2.1/api")).status_code == 200
            token_file.write_text("two")
            api.valid = {"two"}
            response = await client.get("https://192.0.2.1/api")
            assert response.status_code == 200
            assert [r.status_code for r in response.history] == [401]
            # Still refused after a re-read that finds the same token: no second retry.
            api.valid = {"three"}
            assert (await client.get("https://192.0.2.1/api")).status_code == 401
    assert api.seen == ["one", "one", "two", "two"]


async def test_token_file_unreadable(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    token_file = tmp_path / "token"
    auth = TokenAuth(token_file=token_file)
    api = FakeApi("one")
    with trio.fail_after(5):
        async with api.client(auth) as client:
            with pytest.raises(KubeconfigError, match="cannot read bearer token file") as info:
                await client.get("https://192.0.2.1/api")
            assert info.value.filename == str(token_file)
            token_file.write_text("one")
            assert (await client.get("https://192.0.2.1/api")).status_code == 200
            token_file.unlink()
            # Unreadable after a 401: keep the old token, say so.
            api.valid = set()
            assert (await client.get("https://192.0.2.1/api")).status_code == 401
    assert "keeping the old token" in caplog.text


def test_token_auth_needs_something() -> None:
    with pytest.raises(ValueError, match="needs a token"):
        TokenAuth()


def test_basic_auth_repr() -> None:
    auth = BasicAuth("admin", "hunter2")
    assert "hunter2" not in repr(auth)


# ---------------------------------------------------------------- ExecAuth

PLUGIN = """\
import json, os, sys
state = os.environ["STATE"]
n = int(open(state).read()) + 1 if os.path.exists(state) else 1
open(state, "w").write(str(n))
mode = os.environ.get("MODE", "ok")
if mode == "hang":
    import time
    time.sleep(3600)
if mode == "fail":
    sys.exit(3)
status = {"token": "exec-token-%d" % n}
if os.environ.get("EXPIRES"):
    status["expirationTimestamp"] = os.environ["EXPIRES"]
if mode == "cert":
    status = {"clientCertificateData": "CERT", "clientKeyData": "SECRET-KEY"}
if mode == "garbage":
    print("SECRET-GARBAGE not json")
    sys.exit(0)
info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
api = "client.authentication.k8s.io/v1beta1" if mode == "wrongapi" else info["apiVersion"]
print(json.dumps({"apiVersion": api, "kind": "ExecCredential", "status": status}))
"""


def make_exec(tmp_path: Path, *, mode: str = "ok", expires: datetime | None = None, **kwargs) -> ExecAuth:
    script = tmp_path / "plugin.py"
    script.write_text(PLUGIN)
    env = {"STATE": str(tmp_path / "runs"), "MODE": mode}
    if expires is not None:
        env["EXPIRES"] = expires.isoformat().replace("+00:00", "Z")
    return ExecAuth(
        sys.executable, [str(script)], api_version=V1, env=env, base_env={}, filename="kc", **kwargs
    )


def runs(tmp_path: Path) -> int:
    return int((tmp_path / "runs").read_text())


async def test_exec_cached_until_expiry(tmp_path: Path) -> None:
    auth = make_exec(tmp_path, expires=datetime.now(UTC) + timedelta(hours=1))
    api = FakeApi("exec-token-1")
    with trio.fail_after(5):
        async with api.client(auth) as client:
            await client.get("https://192.0.2.1/api")
            await client.get("https://192.0.2.1/api")
    assert api.seen == ["exec-token-1", "exec-token-1"]
    assert runs(tmp_path) == 1


async def test_exec_expired_reruns(tmp_path: Path) -> None:
    auth = make_exec(tmp_path, expires=datetime.now(UTC) - timedelta(seconds=1))
    api = FakeApi("exec-token-1", "exec-token-2")
    with trio.fail_after(5):
        async with api.client(auth) as client:
            await client.get("https://192.0.2.1/api")
            await client.get("https://192.0.2.1/api")
    assert api.seen == ["exec-token-1", "exec-token-2"]


async def test_exec_rerun_after_401(tmp_path: Path) -> None:
    auth = make_exec(tmp_path)  # no expiry: cached until a 401
    api = FakeApi("exec-token-1")
    with trio.fail_after(5):
        async with api.client(auth) as client:
            await client.get("https://192.0.2.1/api")
            api.valid = {"exec-token-2"}
            response = await client.get("https://192.0.2.1/api")
            assert response.status_code == 200
            assert [r.status_code for r in response.history] == [401]
    assert api.seen == ["exec-token-1", "exec-token-1", "exec-token-2"]
    assert runs(tmp_path) == 2


async def test_exec_concurrent_401_reruns_once(tmp_path: Path) -> None:
    auth = make_exec(tmp_path)
    api = FakeApi("exec-token-1")
    with trio.fail_after(5):
        async with api.client(auth) as client:
            await client.get("https://192.0.2.1/api")
            api.valid = {"exec-token-2"}
            async with trio.open_nursery() as nursery:
                for _ in range(3):
                    nursery.start_soon(client.get, "https://192.0.2.1/api")
    assert runs(tmp_path) == 2
    assert api.seen.count("exec-token-2") == 3


async def test_exec_timeout(tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    # autojump: the 30 s pass instantly once the test is only waiting for the hung plugin.
    auth = make_exec(tmp_path, mode="hang")
    api = FakeApi()
    async with api.client(auth) as client:
        with pytest.raises(KubeconfigError, match="did not finish within 30 s"):
            await client.get("https://192.0.2.1/api")
    assert api.seen == []


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("fail", "exited with status 3"),
        ("garbage", "printed something that is not JSON"),
        ("wrongapi", "whose apiVersion is not client.authentication.k8s.io/v1"),
        ("cert", "supports only token credentials"),
    ],
)
async def test_exec_bad_plugin(tmp_path: Path, mode: str, message: str) -> None:
    auth = make_exec(tmp_path, mode=mode)
    with trio.fail_after(5):
        async with FakeApi().client(auth) as client:
            with pytest.raises(KubeconfigError, match=message) as info:
                await client.get("https://192.0.2.1/api")
    assert "SECRET" not in str(info.value)
    assert str(info.value).startswith("kc: exec plugin ")


async def test_exec_bad_expiry(tmp_path: Path) -> None:
    script = tmp_path / "plugin.py"
    cred = {
        "apiVersion": V1,
        "kind": "ExecCredential",
        "status": {"token": "t", "expirationTimestamp": "soon"},
    }
    script.write_text(f"print({json.dumps(json.dumps(cred))})\n")
    auth = ExecAuth(sys.executable, [str(script)], api_version=V1)
    with trio.fail_after(5):
        async with FakeApi().client(auth) as client:
            with pytest.raises(KubeconfigError, match="not RFC 3339"):
                await client.get("https://192.0.2.1/api")


async def test_exec_missing_command(tmp_path: Path) -> None:
    auth = ExecAuth(str(tmp_path / "nope"), api_version=V1, install_hint="install it from example.org")
    with trio.fail_after(5):
        async with FakeApi().client(auth) as client:
            with pytest.raises(KubeconfigError, match="cannot be started: .*; install it from example.org"):
                await client.get("https://192.0.2.1/api")


def test_exec_sync_client_refused(tmp_path: Path) -> None:
    auth = make_exec(tmp_path)
    with httpx.Client(transport=httpx.MockTransport(FakeApi().handler), auth=auth) as client:
        with pytest.raises(RuntimeError, match="AsyncClient"):
            client.get("https://192.0.2.1/api")
