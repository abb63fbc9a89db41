"""Results, targets and the printed table.

The targets k8sgw is held to, per configuration (bench.configs): k8s_gateway alone at UDP qps ≥ 0.8 ×
NSD's and names never asked before ≥ 0.5 ×; with the shipped Corefile's directives (prometheus on)
UDP ≥ 0.9 × and TCP ≥ 1.0 ×; with `log` ≥ 100,000 UDP queries/s and a line for every answered query;
no lost queries, and no real name lost beside a random-subdomain flood at NSD's rate; p99 ≤ 1 ms at
half the maximum rate; at 100k objects the last name answering within 15 s of start and ≤ 250 MB
resident; a change answered within 100 ms (worst of the sample), and an update that costs no more
at 100k objects than at 1k. Each printed number carries its target and
PASS or MISS; numbers without a target say "info".
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.load import LoadResult, dnsperf_version
from bench.servers import nsd_version
from k8sgw import __version__
from k8sgw.dnsserver.udp import BATCHED_IO

__all__ = ["Check", "Results", "ScaleResult", "machine_facts", "render", "write_json"]

TARGET_RATIO = 0.8
TARGET_P99_MS = 1.0
TARGET_RSS_MB = 250.0
TARGET_SCALE_AT = 100_000  # the RSS and sync targets are stated for this many objects
TARGET_SYNC_S = 15.0
TARGET_CHANGE_MS = 100.0
# "Must not grow with the cluster": p50 at the large size within 2x the small one's, or within
# 1 ms of it (at a few ms, scheduler noise alone is a factor of two).
TARGET_GROWTH = 2.0
GROWTH_SLACK_MS = 1.0


@dataclass
class ScaleResult:
    objects: int
    devapi_list_s: float | None = None  # one paginated LIST (500/page) of every kind, before k8sgw starts
    listening_s: float | None = None  # process start → first DNS reply (any rcode)
    synced_s: float | None = None  # process start → the last names answer
    sync_cpu_s: float | None = None  # k8sgw's own CPU time by then (the rest is waiting for the API)
    rss_mb: float | None = None
    hwm_mb: float | None = None
    update_ms: list[float] = field(default_factory=list)
    nsd_mb: float | None = None  # NSD's proportional set size holding the same names from a zone file
    zone_file_bytes: int | None = None

    @property
    def update_p50_ms(self) -> float | None:
        return _pct(self.update_ms, 50)

    @property
    def update_worst_ms(self) -> float | None:
        return max(self.update_ms) if self.update_ms else None


def marginal_bytes(sizes: list[ScaleResult], attr: str) -> float | None:
    """What one more object costs in memory: the growth of `attr` (MB) from the smallest to the largest
    cluster over the objects added (a process's fixed cost, the interpreter and libraries, cancels)."""
    small, large = sizes[0], sizes[-1]
    a, b = getattr(small, attr), getattr(large, attr)
    if a is None or b is None or large.objects == small.objects:
        return None
    return (b - a) * 2**20 / (large.objects - small.objects)


@dataclass
class Check:
    name: str
    value: float | None
    target: str
    passed: bool | None  # None: info only

    @property
    def verdict(self) -> str:
        return "info" if self.passed is None else ("PASS" if self.passed else "MISS")


@dataclass
class Phase:
    """A phase measured by its own module (bench.churn, bench.replicas): its table, its checks and its data."""

    name: str
    lines: list[str]
    checks: list[Check]
    data: dict[str, Any]


@dataclass
class Results:
    machine: dict[str, Any]
    settings: dict[str, Any]
    throughput: dict[str, dict[str, LoadResult]] = field(default_factory=dict)  # server → mode → result
    scale: list[ScaleResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    profiles: list[str] = field(default_factory=list)  # py-spy summaries (--py-spy)
    phases: list[Phase] = field(default_factory=list)

    def k8sgw_servers(self) -> list[str]:
        return [name for name in self.throughput if name != "NSD"]

    def checks(self) -> list[Check]:
        out: list[Check] = []
        nsd = self.throughput.get("NSD", {})
        for server in self.k8sgw_servers():
            runs = self.throughput[server]
            for mode in ROW_MODES:
                if mode not in runs:
                    continue
                ratio = runs[mode].qps / nsd[mode].qps if mode in nsd and nsd[mode].qps else None
                target = TARGET_RATIOS.get((server, mode))
                if ratio is not None:
                    out.append(
                        Check(
                            f"{_MODE_LABEL[mode]} qps {server}/NSD",
                            ratio,
                            f">= {target:.2f}" if target is not None else "info",
                            ratio >= target if target is not None else None,
                        )
                    )
                floor = TARGET_QPS.get((server, mode))
                if floor is not None:
                    out.append(
                        Check(f"{_MODE_LABEL[mode]} qps {server}", runs[mode].qps, f">= {floor:,}", runs[mode].qps >= floor)
                    )
                lines = runs[mode].log_lines
                if lines is not None:
                    out.append(
                        Check(f"{_MODE_LABEL[mode]} log lines {server}", lines, "= answered", _log_complete(runs[mode]))
                    )
        for server, runs in self.throughput.items():
            for mode in ROW_MODES:
                if mode in runs:
                    out.append(
                        Check(
                            f"{_MODE_LABEL[mode]} lost, {server}", runs[mode].lost, "0", runs[mode].lost == 0
                        )
                    )
            flood = runs.get("flood")
            if flood is not None and flood.probe_lost is not None:
                out.append(
                    Check(
                        f"real names lost beside the flood, {server}", flood.probe_lost, "0", flood.probe_lost == 0
                    )
                )
        lat = self.throughput.get("k8sgw", {}).get("latency")
        if lat is not None and lat.p99_ms is not None:
            out.append(
                Check(
                    "latency p99, k8sgw", lat.p99_ms, f"<= {TARGET_P99_MS:g} ms", lat.p99_ms <= TARGET_P99_MS
                )
            )
        for s in self.scale:
            if s.synced_s is not None:
                gated = s.objects >= TARGET_SCALE_AT
                out.append(
                    Check(
                        f"start→last name answers at {s.objects:,} objects",
                        s.synced_s,
                        f"<= {TARGET_SYNC_S:g} s" if gated else "info",
                        s.synced_s <= TARGET_SYNC_S if gated else None,
                    )
                )
            if s.rss_mb is not None:
                gated = s.objects >= TARGET_SCALE_AT
                target = f"<= {TARGET_RSS_MB:g} MB" if gated else "info"
                out.append(
                    Check(
                        f"RSS at {s.objects:,} objects",
                        s.rss_mb,
                        target,
                        s.rss_mb <= TARGET_RSS_MB if gated else None,
                    )
                )
            if s.update_worst_ms is not None:
                out.append(
                    Check(
                        f"change→answer worst of {len(s.update_ms)}, {s.objects:,} objects",
                        s.update_worst_ms,
                        f"<= {TARGET_CHANGE_MS:g} ms",
                        s.update_worst_ms <= TARGET_CHANGE_MS,
                    )
                )
        sized = [s for s in self.scale if s.update_p50_ms is not None]
        if len(sized) >= 2:
            small, large = sized[0], sized[-1]
            ratio = large.update_p50_ms / small.update_p50_ms if small.update_p50_ms else math.inf
            ok = ratio <= TARGET_GROWTH or large.update_p50_ms - small.update_p50_ms <= GROWTH_SLACK_MS
            out.append(
                Check(
                    f"update p50 growth {small.objects:,}→{large.objects:,} objects",
                    ratio,
                    f"<= {TARGET_GROWTH:g}x (or +{GROWTH_SLACK_MS:g} ms)",
                    ok,
                )
            )
        for phase in self.phases:
            out += phase.checks
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "settings": self.settings,
            "throughput": {s: {m: asdict(r) for m, r in runs.items()} for s, runs in self.throughput.items()},
            "scale": [
                {
                    **asdict(s),
                    "update_p50_ms": s.update_p50_ms,
                    "update_worst_ms": s.update_worst_ms,
                }
                for s in self.scale
            ],
            "bytes_per_object": {
                "k8sgw": marginal_bytes(self.scale, "rss_mb") if len(self.scale) >= 2 else None,
                "NSD": marginal_bytes(self.scale, "nsd_mb") if len(self.scale) >= 2 else None,
            },
            "checks": [{**asdict(c), "verdict": c.verdict} for c in self.checks()],
            **{phase.name: phase.data for phase in self.phases},
            "notes": self.notes,
            "profiles": self.profiles,
        }


_MODE_LABEL = {
    "udp": "UDP",
    "udp+edns": "UDP+EDNS",
    "tcp": "TCP",
    "latency": "latency",
    "new-names": "new names (random case)",
    "nxdomain": "NXDOMAIN flood",
    "0x20": "one name, 0x20 case",
}
# Rows of names never asked before (bench.cluster.TRAFFIC): plain UDP, each held to this share of NSD.
TRAFFIC_MODES = ("new-names", "nxdomain", "0x20")
ROW_MODES = ("udp", "udp+edns", "tcp", *TRAFFIC_MODES)
TARGET_TRAFFIC_RATIO = 0.5
# (server, row) → the k8sgw/NSD ratio it is held to; a row not here is info only. "k8sgw" is k8s_gateway
# alone; "k8sgw deployed" has the shipped Corefile's directives (prometheus counting every query).
TARGET_RATIOS: dict[tuple[str, str], float] = {
    ("k8sgw", "udp"): TARGET_RATIO,
    ("k8sgw", "udp+edns"): TARGET_RATIO,
    **{("k8sgw", mode): TARGET_TRAFFIC_RATIO for mode in TRAFFIC_MODES},
    ("k8sgw deployed", "udp"): 0.9,
    ("k8sgw deployed", "udp+edns"): 0.9,
    ("k8sgw deployed", "tcp"): 1.0,
}
# (server, row) → queries/s it must reach on its own (a line per query has no NSD counterpart).
TARGET_QPS: dict[tuple[str, str], float] = {("k8sgw log", "udp"): 100_000}


def _log_complete(run: LoadResult) -> bool:
    """Every answered query logged once: exactly dnsperf's completed count when none was lost (a
    query dnsperf gave up on may still have been answered and logged, hence the range)."""
    lines = run.log_lines or 0
    return lines == run.completed if run.lost == 0 else run.completed <= lines <= run.sent


def _pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


def machine_facts() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        rev = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=False,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
    except OSError:
        rev = ""
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "k8sgw": __version__ + (f" ({rev})" if rev else ""),
        "udp_io": "recvmmsg/sendmmsg batches" if BATCHED_IO else "recvfrom/sendto (K8SGW_UDP_BATCH=0, or _mmsg not built)",
        "dnsperf": dnsperf_version(),
        "nsd": nsd_version(),
        "kernel": platform.release(),
    }


