"""The Table cells the dev API server prints, where the real server's comparison cannot reach:
ages at every scale, pending and ExternalName addresses, Accept headers."""

from __future__ import annotations

import datetime

import pytest

from k8sgw.devapi.kinds import KINDS
from k8sgw.devapi.tables import human_age, table, table_version

NOW = datetime.datetime(2026, 1, 10, 12, 0, 0, tzinfo=datetime.UTC)
SERVICE = next(k for k in KINDS if k.kind == "Service")


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "0s"),
        (119, "119s"),
        (120, "2m"),
        (150, "2m30s"),
        (600, "10m"),
        (3 * 3600 - 1, "179m"),
        (3 * 3600, "3h"),
        (5 * 3600 + 60, "5h1m"),
        (8 * 3600, "8h"),
        (47 * 3600, "47h"),
        (2 * 86400, "2d"),
        (3 * 86400 + 3600, "3d1h"),
        (8 * 86400, "8d"),
        (800 * 86400, "2y70d"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_ages_read_like_kubectl(seconds: int, shown: str) -> None:
    created = (NOW - datetime.timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")
    assert human_age(created, NOW) == shown


def test_unreadable_timestamps() -> None:
    assert human_age(None, NOW) == "<unknown>"
    assert human_age("yesterday", NOW) == "<invalid>"


def test_accept_headers() -> None:
    assert table_version("application/json;as=Table;v=v1;g=meta.k8s.io,application/json") == "v1"
    assert table_version("application/json;as=Table;v=v1beta1;g=meta.k8s.io") == "v1beta1"
    assert table_version("application/json") is None
    assert table_version("application/json;as=Table;v=v2;g=meta.k8s.io") is None


def _svc(spec: dict, status: dict | None = None) -> dict:
    meta = {"name": "s", "namespace": "d", "creationTimestamp": "2026-01-10T11:59:00Z"}
    return {"metadata": meta, "spec": spec, "status": status or {}}


def test_service_external_ip_cells() -> None:
    rows = table(
        SERVICE,
        [
            _svc({"type": "LoadBalancer", "ports": [{"port": 80, "nodePort": 30080}]}),
            _svc({"type": "ExternalName", "externalName": "db.example.net"}),
            _svc({"type": "ClusterIP", "clusterIP": "None", "ports": [{"port": 53, "protocol": "UDP"}]}),
        ],
        {"resourceVersion": "7"},
        include_object="None",
        now=NOW,
    )["rows"]
    assert [r["cells"][1:5] for r in rows] == [
        ["LoadBalancer", "<none>", "<pending>", "80:30080/TCP"],
        ["ExternalName", "<none>", "db.example.net", "<none>"],
        ["ClusterIP", "None", "<none>", "53/UDP"],
    ]
    assert all("object" not in r for r in rows)
