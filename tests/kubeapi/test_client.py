"""KubeClient: JSON GETs, b"\\n" framing of streams, and the mapping of every failure to kubeapi.errors."""

from __future__ import annotations

import email.utils
import gc
import json
import time

import httpx
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from k8sgw.devapi.errors import status_body
from k8sgw.kubeapi import client as client_module
from k8sgw.kubeapi.client import KubeClient
from k8sgw.kubeapi.connection import Connection
from k8sgw.kubeapi.errors import (
    ApiProtocolError,
    ApiStatusError,
    ApiUnreachableError,
    ForbiddenError,
    GoneError,
    ServerError,
    TooManyRequestsError,
    UnauthorizedError,
)
from tests.publicapi import public_callables

TOKEN = "s3cr3t-token-value"


class BearerAuth(httpx.Auth):
    def auth_flow(self, request):
        request.headers["Authorization"] = f"Bearer {TOKEN}"
        yield request


class ChunkStream(httpx.AsyncByteStream):
    """A response body given as chunks; an exception in the list is raised at that point."""

    def __init__(self, chunks):
        self._chunks = list(chunks)

    def __aiter__(self):
        return self

    async def __anext__(self) -> bytes:
        await trio.lowlevel.checkpoint()
        if not self._chunks:
            raise StopAsyncIteration
        chunk = self._chunks.pop(0)
        if isinstance(chunk, BaseException):
            raise chunk
        return chunk


def client_for(handler, **conn) -> KubeClient:
    conn.setdefault("base_url", "https://user:pw@api.example.org:6443")
    return KubeClient(Connection(**conn), transport=httpx.MockTransport(handler))


async def test_get_json_params_headers_and_sni():
    seen: list[httpx.Request] = []

    def handler(request):
        seen.append(request)
        return httpx.Response(200, json={"kind": "ServiceList", "items": []})

    with trio.fail_after(5):
        async with client_for(handler, auth=BearerAuth(), tls_server_name="kubernetes.default") as kube:
            data = await kube.get_json(
                "/api/v1/services", {"limit": 500, "continue": None, "watch": True, "labelSelector": "a=b"}
            )
    assert data == {"kind": "ServiceList", "items": []}
    (request,) = seen
    assert request.url.path == "/api/v1/services"
    assert dict(request.url.params) == {"limit": "500", "watch": "true", "labelSelector": "a=b"}
    assert request.headers["Accept"] == "application/json"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.extensions["sni_hostname"] == "kubernetes.default"


async def test_no_sni_extension_without_tls_server_name():
    seen: list[httpx.Request] = []

    def handler(request):
        seen.append(request)
        return httpx.Response(200, json={})

    async with client_for(handler) as kube:
        await kube.get_json("/version")
    assert "sni_hostname" not in seen[0].extensions


@pytest.mark.parametrize(
    ("code", "reason", "cls"),
    [
        (401, "Unauthorized", UnauthorizedError),
        (403, "Forbidden", ForbiddenError),
        (410, "Expired", GoneError),
        (503, "ServiceUnavailable", ServerError),
        (422, "Invalid", ApiStatusError),
    ],
)
async def test_status_body_maps_to_error(code, reason, cls):
    message = 'ingresses.networking.k8s.io is forbidden: User "system:serviceaccount:dns:k8sgw" cannot list'

    def handler(request):
        return httpx.Response(code, json=status_body(code, reason, message))

    async with client_for(handler, auth=BearerAuth()) as kube:
        with pytest.raises(cls) as info:
            await kube.get_json("/apis/networking.k8s.io/v1/ingresses")
    exc = info.value
    assert type(exc) is cls
    assert (exc.code, exc.reason, exc.message) == (code, reason, message)
    assert TOKEN not in str(exc)


async def test_non_json_error_body_is_capped():
    html = "<html>" + "x" * 5000 + "</html>"

    def handler(request):
        return httpx.Response(502, text=html)

    async with client_for(handler) as kube:
        with pytest.raises(ServerError) as info:
            await kube.get_json("/api/v1/services")
    assert info.value.code == 502
    assert info.value.reason == "Bad Gateway"
    assert len(info.value.message) < 260
    assert info.value.message.startswith("<html>xxx")


@pytest.mark.parametrize(
    ("headers", "details", "expected"),
    [
        ({"Retry-After": "7"}, {}, 7.0),
        ({}, {"details": {"retryAfterSeconds": 3}}, 3.0),
        ({"Retry-After": "2"}, {"details": {"retryAfterSeconds": 3}}, 2.0),  # header wins
        ({"Retry-After": "soon"}, {}, None),
    ],
)
async def test_429_retry_after(headers, details, expected):
    def handler(request):
        return httpx.Response(
            429, headers=headers, json=status_body(429, "TooManyRequests", "slow down", **details)
        )

    async with client_for(handler) as kube:
        with pytest.raises(TooManyRequestsError) as info:
            await kube.get_json("/api/v1/services")
    assert info.value.retry_after == expected


