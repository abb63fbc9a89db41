"""Every source kind through a real kube-apiserver: objects applied and deleted with kubectl, status
written through the /status subresource as controllers do, answers read with dnspython and dig.

k8sgw runs with its ServiceAccount's token (deploy/'s ClusterRole) and pages of two objects.
"""

from __future__ import annotations

import math

import trio

from k8sgw.kubeapi.client import KubeClient
from k8sgw.kubeapi.kinds import SERVICE
from k8sgw.kubeapi.kubeconfig import resolve_connection
from k8sgw.kubeapi.watch import list_objects
from tests.conftest import corefile, start_k8sgw
from tests.realapi.conftest import REAL_POLICY, ask, has_rdata, kubectl, patch_status, rdatas

ZONE = "real.test"

OBJECTS = f"""
apiVersion: v1
kind: Namespace
metadata: {{name: src}}
---
apiVersion: v1
kind: Service
metadata: {{name: dns1, namespace: kube-system}}
spec: {{type: LoadBalancer, externalIPs: [192.0.2.53], ports: [{{port: 53, protocol: UDP}}]}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: web, namespace: src}}
spec:
  rules:
    - host: ing.{ZONE}
    - host: "*.wild.{ZONE}"
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: aws, namespace: src}}
spec: {{rules: [{{host: aws.{ZONE}}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: lb, namespace: src}}
spec: {{type: LoadBalancer, ports: [{{port: 80}}]}}
---
apiVersion: v1
kind: Service
metadata:
  name: shop
  namespace: src
  annotations: {{coredns.io/hostname: "shop.{ZONE}, Store"}}
spec: {{type: LoadBalancer, externalIPs: [192.0.2.21], ports: [{{port: 443}}]}}
---
apiVersion: v1
kind: Service
metadata:
  name: db
  namespace: src
  annotations: {{k8s-gateway.dns/resolve-endpoints: "true", coredns.io/hostname: db.{ZONE}}}
spec: {{clusterIP: None, ports: [{{port: 5432}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: db-1
  namespace: src
  labels: {{kubernetes.io/service-name: db}}
addressType: IPv4
ports: [{{port: 5432}}]
endpoints:
  - addresses: [10.1.0.5]
  - addresses: [10.1.0.6]
    conditions: {{ready: false}}
---
apiVersion: v1
kind: Service
metadata:
  name: hidden
  namespace: src
  labels: {{k8s-gateway.dns/ignore: "true"}}
spec: {{type: LoadBalancer, externalIPs: [192.0.2.99], ports: [{{port: 80}}]}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: test}}
spec: {{controllerName: k8sgw.invalid/test}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: src}}
spec:
  gatewayClassName: test
  listeners:
    - {{name: http, port: 80, protocol: HTTP}}
    - {{name: tls, port: 443, protocol: TLS, tls: {{mode: Passthrough}}}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: http, namespace: src}}
spec:
  parentRefs: [{{name: gw, sectionName: http}}]
  hostnames: [http.{ZONE}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {{name: grpc, namespace: src}}
spec:
  parentRefs: [{{name: gw, sectionName: http}}]
  hostnames: [grpc.{ZONE}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {{name: tls, namespace: src}}
spec:
  parentRefs: [{{name: gw, sectionName: tls}}]
  hostnames: [tls.{ZONE}]
  rules: [{{backendRefs: [{{name: lb, port: 443}}]}}]
"""

# What a load-balancer controller and a Gateway controller would write, through /status.
STATUS = [
    ("ingress", "web", '{"status":{"loadBalancer":{"ingress":[{"ip":"192.0.2.10"},{"ip":"2001:db8::10"}]}}}'),
    ("ingress", "aws", '{"status":{"loadBalancer":{"ingress":[{"hostname":"lb-1.elb.example.net"}]}}}'),
    ("service", "lb", '{"status":{"loadBalancer":{"ingress":[{"ip":"192.0.2.20"}]}}}'),
    ("gateway", "gw", '{"status":{"addresses":[{"type":"IPAddress","value":"192.0.2.30"}]}}'),
]


