"""What N replicas cost the API server, and how far apart their answers are after a change.

    python -m bench.replicas [--objects 50000] [--replicas 1,2,4] [--changes 20] [--quick]

For each N: one dev API server (its own thread, bench/apicount.py counting at its ASGI boundary)
over a fresh cluster of --objects, and N k8sgw processes (`python -m k8sgw`, each on its own port,
reaching it at its own loopback address) started together against it. Measured:

- at start: requests (list pages, watches, other), response-body bytes of the lists, the dev API
  server's CPU time from the first process start until every replica answers, that time itself,
  the watch streams open once every replica has synced, and each replica's CPU and VmRSS;
- per change: --changes Ingresses moved to a new address one at a time, written to the DevCluster;
  every replica is polled over UDP until it answers the new address. write → answer per replica,
  skew = latest − earliest replica, and the watch event bytes the change cost the API server.

Replicas are pinned to one CPU (as `python -m bench` pins k8sgw), the dev API server and the
pollers to the others: on a 2-CPU machine N replicas share a core, so start → answer at N > 1 is
N start-ups on one core, while the API-side counts are what N separate nodes would cost.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import trio

from bench import cluster as synth
from bench.apicount import ApiTally, ClientTally, DevApiThread
from bench.report import TARGET_CHANGE_MS, Check, machine_facts
from bench.servers import Server, addresses, ask, process_ticks, read_rss_mb, start_k8sgw, wait_answers
from k8sgw.devapi.kubeconfig import write_kubeconfig

__all__ = ["ReplicaRun", "ReplicasResult", "main", "replicas", "replicas_checks", "replicas_lines"]

logger = logging.getLogger(__name__)

SYNC_TIMEOUT = 600.0  # seconds; 4 × 50k objects on one core take tens, a broken build never answers
WATCH_OPEN_TIMEOUT = 30.0  # a replica opens its watches right after its lists
CHANGE_TIMEOUT = 10.0
# Skew is bounded by the per-replica target: two replicas that each answer a change within
# TARGET_CHANGE_MS of the write are at most TARGET_CHANGE_MS apart, so a larger skew means one
# replica missed the change→answer target the scale rows hold a single replica to.
TARGET_SKEW_MS = TARGET_CHANGE_MS


@dataclass
class ReplicaRun:
    """One N: what the dev API server was asked and sent, and what the replicas did."""

    replicas: int
    objects: int
    synced_s: float | None = None  # first process start → every replica answers the sample names
    devapi_start_cpu_s: float | None = None  # dev API server thread's CPU over that interval
    replica_cpu_s: list[float] = field(default_factory=list)  # each replica's CPU by then
    rss_mb: list[float] = field(default_factory=list)  # each replica's VmRSS once synced
    watch_streams: int = 0  # open once every replica synced
    connections: int = 0  # TCP connections the dev API server saw by then
    list_pages: int = 0
    list_starts: int = 0  # first pages: kinds listed × replicas
    watch_requests: int = 0
    other_requests: int = 0
    list_bytes: int = 0
    list_bytes_per_replica: list[int] = field(default_factory=list)
    watch_streams_per_replica: list[int] = field(default_factory=list)
    paths: dict[str, int] = field(default_factory=dict)  # "GET /api/v1/services watch" → requests at start
    changes: int = 0
    change_events: int = 0  # watch events sent during the change phase (bookmarks apart)
    change_event_bytes: int = 0
    devapi_change_cpu_s: float | None = None
    answer_ms: list[list[float]] = field(default_factory=list)  # per change: write → answer, per replica

    @property
    def skew_ms(self) -> list[float]:
        return [max(a) - min(a) for a in self.answer_ms if len(a) > 1]

    @property
    def skew_max_ms(self) -> float | None:
        return max(self.skew_ms) if self.skew_ms else None

    @property
    def skew_p50_ms(self) -> float | None:
        return statistics.median(self.skew_ms) if self.skew_ms else None

    @property
    def answer_worst_ms(self) -> float | None:
        return max((max(a) for a in self.answer_ms if a), default=None)

    @property
    def event_bytes_per_change(self) -> float | None:
        return self.change_event_bytes / self.changes if self.changes else None

    @property
    def events_per_change(self) -> float | None:
        return self.change_events / self.changes if self.changes else None


@dataclass
class ReplicasResult:
    objects: int
    changes: int
    server_cpus: str | None
    runs: list[ReplicaRun] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def run(self, n: int) -> ReplicaRun | None:
        return next((r for r in self.runs if r.replicas == n), None)

    def to_json(self) -> dict[str, Any]:
        derived = (
            "skew_ms", "skew_max_ms", "skew_p50_ms", "answer_worst_ms", "event_bytes_per_change",
            "events_per_change",
        )
        return {
            "objects": self.objects,
            "changes": self.changes,
            "server_cpus": self.server_cpus,
            "runs": [{**asdict(r), **{k: getattr(r, k) for k in derived}} for r in self.runs],
            "checks": [{**asdict(c), "verdict": c.verdict} for c in replicas_checks(self)],
            "notes": self.notes,
        }


# ---- measuring -----------------------------------------------------------------------------------


async def replicas(
    workdir: Path,
    *,
    objects: int = 50_000,
    counts: Sequence[int] = (1, 2, 4),
    changes: int = 20,
    server_cpus: str | None = None,
    log_level: str = "warning",
) -> ReplicasResult:
    """Measure every N in `counts` (each with a fresh dev API server and cluster).

    Args:
        server_cpus: taskset CPU list for the k8sgw processes (None: not pinned); the caller keeps
            this process off it (bench.run.cpu_plan).
    """
    result = ReplicasResult(objects, changes, server_cpus)
    for n in counts:
        result.runs.append(await _measure(workdir / f"n{n}", n, objects, changes, server_cpus, log_level))
    if server_cpus is not None and max(counts, default=1) > 1:
        result.notes.append(
            f"the replicas share CPU {server_cpus}: start → answer at N > 1 is N start-ups on one core"
        )
    return result


async def _measure(
    workdir: Path, n: int, objects: int, changes: int, server_cpus: str | None, log_level: str
) -> ReplicaRun:
    from bench.run import _sample_names, make_cluster  # here: bench.run may import this module

    run = ReplicaRun(replicas=n, objects=objects)
    hosts = [_host(i) for i in range(n)]
    api = DevApiThread(partial(make_cluster, objects), hosts)
    urls = await api.start()
    try:
        async with trio.open_nursery() as nursery:
            cpu0, started = api.cpu_s(), time.monotonic()
            servers = [
                await start_k8sgw(
                    nursery,
                    workdir / f"replica-{i}",
                    write_kubeconfig(workdir / f"replica-{i}" / "kubeconfig", urls[hosts[i]]),
                    cpus=server_cpus,
                    log_level=log_level,
                )
                for i in range(n)
            ]
            synced = await _all_answer(servers, _sample_names(objects))
            run.devapi_start_cpu_s = api.cpu_s() - cpu0
            run.synced_s = synced - started
            run.replica_cpu_s = [process_ticks(s.pid) / os.sysconf("SC_CLK_TCK") for s in servers]
            tally = await _watches_open(api)
            _start_counts(run, tally, n)
            await trio.sleep(0.5)  # let the first map's garbage go before reading memory (as bench.run)
            run.rss_mb = [read_rss_mb(s.pid)[0] for s in servers]
            before, cpu1 = tally.total(), api.cpu_s()
            run.answer_ms = await _time_changes(api, servers, objects, changes)
            after = (await api.call(api.tally.snapshot)).total()
            run.devapi_change_cpu_s = api.cpu_s() - cpu1
            run.changes = len(run.answer_ms)
            run.change_events = after.watch_events - before.watch_events
            run.change_event_bytes = after.watch_event_bytes - before.watch_event_bytes
            nursery.cancel_scope.cancel()
    finally:
        await api.stop()
    return run


def _host(i: int) -> str:
    """Replica i's address of the dev API server: one loopback address each, so the tally, which
    keys on the address a request arrived at, tells replicas apart (127.0.0.0/8 is all loopback)."""
    return f"127.0.0.{i + 1}"


async def _all_answer(servers: list[Server], names: list[str]) -> float:
    """time.monotonic() when the last of `servers` answers every name."""
    done: list[float] = []

    async def one(server: Server) -> None:
        done.append(await wait_answers(server, names, sync_timeout=SYNC_TIMEOUT))

    async with trio.open_nursery() as nursery:
        for server in servers:
            nursery.start_soon(one, server)
    return max(done)


async def _watches_open(api: DevApiThread) -> ApiTally:
    """The tally once every kind listed has its watch open (a replica watches what it listed).

    Polled: the tally lives on the dev API server's thread, which signals nothing across."""
    with trio.fail_after(WATCH_OPEN_TIMEOUT):
        while True:
            tally = await api.call(api.tally.snapshot)
            total = tally.total()
            if total.list_starts and total.open_watches >= total.list_starts:
                return tally
            await trio.sleep(0.02)


