"""peers.build's pieces that need no network: go.mod reading, version mapping, refusals told apart."""

from __future__ import annotations

import json

import pytest

from peers import build

KUBERNETES_GO_MOD = """module k8s.io/kubernetes

go 1.26.0

require (
	k8s.io/api v0.0.0
	k8s.io/client-go v0.0.0
)

replace (
	k8s.io/api => ./staging/src/k8s.io/api
	k8s.io/client-go => ./staging/src/k8s.io/client-go
)
replace google.golang.org/grpc v1.43.0 => google.golang.org/grpc v1.29.1
"""


def test_replaces_are_read_from_blocks_and_lines():
    assert build.replaces(KUBERNETES_GO_MOD) == {
        "k8s.io/api": "./staging/src/k8s.io/api",
        "k8s.io/client-go": "./staging/src/k8s.io/client-go",
        "google.golang.org/grpc": "google.golang.org/grpc v1.29.1",
    }
    assert build.local_replaces(KUBERNETES_GO_MOD) == ["k8s.io/api", "k8s.io/client-go"]


def test_staging_modules_are_published_as_v0():
    assert build.staging_version("v1.36.3") == "v0.36.3"
    with pytest.raises(build.BuildError):
        build.staging_version("v2.0.0")


def test_our_module_requires_the_release_and_points_siblings_at_published_versions(tmp_path):
    build._write_module(
        tmp_path,
        "x",
        {"k8s.io/kubernetes": "v1.36.3"},
        {"k8s.io/api": "k8s.io/api v0.36.3"},
        "k8s.io/kubernetes/cmd/x",
    )
    go_mod = (tmp_path / "go.mod").read_text()
    assert "\tk8s.io/kubernetes v1.36.3\n" in go_mod and "\tk8s.io/api => k8s.io/api v0.36.3\n" in go_mod
    assert 'import _ "k8s.io/kubernetes/cmd/x"' in (tmp_path / "tools.go").read_text()


def test_a_refused_module_is_told_apart_from_a_failed_download():
    refused = {"Path": "m", "Error": "reading https://proxy/m/@v/list: 403 Forbidden\n\tnot available"}
    with pytest.raises(build.ModuleUnavailableError):
        build._download_info("m", "v1", json.dumps(refused))
    too_new = {"Path": "m", "Error": "m@v1 requires go >= 1.27.0 (running go 1.26.8)"}
    with pytest.raises(build.BuildError) as err:
        build._download_info("m", "v1", json.dumps(too_new))
    assert not isinstance(err.value, build.ModuleUnavailableError)


def test_the_cache_is_keyed_by_version(monkeypatch, tmp_path):
    monkeypatch.setenv("K8SGW_PEERS_CACHE", str(tmp_path))
    assert (
        build.KUBE_APISERVER.binary
        == tmp_path / f"kube-apiserver-{build.KUBE_APISERVER.version}" / "bin" / "kube-apiserver"
    )
    monkeypatch.delenv("K8SGW_PEERS_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert build.cache_root() == tmp_path / "xdg" / "k8sgw-peers"