def _num(value: float | None, fmt: str = ",.0f") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, fmt)


def render(results: Results) -> str:
    m, s = results.machine, results.settings
    lines = [
        "k8sgw benchmark (python -m bench)",
        f"machine: {m['nproc']} CPUs, {m['cpu_model']}; Python {m['python']}; kernel {m['kernel']}",
        f"tools:   k8sgw {m['k8sgw']}, UDP I/O {m.get('udp_io', '?')}; dnsperf {m['dnsperf'] or 'missing'}; "
        f"NSD {m['nsd'] or 'missing'}",
        f"setup:   {s['summary']}",
        "",
    ]
    for server in results.k8sgw_servers():
        lines += _throughput_lines(results, server)
    if results.scale:
        head = f"{'scale (k8sgw)':<34}" + "".join(
            f"{format(x.objects, ',') + ' obj':>14}" for x in results.scale
        )
        head += f"  {'target':<24}result"
        lines += [head, "-" * len(head)]
        big = results.scale[-1]

        def row(
            label: str, values: list[float | None], fmt: str, target: str = "", verdict: str = ""
        ) -> None:
            lines.append(
                f"{label:<34}" + "".join(f"{_num(v, fmt):>14}" for v in values) + f"  {target:<24}{verdict}"
            )

        sc = results.scale
        row("dev API LIST, all pages, s", [x.devapi_list_s for x in sc], ".2f", "", "info")
        row("start → listening, s", [x.listening_s for x in sc], ".2f", "", "info")
        sync_gated = big.objects >= TARGET_SCALE_AT
        sync_ok = big.synced_s is not None and big.synced_s <= TARGET_SYNC_S
        row(
            "start → last name answers, s",
            [x.synced_s for x in sc],
            ".2f",
            f"<= {TARGET_SYNC_S:g} s at {big.objects:,}" if sync_gated else f"({TARGET_SYNC_S:g} s at {TARGET_SCALE_AT:,})",
            ("PASS" if sync_ok else "MISS") if sync_gated else "info",
        )
        row("  k8sgw CPU time by then, s", [x.sync_cpu_s for x in sc], ".2f", "", "info")
        rss_ok = big.rss_mb is not None and big.rss_mb <= TARGET_RSS_MB
        rss_gated = big.objects >= TARGET_SCALE_AT
        row(
            "VmRSS once synced, MB",
            [x.rss_mb for x in sc],
            ".0f",
            f"<= {TARGET_RSS_MB:g} MB at {big.objects:,}"
            if rss_gated
            else f"({TARGET_RSS_MB:g} MB at {TARGET_SCALE_AT:,})",
            ("PASS" if rss_ok else "MISS") if rss_gated else "info",
        )
        row("VmHWM (peak), MB", [x.hwm_mb for x in sc], ".0f", "", "info")
        if any(x.nsd_mb is not None for x in sc):
            row("NSD, same names from a zone file, MB", [x.nsd_mb for x in sc], ".0f", "(PSS of its processes)", "info")
            row("  zone file, MB", [x.zone_file_bytes / 2**20 if x.zone_file_bytes else None for x in sc], ".1f", "", "info")
        if len(sc) >= 2:
            per = [(f"k8sgw {marginal_bytes(sc, 'rss_mb'):,.0f}" if marginal_bytes(sc, "rss_mb") else "")]
            if marginal_bytes(sc, "nsd_mb"):
                per.append(f"NSD {marginal_bytes(sc, 'nsd_mb'):,.0f}")
            lines.append(
                f"{'bytes per object, ' + format(sc[0].objects, ',') + '→' + format(big.objects, ','):<34}"
                + f"{', '.join(per):>28}  {'(memory growth / objects added)':<24}info"
            )
        row("change → answer p50, ms", [x.update_p50_ms for x in sc], ".1f", "", "info")
        worst_ok = all(x.update_worst_ms is not None and x.update_worst_ms <= TARGET_CHANGE_MS for x in sc)
        row(
            f"change → answer worst of {len(big.update_ms)}, ms",
            [x.update_worst_ms for x in sc],
            ".1f",
            f"<= {TARGET_CHANGE_MS:g} ms",
            "PASS" if worst_ok else "MISS",
        )
        growth = [c for c in results.checks() if c.name.startswith("update p50 growth")]
        if growth:
            c = growth[0]
            lines.append(
                f"{'update p50 large/small':<34}{_num(c.value, '.2f'):>14}{'':>{14 * (len(sc) - 1)}}  {c.target:<24}{c.verdict}"
            )
        lines.append("")
    for phase in results.phases:
        lines += [*phase.lines, ""]
    checks = results.checks()
    missed = [c for c in checks if c.passed is False]
    gated = [c for c in checks if c.passed is not None]
    lines.append(
        f"targets: {len(gated) - len(missed)}/{len(gated)} PASS"
        + (f"; MISS: {', '.join(c.name for c in missed)}" if missed else "")
    )
    busy = [
        f"{server} {mode} {r.other_cpu_pct:.0f}%"
        for server, runs in results.throughput.items()
        for mode, r in runs.items()
        if r.other_cpu_pct is not None and r.other_cpu_pct >= 5
    ]
    unsaturated = [
        f"{server} {mode} {r.server_cpu_pct:.0f}%"
        for server, runs in results.throughput.items()
        for mode, r in runs.items()
        if mode != "latency"
        and r.server_cpu_pct is not None
        and r.server_cpu_pct + (r.other_cpu_pct or 0) < 85
    ]
    if unsaturated:
        lines.append(
            "warning: server CPU below 85% during: "
            + ", ".join(unsaturated)
            + " (the load generator, not the server, set those rates; a ratio against them is an upper bound)"
        )
    if busy:
        lines.append(
            "warning: other processes used the server's CPU during: "
            + ", ".join(busy)
            + " (a shared machine: those runs understate the server)"
        )
    lines += [f"note: {n}" for n in results.notes]
    return "\n".join(lines)