def _start_counts(run: ReplicaRun, tally: ApiTally, n: int) -> None:
    total: ClientTally = tally.total()
    run.watch_streams = total.open_watches
    run.connections = len(total.connections)
    run.list_pages, run.list_starts = total.lists, total.list_starts
    run.watch_requests, run.other_requests = total.watches, total.other
    run.list_bytes = total.list_bytes
    per = [tally.clients.get(_host(i), ClientTally()) for i in range(n)]
    run.list_bytes_per_replica = [c.list_bytes for c in per]
    run.watch_streams_per_replica = [c.open_watches for c in per]
    run.paths = dict(sorted(tally.paths.items()))


async def _time_changes(
    api: DevApiThread, servers: list[Server], objects: int, changes: int
) -> list[list[float]]:
    """Move `changes` Ingresses, one at a time; per change, ms from the write until each replica
    answers the new address. Every replica is polled in a tight UDP loop from before the write."""
    from bench.run import next_move  # here: bench.run may import this module

    ingresses = [name for name in synth.names(objects) if name.kind == "Ingress"]
    if not ingresses:
        return []
    out = []
    for k in range(changes):
        name, new_ip = await next_move(ingresses, k, servers[0].port)
        seen: dict[int, float] = {}
        wrote: list[float] = []

        def write(obj: dict[str, Any]) -> float:  # runs on the dev API server's thread
            at = time.monotonic()
            assert api.cluster is not None
            api.cluster.apply(obj)
            return at

        with trio.fail_after(CHANGE_TIMEOUT):
            async with trio.open_nursery() as nursery:
                for i, server in enumerate(servers):
                    nursery.start_soon(_poll_until, server, name.fqdn, new_ip, seen, i)
                wrote.append(await api.call(write, synth.changed_ingress(name, new_ip)))
        out.append([(seen[i] - wrote[0]) * 1000 for i in range(len(servers))])
        await trio.sleep(0.05)  # one change at a time: no batching of consecutive changes
    return out


