"""DevCluster, selectors and patch functions without a server."""

from __future__ import annotations

import pytest

from k8sgw.devapi import ApiError, DevCluster
from k8sgw.devapi.patch import json_patch, merge_patch, strategic_merge_patch
from k8sgw.devapi.selectors import parse_field_selector, parse_label_selector

from .conftest import SEED


def _obj(labels: dict[str, str], name: str = "a", namespace: str = "default") -> dict:
    return {"metadata": {"name": name, "namespace": namespace, "labels": labels}}


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("app=web", {"app": "web"}, True),
        ("app==web", {"app": "shop"}, False),
        ("app!=web", {}, True),
        ("app in (web, shop)", {"app": "shop"}, True),
        ("app notin (web,shop)", {"app": "shop"}, False),
        ("app notin (web)", {}, True),
        ("app", {"app": ""}, True),
        ("!app", {"app": "x"}, False),
        ("app=web,tier in (fe),!canary", {"app": "web", "tier": "fe"}, True),
        ("kubernetes.io/service-name=web", {"kubernetes.io/service-name": "web"}, True),
    ],
)
def test_label_selector(selector: str, labels: dict[str, str], expected: bool) -> None:
    predicate = parse_label_selector(selector)
    assert predicate is not None and predicate(_obj(labels)) is expected


def test_selector_errors() -> None:
    with pytest.raises(ApiError) as info:
        parse_label_selector("app in web")
    assert info.value.code == 400
    with pytest.raises(ApiError) as info:
        parse_field_selector("spec.type=LoadBalancer")
    assert info.value.code == 400 and "field label not supported" in info.value.message
    field = parse_field_selector("metadata.name=a,metadata.namespace!=kube-system")
    assert field is not None and field(_obj({})) and not field(_obj({}, namespace="kube-system"))


def test_merge_and_strategic_patch() -> None:
    live = {"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443}], "type": "ClusterIP"}, "x": 1}
    assert merge_patch(live, {"x": None, "spec": {"type": "LoadBalancer"}}) == {
        "spec": {"ports": live["spec"]["ports"], "type": "LoadBalancer"}
    }
    patched = strategic_merge_patch(
        live,
        {
            "spec": {
                "$setElementOrder/ports": [{"port": 80}],
                "ports": [{"port": 80, "name": "web"}, {"$patch": "delete", "port": 443}],
            }
        },
        {"spec.ports": "port"},
    )
    assert patched["spec"]["ports"] == [{"port": 80, "name": "web"}]
    assert live["spec"]["ports"][0]["name"] == "http"  # inputs are not mutated
    doc = json_patch({"a": [1, 2]}, [{"op": "add", "path": "/a/-", "value": 3}])
    assert doc == {"a": [1, 2, 3]}
    with pytest.raises(ApiError):
        json_patch({"a": 1}, [{"op": "test", "path": "/a", "value": 2}])


def test_cluster_api() -> None:
    cluster = DevCluster()
    assert cluster.load_manifests([SEED]) == 4
    rv = cluster.resource_version
    web = cluster.get("v1", "Service", "default", "web")
    assert web["status"]["loadBalancer"]["ingress"] == [{"ip": "192.0.2.20"}]
    assert cluster.apply(web)["metadata"]["resourceVersion"] == str(rv)  # unchanged: no write
    web["spec"]["ports"][0]["port"] = 8080
    updated = cluster.apply(web)
    assert updated["metadata"]["generation"] == 2 and updated["metadata"]["uid"] == web["metadata"]["uid"]
    assert cluster.resource_version == rv + 1
    cluster.delete("v1", "Service", "default", "web")
    with pytest.raises(ApiError) as info:
        cluster.get("v1", "Service", "default", "web")
    assert info.value.code == 404 and info.value.message == 'services "web" not found'


def test_namespaces_auto_created_and_cascade() -> None:
    cluster = DevCluster()
    cluster.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "team"}})
    assert cluster.get("v1", "Namespace", None, "team")["status"] == {"phase": "Active"}
    cluster.delete("v1", "Namespace", None, "team")
    with pytest.raises(ApiError):
        cluster.get("v1", "Service", "team", "s")
    with pytest.raises(ApiError) as info:
        cluster.delete("v1", "Namespace", None, "default")
    assert info.value.code == 403


def test_groups_and_history() -> None:
    cluster = DevCluster(groups=["networking.k8s.io"], history_size=2)
    with pytest.raises(ApiError):
        cluster.apply(
            {"apiVersion": "externaldns.k8s.io/v1alpha1", "kind": "DNSEndpoint", "metadata": {"name": "x"}}
        )
    cluster.enable_group("externaldns.k8s.io")
    cluster.apply(
        {"apiVersion": "externaldns.k8s.io/v1alpha1", "kind": "DNSEndpoint", "metadata": {"name": "x"}}
    )
    for i in range(3):
        cluster.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"s{i}"}})
    assert cluster.compacted_rv == cluster.resource_version - 2
    cluster.compact()
    assert cluster.compacted_rv == cluster.resource_version and list(cluster.iter_history()) == []


def test_public_names() -> None:
    import k8sgw.devapi as devapi

    public = {
        n
        for n in vars(devapi)
        if not n.startswith("_") and n[0].isupper() or n in ("serve_devapi", "write_kubeconfig")
    }
    assert set(devapi.__all__) == public
