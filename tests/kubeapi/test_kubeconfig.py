"""resolve_connection over real kubeconfig files in tmp_path, and real TLS against a tiny trio server."""

from __future__ import annotations

import base64
import json
import os
import ssl
import sys
from functools import partial
from pathlib import Path
from typing import Any

import h11
import httpx
import pytest
import trio
import trustme
import yaml

from k8sgw.errors import ConfigError
from k8sgw.kubeapi.auth import BasicAuth, ExecAuth, TokenAuth
from k8sgw.kubeapi.errors import KubeconfigError
from k8sgw.kubeapi.kubeconfig import resolve_connection

SECRET = "s3cr3t-t0ken-value"
NO_INCLUSTER = "/nonexistent-serviceaccount"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def kubeconfig(
    path: Path,
    *,
    clusters: dict[str, dict[str, Any]] | None = None,
    users: dict[str, dict[str, Any]] | None = None,
    contexts: dict[str, dict[str, Any]] | None = None,
    current: str | None = None,
) -> str:
    doc: dict[str, Any] = {"apiVersion": "v1", "kind": "Config"}
    if clusters is not None:
        doc["clusters"] = [{"name": n, "cluster": c} for n, c in clusters.items()]
    if users is not None:
        doc["users"] = [{"name": n, "user": u} for n, u in users.items()]
    if contexts is not None:
        doc["contexts"] = [{"name": n, "context": c} for n, c in contexts.items()]
    if current is not None:
        doc["current-context"] = current
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def simple(
    path: Path,
    *,
    cluster: dict[str, Any] | None = None,
    user: dict[str, Any] | None = None,
    name: str = "dev",
) -> str:
    return kubeconfig(
        path,
        clusters={"c": cluster if cluster is not None else {"server": "https://192.0.2.10:6443"}},
        users={"u": user if user is not None else {}},
        contexts={name: {"cluster": "c", "user": "u"}},
        current=name,
    )


def resolve(*args: Any, env: dict[str, str] | None = None, **kwargs: Any):
    return resolve_connection(*args, env=env or {}, incluster_dir=NO_INCLUSTER, **kwargs)


def assert_no_secret(exc: BaseException | object, *secrets: str) -> None:
    for text in (str(exc), repr(exc)):
        for secret in (SECRET, *secrets):
            assert secret not in text


# ---------------------------------------------------------------- loading and merging


def test_explicit_file_with_current_context(tmp_path: Path) -> None:
    path = simple(tmp_path / "config", user={"token": SECRET})
    conn = resolve(path)
    assert conn.base_url == "https://192.0.2.10:6443"
    assert isinstance(conn.verify, ssl.SSLContext)
    assert isinstance(conn.auth, TokenAuth)
    assert conn.tls_server_name is None
    assert conn.source == f'kubeconfig {path}, context "dev"'
    assert_no_secret(conn)
    assert_no_secret(conn.auth)


def test_explicit_context_and_path_prefix(tmp_path: Path) -> None:
    path = kubeconfig(
        tmp_path / "config",
        clusters={"a": {"server": "https://a.example.org"}, "b": {"server": "https://b.example.org/prefix/"}},
        contexts={"a": {"cluster": "a"}, "b": {"cluster": "b"}},
        current="a",
    )
    assert resolve(path).base_url == "https://a.example.org"
    conn = resolve(path, "b")
    assert conn.base_url == "https://b.example.org/prefix"
    assert conn.auth is None


def test_explicit_file_must_exist_and_is_not_merged(tmp_path: Path) -> None:
    with pytest.raises(KubeconfigError, match="does not exist") as info:
        resolve(str(tmp_path / "missing"))
    assert info.value.filename == str(tmp_path / "missing")
    assert isinstance(info.value, ConfigError)
    # KUBECONFIG is ignored with an explicit file.
    other = simple(tmp_path / "other", name="other")
    path = kubeconfig(tmp_path / "config", clusters={"c": {"server": "https://192.0.2.1"}})
    with pytest.raises(KubeconfigError, match="current-context is not set"):
        resolve(path, env={"KUBECONFIG": other})