async def _poll_until(server: Server, fqdn: str, ip: str, seen: dict[int, float], key: int) -> None:
    """Ask `server` for fqdn back to back until `ip` is among the answers; seen[key] = when."""
    while ip not in addresses(await ask(server.port, fqdn, reply_timeout=0.05)):
        if server.process.returncode is not None:
            raise RuntimeError(f"{server.name} exited:\n{server.log_tail()}")
    seen[key] = time.monotonic()


# ---- reporting -----------------------------------------------------------------------------------


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _mb(n: float | None) -> float | None:
    return None if n is None else n / 2**20


def _mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def replicas_lines(result: ReplicasResult) -> list[str]:
    """The replicas table (bench.report.render's layout: label, one column per N, target, result)
    and the per-replica arithmetic beneath it."""
    runs = result.runs
    head = f"{'replicas (' + format(result.objects, ',') + ' objects)':<34}" + "".join(
        f"{'N=' + str(r.replicas):>14}" for r in runs
    )
    head += f"  {'target':<24}result"
    lines = [head, "-" * len(head)]

    def row(label: str, values: list[Any], fmt: str, target: str = "", verdict: str = "info") -> None:
        lines.append(f"{label:<34}" + "".join(f"{_num(v, fmt):>14}" for v in values) + f"  {target:<24}{verdict}")

    row("watch streams open once synced", [r.watch_streams for r in runs], ",d")
    row("API connections by then", [r.connections for r in runs], ",d")
    row("requests at start: list pages", [r.list_pages for r in runs], ",d")
    row("  watches", [r.watch_requests for r in runs], ",d")
    row("  other (discovery)", [r.other_requests for r in runs], ",d")
    row("list bytes at start, MB", [_mb(r.list_bytes) for r in runs], ".1f")
    row("  per replica, MB", [_mb(r.list_bytes / r.replicas) for r in runs], ".1f")
    row("dev API CPU during start, s", [r.devapi_start_cpu_s for r in runs], ".2f")
    row(
        "  per replica, s",
        [r.devapi_start_cpu_s / r.replicas if r.devapi_start_cpu_s is not None else None for r in runs],
        ".2f",
    )
    row("start → every replica answers, s", [r.synced_s for r in runs], ".2f")
    row("  replica CPU by then (mean), s", [_mean(r.replica_cpu_s) for r in runs], ".2f")
    row("VmRSS per replica (max), MB", [max(r.rss_mb, default=None) for r in runs], ".0f")
    row("watch event bytes per change", [r.event_bytes_per_change for r in runs], ",.0f")
    row("  events per change (fan-out)", [r.events_per_change for r in runs], ".1f")
    row(
        "dev API CPU per change, ms",
        [r.devapi_change_cpu_s * 1000 / r.changes if r.changes and r.devapi_change_cpu_s is not None else None
         for r in runs],
        ".2f",
    )
    row(f"change → answer worst of {result.changes}, ms", [r.answer_worst_ms for r in runs], ".1f")
    row("skew between replicas p50, ms", [r.skew_p50_ms for r in runs], ".2f")
    skew = [c for c in replicas_checks(result) if c.name.startswith("skew between replicas max")]
    row(
        "skew between replicas max, ms",
        [r.skew_max_ms for r in runs],
        ".2f",
        f"<= {TARGET_SKEW_MS:g} ms at N=2" if skew else "",
        skew[0].verdict if skew else "info",
    )
    lines += [f"  {line}" for line in arithmetic(result)]
    lines += [f"note: {n}" for n in result.notes]
    return lines


