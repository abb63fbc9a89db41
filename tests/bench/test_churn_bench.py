"""python -m bench.churn at its CI size: every row comes out, and every change made is eventually
answered by k8sgw. No timing is asserted (the checker's deadline is stretched to 10 s so that "all
visible" is about correctness, not speed); the benchmark itself says PASS or MISS."""

from __future__ import annotations

import json
import subprocess
import sys

import dns.message
import dns.rcode
import dns.rrset

from bench import cluster as synth
from bench.churn import CYCLE, Churner, Expect
from k8sgw.devapi.store import DevCluster
from tests.conftest import tool

ROWS = (
    "changes applied, per s (300 in all)",
    "change → first answer p50, ms",
    "change → first answer worst, ms",
    "  not answered within 100 ms (never)",
    "latency p99 under churn, ms (probe)",
    "lost queries: dnsperf / probe / checker",
    "  churn: queries + changes",
    "  indexing only (100 changes)",
    "  answering only (same queries)",
)


def test_churn_bench_quick_every_change_is_answered(tmp_path):
    tool("dnsperf")
    out_json = tmp_path / "churn.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.churn", "--quick", "--deadline", "10", "--json", str(out_json),
         "--workdir", str(tmp_path / "work")],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for label in ROWS:
        line = next((line for line in out.splitlines() if line.startswith(label)), None)
        assert line is not None, f"no row {label!r} in:\n{out}"
    for line in out.splitlines():
        if "<= " in line or line.rstrip().endswith(("PASS", "MISS")):
            assert line.rstrip().endswith(("PASS", "MISS")), line
    r = json.loads(out_json.read_text())
    kinds = [kind for kind, _ in r["changes"]]
    assert len(kinds) == 300 and set(kinds) == set(CYCLE), kinds  # 100/s for 3 s, every kind of change
    assert r["never"] == 0, [c for c in r["changes"] if c[1] is None]  # each answered in the end
    assert all(ms > 0 for _, ms in r["changes"])
    assert r["query_rate"] == r["max_qps"] / 2 > 0
    assert r["dnsperf_rate"] == r["query_rate"] - r["probe_rate"] - r["checker_rate"]
    for phase in ("combined", "answering"):
        t = r[phase]
        assert t["dnsperf"]["completed"] > 0 and t["probe"]["sent"] > 0
        assert t["checker"]["sent"] > 0 and t["checker"]["received"] + t["checker"]["lost"] == t["checker"]["sent"]
        assert t["checker"]["reverted"] == 0
        assert t["cpu"]["cpu_s"] > 0 and t["cpu"]["seconds"] > 0
    assert r["indexing_changes"] == 100 and r["indexing"]["cpu_s"] > 0
    assert r["combined"]["probe"]["p50_ms"] <= r["combined"]["probe"]["p99_ms"]
    assert {c["verdict"] for c in r["checks"]} <= {"PASS", "MISS", "info"}
    assert any(c["name"] == "churn: latency p99" for c in r["checks"])


def test_churner_writes_each_kind_of_change_to_the_cluster():
    cluster = DevCluster()
    for obj in synth.objects(20):
        cluster.apply(obj)
    churner = Churner(cluster, 20)
    changes = [churner.step() for _ in range(8)]
    # The first delete has no finished create to remove yet: it becomes a create.
    assert [c.kind for c in changes[:4]] == ["move-ingress", "move-service", "create", "create"]
    ing = cluster.get("networking.k8s.io/v1", "Ingress", "team-0", "ing-00000")
    assert ing["status"]["loadBalancer"]["ingress"][0]["ip"] == changes[0].expect.ipv4
    assert changes[0].expect.fqdn == "ing-00000.bench.example."
    svc = cluster.get("v1", "Service", "team-0", "svc-00000")
    assert svc["status"]["loadBalancer"]["ingress"][0]["ip"] == changes[1].expect.ipv4
    assert changes[1].expect.ipv4 != synth.names(20)[0].ipv4
    created = changes[2]
    created.done, created.at = True, created.at - 1.0  # as if the checker had seen it a second ago
    later = [churner.step() for _ in range(4)]
    deleted = next(c for c in later if c.kind == "delete")
    assert deleted.expect.fqdn == created.expect.fqdn and deleted.expect.ipv4 is None
    assert created.api_kind == deleted.api_kind == "Ingress"
    left = {o["metadata"]["name"] for o in cluster.list_objects(cluster.kind_of("networking.k8s.io/v1", "Ingress"), None)}
    assert created.expect.fqdn.split(".")[0] not in left
    assert any(name.startswith("churn-") for name in left)  # the creates since are still there
    assert churner.expected[created.expect.fqdn] is deleted.expect


def test_expect_reads_the_reply():
    query = dns.message.make_query("ing-00001.bench.example.", "A")
    reply = dns.message.make_response(query)
    reply.answer.append(dns.rrset.from_text("ing-00001.bench.example.", 60, "IN", "A", "198.19.254.7"))
    assert Expect("ing-00001.bench.example.", "198.19.254.7").met_by(reply)
    assert not Expect("ing-00001.bench.example.", "198.19.0.1").met_by(reply)
    assert not Expect("ing-00001.bench.example.", None).met_by(reply)
    gone = dns.message.make_response(query)
    gone.set_rcode(dns.rcode.NXDOMAIN)
    assert Expect("ing-00001.bench.example.", None).met_by(gone)
    assert not Expect("ing-00001.bench.example.", "198.19.254.7").met_by(gone)


def test_reading_a_reply_in_place_agrees_with_parsing_it():
    def reply(ips, rcode=0, edns=False, cname=False):
        query = dns.message.make_query("a.bench.example.", "A", use_edns=edns)
        response = dns.message.make_response(query)
        response.set_rcode(rcode)
        if cname:
            response.answer.append(dns.rrset.from_text("a.bench.example.", 60, "IN", "CNAME", "b.bench.example."))
            response.answer.append(dns.rrset.from_text("b.bench.example.", 60, "IN", "A", *ips))
        elif ips:
            response.answer.append(dns.rrset.from_text("a.bench.example.", 60, "IN", "A", *ips))
        return response.to_wire()

    moved, gone = Expect("a.bench.example.", "10.0.0.1"), Expect("a.bench.example.", None)
    replies = [
        reply(["10.0.0.1"]), reply(["10.0.0.2"]), reply(["10.0.0.1", "10.0.0.2"]), reply([], rcode=3),
        reply([]), reply(["10.0.0.1"], edns=True), reply(["10.0.0.1"], cname=True), reply(["10.0.0.1"], rcode=2),
    ]
    verdicts = [(e.met_by_wire(w), e.met_by(dns.message.from_wire(w))) for e in (moved, gone) for w in replies]
    assert all(fast == parsed for fast, parsed in verdicts)
    assert {fast for fast, _ in verdicts} == {True, False}
