"""The dev API server (k8sgw/devapi) against the real kube-apiserver: the same requests to both, and
the parts k8sgw and kubectl depend on compared (discovery, list and watch framing, resourceVersions
and BOOKMARKs, error Status bodies, pagination, the Table kubectl prints)."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import AsyncIterator
from contextlib import aclosing, asynccontextmanager
from functools import partial
from typing import Any

import httpx
import pytest
import trio
import yaml

from k8sgw.devapi import DevCluster, serve_devapi
from tests.realapi.conftest import kubectl

OBJECTS = """
apiVersion: v1
kind: Namespace
metadata: {name: cmp}
---
apiVersion: v1
kind: Service
metadata: {name: a, namespace: cmp, labels: {app: web}}
spec: {type: LoadBalancer, ports: [{name: http, port: 80, protocol: TCP}, {name: https, port: 443, protocol: TCP}]}
---
apiVersion: v1
kind: Service
metadata: {name: b, namespace: cmp}
spec: {ports: [{port: 53, protocol: UDP}]}
---
apiVersion: v1
kind: Service
metadata: {name: c, namespace: cmp}
spec: {ports: [{port: 8080}]}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: cmp}
spec: {rules: [{host: web.cmp.test}]}
"""

# Leaving a watch stream early (as these tests do once they have what they compare) leaves httpcore's
# body generators to the GC, like httpx's own (see pyproject's filterwarnings).
pytestmark = pytest.mark.filterwarnings(
    "ignore:Async generator 'httpcore:ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning"
)

GROUPS = {"": "v1", "networking.k8s.io": "v1", "discovery.k8s.io": "v1", "gateway.networking.k8s.io": "v1"}
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


class Pair:
    """The same request to the dev server and to the real one."""

    def __init__(
        self, dev: httpx.AsyncClient, real: httpx.AsyncClient, ns: str, dev_cluster: DevCluster
    ) -> None:
        self.dev, self.real, self.ns, self.dev_cluster = dev, real, ns, dev_cluster

    async def get(self, path: str, **kw) -> tuple[httpx.Response, httpx.Response]:
        return await self.dev.get(path, **kw), await self.real.get(path, **kw)

    async def json(self, path: str, **kw) -> tuple[dict[str, Any], dict[str, Any]]:
        dev, real = await self.get(path, **kw)
        assert (dev.status_code, real.status_code) == (200, 200), (path, dev.text, real.text)
        return dev.json(), real.json()


_namespaces = itertools.count()


@pytest.fixture
async def pair(nursery, real_cluster) -> AsyncIterator[Pair]:
    # A namespace of its own per test: the last one may still be terminating.
    ns = f"cmp{next(_namespaces)}"
    objects = OBJECTS.replace("cmp", ns)
    await kubectl(real_cluster, "apply", "-f", "-", stdin=objects)
    dev_cluster = DevCluster(bookmark_interval=0.5)
    for doc in yaml.safe_load_all(objects):
        dev_cluster.apply(doc)
    dev_url = await nursery.start(partial(serve_devapi, dev_cluster))
    timeout = httpx.Timeout(10.0, read=30.0)
    async with (
        httpx.AsyncClient(base_url=dev_url, timeout=timeout) as dev,
        httpx.AsyncClient(
            base_url=real_cluster.api_url, verify=real_cluster.admin_ssl_context(), timeout=timeout
        ) as real,
    ):
        try:
            yield Pair(dev, real, ns, dev_cluster)
        finally:
            await kubectl(real_cluster, "delete", "namespace", ns, "--wait=false")


def _resources(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in doc["resources"]}


async def test_discovery_documents_agree(pair: Pair):
    dev, real = await pair.json("/api")
    assert (dev["kind"], dev["versions"]) == (real["kind"], real["versions"]) == ("APIVersions", ["v1"])

    dev, real = await pair.json("/apis")
    real_groups = {g["name"]: g for g in real["groups"]}
    for group in dev["groups"]:
        theirs = real_groups.get(group["name"])
        if theirs is None:  # external-dns's CRD is installed only by the test that installs it later
            continue
        assert group["preferredVersion"] == theirs["preferredVersion"], group["name"]
        assert set(group) == set(theirs), group["name"]

    for group, version in GROUPS.items():
        path = f"/apis/{group}/{version}" if group else f"/api/{version}"
        dev, real = await pair.json(path)
        assert (dev["kind"], dev["groupVersion"]) == (real["kind"], real["groupVersion"])
        real_by_name = _resources(real)
        for name, ours in _resources(dev).items():
            if name not in real_by_name:  # the dev server serves only what k8sgw reads, plus namespaces
                continue
            theirs = real_by_name[name]
            for key in ("name", "singularName", "namespaced", "kind", "shortNames", "categories"):
                assert ours.get(key) == theirs.get(key), (
                    f"{path} {name}: {key}: {ours.get(key)} != {theirs.get(key)}"
                )
            assert sorted(ours["verbs"]) == sorted(theirs["verbs"]), f"{path} {name} verbs"
        # A /status subresource on one side only would send kubectl's --subresource=status astray.
        ours_by_name = _resources(dev)
        for name in (n for n in ours_by_name if "/" not in n and n in real_by_name):
            status = f"{name}/status"
            assert (status in ours_by_name) == (status in real_by_name), f"{path} {status}"

    dev, real = await pair.json("/version")
    assert set(dev) <= set(real)
    assert all(isinstance(v, str) for v in dev.values())


async def test_lists_page_alike(pair: Pair):
    path = f"/api/v1/namespaces/{pair.ns}/services"
    pages: dict[str, list[dict[str, Any]]] = {}
    for side, client in (("dev", pair.dev), ("real", pair.real)):
        token, got = None, []
        while True:
            params = {"limit": 2} | ({"continue": token} if token else {})
            page = (await client.get(path, params=params)).json()
            got.append(page)
            token = page["metadata"].get("continue")
            if not token:
                break
        pages[side] = got
    shape = [
        [
            (
                p["kind"],
                p["apiVersion"],
                sorted(p["metadata"]),
                p["metadata"].get("remainingItemCount"),
                [i["metadata"]["name"] for i in p["items"]],
                sorted({k for i in p["items"] for k in i}),
            )
            for p in side
        ]
        for side in (pages["dev"], pages["real"])
    ]
    assert shape[0] == shape[1]
    assert shape[0][0][2] == ["continue", "remainingItemCount", "resourceVersion"]
    for side in pages.values():  # every page carries the first page's snapshot
        assert len({p["metadata"]["resourceVersion"] for p in side}) == 1

    dev, real = await pair.get(path, params={"limit": 1, "continue": "not-a-token"})
    assert (
        (dev.status_code, dev.json()["reason"])
        == (real.status_code, real.json()["reason"])
        == (400, "BadRequest")
    )

    # Custom resources keep kind/apiVersion on list items; built-ins do not.
    dev, real = await pair.json(f"/apis/networking.k8s.io/v1/namespaces/{pair.ns}/ingresses")
    assert sorted(dev["items"][0]) == sorted(real["items"][0])


def _status_shape(body: dict[str, Any]) -> tuple:
    details = body.get("details") or {}
    return (
        body["kind"],
        body["apiVersion"],
        body["status"],
        body["reason"],
        body["code"],
        body["message"],
        details.get("name"),
        details.get("group"),
        details.get("kind"),
    )


async def test_error_status_bodies_agree(pair: Pair):
    for path in (
        f"/api/v1/namespaces/{pair.ns}/services/nope",
        f"/apis/networking.k8s.io/v1/namespaces/{pair.ns}/ingresses/nope",
    ):
        dev, real = await pair.get(path)
        assert (dev.status_code, real.status_code) == (404, 404)
        assert _status_shape(dev.json()) == _status_shape(real.json())

    body = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "a"},
        "spec": {"ports": [{"port": 1}]},
    }
    dev = await pair.dev.post(f"/api/v1/namespaces/{pair.ns}/services", json=body)
    real = await pair.real.post(f"/api/v1/namespaces/{pair.ns}/services", json=body)
    assert (dev.status_code, real.status_code) == (409, 409)
    assert _status_shape(dev.json()) == _status_shape(real.json())

    dev, real = await pair.get(f"/api/v1/namespaces/{pair.ns}/services", params={"resourceVersion": "abc"})
    assert (dev.status_code, dev.json()["reason"]) == (real.status_code, real.json()["reason"])


@asynccontextmanager
async def _watch(
    client: httpx.AsyncClient, path: str, params: dict[str, Any]
) -> AsyncIterator[AsyncIterator[dict]]:
    async with client.stream("GET", path, params={"watch": "true", **params}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/json")

        async def events() -> AsyncIterator[dict]:
            buffer = b""
            async for chunk in response.aiter_bytes():
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    yield json.loads(line)

        async with aclosing(events()) as stream:
            yield stream


async def _initial_events(client: httpx.AsyncClient, path: str) -> list[dict]:
    """A WatchList: the initial ADDEDs, then the BOOKMARK that ends them."""
    params = {
        "sendInitialEvents": "true",
        "resourceVersionMatch": "NotOlderThan",
        "allowWatchBookmarks": "true",
        "timeoutSeconds": "5",
    }
    seen = []
    with trio.fail_after(10):
        async with _watch(client, path, params) as events:
            async for event in events:
                seen.append(event)
                if event["type"] == "BOOKMARK":
                    break
    return seen


async def test_watch_framing_resource_versions_and_bookmarks_agree(pair: Pair):
    path = f"/api/v1/namespaces/{pair.ns}/services"
    lists = await pair.json(path)
    for client, listed in ((pair.dev, lists[0]), (pair.real, lists[1])):
        seen = await _initial_events(client, path)
        assert [e["type"] for e in seen] == ["ADDED"] * 3 + ["BOOKMARK"]
        assert sorted(e["object"]["metadata"]["name"] for e in seen[:3]) == ["a", "b", "c"]
        assert all(e["object"]["kind"] == "Service" and e["object"]["apiVersion"] == "v1" for e in seen[:3])
        end = seen[-1]["object"]
        assert (end["kind"], end["apiVersion"]) == ("Service", "v1")
        assert end["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
        assert int(end["metadata"]["resourceVersion"]) >= int(listed["metadata"]["resourceVersion"])

    # From a list's resourceVersion: later events only, each carrying its own newer resourceVersion.
    for client, listed in ((pair.dev, lists[0]), (pair.real, lists[1])):
        rv = listed["metadata"]["resourceVersion"]
        with trio.fail_after(10):
            async with _watch(client, path, {"resourceVersion": rv, "timeoutSeconds": "5"}) as events:
                created = await client.post(
                    path,
                    json={
                        "apiVersion": "v1",
                        "kind": "Service",
                        "metadata": {"name": "d"},
                        "spec": {"ports": [{"port": 1}]},
                    },
                )
                assert created.status_code == 201
                event = await events.__anext__()
        assert event["type"] == "ADDED" and event["object"]["metadata"]["name"] == "d"
        assert int(event["object"]["metadata"]["resourceVersion"]) > int(rv)
        assert (await client.delete(f"{path}/d")).status_code == 200


async def test_a_stale_resource_version_is_one_error_event_410(pair: Pair, real_cluster):
    """Both answer 200 and one ERROR event with a 410 Expired Status once their history is compacted.

    Ingresses, which the real server here watches from etcd without its watch cache: a fresh watch
    cache replays anything older than its window from its initial state instead of refusing it.
    """
    path = f"/apis/networking.k8s.io/v1/namespaces/{pair.ns}/ingresses"
    pair.dev_cluster.compact()
    await trio.to_thread.run_sync(real_cluster.compact)
    for side, client in (("dev", pair.dev), ("real", pair.real)):
        with trio.fail_after(10):
            async with _watch(client, path, {"resourceVersion": "1", "timeoutSeconds": "5"}) as events:
                event = await events.__anext__()
        assert event["type"] == "ERROR", (side, event)
        status = event["object"]
        assert (status["kind"], status["status"], status["code"], status["reason"]) == (
            "Status",
            "Failure",
            410,
            "Expired",
        )
        # The watch cache says "too old resource version: 1 (N)"; etcd's path (used here) says this.
        expected = (
            "The resourceVersion for the provided watch is too old."
            if side == "real"
            else "too old resource version: 1 ("
        )
        assert status["message"].startswith(expected), (side, status["message"])


async def test_tables_kubectl_prints_agree(pair: Pair, real_cluster):
    for path in (
        f"/api/v1/namespaces/{pair.ns}/services",
        f"/apis/networking.k8s.io/v1/namespaces/{pair.ns}/ingresses",
    ):
        dev, real = await pair.json(path, headers={"Accept": TABLE})
        assert (
            (dev["kind"], dev["apiVersion"])
            == (real["kind"], real["apiVersion"])
            == ("Table", "meta.k8s.io/v1")
        )
        cols = [
            [(c["name"], c["type"], c.get("priority", 0)) for c in t["columnDefinitions"]]
            for t in (dev, real)
        ]
        assert cols[0] == cols[1], path
        # The real server allocates cluster IPs and node ports; the dev server allocates nothing.
        skip = {i for i, (name, _, _) in enumerate(cols[1]) if name in ("Age", "Cluster-IP")}
        for ours, theirs in zip(dev["rows"], real["rows"], strict=True):
            mine = [c for i, c in enumerate(ours["cells"]) if i not in skip]
            real_cells = [
                re.sub(r":\d+/", "/", c) if isinstance(c, str) else c
                for i, c in enumerate(theirs["cells"])
                if i not in skip
            ]
            assert mine == real_cells, path
            assert ours["object"]["kind"] == theirs["object"]["kind"] == "PartialObjectMetadata"
            assert ours["object"]["metadata"]["name"] == theirs["object"]["metadata"]["name"]