def arithmetic(result: ReplicasResult) -> list[str]:
    """What each replica costs the API server: the smallest N's figures per replica, how the
    largest N's totals scaled from them, and the costs as functions of N."""
    runs = sorted((r for r in result.runs if r.replicas), key=lambda r: r.replicas)
    if not runs:
        return []
    low, high = runs[0], runs[-1]
    n = low.replicas
    streams = low.watch_streams / n
    list_mb = _mb(low.list_bytes / n) or 0.0
    cpu = (low.devapi_start_cpu_s or 0.0) / n
    event = (low.event_bytes_per_change or 0.0) / n
    out = [
        f"per replica (N={n}): {streams:g} watch streams, {low.list_pages / n:g} list pages = {list_mb:.1f} MB "
        f"of list bodies at every start or relist, {cpu:.2f} s of dev API CPU to serve them; "
        f"{(low.events_per_change or 0.0) / n:g} watch event = {event:,.0f} B per change",
    ]
    if high is not low:

        def times(a: float | None, b: float | None) -> str:
            return f"×{a / b:.1f}" if a is not None and b else "-"

        out.append(
            f"N={low.replicas} → N={high.replicas} (×{high.replicas / low.replicas:g}): streams "
            f"{times(high.watch_streams, low.watch_streams)}, list bytes {times(high.list_bytes, low.list_bytes)}, "
            f"dev API CPU at start {times(high.devapi_start_cpu_s, low.devapi_start_cpu_s)}, "
            f"event bytes per change {times(high.event_bytes_per_change, low.event_bytes_per_change)}"
        )
    out.append(
        f"N replicas: {streams:g}·N watch streams, {list_mb:.1f}·N MB of lists when all restart (a rollout), "
        f"{event:,.0f}·N B per change (at 200 changes/s: {event * 200 / 1000:,.0f}·N kB/s); "
        f"each replica answers DNS on a core of its own"
    )
    return out


