"""`k8sgw explain` (a subprocess) and GET /explain against the dev API server, each compared with
the answer the DNS server gives over a real socket for the same name, at the same serial.

One cluster holds an object for every reason a name can fail to answer; each row of REASONS asks
for one name and says which object must be reported and why.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from dataclasses import dataclass

import dns.message
import dns.rcode
import dns.rdatatype
import httpx
import pytest
import trio
import yaml

from k8sgw.devapi.kubeconfig import write_kubeconfig
from k8sgw.devapi.server import serve_devapi
from k8sgw.devapi.store import DevCluster
from k8sgw.records.reasons import Why
from tests.conftest import EXAMPLES, has, query, start_k8sgw
from tests.support.faults import Faults
from tests.test_sources_e2e import gateway, ingress, route, service

PYTHON = sys.executable
ZONE = "foo.org"
RESOURCES = "HTTPRoute TLSRoute Ingress Service DNSEndpoint"  # not GRPCRoute


def corefile_text(kubeconfig) -> str:
    return f"""
{ZONE} {{
    bind 127.0.0.1
    explain 127.0.0.1:0
    prometheus 127.0.0.1:0
    k8s_gateway {ZONE} {{
        kubeconfig {kubeconfig}
        resources {RESOURCES}
        ingressClasses nginx
        gatewayClasses example
        serviceLabelSelectors tier!=internal
    }}
}}
"""


def grpcroute(name: str, host: str) -> dict:
    obj = route(name, [host])
    obj["kind"] = "GRPCRoute"
    return obj


def objects() -> list[dict]:
    listener_gw = gateway(
        "gw-listener", listeners=[{"name": "apps", "port": 80, "protocol": "HTTP", "hostname": "*.apps.foo.org"}]
    )
    rejected = route(
        "r-rejected", ["rejected.foo.org"],
        parents=[{"parentRef": {"name": "gw", "namespace": "infra"}, "controllerName": "example.org/gw",
                  "conditions": [{"type": "Accepted", "status": "False", "reason": "NotAllowedByListeners"}]}],
    )
    ignored = ingress("ignored-ing", "ignored.foo.org", ip="192.0.2.70", cls="nginx",
                      labels={"k8s-gateway.dns/ignore": "true"})
    return [
        gateway("gw"),
        gateway("gw-other", cls="other"),
        gateway("gw-noaddr", ips=()),
        listener_gw,
        route("r-ok", ["route.foo.org"]),
        route("r-other-class", ["otherclass.foo.org"], refs=[{"name": "gw-other", "namespace": "infra"}]),
        rejected,
        route("r-section", ["section.foo.org"], refs=[{"name": "gw", "namespace": "infra", "sectionName": "nope"}]),
        route("r-listener", ["store.foo.org"], refs=[{"name": "gw-listener", "namespace": "infra"}]),
        route("r-nogw", ["nogw.foo.org"], refs=[{"name": "missing", "namespace": "infra"}]),
        route("r-noaddr", ["noaddr.foo.org"], refs=[{"name": "gw-noaddr", "namespace": "infra"}]),
        grpcroute("g-unwatched", "grpc-unwatched.foo.org"),
        service("shadow-svc", ip="192.0.2.80", host="myservicea.foo.org"),
        ingress("traefik-ing", "traefik.foo.org", ip="192.0.2.71", cls="traefik"),
        ignored,
        ingress("badhost", "bad_host.foo.org", ip="192.0.2.72", cls="nginx"),
        ingress("badip", "badip.foo.org", ip="300.1.2.3", cls="nginx"),
        ingress("elsewhere", "www.other.org", ip="192.0.2.73", cls="nginx"),
        ingress("wild", "*.wild.foo.org", ip="192.0.2.74", cls="nginx"),
        ingress("chain", "chain.foo.org", hostname="myservicea.foo.org", cls="nginx"),
        service("internal-svc", ip="192.0.2.81", host="internal.foo.org", labels={"tier": "internal"}),
        service("pending", host="pending.foo.org"),
    ]


@dataclass(frozen=True)
class Row:
    name: str
    type: str
    supplied_by: tuple[str, ...]  # "Kind ns/name" that supply it
    reason: tuple[str, Why] | None  # ("Kind ns/name", why) that must be reported as not counting
    detail: str = ""  # text the reason's detail must contain


REASONS = [
    Row("myservicea.foo.org.", "A", ("Ingress default/myservicea",), ("Service default/shadow-svc", Why.SHADOWED), "Ingress owns"),
    Row("traefik.foo.org.", "A", (), ("Ingress default/traefik-ing", Why.FILTERED_INGRESS_CLASS), "'traefik'"),
    Row("otherclass.foo.org.", "A", (), ("HTTPRoute default/r-other-class", Why.FILTERED_GATEWAY_CLASS), "'other'"),
    Row("internal.foo.org.", "A", (), ("Service default/internal-svc", Why.FILTERED_SERVICE_LABELS), "tier=internal"),
    Row("ignored.foo.org.", "A", (), ("Ingress default/ignored-ing", Why.IGNORED_LABEL)),
    Row("rejected.foo.org.", "A", (), ("HTTPRoute default/r-rejected", Why.ROUTE_NOT_ACCEPTED), "infra/gw"),
    Row("section.foo.org.", "A", (), ("HTTPRoute default/r-section", Why.SECTION_NAME_MISMATCH), "'nope'"),
    Row("store.foo.org.", "A", (), ("HTTPRoute default/r-listener", Why.LISTENER_HOSTNAME_MISMATCH), "*.apps.foo.org"),
    Row("nogw.foo.org.", "A", (), ("HTTPRoute default/r-nogw", Why.GATEWAY_MISSING), "infra/missing not found"),
    Row("noaddr.foo.org.", "A", (), ("HTTPRoute default/r-noaddr", Why.GATEWAY_NO_ADDRESS), "infra/gw-noaddr"),
    Row("pending.foo.org.", "A", (), ("Service default/pending", Why.NO_LOAD_BALANCER_ADDRESS)),
    Row("bad_host.foo.org.", "A", (), ("Ingress default/badhost", Why.INVALID_HOSTNAME), "'bad_host.foo.org'"),
    Row("badip.foo.org.", "A", (), ("Ingress default/badip", Why.INVALID_ADDRESS), "'300.1.2.3'"),
    Row("www.other.org.", "A", (), ("Ingress default/elsewhere", Why.OUTSIDE_ZONES)),
    Row("a.wild.foo.org.", "A", ("Ingress default/wild",), None),
    Row("chain.foo.org.", "A", ("Ingress default/chain", "Ingress default/myservicea"), None),
    Row("route.foo.org.", "A", ("HTTPRoute default/r-ok",), None, "listener http (any host) of Gateway infra/gw"),
    Row("dns1.kube-system.foo.org.", "A", ("Service kube-system/dns1",), None),
    Row("myservicea.foo.org.", "MX", ("Ingress default/myservicea",), ("Service default/shadow-svc", Why.SHADOWED)),
]
CLI_ONLY = Row(
    "grpc-unwatched.foo.org.", "A", (), ("GRPCRoute default/g-unwatched", Why.KIND_NOT_WATCHED), "would supply it"
)


def who(m: dict) -> str:
    return f"{m['kind']} {m['namespace']}/{m['name']}"


def records_of(reply: dns.message.Message) -> list[str]:
    return sorted(line for rrset in reply.answer for line in rrset.to_text().splitlines())


def check(row: Row, explained: dict, reply: dns.message.Message, serial: int) -> None:
    """The explanation says what the DNS server answered, and names the row's objects."""
    assert explained["rcode"] == dns.rcode.to_text(reply.rcode()), (row, explained)
    assert sorted(explained["answer"]) == records_of(reply), (row, explained)
    if reply.rcode() != dns.rcode.REFUSED:
        assert explained["serial"] == serial
    supplying = sorted({who(m) for m in explained["supplying"] if m["kind"] != "(zone)"})
    assert supplying == sorted(row.supplied_by), (row, explained)
    if row.reason is not None:
        found = [m for m in explained["not_counting"] if who(m) == row.reason[0] and m["reason"] == row.reason[1].value]
        assert found, (row, explained)
        assert row.detail in (found[0]["detail"] or ""), (row, found)
    elif row.detail:
        assert any(row.detail in (m["detail"] or "") for m in explained["supplying"]), (row, explained)