def _throughput_lines(results: Results, server: str) -> list[str]:
    """One configuration of k8sgw beside NSD: a row per load, its latency, and the flood."""
    s = results.settings
    columns = [server, *(["NSD"] if "NSD" in results.throughput else [])]
    runs = {x: results.throughput[x] for x in columns}
    k8s, nsd = runs[server], runs.get("NSD", {})
    plugins = s.get("configs", {}).get(server)
    head = f"{server + ' (' + format(s['objects'], ',') + ' objects)':<34}" + "".join(f"{x:>16}" for x in columns)
    head += f"{'ratio' if 'NSD' in columns else '':>9}  {'target':<16}result"
    lines = [head, "-" * len(head)]
    if plugins:
        lines.append(f"  with: {'; '.join(' '.join(p.split()) for p in plugins)}")

    def row(label: str, cells: list[str], ratio: str = "", target: str = "", verdict: str = "") -> None:
        lines.append(f"{label:<34}" + "".join(f"{c:>16}" for c in cells) + f"{ratio:>9}  {target:<16}{verdict}")

    def sub(label: str, mode: str, value) -> None:
        row(label, [value(runs[x][mode]) if mode in runs[x] else "-" for x in columns])

    for mode in ROW_MODES:
        if mode not in k8s:
            continue
        ratio = k8s[mode].qps / nsd[mode].qps if mode in nsd and nsd[mode].qps else None
        target = TARGET_RATIOS.get((server, mode)) if ratio is not None else None
        floor = TARGET_QPS.get((server, mode))
        if target is not None:
            goal, verdict = f">= {target:.2f}", "PASS" if ratio >= target else "MISS"
        elif floor is not None:
            goal, verdict = f">= {floor:,.0f} q/s", "PASS" if k8s[mode].qps >= floor else "MISS"
        else:
            goal, verdict = "", "info"
        row(
            _MODE_LABEL[mode] + " queries/s",
            [_num(runs[x][mode].qps) if mode in runs[x] else "-" for x in columns],
            _num(ratio, ".3f"),
            goal,
            verdict,
        )
        lost = [runs[x][mode].lost for x in columns if mode in runs[x]]
        row("  lost queries", [f"{v:,}" for v in lost], "", "0", "PASS" if not any(lost) else "MISS")
        sub("  sent", mode, lambda r: f"{r.sent:,}")
        sub("  server CPU % (others on it %)", mode, _cpu)
        if k8s[mode].log_lines is not None:
            row(
                "  query-log lines written",
                [f"{k8s[mode].log_lines:,}", *("-" for _ in columns[1:])],
                "",
                "= answered",
                "PASS" if _log_complete(k8s[mode]) else "MISS",
            )
        rc = [f"{x}: {_rcodes(runs[x][mode])}" for x in columns if mode in runs[x]]
        lines.append(f"{'  rcodes':<34}" + "   ".join(rc))
    if "latency" in k8s:
        rates = "/".join(_num(runs[x]["latency"].rate) for x in columns if "latency" in runs[x])
        lines.append(f"latency at half the max UDP rate ({rates} queries/s)")
        for key, label in (("p50_ms", "p50"), ("p99_ms", "p99"), ("p999_ms", "p99.9"), ("max_ms", "max")):
            vals = [getattr(runs[x].get("latency"), key, None) for x in columns]
            gated = key == "p99_ms" and server == "k8sgw" and vals[0] is not None
            row(
                f"  {label} ms",
                [_num(v, ".3f") for v in vals],
                "",
                f"<= {TARGET_P99_MS:g} ms" if gated else "",
                ("PASS" if vals[0] <= TARGET_P99_MS else "MISS") if gated else "",
            )
        sub("  lost queries", "latency", lambda r: f"{r.lost:,}")
        sub("  server CPU % (others on it %)", "latency", _cpu)
        lines.append(f"  ({k8s['latency'].probe})")
    if "flood" in k8s:
        rates = "/".join(_num(runs[x]["flood"].rate) for x in columns if "flood" in runs[x])
        lines.append(f"real names beside a random-subdomain flood ({rates} queries/s, NSD's maximum)")
        probe_lost = [runs[x]["flood"].probe_lost for x in columns if "flood" in runs[x]]
        row("  real names lost", [f"{v:,}" for v in probe_lost], "", "0", "PASS" if not any(probe_lost) else "MISS")
        sub("  real names p99 ms", "flood", lambda r: _num(r.p99_ms, ".3f"))
        sub("  flood queries lost", "flood", lambda r: f"{r.lost:,} of {r.sent:,}")
        sub("  server CPU % (others on it %)", "flood", _cpu)
        lines.append(f"  ({k8s['flood'].probe})")
    lines.append("")
    return lines


def _cpu(result: LoadResult) -> str:
    if result.server_cpu_pct is None:
        return "-"
    return f"{result.server_cpu_pct:.0f} ({result.other_cpu_pct:.0f})"


def _rcodes(result: LoadResult) -> str:
    total = sum(result.rcodes.values()) or 1
    return ", ".join(f"{k} {v / total:.0%}" for k, v in sorted(result.rcodes.items(), key=lambda kv: -kv[1]))


def write_json(results: Results, path: Path) -> None:
    path.write_text(json.dumps(results.to_json(), indent=2, default=str) + "\n")