async def test_429_retry_after_http_date():
    when = email.utils.formatdate(time.time() + 60, usegmt=True)

    def handler(request):
        return httpx.Response(429, headers={"Retry-After": when}, text="")

    async with client_for(handler) as kube:
        with pytest.raises(TooManyRequestsError) as info:
            await kube.get_json("/api/v1/services")
    assert 55 <= info.value.retry_after <= 61


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("[Errno 111] Connection refused"),
        httpx.ReadTimeout(""),
        httpx.RemoteProtocolError("x"),
    ],
)
async def test_transport_errors_map_to_unreachable(exc):
    def handler(request):
        raise exc

    async with client_for(handler, auth=BearerAuth()) as kube:
        with pytest.raises(ApiUnreachableError) as info:
            await kube.get_json("/api/v1/services", {"limit": 1})
    assert info.value.__cause__ is exc
    text = str(info.value)
    assert "api.example.org:6443/api/v1/services" in text
    assert type(exc).__name__ in text
    assert TOKEN not in text and "pw@" not in text and "user:" not in text


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'"str"'])
async def test_2xx_that_is_not_a_json_object(body):
    def handler(request):
        return httpx.Response(200, content=body)

    async with client_for(handler) as kube:
        with pytest.raises(ApiProtocolError):
            await kube.get_json("/api/v1/services")


async def collect_lines(chunks) -> list[bytes]:
    def handler(request):
        return httpx.Response(200, stream=ChunkStream(chunks))

    async with client_for(handler) as kube, kube.stream_lines("/api/v1/services", {"watch": True}) as lines:
        return [line async for line in lines]


async def test_stream_lines_splits_on_newline_only():
    value = "a\u2028b\u0085c\u2029d\x0be\x1cf"
    event = json.dumps({"type": "ADDED", "object": {"v": value}}, ensure_ascii=False).encode()
    # one event split across chunks (also inside a multi-byte character), blank lines, no final \n
    chunks = [
        b'{"type":"BOOK',
        b'MARK"}\n\n',
        event[:20],
        event[20:31],
        event[31:] + b"\n \r\n",
        b'{"last":1}',
    ]
    lines = await collect_lines(chunks)
    assert lines == [b'{"type":"BOOKMARK"}', event, b'{"last":1}']
    assert json.loads(lines[1])["object"]["v"] == value


async def test_stream_lines_large_line_without_cap():
    big = b'{"x":"' + b"y" * 3_000_000 + b'"}'
    chunks = [big[i : i + 65536] for i in range(0, len(big), 65536)] + [b"\n"]
    assert await collect_lines(chunks) == [big]


@given(
    lines=st.lists(st.binary(min_size=1).map(lambda b: b.replace(b"\n", b"") or b"x"), max_size=6),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=8),
)
async def test_stream_lines_any_chunking(lines, cuts):
    lines = [line for line in lines if line.strip()]
    body = b"".join(line + b"\n" for line in lines)
    points = sorted({c % (len(body) + 1) for c in cuts} | {0, len(body)})
    chunks = [body[a:b] for a, b in zip(points, points[1:], strict=False)]
    assert await collect_lines(chunks) == lines


async def test_stream_error_status_raises_on_entry():
    def handler(request):
        return httpx.Response(
            403, json=status_body(403, "Forbidden", "services is forbidden"), headers={"X": "y"}
        )

    async with client_for(handler) as kube:
        with pytest.raises(ForbiddenError) as info:
            async with kube.stream_lines("/api/v1/services", {"watch": True}):
                pytest.fail("entered")  # pragma: no cover
    assert info.value.message == "services is forbidden"


async def test_stream_cut_mid_body_is_unreachable():
    def handler(request):
        return httpx.Response(200, stream=ChunkStream([b'{"a":1}\n{"b":', httpx.ReadError("reset")]))

    got = []
    async with client_for(handler) as kube:
        with pytest.raises(ApiUnreachableError) as info:
            async with kube.stream_lines("/api/v1/services") as lines:
                async for line in lines:
                    got.append(line)
    assert got == [b'{"a":1}']
    assert isinstance(info.value.__cause__, httpx.ReadError)


async def test_stream_connect_error_is_unreachable():
    def handler(request):
        raise httpx.ConnectError("refused")

    async with client_for(handler) as kube:
        with pytest.raises(ApiUnreachableError):
            async with kube.stream_lines("/api/v1/services"):
                pytest.fail("entered")  # pragma: no cover


async def test_leaving_a_stream_early_leaves_no_generator_behind():
    # httpx's body iterators are nested async generators; one left suspended makes trio warn
    # (ResourceWarning, an error under filterwarnings=error) when the GC finds it (httpx #3686).
    def handler(request):
        return httpx.Response(200, stream=ChunkStream([b'{"a":1}\n{"b":2}\n', b'{"c":3}\n']))

    async with client_for(handler) as kube:
        for _ in range(3):
            async with kube.stream_lines("/api/v1/services") as lines:
                async for _line in lines:
                    break
            gc.collect()
        with pytest.raises(KeyError):
            async with kube.stream_lines("/api/v1/services") as lines:
                async for _line in lines:
                    raise KeyError("stop")
        gc.collect()
    await trio.lowlevel.checkpoint()


def test_all_matches_public_names():
    assert public_callables(client_module) == set(client_module.__all__)