async def run_explain(conf, *args: str) -> dict:
    done = await trio.run_process([PYTHON, "-m", "k8sgw", "explain", "-conf", str(conf), "-o", "json", *args],
                                  capture_stdout=True, capture_stderr=True, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout)


async def explain_rows(conf, rows: list[Row]) -> dict[Row, dict]:
    """`k8sgw explain -o json` of each row, four processes at a time."""
    results: dict[Row, dict] = {}

    async def one(row: Row, limit: trio.CapacityLimiter) -> None:
        async with limit:
            results[row] = await run_explain(conf, row.name, row.type)

    async with trio.open_nursery() as n:
        limit = trio.CapacityLimiter(4)
        for row in rows:
            n.start_soon(one, row, limit)
    return results


@pytest.fixture
async def world(nursery, tmp_path):
    """(the dev cluster, k8sgw's Bound, the Corefile path, the SOA serial) once synced."""
    cluster = DevCluster(faults=Faults)
    cluster.load_manifests(sorted((EXAMPLES / "seed").glob("*.yaml")))
    for obj in objects():
        cluster.apply(obj)
    cluster.disable_group("externaldns.k8s.io")  # DNSEndpoint: CRD not installed
    cluster.faults.forbid("tlsroutes.gateway.networking.k8s.io")  # TLSRoute: RBAC forbids
    url = await nursery.start(serve_devapi, cluster)
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", url)
    text = corefile_text(kubeconfig)
    conf = tmp_path / "Corefile"
    conf.write_text(text)
    bound = await start_k8sgw(nursery, text)
    with trio.fail_after(10):
        await bound.stores[0].wait_until(lambda m: m.ready)
    soa = await query(bound.udp[0], f"{ZONE}.", "SOA")
    return cluster, bound, conf, soa.answer[0][0].serial


