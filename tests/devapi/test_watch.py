"""Watch streams: start points, 410 too-old, bookmarks, timeouts, WatchList and selector transitions."""

from __future__ import annotations

import httpx
import trio
import trio.testing

from k8sgw.devapi import DevCluster

from .conftest import EventReader

ING = "/apis/networking.k8s.io/v1/ingresses"
SVC = "/api/v1/namespaces/default/services"


def _ingress(name: str, ip: str, labels: dict[str, str] | None = None) -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": "default", "labels": labels or {}},
        "spec": {"rules": [{"host": f"{name}.example.org"}]},
        "status": {"loadBalancer": {"ingress": [{"ip": ip}]}},
    }


async def test_watch_from_empty_rv_then_live(client: httpx.AsyncClient, cluster: DevCluster) -> None:
    with trio.fail_after(10):
        async with client.stream("GET", ING, params={"watch": "true"}) as response:
            assert response.status_code == 200 and response.headers["cache-control"] == "no-cache, private"
            async with EventReader(response) as events:
                first = await events.next()
                assert first["type"] == "ADDED" and first["object"]["metadata"]["name"] == "myservicea"
                assert first["object"]["kind"] == "Ingress"
                cluster.apply(_ingress("myservicea", "192.0.2.12"))
                modified = await events.next()
                assert modified["type"] == "MODIFIED"
                assert modified["object"]["status"]["loadBalancer"]["ingress"] == [{"ip": "192.0.2.12"}]
                assert modified["object"]["metadata"]["resourceVersion"] == str(cluster.resource_version)
                cluster.delete("networking.k8s.io/v1", "Ingress", "default", "myservicea")
                deleted = await events.next()
                assert deleted["type"] == "DELETED" and deleted["object"]["metadata"]["name"] == "myservicea"


async def test_watch_from_rv_replays_history_only(client: httpx.AsyncClient, cluster: DevCluster) -> None:
    rv = cluster.resource_version
    cluster.apply(_ingress("b", "192.0.2.11"))
    cluster.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "other"}})  # other kind
    with trio.fail_after(10):
        async with client.stream("GET", ING, params={"watch": "1", "resourceVersion": str(rv)}) as response:
            async with EventReader(response) as events:
                event = await events.next()
                assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "b")
                cluster.apply(_ingress("c", "192.0.2.13"))
                event = await events.next()
                assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "c")


async def test_watch_too_old_is_200_and_one_error_event(
    client: httpx.AsyncClient, cluster: DevCluster
) -> None:
    rv = cluster.resource_version
    cluster.apply(_ingress("b", "192.0.2.11"))
    cluster.compact()
    with trio.fail_after(10):
        async with client.stream(
            "GET", ING, params={"watch": "true", "resourceVersion": str(rv)}
        ) as response:
            assert response.status_code == 200
            async with EventReader(response) as reader:
                events = await reader.rest()
    assert events == [
        {
            "type": "ERROR",
            "object": {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": f"too old resource version: {rv} ({cluster.compacted_rv})",
                "reason": "Expired",
                "code": 410,
            },
        }
    ]


async def test_bookmarks_and_timeout(client: httpx.AsyncClient, cluster: DevCluster) -> None:
    params = {
        "watch": "true",
        "resourceVersion": str(cluster.resource_version),
        "allowWatchBookmarks": "true",
    }
    with trio.fail_after(10):
        async with client.stream("GET", SVC, params=params) as response:
            async with EventReader(response) as reader:
                event = await reader.next()  # after bookmark_interval=0.2 s of silence
            assert event == {
                "type": "BOOKMARK",
                "object": {
                    "kind": "Service",
                    "apiVersion": "v1",
                    "metadata": {"resourceVersion": str(cluster.resource_version)},
                },
            }
        cluster.bookmark_interval = 60
        start = trio.current_time()
        async with client.stream("GET", SVC, params={**params, "timeoutSeconds": "1"}) as response:
            async with EventReader(response) as reader:
                events = await reader.rest()
        assert 1 <= trio.current_time() - start < 3
        assert [e["type"] for e in events] == ["BOOKMARK"]  # sent just before the timeout end


async def test_send_initial_events(client: httpx.AsyncClient, cluster: DevCluster) -> None:
    params = {
        "watch": "true",
        "sendInitialEvents": "true",
        "resourceVersionMatch": "NotOlderThan",
        "allowWatchBookmarks": "true",
    }
    with trio.fail_after(10):
        async with client.stream("GET", "/api/v1/services", params=params) as response:
            async with EventReader(response) as events:
                names = [(await events.next())["object"]["metadata"]["name"] for _ in range(3)]
                assert sorted(names) == ["dns1", "shop", "web"]
                end = await events.next()
                assert end["type"] == "BOOKMARK"
                assert end["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
                assert end["object"]["metadata"]["resourceVersion"] == str(cluster.resource_version)
        bad = await client.get("/api/v1/services", params={"watch": "true", "sendInitialEvents": "true"})
        assert bad.status_code == 422


async def test_label_selector_transitions(client: httpx.AsyncClient, cluster: DevCluster) -> None:
    params = {"watch": "true", "labelSelector": "dns=on"}
    with trio.fail_after(10):
        async with client.stream("GET", ING, params=params) as response:
            async with EventReader(response) as events:
                cluster.apply(_ingress("x", "192.0.2.1"))  # not selected: no event
                cluster.apply(_ingress("x", "192.0.2.1", {"dns": "on"}))
                assert (await events.next())["type"] == "ADDED"
                cluster.apply(_ingress("x", "192.0.2.2", {"dns": "on"}))
                assert (await events.next())["type"] == "MODIFIED"
                cluster.apply(_ingress("x", "192.0.2.2", {"dns": "off"}))
                left = await events.next()
                assert left["type"] == "DELETED" and left["object"]["metadata"]["labels"] == {"dns": "off"}


async def test_watch_ends_when_client_leaves(client: httpx.AsyncClient, cluster: DevCluster) -> None:
    with trio.fail_after(10):
        async with client.stream("GET", ING, params={"watch": "true"}) as response:
            async with EventReader(response) as reader:
                await reader.next()
            assert cluster.watch_count == 1
        await trio.testing.wait_all_tasks_blocked(cushion=0.05)
        assert cluster.watch_count == 0  # the server noticed the disconnect and unregistered the watch
