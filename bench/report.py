"""Results, targets and the printed table.

The targets k8sgw is held to: UDP qps ≥ 0.8 × NSD's, no lost queries, p99 ≤ 1 ms at half the maximum
rate, ≤ 250 MB resident at 50k objects, a change answered within 100 ms (worst of the sample), and
an update that costs no more at 50k objects than at 1k. Each printed number carries its target and
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
TARGET_SCALE_AT = 50_000  # the RSS and sync targets are stated for this many objects
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

    @property
    def update_p50_ms(self) -> float | None:
        return _pct(self.update_ms, 50)

    @property
    def update_worst_ms(self) -> float | None:
        return max(self.update_ms) if self.update_ms else None


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
class Results:
    machine: dict[str, Any]
    settings: dict[str, Any]
    throughput: dict[str, dict[str, LoadResult]] = field(default_factory=dict)  # server → mode → result
    scale: list[ScaleResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    profiles: list[str] = field(default_factory=list)  # py-spy summaries (--py-spy)

    def checks(self) -> list[Check]:
        out: list[Check] = []
        k8s = self.throughput.get("k8sgw", {})
        nsd = self.throughput.get("NSD", {})
        for mode in ("udp", "udp+edns", "tcp", *TRAFFIC_MODES):
            if mode in k8s and mode in nsd and nsd[mode].qps:
                ratio = k8s[mode].qps / nsd[mode].qps
                target = _target_ratio(mode)
                out.append(
                    Check(
                        f"{_MODE_LABEL[mode]} qps k8sgw/NSD",
                        ratio,
                        f">= {target:.2f}" if target is not None else "info",
                        ratio >= target if target is not None else None,
                    )
                )
        for server, runs in self.throughput.items():
            for mode in ("udp", "udp+edns", "tcp", *TRAFFIC_MODES):
                if mode in runs:
                    out.append(
                        Check(
                            f"{_MODE_LABEL[mode]} lost, {server}", runs[mode].lost, "0", runs[mode].lost == 0
                        )
                    )
        lat = k8s.get("latency")
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
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "settings": self.settings,
            "throughput": {s: {m: asdict(r) for m, r in runs.items()} for s, runs in self.throughput.items()},
            "scale": [
                {**asdict(s), "update_p50_ms": s.update_p50_ms, "update_worst_ms": s.update_worst_ms}
                for s in self.scale
            ],
            "checks": [{**asdict(c), "verdict": c.verdict} for c in self.checks()],
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
TARGET_TRAFFIC_RATIO = 0.5


def _target_ratio(mode: str) -> float | None:
    """The k8sgw/NSD ratio a throughput row is held to; None: info only (TCP)."""
    return TARGET_TRAFFIC_RATIO if mode in TRAFFIC_MODES else (None if mode == "tcp" else TARGET_RATIO)


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
    if results.throughput:
        servers = list(results.throughput)
        head = f"{'throughput (' + format(s['objects'], ',') + ' objects)':<34}" + "".join(
            f"{x:>12}" for x in servers
        )
        head += f"{'k8sgw/NSD':>11}  {'target':<16}result"
        lines += [head, "-" * len(head)]
        k8s = results.throughput.get("k8sgw", {})
        nsd = results.throughput.get("NSD", {})
        for mode in ("udp", "udp+edns", "tcp", *TRAFFIC_MODES):
            if mode not in k8s:
                continue
            label = _MODE_LABEL[mode]
            ratio = k8s[mode].qps / nsd[mode].qps if mode in nsd and nsd[mode].qps else None
            target = _target_ratio(mode)
            gated = target is not None and ratio is not None
            verdict = ("PASS" if ratio >= target else "MISS") if gated else "info"
            row = f"{label + ' queries/s':<34}" + "".join(
                f"{_num(results.throughput[x][mode].qps):>12}" for x in servers
            )
            row += f"{_num(ratio, '.3f'):>11}  {(f'>= {target:.2f}' if gated else ''):<16}{verdict}"
            lines.append(row)
            lost = [results.throughput[x][mode].lost for x in servers]
            row = f"{'  lost queries':<34}" + "".join(f"{v:>12,}" for v in lost)
            row += f"{'':>11}  {'0':<16}{'PASS' if not any(lost) else 'MISS'}"
            lines.append(row)
            sent = [results.throughput[x][mode].sent for x in servers]
            lines.append(f"{'  sent':<34}" + "".join(f"{v:>12,}" for v in sent))
            lines.append(
                f"{'  server CPU % (others on it %)':<34}"
                + "".join(f"{_cpu(results.throughput[x][mode]):>12}" for x in servers)
            )
            rc = [_rcodes(results.throughput[x][mode]) for x in servers]
            lines.append(
                f"{'  rcodes':<34}" + "   ".join(f"{x}: {r}" for x, r in zip(servers, rc, strict=True))
            )
        if "latency" in k8s:
            rates = "/".join(
                _num(results.throughput[x]["latency"].rate)
                for x in servers
                if "latency" in results.throughput[x]
            )
            lines.append(f"latency at half the max UDP rate ({rates} queries/s)")
            for key, label in (("p50_ms", "p50"), ("p99_ms", "p99"), ("p999_ms", "p99.9"), ("max_ms", "max")):
                vals = [getattr(results.throughput[x].get("latency"), key, None) for x in servers]
                row = f"{'  ' + label + ' ms':<34}" + "".join(f"{_num(v, '.3f'):>12}" for v in vals)
                if key == "p99_ms" and vals[0] is not None:
                    row += f"{'':>11}  {f'<= {TARGET_P99_MS:g} ms (k8sgw)':<16}{'PASS' if vals[0] <= TARGET_P99_MS else 'MISS'}"
                lines.append(row)
            lost = [
                results.throughput[x]["latency"].lost for x in servers if "latency" in results.throughput[x]
            ]
            lines.append(f"{'  lost queries':<34}" + "".join(f"{v:>12,}" for v in lost))
            lines.append(
                f"{'  server CPU % (others on it %)':<34}"
                + "".join(f"{_cpu(results.throughput[x]['latency']):>12}" for x in servers)
            )
            lines.append(f"  ({k8s['latency'].probe})")
        lines.append("")
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


def _cpu(result: LoadResult) -> str:
    if result.server_cpu_pct is None:
        return "-"
    return f"{result.server_cpu_pct:.0f} ({result.other_cpu_pct:.0f})"


def _rcodes(result: LoadResult) -> str:
    total = sum(result.rcodes.values()) or 1
    return ", ".join(f"{k} {v / total:.0%}" for k, v in sorted(result.rcodes.items(), key=lambda kv: -kv[1]))


def write_json(results: Results, path: Path) -> None:
    path.write_text(json.dumps(results.to_json(), indent=2, default=str) + "\n")
