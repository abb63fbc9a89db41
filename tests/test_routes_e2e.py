"""Traefik and Istio end to end: kubectl applies and deletes the examples on the dev API server, dig
asks k8sgw; older APIs (traefik.containo.us, Istio v1beta1) and clusters without the CRDs."""

from __future__ import annotations

import dataclasses

import dns.name
import dns.rdatatype
import trio

from k8sgw.devapi.kinds import KINDS as DEV_KINDS
from k8sgw.devapi.store import DevCluster
from tests.conftest import EXAMPLES, addresses, has, query, start_k8sgw, tool
from tests.conftest import corefile as one_block
from tests.test_sources_e2e import k8sgw_for
from tests.test_tools import kubectl_env, run

OPTIONS = "resources IngressRoute IngressRouteTCP IstioGateway VirtualService Ingress\n        traefikService traefik/traefik"
MANIFESTS = [EXAMPLES / "traefik.yaml", EXAMPLES / "istio.yaml"]
NAMES = {
    "app.foo.org": "192.0.2.80",
    "api.foo.org": "192.0.2.80",
    "api2.foo.org": "192.0.2.80",
    "pinned.foo.org": "192.0.2.81",
    "db.foo.org": "192.0.2.80",
    "mesh.foo.org": "192.0.2.70",
    "shop.foo.org": "192.0.2.70",
    "cart.foo.org": "192.0.2.70",
}
ABSENT = ("wild.foo.org", "x.wild.foo.org", "blog.foo.org", "internal.foo.org", "traefik.traefik.foo.org")


def answered(name: str):
    owner = dns.name.from_text(name)
    return lambda m: m.ready and bool(m.rdatas(owner, dns.rdatatype.A))


async def test_kubectl_apply_and_delete_traefik_and_istio_with_dig(nursery, kubeconfig, tmp_path, logs):
    dig, kubectl = tool("dig"), tool("kubectl")
    bound = await start_k8sgw(nursery, one_block(kubeconfig, extra=OPTIONS))
    store = bound.stores[0]
    host, port = bound.udp[0]
    base = [kubectl, "--kubeconfig", str(kubeconfig)]
    env = kubectl_env(tmp_path)

    async def ask(name: str) -> list[str]:
        out = await run(dig, f"@{host}", "-p", str(port), name, "A", "+noall", "+answer")
        return [" ".join(line.split()) for line in out.splitlines() if line.strip() and not line.startswith(";")]

    with trio.fail_after(60):
        for path in MANIFESTS:
            await run(*base, "apply", "-f", str(path), env=env)
        await store.wait_until(lambda m: all(answered(n)(m) for n in NAMES))
        for name, address in NAMES.items():
            assert await ask(name) == [f"{name}. 60 IN A {address}"], name
        for name in ABSENT:
            assert "status: NXDOMAIN" in await run(dig, f"@{host}", "-p", str(port), name), name
        await logs.wait_for("IngressRoute default/app: HostRegexp(`^.+\\.wild\\.foo\\.org$`) is a pattern, not a name")

        # The ingress gateway Service's load balancer moves: the Gateway and its VirtualServices follow.
        await run(*base, "patch", "service", "-n", "istio-system", "istio-ingressgateway", "--subresource=status",
                  "--type=merge", "-p", '{"status":{"loadBalancer":{"ingress":[{"ip":"192.0.2.77"}]}}}', env=env)
        await store.wait_until(has("cart.foo.org.", "192.0.2.77"))
        assert await ask("mesh.foo.org") == ["mesh.foo.org. 60 IN A 192.0.2.77"]
        # A VirtualService leaving the Gateway loses its address; the Traefik Service going takes the routes'.
        await run(*base, "patch", "virtualservice", "-n", "shop", "shop", "--type=merge",
                  "-p", '{"spec":{"gateways":["mesh"]}}', env=env)
        await run(*base, "delete", "service", "-n", "traefik", "traefik", env=env)
        await store.wait_until(lambda m: not answered("cart.foo.org.")(m) and not answered("app.foo.org.")(m))
        assert await ask("pinned.foo.org") == ["pinned.foo.org. 60 IN A 192.0.2.81"]  # its own target

        for path in MANIFESTS:
            await run(*base, "delete", "--ignore-not-found", "-f", str(path), env=env)
        await store.wait_until(lambda m: not any(answered(n)(m) for n in NAMES))
        for name in NAMES:
            assert "status: NXDOMAIN" in await run(dig, f"@{host}", "-p", str(port), name), name


