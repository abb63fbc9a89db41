"""Discovery documents (legacy /api, /apis, /api/v1, /apis/<g>/<v>), /version and a minimal /openapi/v3.

Built from the cluster's served kinds on every request, so `DevCluster.enable_group` shows up at once.
The OpenAPI documents carry no schemas: they exist so that kubectl's default `--validate=strict` finds
`fieldValidation` support and leaves validation to the server (KUBEAPI.md §3.4).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .kinds import Kind
from .store import DevCluster

__all__ = ["VERSION", "api_resource_list", "api_versions", "group_list", "openapi_gv", "openapi_root"]

# minor "32": Google's kubectl dispatcher picks the kubectl binary by the server's minor (KUBEAPI.md §0).
VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.5-k8sgw-dev",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z",
    "goVersion": "go1.23.8",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _groups(cluster: DevCluster) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for kind in cluster.served_kinds():
        if kind.group:
            versions = groups.setdefault(kind.group, [])
            versions.extend(v for v in kind.versions if v not in versions)
    return groups


def group_list(cluster: DevCluster) -> dict[str, Any]:
    items = []
    for group, versions in _groups(cluster).items():
        gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        items.append({"name": group, "versions": gvs, "preferredVersion": gvs[0]})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": items}


def _kinds_in(cluster: DevCluster, group: str, version: str) -> list[Kind]:
    return [k for k in cluster.served_kinds() if k.group == group and version in k.versions]


def api_resource_list(cluster: DevCluster, group: str, version: str) -> dict[str, Any] | None:
    kinds = _kinds_in(cluster, group, version)
    if not kinds:
        return None
    resources = []
    for k in kinds:
        entry: dict[str, Any] = {
            "name": k.plural,
            "singularName": k.singular,
            "namespaced": k.namespaced,
            "kind": k.kind,
            "verbs": list(k.verbs),
        }
        if k.short_names:
            entry["shortNames"] = list(k.short_names)
        if k.categories:
            entry["categories"] = list(k.categories)
        resources.append(entry)
        if k.has_status:
            resources.append(
                {
                    "name": f"{k.plural}/status",
                    "singularName": "",
                    "namespaced": k.namespaced,
                    "kind": k.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def openapi_gv(cluster: DevCluster, group: str, version: str) -> dict[str, Any] | None:
    kinds = _kinds_in(cluster, group, version)
    if not kinds:
        return None
    param = [{"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": True}}]
    paths: dict[str, Any] = {}
    for k in kinds:
        gvk = {"group": k.group, "version": version, "kind": k.kind}
        base = f"/{_gv_path(group, version)}/" + ("namespaces/{namespace}/" if k.namespaced else "")
        op = {
            "x-kubernetes-group-version-kind": gvk,
            "parameters": param,
            "responses": {"200": {"description": "OK"}},
        }
        paths[f"{base}{k.plural}"] = {"post": op}
        paths[f"{base}{k.plural}/{{name}}"] = {"patch": op, "put": op}
    return {
        "openapi": "3.0.0",
        "info": {"title": "k8sgw dev API", "version": "v1.32.5"},
        "paths": paths,
        "components": {"schemas": {}},
    }


def openapi_root(cluster: DevCluster) -> dict[str, Any]:
    paths = {}
    gvs = {("", "v1")} | {(k.group, v) for k in cluster.served_kinds() for v in k.versions}
    for group, version in sorted(gvs):
        doc = openapi_gv(cluster, group, version)
        digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32].upper()
        path = _gv_path(group, version)
        paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
    return {"paths": paths}