def test_kubeconfig_env_merge_first_wins(tmp_path: Path) -> None:
    first = kubeconfig(
        tmp_path / "first",
        users={"red-user": {"token": "first-token"}},
        contexts={"ctx": {"cluster": "shared", "user": "red-user"}},
    )
    second = kubeconfig(
        tmp_path / "second",
        clusters={"shared": {"server": "https://192.0.2.2"}},
        users={"red-user": {"username": "admin", "password": "pw"}},
        contexts={"ctx": {"cluster": "nope"}},
        current="ctx",
    )
    third = kubeconfig(
        tmp_path / "third", clusters={"shared": {"server": "https://192.0.2.3"}}, current="other"
    )
    env = {"KUBECONFIG": f"{first}:{tmp_path / 'missing'}::{second}:{third}"}
    conn = resolve(env=env)
    assert conn.base_url == "https://192.0.2.2"  # cluster from the first file that defines it
    assert isinstance(conn.auth, TokenAuth)  # user taken whole from the first file
    assert conn.source == f'kubeconfig {first}, context "ctx"'  # current-context from the second


def test_home_kube_config(tmp_path: Path) -> None:
    simple(tmp_path / ".kube" / "config")
    conn = resolve(env={"HOME": str(tmp_path)})
    assert conn.base_url == "https://192.0.2.10:6443"


def test_kubeconfig_env_replaces_home(tmp_path: Path) -> None:
    simple(tmp_path / ".kube" / "config")
    with pytest.raises(KubeconfigError, match="none of the KUBECONFIG files exist"):
        resolve(env={"HOME": str(tmp_path), "KUBECONFIG": str(tmp_path / "missing")})


def test_nothing_found(tmp_path: Path) -> None:
    with pytest.raises(KubeconfigError, match="no Kubernetes configuration found") as info:
        resolve(env={"HOME": str(tmp_path)})
    assert "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set" in str(info.value)
    assert str(tmp_path / ".kube" / "config") in str(info.value)
    with pytest.raises(KubeconfigError, match="HOME is not set"):
        resolve(env={})


def test_empty_file_is_empty_config(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text("")
    with pytest.raises(KubeconfigError, match="current-context is not set"):
        resolve(str(path))


def test_invalid_yaml_names_line_without_quoting(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(f"users:\n- name: u\n  user:\n    token: {SECRET}\n   bad: [\n")
    with pytest.raises(KubeconfigError, match="not valid YAML") as info:
        resolve(str(path))
    assert info.value.filename == str(path)
    assert info.value.line is not None
    assert_no_secret(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", "must be a YAML mapping"),
        ("clusters: {}\n", "clusters must be a list"),
        ("clusters:\n- cluster: {server: https://192.0.2.1}\n", "an entry of clusters has no name"),
        ("users:\n- name: u\n  user: [1]\n", 'user "u": user must be a mapping'),
        ("current-context: [1]\n", "current-context must be a string"),
    ],
)
def test_structural_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "config"
    path.write_text(text)
    with pytest.raises(KubeconfigError, match=message):
        resolve(str(path))


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(KubeconfigError, match="not UTF-8"):
        resolve(str(path))


# ---------------------------------------------------------------- resolution errors


def test_unknown_context(tmp_path: Path) -> None:
    path = simple(tmp_path / "config")
    with pytest.raises(KubeconfigError, match=r'unknown context "x" \(contexts: "dev"\)') as info:
        resolve(path, "x")
    assert info.value.filename == path


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"user": "u"}, 'context "dev": names no cluster'),
        ({"cluster": "nope"}, 'context "dev": names cluster "nope", which is not defined'),
        ({"cluster": "c", "user": "nobody"}, 'context "dev": names user "nobody", which is not defined'),
    ],
)
def test_context_errors(tmp_path: Path, context: dict[str, str], message: str) -> None:
    path = kubeconfig(
        tmp_path / "config",
        clusters={"c": {"server": "https://192.0.2.1"}},
        users={"u": {}},
        contexts={"dev": context},
        current="dev",
    )
    with pytest.raises(KubeconfigError, match=message) as info:
        resolve(path)
    assert info.value.filename == path
    assert info.value.line is not None  # the line of the context entry


