"""python -m bench.replicas at a toy size: one and two real k8sgw processes against one dev API
server, counted at its ASGI boundary. The counts must scale with N and both replicas must answer
every change; no timing is asserted (the benchmark prints PASS or MISS itself)."""

from __future__ import annotations

import json
import subprocess
import sys

from bench.replicas import ReplicaRun, ReplicasResult, replicas_checks, replicas_lines


def test_replicas_bench_counts_scale_with_n_and_both_replicas_converge(tmp_path):
    out_json = tmp_path / "replicas.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.replicas", "--quick", "--replicas", "1,2", "--changes", "4",
         "--workdir", str(tmp_path / "work"), "--json", str(out_json)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for label in ("watch streams open once synced", "list bytes at start, MB", "dev API CPU during start, s",
                  "skew between replicas max, ms", "N replicas:"):
        assert label in done.stdout, done.stdout
    result = json.loads(out_json.read_text())
    one, two = result["runs"]
    assert (one["replicas"], two["replicas"]) == (1, 2)

    # Every kind a replica lists, it then watches: one stream per kind per replica, the same per replica.
    assert one["watch_streams"] >= 2  # Services and Ingresses at least
    assert one["list_starts"] == one["watch_streams"] == one["watch_requests"]
    assert two["watch_streams"] == 2 * one["watch_streams"]
    assert two["watch_streams_per_replica"] == [one["watch_streams"]] * 2
    assert two["list_pages"] == 2 * one["list_pages"]
    assert two["connections"] >= 2

    # Each replica reads the whole cluster once: 2,000 objects of a few hundred bytes each, the
    # same bytes for each replica (uids and timestamps differ, their lengths do not).
    per = one["list_bytes_per_replica"][0]
    assert per > 2000 * 200
    assert two["list_bytes_per_replica"] == [per, per]
    assert two["list_bytes"] == 2 * per

    # Both replicas answered every change; each change is one watch event per replica.
    for run in (one, two):
        assert run["changes"] == 4 and len(run["answer_ms"]) == 4
        assert all(len(row) == run["replicas"] and min(row) > 0 for row in run["answer_ms"])
        assert run["events_per_change"] == run["replicas"]
    assert two["event_bytes_per_change"] == 2 * one["event_bytes_per_change"]
    assert len(two["skew_ms"]) == 4 and two["skew_max_ms"] == max(two["skew_ms"]) >= 0
    assert one["skew_ms"] == [] and one["skew_max_ms"] is None
    assert {c["verdict"] for c in result["checks"]} <= {"PASS", "MISS", "info"}
    assert [c["verdict"] for c in result["checks"] if c["name"].startswith("skew")] in (["PASS"], ["MISS"])


def test_skew_row_is_gated_by_the_change_target_only_at_two_replicas():
    result = ReplicasResult(objects=10, changes=2, server_cpus=None)
    result.runs = [
        ReplicaRun(1, 10, answer_ms=[[3.0], [4.0]], changes=2),
        ReplicaRun(2, 10, answer_ms=[[3.0, 5.0], [2.0, 160.0]], changes=2),
        ReplicaRun(4, 10, answer_ms=[[3.0, 5.0, 300.0, 4.0]], changes=1),
    ]
    assert result.runs[1].skew_ms == [2.0, 158.0] and result.runs[1].skew_p50_ms == 80.0
    checks = {c.name: c.verdict for c in replicas_checks(result)}
    assert checks["skew between replicas max of 2, 2 replicas"] == "MISS"
    assert checks["skew between replicas max, 4 replicas"] == "info"
    assert not any(name.startswith("skew") and "1 replicas" in name for name in checks)
    text = "\n".join(replicas_lines(result))
    assert "<= 100 ms at N=2" in text and "MISS" in text
    result.runs[1].answer_ms = [[3.0, 5.0]]
    assert {c.name: c.verdict for c in replicas_checks(result)}["skew between replicas max of 1, 2 replicas"] == "PASS"