async def test_every_source_kind_applied_patched_and_deleted_with_kubectl(
    nursery, real_cluster, k8sgw_kubeconfig
):
    bound = await start_k8sgw(nursery, corefile(k8sgw_kubeconfig, ZONE), watch_policy=REAL_POLICY)
    store = bound.stores[0]
    addr = bound.udp[0]
    with trio.fail_after(60):
        await store.wait_until(lambda m: m.ready)
        await kubectl(real_cluster, "apply", "-f", "-", stdin=OBJECTS)
        await patch_status(real_cluster, "src", STATUS)
        await store.wait_until(has_rdata(f"tls.{ZONE}", "A", "192.0.2.30"))
        await store.wait_until(has_rdata(f"lb.src.{ZONE}", "A", "192.0.2.20"))
        await store.wait_until(has_rdata(f"aws.{ZONE}", "CNAME", "lb-1.elb.example.net."))
        await store.wait_until(has_rdata(f"db.{ZONE}", "A", "10.1.0.5"))

    assert rdatas(await ask(addr, f"ing.{ZONE}")) == ["192.0.2.10"]
    assert rdatas(await ask(addr, f"ing.{ZONE}", "AAAA"), "AAAA") == ["2001:db8::10"]
    assert rdatas(await ask(addr, f"a.b.wild.{ZONE}")) == ["192.0.2.10"]
    assert rdatas(await ask(addr, f"aws.{ZONE}"), "CNAME") == ["lb-1.elb.example.net."]
    assert rdatas(await ask(addr, f"lb.src.{ZONE}")) == ["192.0.2.20"]
    assert rdatas(await ask(addr, f"shop.{ZONE}")) == ["192.0.2.21"]
    assert rdatas(await ask(addr, f"store.{ZONE}")) == [
        "192.0.2.21"
    ]  # a name outside the zone gets it appended
    assert rdatas(await ask(addr, f"db.{ZONE}")) == ["10.1.0.5"]  # the not-ready endpoint is left out
    for route in ("http", "grpc", "tls"):
        assert rdatas(await ask(addr, f"{route}.{ZONE}")) == ["192.0.2.30"], route
    assert (await ask(addr, f"hidden.src.{ZONE}")).rcode == "NXDOMAIN"
    apex_ns = await ask(addr, ZONE, "NS")
    assert rdatas(apex_ns, "NS") == [f"dns1.kube-system.{ZONE}."]
    assert rdatas(await ask(addr, f"dns1.kube-system.{ZONE}")) == ["192.0.2.53"]
    nodata = await ask(addr, f"lb.src.{ZONE}", "TXT")
    assert (nodata.rcode, nodata.answer) == ("NOERROR", ())
    assert [line.split()[1] for line in nodata.authority] == ["SOA"]

    # A Gateway's new address reaches every route at once; a deleted route's name goes.
    await patch_status(
        real_cluster,
        "src",
        [("gateway", "gw", '{"status":{"addresses":[{"type":"IPAddress","value":"192.0.2.31"}]}}')],
    )
    await kubectl(real_cluster, "delete", "httproute", "http", "-n", "src")
    with trio.fail_after(30):
        await store.wait_until(has_rdata(f"grpc.{ZONE}", "A", "192.0.2.31"))
        await store.wait_until(has_rdata(f"http.{ZONE}", "A"))
    assert rdatas(await ask(addr, f"tls.{ZONE}")) == ["192.0.2.31"]
    assert (await ask(addr, f"http.{ZONE}")).rcode == "NXDOMAIN"

    # kubectl delete of everything: every name goes, the nameserver's with its Service.
    await kubectl(real_cluster, "delete", "-f", "-", "--wait=false", "--ignore-not-found", stdin=OBJECTS)
    with trio.fail_after(60):
        await store.wait_until(has_rdata(f"ing.{ZONE}", "A"))
        await store.wait_until(has_rdata(f"shop.{ZONE}", "A"))
        await store.wait_until(has_rdata(f"tls.{ZONE}", "A"))
    for name in (f"ing.{ZONE}", f"shop.{ZONE}", f"lb.src.{ZONE}", f"grpc.{ZONE}", f"db.{ZONE}"):
        assert (await ask(addr, name)).rcode == "NXDOMAIN", name


async def test_lists_page_with_continue_tokens(real_cluster, k8sgw_kubeconfig):
    """k8sgw's own LIST against the real server: pages of two, continue tokens, one snapshot RV."""
    names = [f"page-{i}" for i in range(5)]
    manifest = "".join(
        f"---\napiVersion: v1\nkind: Service\nmetadata: {{name: {n}, namespace: default}}\n"
        f"spec: {{ports: [{{port: 80}}]}}\n"
        for n in names
    )
    await kubectl(real_cluster, "apply", "-f", "-", stdin=manifest)
    try:
        pages: list[int] = []

        async def on_page(objects, first: bool) -> None:
            pages.append(len(objects))

        conn = resolve_connection(str(k8sgw_kubeconfig))
        async with KubeClient(conn) as client:
            _, rv = await list_objects(client, SERVICE, page_size=2, on_page=on_page)
            everything, rv_whole = await list_objects(client, SERVICE, page_size=500)
        total = len(everything)
        assert total >= len(names) + 1  # ours and the apiserver's own `kubernetes` Service
        assert pages == [2] * (total // 2) + ([total % 2] if total % 2 else [])
        assert len(pages) == math.ceil(total / 2) >= 3
        assert int(rv) <= int(rv_whole)
    finally:
        await kubectl(real_cluster, "delete", "service", "-n", "default", *names)
