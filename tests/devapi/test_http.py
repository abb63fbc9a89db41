"""The dev API server over HTTP: discovery, reads, writes and Status errors."""

from __future__ import annotations

import httpx
import trio

from k8sgw.devapi import DevCluster

ING = "/apis/networking.k8s.io/v1"
MERGE = {"content-type": "application/merge-patch+json"}


async def test_discovery(client: httpx.AsyncClient, cluster: DevCluster) -> None:
    with trio.fail_after(10):
        version = (await client.get("/version")).json()
        assert version["minor"] == "32" and {"gitVersion", "platform", "goVersion"} <= set(version)
        response = await client.get("/api")
        assert response.headers["cache-control"] == "no-cache, private"
        assert response.json()["versions"] == ["v1"]
        groups = {g["name"]: g for g in (await client.get("/apis")).json()["groups"]}
        assert [v["version"] for v in groups["gateway.networking.k8s.io"]["versions"]] == ["v1", "v1alpha2"]
        core = {r["name"]: r for r in (await client.get("/api/v1")).json()["resources"]}
        assert core["services"]["shortNames"] == ["svc"] and core["namespaces"]["namespaced"] is False
        assert "services/status" in core
        gw = (await client.get("/apis/gateway.networking.k8s.io/v1alpha2")).json()
        assert [r["kind"] for r in gw["resources"] if "/" not in r["name"]] == ["TLSRoute", "TCPRoute", "UDPRoute"]
        root = (await client.get("/openapi/v3")).json()["paths"]
        assert "apis/externaldns.k8s.io/v1alpha1" in root and "api/v1" in root
        doc = (await client.get(root["apis/networking.k8s.io/v1"]["serverRelativeURL"])).json()
        patch = doc["paths"]["/apis/networking.k8s.io/v1/namespaces/{namespace}/ingresses/{name}"]["patch"]
        assert patch["x-kubernetes-group-version-kind"]["kind"] == "Ingress"
        assert (await client.get("/openapi/v2")).status_code == 404
        for path in ("/healthz", "/readyz", "/livez"):
            assert (await client.get(path)).text == "ok"


async def test_disabled_group_appears_later(nursery) -> None:
    from functools import partial

    from k8sgw.devapi import serve_devapi

    cluster = DevCluster(groups=["networking.k8s.io"])
    with trio.fail_after(10):
        url = await nursery.start(partial(serve_devapi, cluster))
        async with httpx.AsyncClient(base_url=url) as client:
            names = [g["name"] for g in (await client.get("/apis")).json()["groups"]]
            assert names == ["networking.k8s.io"]
            response = await client.get("/apis/externaldns.k8s.io/v1alpha1/dnsendpoints")
            assert response.status_code == 404 and response.json()["reason"] == "NotFound"
            cluster.enable_group("externaldns.k8s.io")
            response = await client.get("/apis/externaldns.k8s.io/v1alpha1/dnsendpoints")
            assert response.status_code == 200 and response.json()["kind"] == "DNSEndpointList"


async def test_list_shapes_and_selectors(client: httpx.AsyncClient, cluster: DevCluster) -> None:
    with trio.fail_after(10):
        everything = (await client.get("/api/v1/services")).json()
        assert everything["kind"] == "ServiceList" and everything["apiVersion"] == "v1"
        assert everything["metadata"]["resourceVersion"] == str(cluster.resource_version)
        assert [i["metadata"]["name"] for i in everything["items"]] == ["shop", "web", "dns1"]
        assert "kind" not in everything["items"][0]
        default = (await client.get("/api/v1/namespaces/kube-system/services")).json()
        assert [i["metadata"]["name"] for i in default["items"]] == ["dns1"]
        cluster.apply(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "lab", "labels": {"app": "web", "tier": "fe"}},
            }
        )
        params = {"labelSelector": "app in (web),tier!=be"}
        assert [
            i["metadata"]["name"]
            for i in (await client.get("/api/v1/services", params=params)).json()["items"]
        ] == ["lab"]
        params = {"fieldSelector": "metadata.namespace!=default"}
        assert [
            i["metadata"]["name"]
            for i in (await client.get("/api/v1/services", params=params)).json()["items"]
        ] == ["dns1"]
        response = await client.get("/api/v1/services", params={"fieldSelector": "spec.type=LoadBalancer"})
        assert response.status_code == 400 and response.json()["reason"] == "BadRequest"
        response = await client.get("/api/v1/services", params={"resourceVersionMatch": "Exact"})
        assert response.status_code == 422 and response.json()["details"]["kind"] == "ListOptions"
        # CRs keep kind/apiVersion in list items; TLSRoute is served at v1 and v1alpha2
        cluster.apply(
            {
                "apiVersion": "gateway.networking.k8s.io/v1alpha2",
                "kind": "TLSRoute",
                "metadata": {"name": "t"},
                "spec": {"hostnames": ["t.example.org"]},
            }
        )
        for version in ("v1", "v1alpha2"):
            items = (await client.get(f"/apis/gateway.networking.k8s.io/{version}/tlsroutes")).json()["items"]
            assert items[0]["apiVersion"] == f"gateway.networking.k8s.io/{version}"