@pytest.mark.parametrize(
    ("cluster", "message"),
    [
        ({}, "has no server"),
        ({"server": "192.0.2.1:6443"}, "must be an https:// .*URL with a host"),
        ({"server": "https://192.0.2.1:notaport"}, "not a valid URL"),
        ({"server": f"https://admin:{SECRET}@192.0.2.1"}, "must not contain credentials"),
        ({"server": "https://192.0.2.1?x=1"}, "must not have a query"),
        ({"server": "https://192.0.2.1", "proxy-url": "socks5://192.0.2.9"}, "proxy-url is not supported"),
        ({"server": 6443}, "server must be a string"),
        (
            {
                "server": "https://192.0.2.1",
                "insecure-skip-tls-verify": True,
                "certificate-authority": "ca.pem",
            },
            "insecure-skip-tls-verify and certificate-authority cannot both be set",
        ),
        ({"server": "https://192.0.2.1", "insecure-skip-tls-verify": "yes"}, "must be true or false"),
        ({"server": "https://192.0.2.1", "certificate-authority-data": "!!notbase64"}, "not valid base64"),
        (
            {"server": "https://192.0.2.1", "certificate-authority-data": b64(b"junk")},
            "not a PEM certificate",
        ),
        ({"server": "https://192.0.2.1", "certificate-authority": "nope.pem"}, "nope.pem cannot be read"),
    ],
)
def test_cluster_errors(tmp_path: Path, cluster: dict[str, Any], message: str) -> None:
    path = simple(tmp_path / "config", cluster=cluster)
    with pytest.raises(KubeconfigError, match=message) as info:
        resolve(path)
    assert str(info.value).startswith(f"{path}:")
    assert 'cluster "c"' in str(info.value) or "cluster" in message
    assert_no_secret(info.value)


@pytest.mark.parametrize(
    ("user", "message"),
    [
        ({"token": SECRET, "username": "admin", "password": SECRET}, "more than one authentication method"),
        ({"tokenFile": "t", "exec": {"command": "x"}}, "more than one authentication method"),
        ({"username": "admin"}, "username is set but password is not"),
        ({"password": SECRET}, "password is set but username is not"),
        ({"client-certificate-data": b64(b"cert")}, "client-certificate is set but client-key is not"),
        ({"client-key-data": b64(SECRET.encode())}, "client-key is set but client-certificate is not"),
        (
            {"auth-provider": {"name": "gcp", "config": {"access-token": SECRET}}},
            'auth-provider "gcp" is not supported',
        ),
        ({"as": "root", "token": SECRET}, r"impersonation \(as\) is not supported"),
        ({"token": 12345}, "token must be a string"),
        ({"tokenFile": "missing-token"}, "tokenFile .*missing-token cannot be read"),
        ({"exec": {"apiVersion": "client.authentication.k8s.io/v1"}}, "exec has no command"),
        ({"exec": {"command": "plugin"}}, "exec has no apiVersion"),
        (
            {"exec": {"command": "plugin", "apiVersion": "client.authentication.k8s.io/v1alpha1"}},
            "exec apiVersion client.authentication.k8s.io/v1alpha1 is not supported",
        ),
        (
            {"exec": {"command": "plugin", "apiVersion": "client.authentication.k8s.io/v1"}},
            "interactiveMode must be set",
        ),
        (
            {
                "exec": {
                    "command": "plugin",
                    "apiVersion": "client.authentication.k8s.io/v1",
                    "interactiveMode": "Always",
                }
            },
            "without a terminal",
        ),
        (
            {
                "exec": {
                    "command": "p",
                    "apiVersion": "client.authentication.k8s.io/v1beta1",
                    "interactiveMode": "No",
                }
            },
            "interactiveMode must be Never, IfAvailable or Always",
        ),
        (
            {"exec": {"command": "p", "apiVersion": "client.authentication.k8s.io/v1beta1", "args": "--x"}},
            "args must be a list of strings",
        ),
        (
            {
                "exec": {
                    "command": "p",
                    "apiVersion": "client.authentication.k8s.io/v1beta1",
                    "env": [{"name": "A"}],
                }
            },
            r"env must be a list of \{name, value\}",
        ),
        ({"exec": "plugin"}, "exec must be a mapping"),
    ],
)
def test_user_errors(tmp_path: Path, user: dict[str, Any], message: str) -> None:
    path = simple(tmp_path / "config", user=user)
    with pytest.raises(KubeconfigError, match=message) as info:
        resolve(path)
    assert str(info.value).startswith(f"{path}:")
    assert 'user "u"' in str(info.value)
    assert_no_secret(info.value, b64(SECRET.encode()), "12345")


