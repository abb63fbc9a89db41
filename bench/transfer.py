"""Zone transfer benchmark: k8sgw as a hidden primary beside NSD serving the same zone, same run.

    python -m bench.transfer [--objects 50000] [--repeat 5] [--seconds 5]

Rows:
- AXFR of the whole zone with `kdig AXFR` (wall time of the process, median of --repeat), the
  first AXFR at k8sgw's serial apart; the records each server sent must be the same count.
  Goal: no slower than 2x NSD.
- IXFR after one changed object, in bytes (`dig IXFR=<old serial>`), at --objects and at 1,000
  objects: a few hundred bytes whatever the zone's size.
- UDP during AXFR: bench/probe.py timing single queries at a fixed rate while kdig AXFRs run back
  to back, beside the same probe with no transfer running. Goal: no query lost, p99 under 1 ms.
Servers are pinned to one CPU (as `python -m bench`); kdig, dig, the probe and the dev API server
run on the others.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import trio

from bench import cluster as synth
from bench.run import _start_cluster, cpu_plan
from bench.servers import NSD_CONF, Server, _start, free_port, start_k8sgw, taskset, wait_answers

__all__ = ["main"]

PROBE_RATE = 2000.0
_RECEIVED = re.compile(r";; Received (\d+) B \((\d+) messages?, (\d+) records?\)")
_XFR_SIZE = re.compile(r";; XFR size: (\d+) records? \(messages (\d+), bytes (\d+)\)")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.transfer", description=__doc__.splitlines()[0])
    p.add_argument("--objects", type=int, default=50_000)
    p.add_argument("--repeat", type=int, default=5, help="AXFRs per server (median kept)")
    p.add_argument("--seconds", type=float, default=5.0, help="seconds of UDP probing, with and without AXFR")
    p.add_argument("--server-cpu", type=int, default=0)
    p.add_argument("--workdir", type=Path, default=None, help="keep configs and logs here (default: a temporary directory)")
    args = p.parse_args(argv)
    if args.workdir is not None:
        rows = trio.run(_run, args, args.workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="k8sgw-xfr-bench-") as tmp:
            rows = trio.run(_run, args, Path(tmp))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"zone transfer, {args.objects:,} objects, commit {commit or 'unknown'}")
    for row in rows:
        print(row)
    return 0


async def _run(args: argparse.Namespace, workdir: Path) -> list[str]:
    server_cpus, load_cpus = cpu_plan(args.server_cpu)
    if load_cpus is not None:
        import os

        os.sched_setaffinity(0, load_cpus)
    load = ",".join(map(str, sorted(load_cpus))) if load_cpus else None
    rows: list[str] = []
    async with trio.open_nursery() as nursery:
        k8sgw, cluster_ = await _k8sgw(nursery, workdir / "big", args.objects, server_cpus)
        nsd = await _nsd(nursery, workdir / "nsd", args.objects, server_cpus)
        first = await _kdig_axfr(k8sgw.port, load)
        k8sgw_runs = [await _kdig_axfr(k8sgw.port, load) for _ in range(args.repeat)]
        nsd_runs = [await _kdig_axfr(nsd.port, load) for _ in range(args.repeat)]
        k_time, n_time = statistics.median(r[0] for r in k8sgw_runs), statistics.median(r[0] for r in nsd_runs)
        ratio = k_time / n_time
        rows.append(
            f"AXFR (kdig, median of {args.repeat}): k8sgw {k_time * 1000:.0f} ms, NSD {n_time * 1000:.0f} ms, "
            f"{ratio:.2f}x NSD (goal <= 2x: {'PASS' if ratio <= 2 else 'MISS'}); first AXFR at the serial "
            f"{first[0] * 1000:.0f} ms"
        )
        rows.append(
            f"  records: k8sgw {first[2]:,} in {first[1]} messages ({first[3]:,} B); NSD {nsd_runs[0][2]:,} in "
            f"{nsd_runs[0][1]} messages ({nsd_runs[0][3]:,} B); same count: {first[2] == nsd_runs[0][2]}"
        )
        rows.append(await _ixfr_row(k8sgw, cluster_, args.objects, load))
        quiet = await _probe(k8sgw.port, args.seconds, args.objects, load)
        during = await _probe_during_axfr(k8sgw.port, args.seconds, args.objects, load)
        nsd_during = await _probe_during_axfr(nsd.port, args.seconds, args.objects, load)
        ok = during["lost"] == 0 and during["p99_ms"] is not None and during["p99_ms"] < 1.0
        rows.append(
            f"UDP during back-to-back AXFRs ({during['axfrs']} of them): p99 {during['p99_ms']:.3f} ms, "
            f"lost {during['lost']} of {during['sent']} (goal: 0 lost, p99 < 1 ms: {'PASS' if ok else 'MISS'}); "
            f"with no transfer: p99 {quiet['p99_ms']:.3f} ms, lost {quiet['lost']}; NSD during its AXFRs "
            f"({nsd_during['axfrs']}): p99 {nsd_during['p99_ms']:.3f} ms, lost {nsd_during['lost']}; "
            f"probe realtime: {during.get('realtime')}"
        )
        nursery.cancel_scope.cancel()
    async with trio.open_nursery() as nursery:
        small, small_cluster = await _k8sgw(nursery, workdir / "small", 1000, server_cpus)
        rows.append(await _ixfr_row(small, small_cluster, 1000, load))
        nursery.cancel_scope.cancel()
    return rows


async def _k8sgw(nursery: trio.Nursery, workdir: Path, count: int, cpus: str | None):
    devcluster, _, kubeconfig = await _start_cluster(nursery, workdir, count)
    server = await start_k8sgw(
        nursery, workdir / "k8sgw", kubeconfig, cpus=cpus, log_level="info", plugins=["transfer {", "    to *", "}"]
    )
    await wait_answers(server, [f"dns1.kube-system.{synth.ZONE}"], sync_timeout=120)
    with trio.fail_after(120):  # the transfer copy is rendered once the map is ready (SERVFAIL before)
        while True:
            if await _axfr_rcode(server.port) != dns.rcode.SERVFAIL:
                break
            await trio.sleep(0.05)
    return server, devcluster


async def _axfr_rcode(port: int) -> int:
    q = dns.message.make_query(synth.ZONE, "AXFR")
    reply = await trio.to_thread.run_sync(partial(dns.query.tcp, q, "127.0.0.1", port=port, timeout=30))
    return reply.rcode()


async def _nsd(nursery: trio.Nursery, workdir: Path, count: int, cpus: str | None) -> Server:
    await trio.Path(workdir).mkdir(parents=True, exist_ok=True)
    port = free_port()
    (workdir / "bench.zone").write_text(synth.zone_text(count))
    conf = NSD_CONF.format(dir=workdir, port=port, zone=synth.ZONE) + "    provide-xfr: 127.0.0.1 NOKEY\n"
    (workdir / "nsd.conf").write_text(conf)
    server = await _start(
        nursery, "NSD", port, taskset(cpus, ["nsd", "-d", "-c", str(workdir / "nsd.conf")]), workdir / "nsd.out",
        cwd=workdir,
    )
    await wait_answers(server, [f"dns1.kube-system.{synth.ZONE}"], sync_timeout=60)
    return server


async def _kdig_axfr(port: int, cpus: str | None) -> tuple[float, int, int, int]:
    """(seconds, messages, records, bytes) of one `kdig AXFR`."""
    cmd = taskset(cpus, ["kdig", "AXFR", synth.ZONE, "@127.0.0.1", "-p", str(port), "+noall", "+stats"])
    started = time.perf_counter()
    proc = await trio.run_process(cmd, capture_stdout=True, check=True)
    took = time.perf_counter() - started
    match = _RECEIVED.search(proc.stdout.decode())
    if match is None:
        raise RuntimeError(f"kdig printed no transfer size:\n{proc.stdout.decode()}")
    size, messages, records = map(int, match.groups())
    return took, messages, records, size


def _serial(port: int) -> int:
    reply = dns.query.udp(dns.message.make_query(synth.ZONE, "SOA"), "127.0.0.1", port=port, timeout=2)
    return reply.answer[0][0].serial


async def _ixfr_row(server: Server, devcluster, count: int, cpus: str | None) -> str:
    before = await trio.to_thread.run_sync(_serial, server.port)
    name = synth.names(count)[-1] if synth.names(count)[-1].kind != "Service" else synth.names(count)[-2]
    devcluster.apply(synth.changed_ingress(name, "198.51.100.99"))
    with trio.fail_after(30):
        while True:
            if await trio.to_thread.run_sync(_serial, server.port) != before:
                break
            await trio.sleep(0.01)
    # The feed follows the map a moment after the SOA moves; an IXFR asked before that is one SOA.
    cmd = taskset(cpus, ["dig", "+tcp", f"IXFR={before}", synth.ZONE, "@127.0.0.1", "-p", str(server.port)])
    with trio.fail_after(30):
        while True:
            out = (await trio.run_process(cmd, capture_stdout=True, check=True)).stdout.decode()
            match = _XFR_SIZE.search(out)
            if match and int(match.group(1)) > 1:
                break
            await trio.sleep(0.01)
    records, messages, size = map(int, match.groups())
    return (
        f"IXFR after one change, {count:,} objects: {size} B, {records} records in {messages} message(s) "
        f"(goal: a few hundred bytes, independent of the zone's size)"
    )


async def _probe(port: int, seconds: float, count: int, cpus: str | None) -> dict:
    queries = trio.Path(tempfile.mkstemp(suffix=".queries")[1])
    await queries.write_text("\n".join(synth.query_lines(count)) + "\n")
    cmd = taskset(cpus, [sys.executable, "-m", "bench.probe", str(port), str(PROBE_RATE), f"{seconds:g}", str(queries)])
    proc = await trio.run_process(cmd, capture_stdout=True, check=True)
    return json.loads(proc.stdout)


async def _probe_during_axfr(port: int, seconds: float, count: int, cpus: str | None) -> dict:
    result: dict = {}
    axfrs = 0
    async with trio.open_nursery() as nursery:
        async def probe() -> None:
            result.update(await _probe(port, seconds, count, cpus))
            nursery.cancel_scope.cancel()

        nursery.start_soon(probe)
        while True:
            await _kdig_axfr(port, cpus)
            axfrs += 1
    result["axfrs"] = axfrs
    return result


if __name__ == "__main__":
    sys.exit(main())
