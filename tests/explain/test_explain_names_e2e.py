"""explain covers the kinds and rules of Nodes, TCP/UDP routes, ExternalName Services, target
annotations and reverse zones: through the dev API server, on the CLI and /explain, each compared
with the answer the DNS server gives for the same name."""

from __future__ import annotations

import httpx
import trio

from k8sgw.devapi.kubeconfig import write_kubeconfig
from k8sgw.devapi.server import serve_devapi
from k8sgw.devapi.store import DevCluster
from k8sgw.records.reasons import Why
from k8sgw.records.sources import FROM_TARGET
from tests.conftest import query, start_k8sgw
from tests.explain.test_explain_e2e import Row, check, explain_rows, run_explain
from tests.test_sources_e2e import gateway, ingress, route, service

ZONE = "foo.org"
REVERSE = "2.0.192.in-addr.arpa"
TARGET = "external-dns.alpha.kubernetes.io/target"
HOSTNAME = "external-dns.alpha.kubernetes.io/hostname"


def corefile_text(kubeconfig) -> str:
    return f"""
{ZONE} {REVERSE} {{
    bind 127.0.0.1
    explain 127.0.0.1:0
    k8s_gateway {ZONE} {REVERSE} {{
        kubeconfig {kubeconfig}
        resources HTTPRoute TCPRoute UDPRoute Ingress Service Node
    }}
}}
"""


def node(name: str, addresses: list[tuple[str, str]], labels: dict[str, str] | None = None) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels or {}},
        "status": {"addresses": [{"type": t, "address": a} for t, a in addresses]},
    }


def l4route(kind: str, name: str, hostnames: str, gw: str = "gw") -> dict:
    obj = route(name, [], kind=kind, refs=[{"name": gw, "namespace": "infra"}])
    obj["apiVersion"] = "gateway.networking.k8s.io/v1alpha2"
    obj["metadata"]["annotations"] = {HOSTNAME: hostnames}
    del obj["spec"]["hostnames"]
    return obj


def externalname(name: str, target: str, host: str) -> dict:
    obj = service(name, host=host, type_="ExternalName")
    obj["spec"]["externalName"] = target
    return obj


def objects() -> list[dict]:
    pinned = ingress("pinned", "pinned.foo.org", ip="192.0.2.60", cls="nginx")
    pinned["metadata"]["annotations"] = {TARGET: "192.0.2.61"}
    return [
        gateway("gw"),
        node("worker-1", [("InternalIP", "192.0.2.90"), ("ExternalIP", "198.51.100.90")]),
        node("worker-2", [("ExternalIP", "198.51.100.91")]),
        node("worker-3", [("InternalIP", "192.0.2.93")], labels={"k8s-gateway.dns/ignore": "true"}),
        l4route("TCPRoute", "tcp-ok", "tcp.foo.org"),
        l4route("TCPRoute", "tcp-nogw", "tcp-nogw.foo.org", gw="missing"),
        l4route("UDPRoute", "udp-bad", "bad_udp.foo.org"),
        externalname("db", "rds.example.net", "db.foo.org"),
        externalname("db-empty", "", "db-empty.foo.org"),
        pinned,
        service("clusterip-pinned", host="clusterip.foo.org", type_="ClusterIP", annotations={TARGET: "192.0.2.62"}),
    ]


ROWS = [
    Row("worker-1.foo.org.", "A", ("Node /worker-1",), None, "InternalIP"),
    Row("worker-2.foo.org.", "A", (), ("Node /worker-2", Why.NO_NODE_ADDRESS), "no InternalIP"),
    Row("worker-3.foo.org.", "A", (), ("Node /worker-3", Why.IGNORED_LABEL)),
    Row("tcp.foo.org.", "A", ("TCPRoute default/tcp-ok",), None, "of Gateway infra/gw"),
    Row("tcp-nogw.foo.org.", "A", (), ("TCPRoute default/tcp-nogw", Why.GATEWAY_MISSING), "infra/missing not found"),
    Row("bad_udp.foo.org.", "A", (), ("UDPRoute default/udp-bad", Why.INVALID_HOSTNAME), "'bad_udp.foo.org'"),
    Row("db.foo.org.", "CNAME", ("Service default/db",), None, "ExternalName"),
    Row("db-empty.foo.org.", "A", (), ("Service default/db-empty", Why.EXTERNALNAME_UNUSABLE)),
    Row("pinned.foo.org.", "A", ("Ingress default/pinned",), None, FROM_TARGET),
    Row("clusterip.foo.org.", "A", ("Service default/clusterip-pinned",), None, FROM_TARGET),
    # The PTR of an address: the objects supplying each forward name with that address.
    Row("90.2.0.192.in-addr.arpa.", "PTR", ("Node /worker-1",), None, "worker-1.foo.org. has 192.0.2.90"),
    Row("61.2.0.192.in-addr.arpa.", "PTR", ("Ingress default/pinned",), None, "pinned.foo.org. has 192.0.2.61"),
    Row("93.2.0.192.in-addr.arpa.", "PTR", (), None),  # an ignored Node's address: NXDOMAIN
]


async def test_new_kinds_and_ptr_names_are_explained_as_the_server_answers(nursery, tmp_path):
    cluster = DevCluster()
    for obj in objects():
        cluster.apply(obj)
    url = await nursery.start(serve_devapi, cluster)
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", url)
    text = corefile_text(kubeconfig)
    conf = tmp_path / "Corefile"
    conf.write_text(text)
    bound = await start_k8sgw(nursery, text)
    store = bound.stores[0]
    with trio.fail_after(10):
        await store.wait_until(lambda m: m.ready)
    serial = (await query(bound.udp[0], f"{ZONE}.", "SOA")).answer[0][0].serial
    (host, port), = bound.endpoints["/explain"]
    with trio.fail_after(60):
        cli = await explain_rows(conf, ROWS)
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as http:
            for row in ROWS:
                reply = await query(bound.udp[0], row.name, row.type)
                served = (await http.get("/explain", params={"name": row.name, "type": row.type})).json()
                assert served["version"] == store.current.version
                assert served["zone"] == (f"{REVERSE}." if row.type == "PTR" else f"{ZONE}."), served
                check(row, cli[row], reply, serial)
                check(row, served, reply, serial)
                if row.supplied_by:
                    assert served["answer"], row  # each row that is supplied answers something
        skipped = await run_explain(conf, "--skipped")
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as http:
            served_skipped = (await http.get("/explain/skipped")).json()
    expected = {
        ("Node", "worker-2", Why.NO_NODE_ADDRESS), ("Node", "worker-3", Why.IGNORED_LABEL),
        ("TCPRoute", "tcp-nogw", Why.GATEWAY_MISSING), ("UDPRoute", "udp-bad", Why.INVALID_HOSTNAME),
        ("Service", "db-empty", Why.EXTERNALNAME_UNUSABLE),
    }
    for blocks in (skipped, served_skipped):
        assert {(s["kind"], s["name"], Why(s["reason"])) for s in blocks[0]["skipped"]} == expected