def test_bad_client_cert_does_not_leak(tmp_path: Path) -> None:
    path = simple(
        tmp_path / "config",
        user={"client-certificate-data": b64(b"not a cert"), "client-key-data": b64(SECRET.encode())},
    )
    with pytest.raises(KubeconfigError, match="client certificate and key cannot be loaded") as info:
        resolve(path)
    assert_no_secret(info.value, b64(SECRET.encode()))
    assert not list(Path(os.environ.get("TMPDIR", "/tmp")).glob("k8sgw-*.pem"))


# ---------------------------------------------------------------- auth choices


def test_token_file_wins_and_is_relative(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "token").write_text(SECRET + "\n")
    path = simple(tmp_path / "config", user={"token": "static", "tokenFile": "secrets/token"})
    conn = resolve(path)
    assert isinstance(conn.auth, TokenAuth)
    assert repr(conn.auth) == f"TokenAuth(token_file={str(tmp_path / 'secrets' / 'token')!r})"
    request = httpx.Request("GET", conn.base_url)
    flow = conn.auth.sync_auth_flow(request)
    assert next(flow).headers["Authorization"] == f"Bearer {SECRET}"


def test_basic_auth(tmp_path: Path) -> None:
    path = simple(tmp_path / "config", user={"username": "admin", "password": SECRET})
    conn = resolve(path)
    assert isinstance(conn.auth, BasicAuth)
    assert repr(conn.auth) == "BasicAuth(username='admin', password=<hidden>)"
    request = next(conn.auth.sync_auth_flow(httpx.Request("GET", conn.base_url)))
    assert request.headers["Authorization"] == "Basic " + b64(f"admin:{SECRET}".encode())
    assert_no_secret(conn)


def test_plain_http_sends_no_credentials(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = simple(tmp_path / "config", cluster={"server": "http://127.0.0.1:8080"}, user={"token": SECRET})
    conn = resolve(path)
    assert conn.base_url == "http://127.0.0.1:8080"
    assert conn.auth is None
    assert "credentials are not sent" in caplog.text
    assert SECRET not in caplog.text


def test_exec_config_is_passed_through(tmp_path: Path) -> None:
    ca = trustme.CA()
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem.bytes())
    path = simple(
        tmp_path / "config",
        cluster={
            "server": "https://192.0.2.1",
            "certificate-authority": "ca.pem",
            "tls-server-name": "api.example.org",
            "extensions": [{"name": "client.authentication.k8s.io/exec", "extension": {"audience": "k8sgw"}}],
        },
        user={
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1beta1",
                "command": "./bin/plugin",
                "args": [f"--secret={SECRET}"],
                "env": [{"name": "PLUGIN_SECRET", "value": SECRET}],
                "provideClusterInfo": True,
            }
        },
    )
    conn = resolve(path)
    assert isinstance(conn.auth, ExecAuth)
    assert conn.tls_server_name == "api.example.org"
    assert repr(conn.auth) == (
        f"ExecAuth(command={str(tmp_path / 'bin' / 'plugin')!r}, "
        "api_version='client.authentication.k8s.io/v1beta1')"
    )
    assert_no_secret(conn)


