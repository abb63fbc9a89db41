"""The benchmark harness end to end at toy sizes: it runs, and its numbers come out and are sane.

No performance target is asserted here (a timed unit test fails on a busy machine, not on a slow
k8sgw); `python -m bench` is where the targets are judged. dnsperf and NSD are used when
installed; without them the harness falls back to its Python client and k8sgw alone, and that path
is tested on every machine.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys

import pytest

from bench import cluster
from bench.load import LoadResult, parse_dnsperf, percentile
from bench.report import Results, ScaleResult, render

TINY = [
    "--objects",
    "100",
    "--small-objects",
    "40",
    "--scale-objects",
    "100",
    "--duration",
    "1",
    "--changes",
    "2",
    "--replica-objects",
    "100",
    "--replicas",
    "1,2",
    "--churn-seconds",
    "1",
]


def run_bench(tmp_path, *extra: str) -> tuple[str, dict]:
    out_json = tmp_path / "results.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            *TINY,
            "--json",
            str(out_json),
            "--workdir",
            str(tmp_path / "work"),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout, json.loads(out_json.read_text())


def assert_sane_scale(results: dict) -> None:
    assert [s["objects"] for s in results["scale"]] == [40, 100]
    for s in results["scale"]:
        assert 0 < s["listening_s"] <= s["synced_s"]
        assert s["rss_mb"] > 10 and s["hwm_mb"] >= s["rss_mb"] * 0.9
        assert len(s["update_ms"]) == 2 and all(t > 0 for t in s["update_ms"])
        assert s["devapi_list_s"] > 0 and s["sync_cpu_s"] > 0
        if shutil.which("nsd"):  # the reference: NSD holding the same names from a zone file
            assert s["nsd_mb"] > 0 and s["zone_file_bytes"] > 100 * s["objects"] / 2


def assert_sane_run(run: dict) -> None:
    assert run["qps"] > 0
    assert run["completed"] > 0 and run["sent"] >= run["completed"]
    assert isinstance(run["lost"], int) and run["lost"] >= 0
    assert run["rcodes"].get("NOERROR", 0) > 0 and run["rcodes"].get("NXDOMAIN", 0) > 0


def test_with_the_tools_installed(tmp_path):
    """dnsperf against k8sgw and NSD (when NSD is installed): every row of the table is filled."""
    if shutil.which("dnsperf") is None:
        pytest.skip("dnsperf is not installed; test_python_client_k8sgw_only covers the fallback")
    stdout, results = run_bench(tmp_path)
    k8sgws = ["k8sgw", "k8sgw deployed", "k8sgw log"]
    servers = [*k8sgws, "NSD"] if shutil.which("nsd") else k8sgws
    assert list(results["throughput"]) == servers
    for server in servers:
        for mode in ("udp", "udp+edns", "tcp"):
            assert_sane_run(results["throughput"][server][mode])
        latency = results["throughput"][server]["latency"]
        assert latency["rate"] > 0
        assert 0 < latency["p50_ms"] <= latency["p99_ms"] <= latency["max_ms"]
        traffic = results["throughput"][server]
        if server == "k8sgw log":  # a line per query: the plain rows only, each counted in its log
            assert "nxdomain" not in traffic and "flood" not in traffic
            for mode in ("udp", "udp+edns", "tcp"):
                assert traffic[mode]["sent"] >= traffic[mode]["log_lines"] >= traffic[mode]["completed"] > 0
            continue
        assert traffic["nxdomain"]["rcodes"].get("NXDOMAIN", 0) == traffic["nxdomain"]["completed"] > 0
        for mode in ("new-names", "0x20"):
            assert traffic[mode]["rcodes"].get("NOERROR", 0) == traffic[mode]["completed"] > 0
        flood = traffic["flood"]  # real names asked beside the flood, each one timed
        assert flood["probe_sent"] > 0 and flood["probe_lost"] == 0 and flood["p99_ms"] > 0
        assert flood["rate"] == results["throughput"][servers[-1]]["nxdomain"]["qps"]
    deployed = (tmp_path / "work" / "throughput" / "k8sgw-deployed" / "Corefile").read_text()
    assert "    prometheus 127.0.0.1:0\n" in deployed and "    reload\n" in deployed
    assert "real names lost" in stdout and "query-log lines written" in stdout
    # The replicas phase (bench.replicas, tested on its own in test_replicas_bench.py) is in the table.
    assert [r["replicas"] for r in results["replicas"]["runs"]] == [1, 2]
    assert "replicas (100 objects)" in stdout
    assert results["churn"]["changes"] and results["churn"]["never"] == 0 and "churn (100 objects" in stdout
    assert_sane_scale(results)
    assert "NXDOMAIN flood queries/s" in stdout and "one name, 0x20 case queries/s" in stdout
    assert "UDP queries/s" in stdout and "TCP queries/s" in stdout and "p99 ms" in stdout
    assert "VmRSS once synced, MB" in stdout and "change → answer" in stdout
    assert "UDP I/O recvmmsg/sendmmsg batches" in stdout  # the C module is built and in use
    assert ("ratio  target" in stdout) == ("NSD" in servers)
    assert {c["verdict"] for c in results["checks"]} <= {"PASS", "MISS", "info"}
    assert results["machine"]["nproc"] >= 1 and results["machine"]["python"]


def test_python_client_k8sgw_only(tmp_path):
    """Without dnsperf and NSD: the Python client against k8sgw, no ratios, the same table; with a
    directive added to k8sgw's server block (--plugin), as the README's cost table is measured."""
    stdout, results = run_bench(
        tmp_path,
        "--loadgen",
        "python",
        "--no-nsd",
        "--no-scale",
        "--no-replicas",
        "--no-churn",
        "--configs",
        "plain",
        "--plugin",
        "prometheus 127.0.0.1:0",
    )
    assert "\n    prometheus 127.0.0.1:0\n" in (tmp_path / "work" / "throughput" / "k8sgw" / "Corefile").read_text()
    assert "k8sgw with `prometheus 127.0.0.1:0`" in stdout
    assert list(results["throughput"]) == ["k8sgw"]
    for mode in ("udp", "udp+edns", "tcp"):
        assert_sane_run(results["throughput"]["k8sgw"][mode])
        assert results["throughput"]["k8sgw"][mode]["tool"] == "python"
    assert results["throughput"]["k8sgw"]["latency"]["p99_ms"] > 0
    assert "lower bound" in stdout
    assert not any("NSD" in c["name"] for c in results["checks"])


# ---- the pure parts ------------------------------------------------------------------------------

DNSPERF_UDP = b"""\
DNS Performance Testing Tool
Version 2.10.0

