"""deploy/: every kustomization renders, validates against Kubernetes 1.31, grants read-only RBAC on
exactly the kinds k8sgw reads, runs locked down, and carries a Corefile k8sgw accepts.

Regenerate deploy/install.yaml with:  kubectl kustomize deploy/kustomize/base > deploy/install.yaml
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
KUSTOMIZE = ROOT / "deploy" / "kustomize"
EXAMPLES = ROOT / "deploy" / "examples"
INSTALL = ROOT / "deploy" / "install.yaml"
K8S_VERSION = "1.31"

DIRS = sorted(p.parent.relative_to(ROOT).as_posix() for p in KUSTOMIZE.rglob("kustomization.yaml"))
TOP = ["deploy/kustomize/base", "deploy/kustomize/overlays/dev", "deploy/kustomize/overlays/dual-nameserver"]

READ_ONLY = ["get", "list", "watch"]
EXPECTED_RULES = {
    "": {"services", "nodes"},
    "networking.k8s.io": {"ingresses"},
    "discovery.k8s.io": {"endpointslices"},
    "gateway.networking.k8s.io": {"gateways", "httproutes", "tlsroutes", "grpcroutes", "tcproutes", "udproutes"},
    "externaldns.k8s.io": {"dnsendpoints"},
    "traefik.io": {"ingressroutes", "ingressroutetcps"},
    "traefik.containo.us": {"ingressroutes", "ingressroutetcps"},
    "networking.istio.io": {"gateways", "virtualservices"},
}
# Kinds whose schemas are not in kubernetes-validate (CRDs): only these may be skipped.
CRD_KINDS = {"Gateway", "HTTPRoute", "TCPRoute", "DNSEndpoint", "IngressRoute", "IngressRouteTCP", "VirtualService"}
# Kinds addressed by another object (a Gateway, a Service): no address of their own.
ADDRESSED_KINDS = ("Ingress", "HTTPRoute", "TCPRoute", "IngressRoute", "IngressRouteTCP", "VirtualService")


def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("kubectl is not installed")
        pytest.skip("kubectl is not installed")
    return path


@cache
def render_text(directory: str) -> str:
    env = {"HOME": os.environ.get("HOME", "/tmp"), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    done = subprocess.run(
        [kubectl(), "kustomize", str(ROOT / directory)], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def render(directory: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(render_text(directory)) if d]


def by_kind(objs: list[dict], kind: str) -> list[dict]:
    return [o for o in objs if o["kind"] == kind]


def test_all_kustomizations_found() -> None:
    assert set(TOP) <= set(DIRS)


@pytest.mark.parametrize("directory", DIRS)
def test_renders_and_validates(directory: str) -> None:
    objs = render(directory)
    assert objs
    names = [(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objs]
    assert len(names) == len(set(names)), "duplicate objects"
    for obj in objs:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_examples_validate() -> None:
    skipped = set()
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for obj in yaml.safe_load_all(path.read_text()):
            text = yaml.safe_dump(obj)
            external_name = obj.get("spec", {}).get("type") == "ExternalName"  # a CNAME, no address
            istio_gateway = obj["apiVersion"].startswith("networking.istio.io/")  # its Service has the address
            assert "192.0.2." in text or obj["kind"] in ADDRESSED_KINDS or external_name or istio_gateway, path
            for ip in [w.strip("\"'[],") for w in text.split() if w.strip("\"'[],").count(".") == 3]:
                if ip.replace(".", "").isdigit():
                    assert ip.startswith("192.0.2."), f"{path}: {ip} is not in 192.0.2.0/24"
            for host in obj.get("spec", {}).get("hostnames", []) + [
                r["host"] for r in obj.get("spec", {}).get("rules", []) if "host" in r
            ]:
                assert host.endswith(".example.com")
            try:
                kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                skipped.add(obj["kind"])
    assert skipped <= CRD_KINDS
    kinds = {o["kind"] for p in EXAMPLES.glob("*.yaml") for o in yaml.safe_load_all(p.read_text())}
    assert {"Ingress", "Service", "Gateway", "HTTPRoute", "DNSEndpoint"} <= kinds


@pytest.mark.parametrize("directory", TOP)
def test_rbac_is_read_only_on_exactly_our_kinds(directory: str) -> None:
    objs = render(directory)
    roles = by_kind(objs, "ClusterRole")
    assert roles and not by_kind(objs, "Role") and not by_kind(objs, "RoleBinding")
    for role in roles:
        got: dict[str, set[str]] = {}
        for rule in role["rules"]:
            assert sorted(rule["verbs"]) == READ_ONLY, rule
            assert "resourceNames" not in rule and "nonResourceURLs" not in rule
            for group in rule["apiGroups"]:
                got.setdefault(group, set()).update(rule["resources"])
        assert got == EXPECTED_RULES
    accounts = {(a["metadata"]["namespace"], a["metadata"]["name"]) for a in by_kind(objs, "ServiceAccount")}
    bindings = by_kind(objs, "ClusterRoleBinding")
    assert len(bindings) == len(roles) == len(accounts)
    for binding in bindings:
        assert binding["roleRef"]["name"] in {r["metadata"]["name"] for r in roles}
        ((subject),) = binding["subjects"]
        assert (subject["namespace"], subject["name"]) in accounts


@pytest.mark.parametrize("directory", TOP)
def test_deployment_is_locked_down(directory: str) -> None:
    objs = render(directory)
    deployments = by_kind(objs, "Deployment")
    assert deployments
    for dep in deployments:
        spec = dep["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] == 65532
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        accounts = {a["metadata"]["name"] for a in by_kind(objs, "ServiceAccount")}
        assert spec["serviceAccountName"] in accounts
        (container,) = spec["containers"]
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        # The dev overlay alone lets Tilt's live_update write into the image.
        assert sc["readOnlyRootFilesystem"] is (not directory.endswith("/dev"))
        assert {"cpu", "memory"} <= set(container["resources"]["requests"])
        assert {"cpu", "memory"} <= set(container["resources"]["limits"])
        assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "health"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "ready"}
        ports = {p["name"]: (p["containerPort"], p["protocol"]) for p in container["ports"]}
        assert ports == {
            "dns-udp": (1053, "UDP"), "dns-tcp": (1053, "TCP"), "health": (8080, "TCP"),
            "ready": (8181, "TCP"), "metrics": (9153, "TCP"),
        }
        assert container["args"][:2] == ["-conf", "/etc/k8sgw/Corefile"]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in spec["volumes"]}
        config = volumes[mounts["/etc/k8sgw"]]["configMap"]["name"]
        assert config in {c["metadata"]["name"] for c in by_kind(objs, "ConfigMap")}
        assert "emptyDir" in volumes[mounts["/tmp"]]


def test_base_service_and_image() -> None:
    objs = render("deploy/kustomize/base")
    (svc,) = by_kind(objs, "Service")
    assert svc["spec"]["type"] == "LoadBalancer"
    assert sorted((p["port"], p["protocol"], p["targetPort"]) for p in svc["spec"]["ports"]) == [
        (53, "TCP", "dns-tcp"), (53, "UDP", "dns-udp"),
    ]
    (dep,) = by_kind(objs, "Deployment")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"].startswith("ghcr.io/k8sgw/k8sgw:")
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in svc["spec"]["selector"].items())


def dev_image() -> str:
    (dep,) = by_kind(render("deploy/kustomize/overlays/dev"), "Deployment")
    return dep["spec"]["template"]["spec"]["containers"][0]["image"]


def test_dev_overlay() -> None:
    objs = render("deploy/kustomize/overlays/dev")
    (svc,) = by_kind(objs, "Service")
    assert svc["spec"]["type"] == "NodePort"
    assert sorted((p["protocol"], p["nodePort"]) for p in svc["spec"]["ports"]) == [("TCP", 32553), ("UDP", 32553)]
    (dep,) = by_kind(objs, "Deployment")
    args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("-log.level") + 1] == "debug"
    assert dev_image().split(":")[0] == "k8sgw-dev"
    # An image loaded into kind/k3d/minikube is used as it is; nothing tries to pull it.
    assert dep["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"


def corefiles(directory: str) -> dict[str, str]:
    return {c["metadata"]["name"]: c["data"]["Corefile"] for c in by_kind(render(directory), "ConfigMap")}


def test_dual_nameserver_instances_name_each_other() -> None:
    objs = render("deploy/kustomize/overlays/dual-nameserver")
    services = {s["metadata"]["name"] for s in by_kind(objs, "Service")}
    assert services == {"k8sgw-dns1", "k8sgw-dns2"}
    assert all(s["spec"]["type"] == "LoadBalancer" for s in by_kind(objs, "Service"))
    files = corefiles("deploy/kustomize/overlays/dual-nameserver")
    for me, other in (("k8sgw-dns1", "k8sgw-dns2"), ("k8sgw-dns2", "k8sgw-dns1")):
        assert f"apex {me}.k8sgw\n" in files[me] and f"secondary {other}.k8sgw\n" in files[me]
    # Each Deployment selects only its own pods, and each Service only its own Deployment's.
    for dep in by_kind(objs, "Deployment"):
        suffix = dep["metadata"]["name"].rsplit("-", 1)[1]
        (svc,) = [s for s in by_kind(objs, "Service") if s["metadata"]["name"].endswith(suffix)]
        assert svc["spec"]["selector"]["app.kubernetes.io/instance"] == suffix
        assert dep["spec"]["selector"]["matchLabels"]["app.kubernetes.io/instance"] == suffix
        spec = dep["spec"]["template"]["spec"]
        assert spec["volumes"][0]["configMap"]["name"] == dep["metadata"]["name"]
    assert len(by_kind(objs, "Namespace")) == 1


def test_base_apex_is_its_service() -> None:
    objs = render("deploy/kustomize/base")
    (svc,) = by_kind(objs, "Service")
    (text,) = corefiles("deploy/kustomize/base").values()
    assert f"apex {svc['metadata']['name']}.{svc['metadata']['namespace']}\n" in text
    for directive in ("errors", "health :8080", "ready :8181", "prometheus :9153", "reload", "k8s_gateway example.com"):
        assert f"\n    {directive}" in "\n" + text
    assert "\n    log" not in text  # as CoreDNS's default: a line per query costs most of the throughput
    assert text.startswith("example.com:1053 {")


@pytest.mark.parametrize("directory", TOP)
def test_corefiles_validate_with_k8sgw(directory: str, tmp_path: Path) -> None:
    for name, text in corefiles(directory).items():
        path = tmp_path / f"{name}.Corefile"
        path.write_text(text)
        done = subprocess.run(
            [sys.executable, "-m", "k8sgw", "-validate", "-conf", str(path)],
            capture_output=True, text=True, timeout=60,
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_install_yaml_in_sync() -> None:
    expected = render_text("deploy/kustomize/base")
    assert INSTALL.read_text() == expected, (
        "deploy/install.yaml is stale; regenerate: kubectl kustomize deploy/kustomize/base > deploy/install.yaml"
    )