async def test_every_reason_from_the_cli_and_the_endpoint_matches_the_dns_answer(world):
    cluster, bound, conf, serial = world
    store = bound.stores[0]
    (host, port), = bound.endpoints["/explain"]
    with trio.fail_after(60):
        cli_results = await explain_rows(conf, [*REASONS, CLI_ONLY])
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as http:
            for row in [*REASONS, CLI_ONLY]:
                reply = await query(bound.udp[0], row.name, row.type)
                version = store.current.version
                got = (await http.get("/explain", params={"name": row.name, "type": row.type})).json()
                if reply.rcode() != dns.rcode.REFUSED:  # a refused name is read from no map
                    assert got["version"] == version, (row, got)
                check(row, cli_results[row], reply, serial)
                if row is CLI_ONLY:  # the server lists no kind it does not watch
                    assert got["not_counting"] == [] and got["rcode"] == "NXDOMAIN"
                else:
                    check(row, got, reply, serial)


async def test_kinds_not_watched_say_why_and_which_rule_to_add(world):
    _cluster, bound, conf, _serial = world
    cli = await run_explain(conf, "route.foo.org")
    (host, port), = bound.endpoints["/explain"]
    async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as http:
        served = (await http.get("/explain", params={"name": "route.foo.org"})).json()
    rule = 'apiGroups: ["gateway.networking.k8s.io"], resources: ["tlsroutes"], verbs: ["list", "watch"]'
    for explained in (cli, served):
        kinds = {k["kind"]: k for k in explained["kinds"]}
        assert kinds["GRPCRoute"]["reason"] == "not in resources of k8s_gateway"
        assert "CRD not installed" in kinds["DNSEndpoint"]["reason"]
        assert rule in kinds["TLSRoute"]["reason"]
        assert kinds["HTTPRoute"]["watched"] and kinds["Ingress"]["watched"]


async def test_wildcard_and_cname_chain_are_shown_step_by_step(world):
    _cluster, bound, conf, _serial = world
    wild = await run_explain(conf, "a.wild.foo.org")
    assert wild["chain"] == [{"name": "a.wild.foo.org.", "owner": "*.wild.foo.org.", "result": "answer"}]
    chain = await run_explain(conf, "chain.foo.org")
    assert [s["result"] for s in chain["chain"]] == ["CNAME", "answer"]
    assert chain["chain"][1]["name"] == "myservicea.foo.org."


async def test_skipped_lists_every_object_that_supplies_nothing_on_cli_endpoint_and_metric(world):
    _cluster, bound, conf, _serial = world
    expected = {
        ("Service", "shadow-svc", Why.SHADOWED), ("Ingress", "traefik-ing", Why.FILTERED_INGRESS_CLASS),
        ("HTTPRoute", "r-other-class", Why.FILTERED_GATEWAY_CLASS), ("Service", "internal-svc", Why.FILTERED_SERVICE_LABELS),
        ("Ingress", "ignored-ing", Why.IGNORED_LABEL), ("HTTPRoute", "r-rejected", Why.ROUTE_NOT_ACCEPTED),
        ("HTTPRoute", "r-section", Why.SECTION_NAME_MISMATCH), ("HTTPRoute", "r-listener", Why.LISTENER_HOSTNAME_MISMATCH),
        ("HTTPRoute", "r-nogw", Why.GATEWAY_MISSING), ("HTTPRoute", "r-noaddr", Why.GATEWAY_NO_ADDRESS),
        ("Service", "pending", Why.NO_LOAD_BALANCER_ADDRESS), ("Ingress", "badhost", Why.INVALID_HOSTNAME),
        ("Ingress", "badip", Why.INVALID_ADDRESS),
    }
    cli = await run_explain(conf, "--skipped")
    (host, port), = bound.endpoints["/explain/skipped"]
    async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as http:
        served = (await http.get("/explain/skipped")).json()
        (mhost, mport), = bound.endpoints["/metrics"]
        metrics = (await http.get(f"http://{mhost}:{mport}/metrics")).text
    for blocks in (cli, served):
        got = {(s["kind"], s["name"], Why(s["reason"])) for s in blocks[0]["skipped"]}
        assert got == expected
    assert served[0]["version"] == bound.stores[0].current.version
    counted = Counter((kind, why.value) for kind, _name, why in expected)
    series = {}
    for labels, value in re.findall(r"^k8sgw_objects_skipped\{(.*)\} (\S+)$", metrics, re.MULTILINE):
        got = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        assert got["zones"] == "foo.org."
        series[(got["kind"], got["reason"])] = float(value)
    assert series == {k: float(v) for k, v in counted.items()}, metrics