async def test_exec_plugin_gets_cluster_info(tmp_path: Path) -> None:
    ca = trustme.CA()
    script = tmp_path / "plugin.py"
    script.write_text(
        "import json, os\n"
        "info = json.loads(os.environ['KUBERNETES_EXEC_INFO'])\n"
        "open(os.environ['OUT'], 'w').write(json.dumps(info))\n"
        "print(json.dumps({'apiVersion': info['apiVersion'], 'kind': 'ExecCredential',"
        " 'status': {'token': 'plugin-token'}}))\n"
    )
    out = tmp_path / "info.json"
    path = simple(
        tmp_path / "config",
        cluster={"server": "https://192.0.2.1:6443", "certificate-authority-data": b64(ca.cert_pem.bytes())},
        user={
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1",
                "command": sys.executable,
                "args": [str(script)],
                "env": [{"name": "OUT", "value": str(out)}],
                "interactiveMode": "Never",
                "provideClusterInfo": True,
            }
        },
    )
    conn = resolve(path, env={"FROM_ENV": "1"})
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return httpx.Response(200)

    with trio.fail_after(5):
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler), auth=conn.auth) as client:
            await client.get(conn.base_url + "/version")
    assert seen == ["Bearer plugin-token"]
    assert json.loads(out.read_text()) == {
        "kind": "ExecCredential",
        "apiVersion": "client.authentication.k8s.io/v1",
        "spec": {
            "interactive": False,
            "cluster": {
                "server": "https://192.0.2.1:6443",
                "certificate-authority-data": b64(ca.cert_pem.bytes()),
            },
        },
    }


# ---------------------------------------------------------------- TLS against a real server


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def client_cert(ca: trustme.CA) -> trustme.LeafCert:
    return ca.issue_cert("k8sgw@example.org", common_name="k8sgw")


async def _serve_one(stream: trio.SSLStream[trio.SocketStream]) -> None:
    """Answer one HTTP/1.1 request with JSON saying what the client presented."""
    conn = h11.Connection(h11.SERVER)
    try:
        request = None
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await stream.receive_some(65536))
            elif isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                break
        if request is None:
            return
        peer = stream.getpeercert()
        subject = dict(item for rdn in peer["subject"] for item in rdn) if peer else {}
        headers = dict(request.headers)
        body = json.dumps(
            {
                "client_cn": subject.get("commonName"),
                "authorization": headers.get(b"authorization", b"").decode(),
            }
        ).encode()
        await stream.send_all(
            conn.send(
                h11.Response(
                    status_code=200,
                    headers=[("content-type", "application/json"), ("content-length", str(len(body)))],
                )
            )
        )
        await stream.send_all(conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))
        await stream.aclose()
    except (trio.BrokenResourceError, trio.ClosedResourceError, h11.RemoteProtocolError):
        return  # the client refused our certificate, or hung up


@pytest.fixture
def sni_seen() -> list[str | None]:
    return []


@pytest.fixture
def start_server(nursery: trio.Nursery, ca: trustme.CA, sni_seen: list[str | None]):
    async def start(*hostnames: str) -> str:
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ctx.sni_callback = lambda sslobj, name, ctx: sni_seen.append(name)
        ca.issue_cert(*hostnames).configure_cert(server_ctx)
        ca.configure_trust(server_ctx)
        server_ctx.verify_mode = ssl.CERT_OPTIONAL
        serve = partial(trio.serve_ssl_over_tcp, host="127.0.0.1", https_compatible=True)
        listeners = await nursery.start(serve, _serve_one, 0, server_ctx)
        port = listeners[0].transport_listener.socket.getsockname()[1]
        return f"https://127.0.0.1:{port}"

    return start


def assert_cert_verify_failed(exc: BaseException | None) -> None:
    """httpx over trio loses the message; the ssl error is further down the chain."""
    while exc is not None:
        if isinstance(exc, ssl.SSLCertVerificationError):
            return
        exc = exc.__cause__ or exc.__context__
    raise AssertionError("no SSLCertVerificationError in the chain")


