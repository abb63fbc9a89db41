"""Load generators: dnsperf (the instrument), and a small Python client for when it is missing.

dnsperf 2.10 has no latency histogram; its `-v` per-query lines (`> NOERROR name A 0.000123`) are
parsed when present, but latency percentiles come from probe.py (see there why). The Python client
is a lower bound only: it is itself a Python program on one core, and the report says so.
"""

from __future__ import annotations

import math
import re
import shutil
import socket
import struct
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import dns.message
import dns.rcode
import trio

__all__ = [
    "LoadResult",
    "dnsperf_version",
    "parse_dnsperf",
    "percentile",
    "python_load",
    "run_dnsperf",
]


@dataclass
class LoadResult:
    """One load run against one server."""

    tool: str  # "dnsperf" | "python"
    mode: str  # "udp" | "udp+edns" | "tcp" | "latency"
    sent: int = 0
    completed: int = 0
    lost: int = 0
    qps: float = 0.0
    rcodes: dict[str, int] = field(default_factory=dict)
    avg_latency_ms: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    p999_ms: float | None = None
    max_ms: float | None = None
    rate: float | None = None  # the -Q limit of a latency run
    probe: str = ""  # how p50/p99 were measured in a latency run
    probe_sent: int | None = None  # the probe's own queries beside this load (latency, flood)
    probe_lost: int | None = None
    log_lines: int | None = None  # query-log lines written for this run (a configuration with `log`)
    server_cpu_pct: float | None = None  # the server's processes, % of its one core, during the run
    other_cpu_pct: float | None = None  # everything else on the server's core (other users' jobs)
    command: str = ""


_NUM = r"([0-9]+(?:\.[0-9]+)?)"
_PATTERNS = {
    "sent": re.compile(rf"Queries sent:\s+{_NUM}"),
    "completed": re.compile(rf"Queries completed:\s+{_NUM}"),
    "lost": re.compile(rf"Queries lost:\s+{_NUM}"),
    "qps": re.compile(rf"Queries per second:\s+{_NUM}"),
    "avg": re.compile(rf"Average Latency \(s\):\s+{_NUM}"),
}
_RCODES = re.compile(r"Response codes:\s+(.*)")
_VERBOSE = re.compile(rb"^> (\S+) \S+ \S+ ([0-9.]+)$", re.MULTILINE)


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of an ascending list."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def parse_dnsperf(output: bytes, mode: str) -> LoadResult:
    """Read dnsperf's summary ("Queries per second", "Queries lost", ...) and, when it ran with
    `-v`, the per-query latencies.

    Raises:
        ValueError: the output has no "Queries per second" line (dnsperf failed).
    """
    text = output.decode(errors="replace")
    start = text.rfind("\nStatistics:")  # not "Connection Statistics:" (TCP), which follows it
    summary = text[start:] if start >= 0 else text
    found = {k: p.search(summary) for k, p in _PATTERNS.items()}
    if found["qps"] is None or found["lost"] is None:
        tail = "\n".join(text.strip().splitlines()[-15:])
        raise ValueError(f"dnsperf printed no statistics:\n{tail}")
    result = LoadResult(
        tool="dnsperf",
        mode=mode,
        sent=int(float(found["sent"].group(1))) if found["sent"] else 0,
        completed=int(float(found["completed"].group(1))) if found["completed"] else 0,
        lost=int(float(found["lost"].group(1))),
        qps=float(found["qps"].group(1)),
        avg_latency_ms=float(found["avg"].group(1)) * 1000 if found["avg"] else None,
    )
    rc = _RCODES.search(summary)
    if rc:
        for part in rc.group(1).split(","):
            bits = part.split()
            if len(bits) >= 2 and bits[1].isdigit():
                result.rcodes[bits[0]] = int(bits[1])
    latencies = sorted(float(m.group(2)) * 1000 for m in _VERBOSE.finditer(output))
    if latencies:
        result.p50_ms = percentile(latencies, 50)
        result.p99_ms = percentile(latencies, 99)
        result.max_ms = latencies[-1]
    return result


def dnsperf_version() -> str | None:
    path = shutil.which("dnsperf")
    if path is None:
        return None

    out = subprocess.run([path, "-H"], capture_output=True, text=True, check=False)
    m = re.search(r"Version\s+(\S+)", out.stdout + out.stderr)
    return m.group(1) if m else "unknown"


async def run_dnsperf(
    port: int,
    query_file: Path,
    *,
    mode: str,
    duration: float,
    clients: int,
    outstanding: int,
    rate: float | None = None,
    passes: int | None = None,
    cpus: str | None = None,
    niceness: int = 0,
    out_file: Path,
) -> LoadResult:
    """Run dnsperf once against 127.0.0.1:port and parse it.

    Args:
        mode: "udp", "udp+edns" (`-e`), "tcp" (`-m tcp`).
        rate: `-Q`: at most this many queries per second (the background load of a latency run).
        passes: `-n`: stop after this many passes through the file (a warm-up).
        cpus: a taskset CPU list for dnsperf, or None to leave it unpinned.
        niceness: run dnsperf under `nice -n` this (a background load that must not starve the
            measuring processes on its CPU).
        out_file: where its stdout goes.
    """
    cmd = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(query_file)]
    cmd += ["-l", f"{duration:g}", "-c", str(clients), "-q", str(outstanding), "-t", "2"]
    if mode == "udp+edns":
        cmd.append("-e")
    elif mode == "tcp":
        cmd += ["-m", "tcp"]
    if rate is not None:
        cmd += ["-Q", str(max(1, int(rate)))]
    if passes is not None:
        cmd += ["-n", str(passes)]
    if cpus is not None and shutil.which("taskset"):
        cmd = ["taskset", "-c", cpus, *cmd]
    if niceness:
        cmd = ["nice", "-n", str(niceness), *cmd]
    with out_file.open("wb") as out:
        proc = await trio.run_process(cmd, stdout=out, stderr=subprocess.STDOUT, check=False)
    output = await trio.Path(out_file).read_bytes()
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} exited {proc.returncode}:\n{output[-2000:].decode(errors='replace')}"
        )
    result = parse_dnsperf(output, mode)
    result.rate = rate
    result.command = " ".join(cmd)
    return result