def replicas_checks(result: ReplicasResult) -> list[Check]:
    """Rows for the summary: info, except the N=2 skew (bounded by the per-replica change target)."""
    out: list[Check] = []
    for r in result.runs:
        out += [
            Check(f"watch streams, {r.replicas} replicas", r.watch_streams, "info", None),
            Check(f"list MB at start, {r.replicas} replicas", _mb(r.list_bytes), "info", None),
            Check(f"dev API CPU s at start, {r.replicas} replicas", r.devapi_start_cpu_s, "info", None),
            Check(f"start→every replica answers s, {r.replicas} replicas", r.synced_s, "info", None),
            Check(f"watch event B per change, {r.replicas} replicas", r.event_bytes_per_change, "info", None),
        ]
        if r.replicas == 2 and r.skew_max_ms is not None:
            out.append(
                Check(
                    f"skew between replicas max of {len(r.skew_ms)}, 2 replicas",
                    r.skew_max_ms,
                    f"<= {TARGET_SKEW_MS:g} ms",
                    r.skew_max_ms <= TARGET_SKEW_MS,
                )
            )
        elif r.skew_max_ms is not None:
            out.append(Check(f"skew between replicas max, {r.replicas} replicas", r.skew_max_ms, "info", None))
    return out


# ---- command line --------------------------------------------------------------------------------


def _counts(text: str) -> list[int]:
    try:
        counts = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of counts: {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("replica counts must be >= 1")
    return counts


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.replicas", description=__doc__.splitlines()[0])
    p.add_argument("--objects", type=int, default=None, help="objects in the cluster (default 50000; --quick 2000)")
    p.add_argument("--replicas", type=_counts, default=[1, 2, 4], help="replica counts (default 1,2,4)")
    p.add_argument("--changes", type=int, default=None, help="changes timed per N (default 20; --quick 5)")
    p.add_argument("--quick", action="store_true", help="2,000 objects and 5 changes")
    p.add_argument("--server-cpu", type=int, default=1, help="the CPU the replicas are pinned to (default 1)")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON")
    p.add_argument("--workdir", type=Path, help="keep configs and logs here (default: a temp dir, removed)")
    p.add_argument(
        "--k8sgw-log-level", default="warning", choices=["debug", "info", "warning", "error"],
        help="the replicas' -log.level (default warning)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from bench.run import cpu_plan  # here: bench.run may import this module

    args = parser().parse_args(argv)
    objects = args.objects if args.objects is not None else (2000 if args.quick else 50_000)
    changes = args.changes if args.changes is not None else (5 if args.quick else 20)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    server_cpus, load_cpus = cpu_plan(args.server_cpu)
    if load_cpus is not None:
        os.sched_setaffinity(0, load_cpus)  # the dev API server and the pollers stay off the replicas' CPU

    async def go(workdir: Path) -> ReplicasResult:
        return await replicas(
            workdir, objects=objects, counts=args.replicas, changes=changes, server_cpus=server_cpus,
            log_level=args.k8sgw_log_level,
        )

    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        result = trio.run(go, args.workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="k8sgw-replicas-") as tmp:
            result = trio.run(go, Path(tmp))
    m = machine_facts()
    print(f"k8sgw replicas (python -m bench.replicas); k8sgw {m['k8sgw']}")
    print(f"machine: {m['nproc']} CPUs, {m['cpu_model']}; Python {m['python']}; kernel {m['kernel']}")
    print("\n".join(replicas_lines(result)), flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(result.to_json(), indent=2) + "\n")
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