async def test_text_output_is_for_a_person(world):
    _cluster, _bound, conf, _serial = world
    done = await trio.run_process(
        [PYTHON, "-m", "k8sgw", "explain", "-conf", str(conf), "traefik.foo.org"], capture_stdout=True, check=True
    )
    text = done.stdout.decode()
    assert "answer:  NXDOMAIN" in text
    assert "supplied by: nothing" in text
    assert "Ingress default/traefik-ing at traefik.foo.org.: filtered by ingressClasses (ingressClassName 'traefik'" in text
    assert "TLSRoute: RBAC forbids listing tlsroutes.gateway.networking.k8s.io" in text


async def test_the_endpoint_follows_each_change_at_the_version_served(world):
    cluster, bound, _conf, serial = world
    store = bound.stores[0]
    fixed = ingress("traefik-ing", "traefik.foo.org", ip="192.0.2.71", cls="nginx")
    cluster.apply(fixed)
    with trio.fail_after(10):
        await store.wait_until(has("traefik.foo.org.", "192.0.2.71"))
    (host, port), = bound.endpoints["/explain"]
    async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as http:
        reply = await query(bound.udp[0], "traefik.foo.org.")
        soa = await query(bound.udp[0], f"{ZONE}.", "SOA")
        got = (await http.get("/explain", params={"name": "traefik.foo.org."})).json()
        skipped = (await http.get("/explain/skipped")).json()
    assert soa.answer[0][0].serial > serial
    assert got["version"] == store.current.version
    check(Row("traefik.foo.org.", "A", ("Ingress default/traefik-ing",), None), got, reply, soa.answer[0][0].serial)
    assert "traefik-ing" not in {s["name"] for s in skipped[0]["skipped"]}


async def test_no_explain_endpoint_without_the_directive(k8sgw):
    assert "/explain" not in k8sgw.endpoints and "/explain/skipped" not in k8sgw.endpoints


async def test_kubeconfig_and_context_are_taken_as_kubectl_takes_them(world, tmp_path):
    _cluster, bound, conf, serial = world
    url = yaml.safe_load(conf.with_name("kubeconfig").read_text())["clusters"][0]["cluster"]["server"]
    two = {
        "apiVersion": "v1", "kind": "Config", "current-context": "broken",
        "clusters": [{"name": "dead", "cluster": {"server": "http://127.0.0.1:9"}}, {"name": "dev", "cluster": {"server": url}}],
        "users": [{"name": "u", "user": {}}],
        "contexts": [{"name": "broken", "context": {"cluster": "dead", "user": "u"}},
                     {"name": "dev", "context": {"cluster": "dev", "user": "u"}}],
    }
    kubeconfig = tmp_path / "two-contexts"
    kubeconfig.write_text(json.dumps(two))
    plain = tmp_path / "plain.Corefile"  # no kubeconfig of its own: the flags say where
    plain.write_text(f"{ZONE} {{\n    k8s_gateway {ZONE} {{\n        resources {RESOURCES}\n    }}\n}}\n")
    ok = await run_explain(plain, "--kubeconfig", str(kubeconfig), "--context", "dev", "myservicea.foo.org")
    reply = await query(bound.udp[0], "myservicea.foo.org.")
    assert ok["serial"] == serial and sorted(ok["answer"]) == records_of(reply)
    failed = await trio.run_process(
        [PYTHON, "-m", "k8sgw", "explain", "-conf", str(plain), "--kubeconfig", str(kubeconfig), "myservicea.foo.org"],
        capture_stdout=True, capture_stderr=True, check=False,
    )
    assert failed.returncode == 1 and b"127.0.0.1:9" in failed.stderr


async def test_the_endpoint_refuses_bad_questions_and_keeps_serving(world):
    _cluster, bound, _conf, _serial = world
    (host, port), = bound.endpoints["/explain"]
    async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as http:
        for params in ({}, {"name": "a" * 300 + ".foo.org"}, {"name": "x.foo.org", "type": "NOSUCHTYPE"}, {"name": "a..b"}):
            got = await http.get("/explain", params=params)
            assert got.status_code == 400, (params, got.text)
        assert (await http.get("/explain", params={"name": "route.foo.org"})).json()["rcode"] == "NOERROR"