# ---- the Python fallback -----------------------------------------------------------------------


def _wires(lines: list[str], edns: bool) -> list[bytes]:
    wires = []
    for line in lines:
        name, rdtype = line.split()
        q = dns.message.make_query(name, rdtype, use_edns=0 if edns else False)
        q.id = 0
        wires.append(q.to_wire())
    return wires


async def python_load(
    port: int,
    lines: list[str],
    *,
    mode: str,
    duration: float,
    outstanding: int,
    rate: float | None = None,
    loss_timeout: float = 1.0,
) -> LoadResult:
    """A dnsperf stand-in in trio: `outstanding` queries in flight (or `rate` per second for
    "latency"), over one UDP socket or one pipelined TCP connection.

    A query unanswered after `loss_timeout` seconds is lost. Only a lower bound on the server's rate.
    """
    wires = _wires(lines, edns=mode == "udp+edns")
    tcp = mode == "tcp"
    sent_at: dict[int, float] = {}
    latencies: list[float] = []
    rcodes: Counter[str] = Counter()
    state = {"sent": 0, "lost": 0, "next": 0, "done": False}
    drained = trio.Event()
    window = trio.Semaphore(outstanding)
    if tcp:
        sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    else:
        sock = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        await sock.connect(("127.0.0.1", port))
        stream = trio.SocketStream(sock) if tcp else None
        next_id = 0

        async def send_one() -> None:
            nonlocal next_id
            next_id = (next_id + 1) & 0xFFFF
            while next_id in sent_at:
                next_id = (next_id + 1) & 0xFFFF
            wire = wires[state["next"] % len(wires)]
            state["next"] += 1
            msg = struct.pack("!H", next_id) + wire[2:]
            sent_at[next_id] = time.perf_counter()
            state["sent"] += 1
            if stream is not None:
                await stream.send_all(struct.pack("!H", len(msg)) + msg)
            else:
                await sock.send(msg)

        def received(reply: bytes) -> None:
            if len(reply) < 12:
                return
            qid, flags = struct.unpack_from("!HH", reply)
            started = sent_at.pop(qid, None)
            if started is None:
                return
            latencies.append(time.perf_counter() - started)
            rcodes[dns.rcode.to_text(flags & 0xF)] += 1
            window.release()
            if not sent_at and state["done"]:
                drained.set()

        async def receiver() -> None:
            buf = b""
            while True:
                if stream is None:
                    received(await sock.recv(65535))
                    continue
                chunk = await stream.receive_some(65536)
                if not chunk:
                    return
                buf += chunk
                while len(buf) >= 2 and len(buf) >= 2 + struct.unpack_from("!H", buf)[0]:
                    size = struct.unpack_from("!H", buf)[0]
                    received(buf[2 : 2 + size])
                    buf = buf[2 + size :]

        async def expirer() -> None:
            while True:
                await trio.sleep(loss_timeout / 4)
                now = time.perf_counter()
                for qid, t in list(sent_at.items()):
                    if now - t > loss_timeout:
                        del sent_at[qid]
                        state["lost"] += 1
                        window.release()

        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(receiver)
            nursery.start_soon(expirer)
            deadline = trio.current_time() + duration
            interval = 1 / rate if rate else 0.0
            tick = trio.current_time()
            while trio.current_time() < deadline:
                if rate:
                    tick += interval
                    if tick > trio.current_time():
                        await trio.sleep_until(tick)
                await window.acquire()
                await send_one()
            state["done"] = True
            with trio.move_on_after(loss_timeout):
                if sent_at:
                    await drained.wait()
            state["lost"] += len(sent_at)
            nursery.cancel_scope.cancel()
        elapsed = time.perf_counter() - start
    latencies.sort()
    completed = len(latencies)
    return LoadResult(
        tool="python",
        mode=mode,
        sent=state["sent"],
        completed=completed,
        lost=state["lost"],
        qps=completed / elapsed if elapsed else 0.0,
        rcodes=dict(rcodes),
        avg_latency_ms=(sum(latencies) / completed * 1000) if completed else None,
        p50_ms=percentile(latencies, 50) * 1000 if completed else None,
        p99_ms=percentile(latencies, 99) * 1000 if completed else None,
        max_ms=latencies[-1] * 1000 if completed else None,
        rate=rate,
        command=f"python client, {mode}, {outstanding} outstanding" + (f", {rate:.0f}/s" if rate else ""),
    )
