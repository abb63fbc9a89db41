"""python -m bench.transfer at a toy size: it runs beside NSD and prints every row, with counts that
agree. No timing is asserted here; the benchmark itself says PASS or MISS."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import tool


def test_transfer_bench_runs_and_both_servers_send_the_same_records(tmp_path):
    for name in ("nsd", "kdig", "dig"):
        tool(name)
    done = subprocess.run(
        [sys.executable, "-m", "bench.transfer", "--objects", "300", "--repeat", "1", "--seconds", "0.5",
         "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert re.search(r"AXFR \(kdig, median of 1\): k8sgw \d+ ms, NSD \d+ ms", out), out
    assert "same count: True" in out, out
    sizes = [int(m) for m in re.findall(r"IXFR after one change, [\d,]+ objects: (\d+) B", out)]
    assert len(sizes) == 2 and sizes[0] == sizes[1] and sizes[0] < 1000, out  # independent of the zone's size
    assert re.search(r"UDP during back-to-back AXFRs \(\d+ of them\): p99 [\d.]+ ms, lost 0 of \d+", out), out