def _only(group_versions: dict[str, tuple[str, tuple[str, ...]]]) -> list:
    """The dev API's kinds, with some served only at other groups/versions (an older install)."""
    kinds = []
    for kind in DEV_KINDS:
        if kind.kind in group_versions and kind.group in ("traefik.io", "networking.istio.io"):
            group, versions = group_versions[kind.kind]
            kind = dataclasses.replace(kind, group=group, versions=versions)
        kinds.append(kind)
    return kinds


async def test_traefik_v2_group_and_istio_v1beta1_are_found_when_only_they_are_served(nursery, tmp_path, logs):
    legacy = ("traefik.containo.us", ("v1alpha1",))
    cluster = DevCluster(kinds=_only({
        "IngressRoute": legacy, "IngressRouteTCP": legacy,
        "Gateway": ("networking.istio.io", ("v1beta1",)), "VirtualService": ("networking.istio.io", ("v1beta1",)),
    }))
    cluster.apply({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "istio-ingressgateway", "namespace": "istio-system"},
        "spec": {"type": "LoadBalancer", "selector": {"istio": "ingressgateway"}, "ports": [{"port": 80}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.70"}]}},
    })
    cluster.apply({
        "apiVersion": "networking.istio.io/v1beta1", "kind": "Gateway", "metadata": {"name": "gw", "namespace": "istio-system"},
        "spec": {"selector": {"istio": "ingressgateway"}, "servers": [{"port": {"number": 80}, "hosts": ["*"]}]},
    })
    cluster.apply({
        "apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService", "metadata": {"name": "vs", "namespace": "app"},
        "spec": {"hosts": ["vs.foo.org"], "gateways": ["istio-system/gw"]},
    })
    cluster.apply({
        "apiVersion": "traefik.containo.us/v1alpha1", "kind": "IngressRoute",
        "metadata": {"name": "old", "namespace": "app", "annotations": {"external-dns.alpha.kubernetes.io/target": "192.0.2.82"}},
        "spec": {"routes": [{"match": "Host(`old.foo.org`)", "kind": "Rule"}]},
    })
    bound = await k8sgw_for(nursery, cluster, tmp_path, extra=OPTIONS)
    with trio.fail_after(10):
        await bound.stores[0].wait_until(lambda m: answered("vs.foo.org.")(m) and answered("old.foo.org.")(m))
    assert addresses(await query(bound.udp[0], "vs.foo.org.")) == ["192.0.2.70"]
    assert addresses(await query(bound.udp[0], "old.foo.org.")) == ["192.0.2.82"]


async def test_a_cluster_without_traefik_or_istio_is_ready_and_says_so(nursery, tmp_path, logs):
    cluster = DevCluster(kinds=[k for k in DEV_KINDS if k.group not in ("traefik.io", "networking.istio.io")])
    cluster.apply({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"rules": [{"host": "web.foo.org"}]}, "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}},
    })
    bound = await k8sgw_for(nursery, cluster, tmp_path, extra=OPTIONS)
    with trio.fail_after(10):
        await bound.stores[0].wait_until(lambda m: m.ready and has("web.foo.org.", "192.0.2.10")(m))
        for resource in ("ingressroutes.traefik.io", "ingressroutetcps.traefik.io", "gateways.networking.istio.io",
                         "virtualservices.networking.istio.io"):
            await logs.wait_for(f"the API does not serve {resource}")
    assert addresses(await query(bound.udp[0], "web.foo.org.")) == ["192.0.2.10"]
