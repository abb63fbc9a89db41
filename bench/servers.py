"""The servers under test, each a separate process pinned to one core: k8sgw (`python -m k8sgw`) and
NSD (`nsd -d`), plus the small DNS probes the harness uses to see them answer.

Every process is started with trio.run_process inside a nursery the caller owns; cancelling that
nursery terminates it (SIGTERM, then SIGKILL after trio's grace). Nothing is left behind: each server
lives in its own temporary directory.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import dns.message
import dns.rcode
import dns.rdatatype
import trio

from bench import cluster

__all__ = [
    "CpuMeter",
    "Server",
    "ask",
    "free_port",
    "nsd_version",
    "read_pss_mb",
    "read_rss_mb",
    "start_k8sgw",
    "start_nsd",
    "taskset",
    "wait_answers",
]

COREFILE = """\
# Written by python -m bench.
{zone}:{port}{reverse_keys} {{
    bind 127.0.0.1
{plugins}    k8s_gateway {zone}{reverse} {{
        resources Ingress Service
        ttl {ttl}
        kubeconfig {kubeconfig}
    }}
}}
"""

NSD_CONF = """\
# Written by python -m bench: one server process, no rate limit, everything in {dir}.
server:
    server-count: 1
    ip-address: 127.0.0.1@{port}
    do-ip6: no
    username: ""
    chroot: ""
    zonesdir: "{dir}"
    pidfile: "{dir}/nsd.pid"
    database: ""
    zonelistfile: "{dir}/zone.list"
    xfrdfile: "{dir}/xfrd.state"
    xfrdir: "{dir}"
    logfile: "{dir}/nsd.log"
    rrl-ratelimit: 0
    verbosity: 1
remote-control:
    control-enable: no
zone:
    name: {zone}
    zonefile: "{dir}/bench.zone"
"""


@dataclass
class Server:
    """A running server process: where it answers and where its log goes."""

    name: str
    port: int
    process: trio.Process
    log: Path
    started_at: float  # time.monotonic() just before the process was started

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def free_port(host: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP on host right now (the server binds it a moment later)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((host, port))
                except OSError:
                    continue
                return port
    raise RuntimeError(f"no port free for both UDP and TCP on {host}")


def taskset(cpus: str | None, cmd: list[str]) -> list[str]:
    if cpus is None or shutil.which("taskset") is None:
        return cmd
    return ["taskset", "-c", cpus, *cmd]


def nsd_version() -> str | None:
    path = shutil.which("nsd")
    if path is None:
        return None
    out = subprocess.run([path, "-v"], capture_output=True, text=True, check=False)
    m = re.search(r"NSD version (\S+)", out.stdout + out.stderr)
    return m.group(1) if m else "unknown"


def _tree(pid: int) -> list[int]:
    """pid and its descendants (NSD forks: main → xfrd → server)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                todo += [int(c) for c in Path(f"/proc/{p}/task/{tid}/children").read_text().split()]
        except OSError:
            pass
    return out


def process_ticks(pid: int) -> int:
    """utime + stime (clock ticks) of a process tree; 0 where /proc cannot tell."""
    total = 0
    for p in _tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
        except (OSError, IndexError, ValueError):
            pass
    return total


def cpu_ticks(cpu: int) -> tuple[int, int]:
    """(busy in user+nice+system, total) clock ticks of one CPU from /proc/stat."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{cpu} "):
            v = [int(x) for x in line.split()[1:]]
            return v[0] + v[1] + v[2], sum(v[:8])
    return 0, 0


class CpuMeter:
    """Who used the server's CPU during a run: the server's process tree, and everyone else.

    `other` is the contamination check: on a shared machine, another user's job on the server's
    core lowers every number of the run, and the report should say so rather than blame the server.
    """

    def __init__(self, cpu: int | None, pid: int) -> None:
        self.cpu, self.pid = cpu, pid
        self._start = self._read()

    def _read(self) -> tuple[int, int, int]:
        busy, total = cpu_ticks(self.cpu) if self.cpu is not None else (0, 0)
        return busy, total, process_ticks(self.pid)

    def stop(self) -> tuple[float | None, float | None]:
        """(server %, other %) of the one CPU since construction; (None, None) without pinning."""
        busy1, total1, proc1 = self._read()
        busy0, total0, proc0 = self._start
        elapsed = total1 - total0
        if self.cpu is None or elapsed <= 0:
            return None, None
        server = 100 * (proc1 - proc0) / elapsed
        return server, max(0.0, 100 * (busy1 - busy0) / elapsed - server)


def read_rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MB (MiB/1.048576 is not worth it: 1 MB = 2**20 bytes here)."""
    status = Path(f"/proc/{pid}/status").read_text()
    values = {}
    for key in ("VmRSS", "VmHWM"):
        m = re.search(rf"^{key}:\s+(\d+) kB", status, re.MULTILINE)
        values[key] = int(m.group(1)) / 1024 if m else float("nan")
    return values["VmRSS"], values["VmHWM"]


