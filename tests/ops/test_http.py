"""serve_ops over a real socket: routes, HEAD, 404/405, a raising route, malformed requests."""

from __future__ import annotations

from functools import partial

import httpx
import pytest
import trio

from k8sgw.ops import http as ops_http
from k8sgw.ops.http import serve_ops


def boom() -> tuple[int, str, bytes]:
    raise RuntimeError("route failed")


ROUTES = {
    "/health": lambda: (200, "text/plain; charset=utf-8", b"OK"),
    "/ready": lambda: (503, "text/plain; charset=utf-8", b"k8s_gateway example.org.\n"),
    "/boom": boom,
}


@pytest.fixture
async def addr(nursery) -> tuple[str, int]:
    return await nursery.start(partial(serve_ops, "127.0.0.1", 0, ROUTES))


@pytest.fixture
async def client():
    async with httpx.AsyncClient(timeout=5) as c:
        yield c


async def raw(addr: tuple[str, int], data: bytes, *, eof: bool = False) -> bytes:
    stream = await trio.open_tcp_stream(*addr)
    async with stream:
        await stream.send_all(data)
        if eof:
            await stream.send_eof()
        out = b""
        while chunk := await stream.receive_some(65536):
            out += chunk
    return out


async def test_routes(addr, client):
    with trio.fail_after(10):
        host, port = addr
        assert host == "127.0.0.1" and port > 0
        r = await client.get(f"http://{host}:{port}/health")
        assert (r.status_code, r.text, r.headers["content-type"]) == (200, "OK", "text/plain; charset=utf-8")
        r = await client.get(f"http://{host}:{port}/ready?verbose=1")
        assert (r.status_code, r.text) == (503, "k8s_gateway example.org.\n")
        r = await client.head(f"http://{host}:{port}/health")
        assert (r.status_code, r.content, r.headers["content-length"]) == (200, b"", "2")
        r = await client.get(f"http://{host}:{port}/nothing")
        assert r.status_code == 404
        r = await client.post(f"http://{host}:{port}/health", content=b"x" * 100)
        assert (r.status_code, r.headers["allow"]) == (405, "GET, HEAD")


async def test_keep_alive_serves_several_requests_on_one_connection(addr):
    with trio.fail_after(10):
        request = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
        last = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        out = await raw(addr, request * 2 + last)
        assert out.count(b"HTTP/1.1 200 ") == 3


async def test_raising_route_is_500_and_logged(addr, client, caplog):
    with trio.fail_after(10):
        r = await client.get(f"http://{addr[0]}:{addr[1]}/boom")
        assert r.status_code == 500
        assert "ops endpoint /boom failed" in caplog.text
        assert (await client.get(f"http://{addr[0]}:{addr[1]}/health")).status_code == 200


@pytest.mark.parametrize(
    "data",
    [
        b"garbage\r\n\r\n",
        b"GET /health HTTP/1.1\r\n\r\n",  # no Host
        b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"\x00\xff" * 10 + b"\r\n\r\n",
    ],
)
async def test_malformed_requests_get_400_and_server_lives(addr, client, data):
    with trio.fail_after(10):
        out = await raw(addr, data)
        assert out.startswith((b"HTTP/1.1 400 ", b"HTTP/1.1 505 "))
        assert (await client.get(f"http://{addr[0]}:{addr[1]}/health")).status_code == 200


async def test_oversized_request_and_early_close(addr, client):
    with trio.fail_after(10):
        # Headers that never end and pass the 16 KiB limit: refused, not buffered forever.
        out = await raw(addr, b"GET /health HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 17000)
        assert out.startswith(b"HTTP/1.1 431 ")
        # The client half-closes mid-request: h11 calls it malformed, and the server carries on.
        assert (await raw(addr, b"GET /hea", eof=True)).startswith(b"HTTP/1.1 400 ")
        assert (await client.get(f"http://{addr[0]}:{addr[1]}/health")).status_code == 200


async def test_idle_connection_times_out(addr, autojump_clock):
    with trio.fail_after(ops_http.READ_TIMEOUT + 5):
        stream = await trio.open_tcp_stream(*addr)
        async with stream:
            start = trio.current_time()
            assert await stream.receive_some(100) == b""
            assert trio.current_time() - start == pytest.approx(ops_http.READ_TIMEOUT)


async def test_connection_limit(addr, client, monkeypatch):
    with trio.fail_after(10):
        streams = [await trio.open_tcp_stream(*addr) for _ in range(ops_http.MAX_CONNECTIONS)]
        await trio.testing.wait_all_tasks_blocked()
        extra = await trio.open_tcp_stream(*addr)
        assert await extra.receive_some(100) == b""  # closed at once
        await extra.aclose()
        for s in streams:
            await s.aclose()
        await trio.testing.wait_all_tasks_blocked()
        assert (await client.get(f"http://{addr[0]}:{addr[1]}/health")).status_code == 200


async def test_bind_failure_raises(addr):
    with pytest.raises(OSError):
        await serve_ops(addr[0], addr[1], ROUTES)