async def test_pagination(client: httpx.AsyncClient, cluster: DevCluster) -> None:
    for i in range(5):
        cluster.apply(
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"p{i}", "namespace": "pages"}}
        )
    with trio.fail_after(10):
        names, token, rvs = [], None, set()
        while True:
            params = {"limit": "2", **({"continue": token} if token else {})}
            page = (await client.get("/api/v1/namespaces/pages/services", params=params)).json()
            names += [i["metadata"]["name"] for i in page["items"]]
            rvs.add(page["metadata"]["resourceVersion"])
            if not token:  # a write between pages does not change the snapshot RV
                cluster.apply(
                    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "z", "namespace": "other"}}
                )
                assert page["metadata"]["remainingItemCount"] == 3
            token = page["metadata"].get("continue")
            if not token:
                break
        assert names == [f"p{i}" for i in range(5)] and len(rvs) == 1
        page = (await client.get("/api/v1/services", params={"limit": "1"})).json()
        cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "later"}})
        cluster.compact()  # the token's snapshot RV is now older than the history
        expired = await client.get(
            "/api/v1/services", params={"limit": "1", "continue": page["metadata"]["continue"]}
        )
        assert expired.status_code == 410 and expired.json()["reason"] == "Expired"


async def test_create_get_put_delete(client: httpx.AsyncClient, cluster: DevCluster) -> None:
    body = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "new"},
        "spec": {"rules": [{"host": "new.example.org"}]},
    }
    url = f"{ING}/namespaces/default/ingresses"
    with trio.fail_after(10):
        dry = await client.post(url, json=body, params={"dryRun": "All"})
        assert dry.status_code == 201 and (await client.get(f"{url}/new")).status_code == 404
        created = await client.post(url, json=body)
        assert created.status_code == 201
        meta = created.json()["metadata"]
        assert (
            meta["namespace"] == "default"
            and meta["generation"] == 1
            and meta["uid"]
            and meta["creationTimestamp"]
        )
        duplicate = await client.post(url, json=body)
        assert duplicate.status_code == 409 and duplicate.json()["reason"] == "AlreadyExists"
        assert duplicate.json()["message"] == 'ingresses.networking.k8s.io "new" already exists'
        bad = await client.post(url, content=b"{not json", headers={"content-type": "application/json"})
        assert bad.status_code == 400 and bad.json()["status"] == "Failure"
        wrong_ns = await client.post(
            url, json={**body, "metadata": {"name": "x", "namespace": "kube-system"}}
        )
        assert wrong_ns.status_code == 400
        current = (await client.get(f"{url}/new")).json()
        current["spec"]["rules"][0]["host"] = "changed.example.org"
        updated = await client.put(f"{url}/new", json=current)
        assert updated.status_code == 200 and updated.json()["metadata"]["generation"] == 2
        stale = await client.put(f"{url}/new", json=current)  # still carries the old resourceVersion
        assert stale.status_code == 409 and stale.json()["reason"] == "Conflict"
        deleted = await client.delete(f"{url}/new")
        assert (
            deleted.status_code == 200 and deleted.json()["spec"]["rules"][0]["host"] == "changed.example.org"
        )
        gone = await client.get(f"{url}/new")
        assert gone.status_code == 404 and gone.json()["details"] == {
            "name": "new",
            "group": "networking.k8s.io",
            "kind": "ingresses",
        }
        assert (await client.delete(f"{url}/new")).status_code == 404
        assert (await client.request("PUT", f"{url}")).status_code == 405