[Status] Testing complete (time limit)

Statistics:

  Queries sent:         489450
  Queries completed:    489440 (100.00%)
  Queries lost:         10 (0.00%)

  Response codes:       NOERROR 440496 (90.00%), NXDOMAIN 48944 (10.00%)
  Average packet size:  request 33, response 97
  Run time (s):         2.003466
  Queries per second:   244301.625283

  Average Latency (s):  0.000322 (min 0.000006, max 0.008529)
  Latency StdDev (s):   0.000173

"""

DNSPERF_TCP_TAIL = b"""
Connection Statistics:

  Reconnections:        0

  Average Latency (s):  0.000991 (min 0.000204, max 0.001280)
  Latency StdDev (s):   0.000525
"""


def test_parse_dnsperf_summary():
    r = parse_dnsperf(DNSPERF_UDP, "udp")
    assert (r.sent, r.completed, r.lost) == (489450, 489440, 10)
    assert r.qps == pytest.approx(244301.625283)
    assert r.rcodes == {"NOERROR": 440496, "NXDOMAIN": 48944}
    assert r.avg_latency_ms == pytest.approx(0.322)


def test_parse_dnsperf_tcp_reads_the_query_statistics_not_the_connection_ones():
    r = parse_dnsperf(DNSPERF_UDP + DNSPERF_TCP_TAIL, "tcp")
    assert r.qps == pytest.approx(244301.625283) and r.avg_latency_ms == pytest.approx(0.322)


def test_parse_dnsperf_verbose_lines_give_percentiles():
    lines = b"".join(b"> NOERROR a.bench.example A 0.%06d\n" % (i * 10) for i in range(1, 101))
    r = parse_dnsperf(lines + DNSPERF_UDP, "udp")
    assert (
        r.p50_ms == pytest.approx(0.5) and r.p99_ms == pytest.approx(0.99) and r.max_ms == pytest.approx(1.0)
    )


def test_parse_dnsperf_failure_is_an_error():
    with pytest.raises(ValueError, match="no statistics"):
        parse_dnsperf(b"Error: could not open datafile\n", "udp")


def test_percentile_nearest_rank():
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 99) == 4.0
    assert math.isnan(percentile([], 50))


def test_query_mix_and_zone_agree():
    lines = cluster.query_lines(2000, 2000)
    assert len(lines) == 2000
    types = [line.split()[1] for line in lines]
    assert types.count("AAAA") == 200
    assert sum(line.startswith("nx-") for line in lines) == 200
    zone = cluster.zone_text(2000)
    existing = {n.fqdn for n in cluster.names(2000)}
    assert all(line.split()[0] in existing for line in lines if not line.startswith("nx-"))
    assert zone.count(" IN AAAA ") == 200 and zone.count(" IN A ") == 2001  # + the apex glue
    aaaa = [line.split()[0] for line in lines if line.endswith("AAAA")]
    with_v6 = {n.fqdn for n in cluster.names(2000) if n.ipv6}
    assert sum(name in with_v6 for name in aaaa) == 100  # half answer AAAA, half NODATA


def test_traffic_files_never_repeat_a_query_and_ask_what_they_say():
    existing = {n.fqdn for n in cluster.names(100)}
    for kind in cluster.TRAFFIC:
        lines = cluster.traffic_lines(kind, 100, 5000)
        assert len(lines) == 5000
        assert len(set(lines)) > 4900, kind  # random spellings of one name collide now and then
        assert {line.split()[1] for line in lines} == {"A"}
        names = [line.split()[0] for line in lines]
        if kind == "nxdomain":
            assert all(n.endswith("." + cluster.ZONE) and n.lower() not in existing for n in names)
        else:
            assert all(n.lower() in existing for n in names)
            assert any(n != n.lower() for n in names)
    assert len({line.split()[0].lower() for line in cluster.traffic_lines("0x20", 100, 100)}) == 1
    assert len({line.split()[0].lower() for line in cluster.traffic_lines("new-names", 100, 100)}) == 100


def test_objects_match_names():
    objs = list(cluster.objects(10))
    assert len(objs) == 11  # + the apex Service
    kinds = [o["kind"] for o in objs[1:]]
    assert kinds.count("Service") == 5 and kinds.count("Ingress") == 5
    for o in objs:
        for ing in o["status"]["loadBalancer"]["ingress"]:
            assert ing["ip"].startswith(("198.18.", "198.19.", "2001:2:"))


def test_render_marks_targets():
    results = Results(
        machine={
            "nproc": 2,
            "cpu_model": "x",
            "python": "3.11",
            "kernel": "k",
            "k8sgw": "0",
            "dnsperf": None,
            "nsd": None,
        },
        settings={"summary": "s", "objects": 10},
        scale=[
            ScaleResult(1000, rss_mb=60, update_ms=[2, 3], synced_s=20.0),
            ScaleResult(100_000, rss_mb=300, update_ms=[2, 150], synced_s=15.5, nsd_mb=90.0),
        ],
    )
    results.scale[0].nsd_mb = 40.0
    text = render(results)
    assert "MISS" in text and "RSS at 100,000 objects" in text
    verdicts = {c.name: c.verdict for c in results.checks()}
    assert verdicts["RSS at 100,000 objects"] == "MISS" and verdicts["RSS at 1,000 objects"] == "info"
    assert verdicts["change→answer worst of 2, 1,000 objects"] == "PASS"
    assert verdicts["change→answer worst of 2, 100,000 objects"] == "MISS"
    assert verdicts["start→last name answers at 100,000 objects"] == "MISS"
    assert verdicts["start→last name answers at 1,000 objects"] == "info"
    assert "<= 15 s at 100,000" in text
    # What one more object costs: (300 - 60) MB over 99,000 objects, NSD's (90 - 40) MB.
    assert "k8sgw 2,542, NSD 530" in text
    for mode, nsd_qps in (("nxdomain", 100_000), ("0x20", 300_000)):
        results.throughput.setdefault("k8sgw", {})[mode] = LoadResult("dnsperf", mode, qps=60_000)
        results.throughput.setdefault("NSD", {})[mode] = LoadResult("dnsperf", mode, qps=nsd_qps)
    verdicts = {c.name: c for c in results.checks()}
    assert verdicts["NXDOMAIN flood qps k8sgw/NSD"].verdict == "PASS"
    assert verdicts["one name, 0x20 case qps k8sgw/NSD"].verdict == "MISS"
    assert verdicts["one name, 0x20 case qps k8sgw/NSD"].target == ">= 0.50"
    assert "NXDOMAIN flood queries/s" in render(results)
    # The shipped Corefile's configuration is held to its own ratios, `log` to its own rate.
    for mode, qps in (("udp", 95_000), ("tcp", 90_000)):
        results.throughput.setdefault("k8sgw deployed", {})[mode] = LoadResult("dnsperf", mode, qps=qps)
        results.throughput["NSD"][mode] = LoadResult("dnsperf", mode, qps=100_000)
    results.throughput["k8sgw log"] = {
        "udp": LoadResult("dnsperf", "udp", qps=120_000, sent=10, completed=10, log_lines=9)
    }
    verdicts = {c.name: c for c in results.checks()}
    assert verdicts["UDP qps k8sgw deployed/NSD"].verdict == "PASS"
    assert verdicts["TCP qps k8sgw deployed/NSD"].verdict == "MISS"
    assert verdicts["TCP qps k8sgw deployed/NSD"].target == ">= 1.00"
    assert verdicts["UDP qps k8sgw log"].verdict == "PASS"
    assert verdicts["UDP log lines k8sgw log"].verdict == "MISS"  # a line short of the answers
    assert "k8sgw deployed (10 objects)" in render(results)