async def _get(conn: Any, **kwargs: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(verify=conn.verify, auth=conn.auth) as client:
        response = await client.get(conn.base_url + "/version", **kwargs)
    response.raise_for_status()
    return response.json()


async def test_tls_ca_data_and_client_cert_data(tmp_path: Path, start_server, ca, client_cert) -> None:
    server = await start_server("127.0.0.1")
    path = simple(
        tmp_path / "config",
        cluster={"server": server, "certificate-authority-data": b64(ca.cert_pem.bytes())},
        user={
            "client-certificate-data": b64(client_cert.cert_chain_pems[0].bytes()),
            "client-key-data": b64(client_cert.private_key_pem.bytes()),
            "token": SECRET,
        },
    )
    conn = resolve(path)
    with trio.fail_after(5):
        answer = await _get(conn)
    assert answer["client_cn"] == "k8sgw"
    assert answer["authorization"] == f"Bearer {SECRET}"


async def test_tls_files_relative_to_kubeconfig(tmp_path: Path, start_server, ca, client_cert) -> None:
    server = await start_server("127.0.0.1")
    certs = tmp_path / "conf" / "certs"
    certs.mkdir(parents=True)
    ca.cert_pem.write_to_path(str(certs / "ca.pem"))
    client_cert.cert_chain_pems[0].write_to_path(str(certs / "client.pem"))
    client_cert.private_key_pem.write_to_path(str(certs / "client.key"))
    path = simple(
        tmp_path / "conf" / "config",
        cluster={
            "server": server,
            "certificate-authority": "certs/ca.pem",
            # -data wins over the file: a wrong file must not matter.
            "certificate-authority-data": b64(ca.cert_pem.bytes()),
        },
        user={"client-certificate": "certs/client.pem", "client-key": "certs/client.key"},
    )
    conn = resolve(path)
    assert conn.auth is None
    with trio.fail_after(5):
        assert (await _get(conn))["client_cn"] == "k8sgw"

    path = simple(
        tmp_path / "conf" / "config2",
        cluster={"server": server, "certificate-authority": "certs/ca.pem"},
    )
    with trio.fail_after(5):
        assert (await _get(resolve(path)))["client_cn"] is None


async def test_tls_wrong_ca_fails(tmp_path: Path, start_server) -> None:
    server = await start_server("127.0.0.1")
    path = simple(
        tmp_path / "config",
        cluster={"server": server, "certificate-authority-data": b64(trustme.CA().cert_pem.bytes())},
    )
    conn = resolve(path)
    with trio.fail_after(5), pytest.raises(httpx.ConnectError) as info:
        await _get(conn)
    assert_cert_verify_failed(info.value)


async def test_tls_insecure_skip_verify(tmp_path: Path, start_server, client_cert) -> None:
    server = await start_server("wrong.example.org")
    path = simple(tmp_path / "config", cluster={"server": server, "insecure-skip-tls-verify": True})
    conn = resolve(path)
    assert conn.verify is False
    with trio.fail_after(5):
        assert (await _get(conn))["client_cn"] is None

    # With a client certificate, verify is an unverifying SSLContext that still presents it.
    path = simple(
        tmp_path / "config2",
        cluster={"server": server, "insecure-skip-tls-verify": True},
        user={
            "client-certificate-data": b64(client_cert.cert_chain_pems[0].bytes()),
            "client-key-data": b64(client_cert.private_key_pem.bytes()),
        },
    )
    conn = resolve(path)
    assert isinstance(conn.verify, ssl.SSLContext)
    with trio.fail_after(5):
        assert (await _get(conn))["client_cn"] == "k8sgw"


async def test_tls_server_name(tmp_path: Path, start_server, ca, sni_seen) -> None:
    server = await start_server("api.example.org")
    path = simple(
        tmp_path / "config",
        cluster={
            "server": server,
            "certificate-authority-data": b64(ca.cert_pem.bytes()),
            "tls-server-name": "api.example.org",
        },
    )
    conn = resolve(path)
    assert conn.tls_server_name == "api.example.org"
    with trio.fail_after(5):
        await _get(conn, extensions={"sni_hostname": conn.tls_server_name})
        assert sni_seen == ["api.example.org"]
        with pytest.raises(httpx.ConnectError) as info:
            await _get(conn)
    assert_cert_verify_failed(info.value)