async def test_patch_verbs(client: httpx.AsyncClient, cluster: DevCluster) -> None:
    svc = "/api/v1/namespaces/default/services/web"
    with trio.fail_after(10):
        merged = await client.patch(svc, json={"metadata": {"labels": {"a": "1"}}}, headers=MERGE)
        assert merged.json()["metadata"]["labels"] == {"a": "1"}
        smp = await client.patch(
            svc,
            json={"spec": {"ports": [{"port": 443, "name": "https"}]}},
            headers={"content-type": "application/strategic-merge-patch+json"},
        )
        assert [p["port"] for p in smp.json()["spec"]["ports"]] == [80, 443]
        jp = await client.patch(
            svc,
            json=[{"op": "remove", "path": "/metadata/labels/a"}],
            headers={"content-type": "application/json-patch+json"},
        )
        assert jp.json()["metadata"]["labels"] == {}
        stale = await client.patch(svc, json={"metadata": {"resourceVersion": "1"}}, headers=MERGE)
        assert stale.status_code == 409
        unknown = await client.patch(svc, json={}, headers={"content-type": "text/plain"})
        assert unknown.status_code == 415 and unknown.json()["reason"] == "UnsupportedMediaType"
        apply = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "ssa"},
            "spec": {"type": "ClusterIP"},
        }
        headers = {"content-type": "application/apply-patch+yaml"}
        no_manager = await client.patch(
            "/api/v1/namespaces/default/services/ssa", json=apply, headers=headers
        )
        assert no_manager.status_code == 422 and "fieldManager" in no_manager.json()["message"]
        url = "/api/v1/namespaces/default/services/ssa?fieldManager=test"
        assert (await client.patch(url, json=apply, headers=headers)).status_code == 201
        again = await client.patch(url, content=b"spec:\n  type: LoadBalancer\n", headers=headers)
        assert again.status_code == 200 and again.json()["spec"]["type"] == "LoadBalancer"
        missing = await client.patch("/api/v1/namespaces/default/services/none", json={}, headers=MERGE)
        assert missing.status_code == 404


async def test_status_subresource(client: httpx.AsyncClient, cluster: DevCluster) -> None:
    url = f"{ING}/namespaces/default/ingresses/myservicea"
    with trio.fail_after(10):
        status = (await client.get(f"{url}/status")).json()
        assert status["status"]["loadBalancer"]["ingress"] == [{"ip": "192.0.2.10"}]
        new = {"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.12"}]}}, "spec": {"ignored": True}}
        patched = await client.patch(f"{url}/status", json=new, headers=MERGE)
        assert patched.json()["status"] == new["status"] and "ignored" not in patched.json()["spec"]
        assert patched.json()["metadata"]["generation"] == 1
        current = patched.json()
        current["status"] = {}
        put = await client.put(f"{url}/status", json=current)
        assert put.status_code == 200 and put.json()["status"] == {}
        assert (await client.get(f"{ING}/namespaces/default/endpointslices/x/status")).status_code == 404


async def test_list_items_are_the_objects_as_written_last(client: httpx.AsyncClient, cluster: DevCluster) -> None:
    """List pages join each object's JSON kept since its write: after an update and a delete, every
    item is still exactly the object a GET returns (less kind/apiVersion, for a built-in kind)."""
    for i in range(3):
        cluster.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"s{i}", "namespace": "enc"}})
    cluster.apply(
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s1", "namespace": "enc", "labels": {"v": "2"}}}
    )
    cluster.delete("v1", "Service", "enc", "s2")
    with trio.fail_after(10):
        page = (await client.get("/api/v1/namespaces/enc/services", params={"limit": "5"})).json()
        assert [i["metadata"]["name"] for i in page["items"]] == ["s0", "s1"]
        for item in page["items"]:
            got = (await client.get(f"/api/v1/namespaces/enc/services/{item['metadata']['name']}")).json()
            assert {"kind": "Service", "apiVersion": "v1", **item} == got
        assert page["items"][1]["metadata"]["labels"] == {"v": "2"}
