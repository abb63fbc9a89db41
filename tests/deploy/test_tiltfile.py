"""The Tiltfile, evaluated as Starlark with recording stubs of Tilt's builtins: every path, image
name and resource it uses must match the repository and the rendered dev overlay."""

from __future__ import annotations

import pytest
import starlark as sl

from tests.deploy.test_kustomize import ROOT, by_kind, dev_image, render

CALLS: list[tuple[str, tuple, dict]] = []
TILT_BUILTINS = [
    "docker_build", "k8s_yaml", "kustomize", "local_resource", "k8s_resource", "sync", "run",
    "restart_container", "fall_back_on", "port_forward", "local", "watch_file", "listdir", "print",
]
EXTENSIONS = {"ext://restart_process": ["docker_build_with_restart"]}


def recorder(name: str):
    def call(*args, **kwargs):
        CALLS.append((name, args, kwargs))
        if name == "kustomize":
            return f"<kustomize {args[0]}>"
        if name == "sync":
            return ["sync", args[0], args[1]]
        if name == "fall_back_on":
            return ["fall_back_on", args[0]]
        if name == "port_forward":
            return args[0]
        return None

    return call


def stub_module(names: list[str]) -> sl.FrozenModule:
    module = sl.Module()
    for name in names:
        module.add_callable(name, recorder(name))
    module["TRIGGER_MODE_MANUAL"] = "manual"
    module["TRIGGER_MODE_AUTO"] = "auto"
    return module.freeze()


def load_extension(name: str) -> sl.FrozenModule:
    if name not in EXTENSIONS:
        raise KeyError(name)
    return stub_module(EXTENSIONS[name])


@pytest.fixture(scope="module")
def calls() -> dict[str, list[tuple[tuple, dict]]]:
    CALLS.clear()
    source = (ROOT / "Tiltfile").read_text()
    ast = sl.parse("Tiltfile", source, sl.Dialect.extended())
    module = sl.Module()
    for name in TILT_BUILTINS:
        module.add_callable(name, recorder(name))
    module["TRIGGER_MODE_MANUAL"] = "manual"
    module["TRIGGER_MODE_AUTO"] = "auto"
    sl.eval(module, ast, sl.Globals.standard(), sl.FileLoader(load_extension))
    out: dict[str, list[tuple[tuple, dict]]] = {}
    for name, args, kwargs in CALLS:
        out.setdefault(name, []).append((args, kwargs))
    return out


def test_image_build(calls) -> None:
    ((args, kw),) = calls["docker_build_with_restart"]
    image, context = args[0], args[1]
    assert image == dev_image().split(":")[0]
    assert (ROOT / context).resolve() == ROOT
    assert (ROOT / kw["dockerfile"]).is_file()
    assert f"FROM runtime AS {kw['target']}" in (ROOT / kw["dockerfile"]).read_text()
    for path in kw["only"]:
        assert (ROOT / path).exists(), path
    assert kw["entrypoint"] == ["k8sgw"]
    syncs = [step for step in kw["live_update"] if step[0] == "sync"]
    assert syncs == [["sync", "k8sgw", "/opt/k8sgw/lib/python3.11/site-packages/k8sgw"]]
    assert (ROOT / syncs[0][1]).is_dir()
    # The sync target is the venv the Dockerfile builds, for the Python of its base image.
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "python -m venv /opt/k8sgw" in dockerfile and "FROM python:3.11-slim" in dockerfile
    for step in kw["live_update"]:
        if step[0] == "fall_back_on":
            assert all((ROOT / p).exists() for p in step[1])


def test_deploys_dev_overlay_and_examples(calls) -> None:
    kustomized = [args[0] for args, _ in calls["kustomize"]]
    assert kustomized == ["deploy/kustomize/overlays/dev"]
    yamls = [args[0] for args, _ in calls["k8s_yaml"]]
    assert "<kustomize deploy/kustomize/overlays/dev>" in yamls
    files = [f for y in yamls if isinstance(y, list) for f in y]
    for f in files:
        assert (ROOT / f).is_file(), f
    manual = [kw for _, kw in calls["local_resource"] if kw.get("trigger_mode") == "manual"]
    applied = set(files)
    for kw in manual:
        applied |= {w for w in kw["cmd"].split() if w.startswith("deploy/")}
    for f in applied:
        assert (ROOT / f).is_file(), f
    assert applied == {f"deploy/examples/{p.name}" for p in (ROOT / "deploy/examples").glob("*.yaml")}


def test_resources_match_the_rendered_overlay(calls) -> None:
    objs = render("deploy/kustomize/overlays/dev")
    (dep,) = by_kind(objs, "Deployment")
    names = [args[0] for args, _ in calls["k8s_resource"]]
    assert names == [dep["metadata"]["name"]]
    ((_, kw),) = calls["k8s_resource"]
    container_ports = {p["containerPort"] for p in dep["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert set(kw["port_forwards"]) <= container_ports
    deps = {d for _, kw in calls["local_resource"] for d in kw.get("resource_deps", [])}
    assert deps <= set(names)


def test_prints_how_to_dig(calls) -> None:
    (svc,) = by_kind(render("deploy/kustomize/overlays/dev"), "Service")
    node_ports = {p["nodePort"] for p in svc["spec"]["ports"]}
    ((args, _),) = calls["print"]
    assert node_ports == {32553}
    assert "dig @$NODE -p 32553 web.default.example.com" in args[0]
