"""Bearer tokens, TLS, and each fault switch."""

from __future__ import annotations

import ssl
from functools import partial

import httpx
import pytest
import trio
import trio.testing
import trustme

from k8sgw.devapi import DevCluster, serve_devapi

from .conftest import EventReader

SVC = "/api/v1/namespaces/default/services"


async def test_token_and_rotation_over_tls(nursery, cluster: DevCluster) -> None:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    with trio.fail_after(10):
        url = await nursery.start(partial(serve_devapi, cluster, ssl_context=server_ctx, token="one"))
        assert url.startswith("https://127.0.0.1:")
        async with httpx.AsyncClient(base_url=url, verify=client_ctx) as client:
            missing = await client.get(SVC)
            assert missing.status_code == 401 and missing.json()["reason"] == "Unauthorized"
            assert (await client.get("/healthz")).text == "ok"  # health checks need no token
            assert (await client.get(SVC, headers={"authorization": "Bearer one"})).status_code == 200
            cluster.set_token("two")
            assert (await client.get(SVC, headers={"authorization": "Bearer one"})).status_code == 401
            assert (await client.get(SVC, headers={"authorization": "Bearer two"})).status_code == 200


async def test_fail_next(client: httpx.AsyncClient, cluster: DevCluster) -> None:
    cluster.faults.fail_next(2, 429, "TooManyRequests", retry_after=3)
    with trio.fail_after(10):
        for _ in range(2):
            response = await client.get(SVC)
            assert response.status_code == 429 and response.headers["retry-after"] == "3"
            assert response.json()["details"]["retryAfterSeconds"] == 3
        assert (await client.get(SVC)).status_code == 200
        cluster.faults.fail_next(1, 500, "InternalError")
        assert (await client.get("/version")).json()["reason"] == "InternalError"


async def test_unavailable(client: httpx.AsyncClient, cluster: DevCluster) -> None:
    with trio.fail_after(10):
        cluster.faults.unavailable(True)
        for path in (SVC, "/readyz"):
            response = await client.get(path)
            assert response.status_code == 503 and response.json()["reason"] == "ServiceUnavailable"
        cluster.faults.unavailable(False)
        assert (await client.get(SVC)).status_code == 200


async def test_drop_watches_cuts_mid_stream(client: httpx.AsyncClient, cluster: DevCluster) -> None:
    with trio.fail_after(10):
        async with client.stream("GET", SVC, params={"watch": "true"}) as response:
            async with EventReader(response) as events:
                assert (await events.next())["type"] == "ADDED"
                await cluster.wait_watch_count(1)
                assert cluster.faults.drop_watches() == 1
                with pytest.raises(httpx.RemoteProtocolError):  # no terminating chunk
                    await events.rest()
        assert (await client.get(SVC)).status_code == 200  # the server itself is fine


async def test_stall_and_resume(client: httpx.AsyncClient, cluster: DevCluster) -> None:
    rv = str(cluster.resource_version)
    with trio.fail_after(10):
        cluster.faults.stall_watches()
        async with client.stream("GET", SVC, params={"watch": "true", "resourceVersion": rv}) as response:
            assert response.status_code == 200  # headers arrive, the body does not
            async with EventReader(response) as events, trio.open_nursery() as readers:
                send, recv = trio.open_memory_channel[dict](10)

                async def read() -> None:
                    while True:
                        await send.send(await events.next())

                readers.start_soon(read)
                cluster.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "late"}})
                await trio.testing.wait_all_tasks_blocked(cushion=0.05)  # the server is parked on the stall
                assert recv.statistics().current_buffer_used == 0
                cluster.faults.resume()
                event = await recv.receive()
                assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "late")
                readers.cancel_scope.cancel()