def read_pss_mb(pid: int) -> float:
    """The proportional set size of a process tree in MB: shared pages counted once, so a server
    that forks (NSD: main, xfrd, server) is not counted three times."""
    total_kb = 0
    for p in _tree(pid):
        try:
            m = re.search(r"^Pss:\s+(\d+) kB", Path(f"/proc/{p}/smaps_rollup").read_text(), re.MULTILINE)
        except OSError:
            continue
        total_kb += int(m.group(1)) if m else 0
    return total_kb / 1024


async def start_k8sgw(
    nursery: trio.Nursery,
    workdir: Path,
    kubeconfig: Path,
    *,
    cpus: str | None,
    log_level: str = "info",
    plugins: Sequence[str] = (),
    reverse_zones: Sequence[str] = (),
    name: str = "k8sgw",
) -> Server:
    """Start `python -m k8sgw -conf <generated Corefile>` on a free port of 127.0.0.1.

    Args:
        plugins: more directive lines for the server block (e.g. "prometheus 127.0.0.1:9253").
        reverse_zones: reverse zones served beside the forward zone (PTR for its addresses).
    """
    await trio.Path(workdir).mkdir(parents=True, exist_ok=True)
    port = free_port()
    corefile = workdir / "Corefile"
    corefile.write_text(
        COREFILE.format(
            zone=cluster.ZONE.rstrip("."),
            port=port,
            ttl=cluster.TTL,
            kubeconfig=kubeconfig,
            plugins="".join(f"    {line}\n" for line in plugins),
            reverse_keys="".join(f" {z}:{port}" for z in reverse_zones),
            reverse="".join(f" {z}" for z in reverse_zones),
        )
    )
    log = workdir / "k8sgw.log"
    cmd = taskset(cpus, [sys.executable, "-m", "k8sgw", "-conf", str(corefile), "-log.level", log_level])
    return await _start(nursery, name, port, cmd, log, cwd=workdir)


async def start_nsd(nursery: trio.Nursery, workdir: Path, count: int, *, cpus: str | None) -> Server:
    """Start NSD in the foreground (`nsd -d -c conf`) serving the same zone; waits until it answers."""
    await trio.Path(workdir).mkdir(parents=True, exist_ok=True)
    port = free_port()
    (workdir / "bench.zone").write_text(cluster.zone_text(count))
    conf = workdir / "nsd.conf"
    conf.write_text(NSD_CONF.format(dir=workdir, port=port, zone=cluster.ZONE))
    log = workdir / "nsd.out"
    server = await _start(
        nursery, "NSD", port, taskset(cpus, ["nsd", "-d", "-c", str(conf)]), log, cwd=workdir
    )
    await wait_answers(server, [f"dns1.kube-system.{cluster.ZONE}"], sync_timeout=30)
    return server


async def _start(
    nursery: trio.Nursery, name: str, port: int, cmd: list[str], log: Path, *, cwd: Path
) -> Server:
    out = log.open("wb")
    started_at = time.monotonic()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    try:
        process = await nursery.start(
            partial(
                trio.run_process, cmd, stdout=out, stderr=subprocess.STDOUT, check=False, cwd=cwd, env=env
            )
        )
    finally:
        out.close()  # the child has its own copy
    return Server(name, port, process, log, started_at)


async def ask(
    port: int, name: str, rdtype: str = "A", *, reply_timeout: float = 0.05
) -> dns.message.Message | None:
    """One UDP query to 127.0.0.1:port; None when nothing came back in reply_timeout s (or nothing listens)."""
    query = dns.message.make_query(name, rdtype)
    with trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        await sock.connect(("127.0.0.1", port))
        with trio.move_on_after(reply_timeout):
            try:
                await sock.send(query.to_wire())
            except ConnectionRefusedError:  # ICMP port unreachable: nothing bound yet
                await trio.sleep_forever()
            while True:
                try:
                    data = await sock.recv(65535)
                except ConnectionRefusedError:
                    await trio.sleep_forever()  # until the timeout: the caller polls again
                try:
                    reply = dns.message.from_wire(data)
                except Exception:
                    continue
                if reply.id == query.id:
                    return reply
    return None


def addresses(reply: dns.message.Message | None) -> set[str]:
    if reply is None or reply.rcode() != dns.rcode.NOERROR:
        return set()
    return {
        r.to_text()
        for rrset in reply.answer
        for r in rrset
        if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA)
    }


async def wait_answers(
    server: Server,
    names: list[str],
    *,
    expect: dict[str, str] | None = None,
    sync_timeout: float,
    interval: float = 0.005,
) -> float:
    """Poll until every name answers (with `expect[name]` among its addresses when given).

    Returns:
        time.monotonic() when the last name answered.

    Raises:
        RuntimeError: the process exited, or `sync_timeout` seconds passed (with the log's tail).
    """
    pending = list(names)
    with trio.move_on_after(sync_timeout):
        while pending:
            if server.process.returncode is not None:
                raise RuntimeError(f"{server.name} exited {server.process.returncode}:\n{server.log_tail()}")
            name = pending[0]
            got = addresses(await ask(server.port, name))
            if got and (expect is None or expect.get(name) is None or expect[name] in got):
                pending.pop(0)
                continue
            await trio.sleep(interval)
        return time.monotonic()
    raise RuntimeError(
        f"{server.name}: {pending[0]} not answering after {sync_timeout:g}s:\n{server.log_tail()}"
    )
