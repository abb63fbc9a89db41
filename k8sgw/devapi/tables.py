"""Server-side printing: the `meta.k8s.io` Table that `kubectl get` asks for (`Accept: ...;as=Table`).

Services and Ingresses get the columns a real API server prints for them (`kubectl get svc`: NAME
TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE, and SELECTOR with `-o wide`); every other kind gets NAME
and AGE, as a real server prints a custom resource without additionalPrinterColumns. The cell
formats follow what kube-apiserver v1.36 returns for the same objects (the real-API tests compare).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .kinds import Kind

__all__ = ["human_age", "table", "table_version"]

Obj = dict[str, Any]
Column = tuple[str, int, Callable[[Obj], str]]  # name, priority, cell

_NAME_DESCRIPTION = "Name must be unique within a namespace."
_AGE_DESCRIPTION = (
    "CreationTimestamp is a timestamp representing the server time when this object was created."
)


def table_version(accept: str) -> str | None:
    """ "v1" (or "v1beta1") when the Accept header asks for a meta.k8s.io Table, else None."""
    for media_range in accept.split(","):
        params = dict(part.strip().split("=", 1) for part in media_range.split(";")[1:] if "=" in part)
        if (
            params.get("as") == "Table"
            and params.get("g") == "meta.k8s.io"
            and params.get("v") in ("v1", "v1beta1")
        ):
            return params["v"]
    return None


def human_age(created: str | None, now: datetime.datetime) -> str:
    """A duration as kubectl shows ages: 45s, 3m20s, 17m, 5h12m, 20h, 3d4h, 95d, 3y..."""
    if not created:
        return "<unknown>"
    try:
        then = datetime.datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return "<invalid>"
    seconds = max(0, int((now - then).total_seconds()))
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 120:
        return f"{seconds}s"
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if hours < 3:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if days < 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    if days < 365 * 8:
        return f"{days // 365}y{days % 365}d" if days % 365 else f"{days // 365}y"
    return f"{days // 365}y"


def _lb_ingress(obj: Obj) -> list[str]:
    status = obj.get("status") or {}
    entries = (status.get("loadBalancer") or {}).get("ingress") or []
    return [e.get("ip") or e.get("hostname") or "" for e in entries if isinstance(e, Mapping)]


def _service_external_ip(obj: Obj) -> str:
    spec = obj.get("spec") or {}
    kind = spec.get("type") or "ClusterIP"
    if kind == "ExternalName":
        return spec.get("externalName") or "<none>"
    addresses = [a for a in _lb_ingress(obj) if a] + list(spec.get("externalIPs") or [])
    if addresses:
        return ",".join(addresses)
    return "<pending>" if kind == "LoadBalancer" else "<none>"


def _service_ports(obj: Obj) -> str:
    ports = (obj.get("spec") or {}).get("ports") or []
    cells = []
    for port in ports:
        node = f":{port['nodePort']}" if port.get("nodePort") else ""
        cells.append(f"{port.get('port')}{node}/{port.get('protocol') or 'TCP'}")
    return ",".join(cells) or "<none>"


def _selector(obj: Obj) -> str:
    selector = (obj.get("spec") or {}).get("selector") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items())) or "<none>"


def _ingress_hosts(obj: Obj) -> str:
    hosts = [r.get("host") for r in (obj.get("spec") or {}).get("rules") or [] if r.get("host")]
    return ",".join(hosts) or "*"


def _ingress_ports(obj: Obj) -> str:
    return "80, 443" if (obj.get("spec") or {}).get("tls") else "80"


def _columns(kind: Kind, now: datetime.datetime) -> list[Column]:
    name: Column = ("Name", 0, lambda o: o["metadata"]["name"])
    age: Column = ("Age", 0, lambda o: human_age(o["metadata"].get("creationTimestamp"), now))
    if kind.group == "" and kind.kind == "Service":
        return [
            name,
            ("Type", 0, lambda o: (o.get("spec") or {}).get("type") or "ClusterIP"),
            ("Cluster-IP", 0, lambda o: (o.get("spec") or {}).get("clusterIP") or "<none>"),
            ("External-IP", 0, _service_external_ip),
            ("Port(s)", 0, _service_ports),
            age,
            ("Selector", 1, _selector),
        ]
    if kind.group == "networking.k8s.io" and kind.kind == "Ingress":
        return [
            name,
            ("Class", 0, lambda o: (o.get("spec") or {}).get("ingressClassName") or "<none>"),
            ("Hosts", 0, _ingress_hosts),
            ("Address", 0, lambda o: ",".join(_lb_ingress(o))),
            ("Ports", 0, _ingress_ports),
            age,
        ]
    return [name, age]


def _row_object(obj: Obj, include: str, version: str) -> Obj | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": f"meta.k8s.io/{version}",
        "metadata": obj["metadata"],
    }


def table(
    kind: Kind,
    objects: Iterable[Obj],
    list_meta: Mapping[str, Any],
    *,
    version: str = "v1",
    include_object: str = "Metadata",
    now: datetime.datetime | None = None,
) -> Obj:
    """The Table of `objects` (full objects as stored); `list_meta` is the list's metadata."""
    now = now or datetime.datetime.now(datetime.UTC)
    columns = _columns(kind, now)
    definitions = []
    for col_name, priority, _ in columns:
        entry: Obj = {
            "name": col_name,
            "type": "string",
            "format": "name" if col_name == "Name" else "",
            "priority": priority,
        }
        entry["description"] = {"Name": _NAME_DESCRIPTION, "Age": _AGE_DESCRIPTION}.get(col_name, "")
        definitions.append(entry)
    rows = []
    for obj in objects:
        row: Obj = {"cells": [cell(obj) for _, _, cell in columns]}
        embedded = _row_object(obj, include_object, version)
        if embedded is not None:
            row["object"] = embedded
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": f"meta.k8s.io/{version}",
        "metadata": dict(list_meta),
        "columnDefinitions": definitions,
        "rows": rows,
    }
