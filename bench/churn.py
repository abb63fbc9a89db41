"""`python -m bench.churn`: k8sgw answering at half its maximum rate while its cluster changes.

One k8sgw (pinned to the server CPU) in front of the dev API server (in this process), in four
phases on the same cluster:

1. max: dnsperf over UDP at full speed for a few seconds; half of that is the query rate (unless
   `--query-rate` is given).
2. answering only: the query traffic of phase 4 (dnsperf, bench.probe, the checker) and no change.
3. indexing only: the changes of phase 4 and no query at all (the last change of each kind is then
   polled once, so the window ends when every change has been applied).
4. churn: `--rate` real API changes a second for `--seconds` (an Ingress moved to a new address, a
   Service's load-balancer IP changed, an object created, one deleted) while dnsperf sends the
   2,000-line query file at the query rate, bench.probe times its own queries (p50/p99/p99.9) and
   the checker times each change until k8sgw first answers its new state.

The query rate is shared, so the server sees the same total in phases 2 and 4: dnsperf gets the
query rate minus the probe's and the checker's. The checker sends at a constant rate whether or not
a change is pending: its spare queries re-ask names whose change was already seen (a reverted
answer is counted), so its share of the traffic is known before the run and the same in both phases.

Why two reference phases for "CPU spent indexing vs answering": both are trio tasks on k8sgw's main
thread (only large list translations go to a worker thread), so per-thread CPU cannot separate
them, and py-spy is not installed everywhere. Running the same changes without queries and the
same queries without changes measures each alone with /proc's counters; the combined phase beside
them shows what they cost together (answer caches are per map version, so every change sends some
queries back to the full path).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import socket
import struct
import sys
import tempfile
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import dns.message
import dns.rcode
import trio

from bench import cluster as synth
from bench.load import LoadResult, run_dnsperf
from bench.report import Check
from bench.run import (
    PROBE_RATE,
    QUERY_LINES,
    SYNC_TIMEOUT,
    _sample_names,
    _start_cluster,
    cpu_plan,
    run_probe,
)
from bench.servers import Server, addresses, ask, cpu_ticks, process_ticks, start_k8sgw, wait_answers
from k8sgw.devapi.store import DevCluster

__all__ = ["ChurnResult", "ChurnSettings", "churn", "churn_checks", "churn_lines", "main", "parser"]

TARGET_P99_MS = 2.0
TARGET_VISIBLE_MS = 100.0
TARGET_RATE_SHARE = 0.95  # of --rate actually applied, or the run does not measure the target
TARGET_QUERY_SHARE = 0.98  # of the query rate answered: the niced dnsperf must still send its rate
CHECKER_RATE = 2000.0  # queries/s of the checker, constant (see the module docstring)
CHECKER_TICK = 0.001  # seconds between the checker's rounds: the resolution of a visibility time
CHECKER_RETRY = 0.02  # a pending change's query unanswered this long is sent again
CHECKER_TIMEOUT = 1.0  # a checker query unanswered this long is lost (as probe.py's timeout)
CONFIRM_NAMES = 256  # names whose answer the checker re-asks with its spare budget
DELETE_MIN_AGE = 0.1  # seconds between creating an object and deleting it
# The rate-limited background dnsperf runs niced: on the load CPU it otherwise starved this
# process (the dev API server and the checker), whose lag the checker timed as k8sgw's (p99 39 ms
# before, 7 ms niced). That the query rate is still answered is a target (TARGET_QUERY_SHARE).
DNSPERF_NICENESS = 7
WARMUP_S = 0.5  # dnsperf reaches its rate before the probe, the checker and the changes start
CYCLE = ("move-ingress", "move-service", "create", "delete")
_NEW_ADDRESSES = int(IPv4Address("198.19.254.1"))  # 500 addresses below the apex glue (.255.254)


@dataclass
class ChurnSettings:
    """What one churn run does; an argparse Namespace with these attributes works as well."""

    objects: int = 2000
    rate: float = 200.0  # changes per second
    seconds: float = 60.0
    query_rate: float | None = None  # None: half of the maximum UDP rate measured first
    ref_seconds: float = 10.0  # each reference phase (answering only, indexing only)
    max_seconds: float = 5.0
    deadline: float = 1.0  # a change not answered by then is "never visible"
    checker_rate: float = CHECKER_RATE
    clients: int = 4
    outstanding: int = 100
    k8sgw_log_level: str = "warning"
    plugins: Sequence[str] = ()

    @classmethod
    def quick(cls) -> ChurnSettings:
        return cls(objects=200, rate=100.0, seconds=3.0, ref_seconds=1.0, max_seconds=1.0)


# ---- changes and what k8sgw must answer after them ----------------------------------------------


@dataclass(eq=False)
class Expect:
    """The answer to `fqdn A` after a change: exactly {ipv4}, or NXDOMAIN when ipv4 is None."""

    fqdn: str
    ipv4: str | None
    wire: bytes = b""

    def __post_init__(self) -> None:
        self.wire = dns.message.make_query(self.fqdn, "A", use_edns=False).to_wire()

    def met_by(self, reply: dns.message.Message) -> bool:
        if self.ipv4 is None:
            return reply.rcode() == dns.rcode.NXDOMAIN
        return reply.rcode() == dns.rcode.NOERROR and addresses(reply) == {self.ipv4}

    def met_by_wire(self, data: bytes) -> bool:
        """met_by for a reply's bytes. A reply of one answer RR with its owner compressed to the
        question (what a plain A answer is) is read in place, which costs the checker a tenth of
        parsing it (the checker shares the load CPU with dnsperf); anything else is parsed."""
        if len(data) >= 12 and data[4:6] == b"\0\1":
            flags, ancount = struct.unpack_from("!H2xH", data, 2)
            rcode = flags & 0xF
            if self.ipv4 is None:
                return rcode == dns.rcode.NXDOMAIN
            end = data.find(b"\0", 12) + 5  # the question: its name (no pointers in it), type, class
            if rcode == dns.rcode.NOERROR and ancount == 1 and end > 5 and len(data) >= end + 16:
                owner, rdtype, rdlen = struct.unpack_from("!HH6xH", data, end)
                if owner == 0xC00C and rdtype == 1 and rdlen == 4:
                    return socket.inet_ntoa(data[end + 12 : end + 16]) == self.ipv4
        return self.met_by(dns.message.from_wire(data))


@dataclass(eq=False)
class Applied:
    """One change written to the DevCluster, and when k8sgw first answered it."""

    kind: str  # one of CYCLE
    api_kind: str  # "Ingress" | "Service": one watch stream each, so ordering holds per kind only
    expect: Expect
    at: float  # time.perf_counter() just before DevCluster.apply/delete
    visible_ms: float | None = None
    done: bool = False  # visible, or past the deadline


@dataclass
class _Created:
    api_version: str
    api_kind: str
    namespace: str
    name: str
    change: Applied


class Churner:
    """Writes the changes, in CYCLE order: real objects of the DevCluster, one watch event each.

    Moves go round-robin through the cluster's Ingresses and Services; creates add `churn-N`
    objects, deletes remove the oldest of them once its create is done. `busy(fqdn)` says a name
    still has a change being timed: it is skipped (a second change would hide the first).
    """

    def __init__(self, cluster: DevCluster, count: int, busy: Callable[[str], bool] = lambda _: False) -> None:
        self.cluster, self.busy = cluster, busy
        names = synth.names(count)
        self._pools = {
            "Ingress": deque(n for n in names if n.kind == "Ingress"),
            "Service": deque(n for n in names if n.kind == "Service"),
        }
        self._created: deque[_Created] = deque()
        self._k = 0
        self.expected: dict[str, Expect] = {}  # every name changed so far → what it answers now
        self.last: dict[str, Applied] = {}  # api kind → its latest change

    def current(self, fqdn: str, initial: str | None) -> Expect:
        return self.expected.get(fqdn) or Expect(fqdn, initial)

    def step(self) -> Applied:
        kind = CYCLE[self._k % len(CYCLE)]
        self._k += 1
        if kind == "delete":
            oldest = self._created[0] if self._created else None
            if oldest is None or not oldest.change.done or time.perf_counter() - oldest.change.at < DELETE_MIN_AGE:
                kind = "create"
        if kind in ("move-ingress", "move-service"):
            applied = self._move("Ingress" if kind == "move-ingress" else "Service", kind)
            if applied is not None:
                return applied
            kind = "create"
        return self._delete() if kind == "delete" else self._create()

    def _address(self, current: str | None) -> str:
        ip = str(IPv4Address(_NEW_ADDRESSES + self._k % 500))
        return ip if ip != current else str(IPv4Address(_NEW_ADDRESSES + (self._k + 1) % 500))

    def _move(self, api_kind: str, kind: str) -> Applied | None:
        pool = self._pools[api_kind]
        for _ in range(len(pool)):
            name = pool[0]
            pool.rotate(-1)
            if self.busy(name.fqdn):
                continue
            api_version = "networking.k8s.io/v1" if api_kind == "Ingress" else "v1"
            short = name.fqdn.split(".")[0]
            obj = self.cluster.get(api_version, api_kind, f"team-{name.index % synth.NAMESPACES}", short)
            lb = obj["status"]["loadBalancer"]["ingress"]
            lb[0] = {"ip": self._address(lb[0].get("ip"))}
            return self._write(kind, api_kind, Expect(name.fqdn, lb[0]["ip"]), partial(self.cluster.apply, obj))
        return None

    def _create(self) -> Applied:
        n = self._k
        ip = self._address(None)
        api_kind = "Ingress" if n % 2 else "Service"
        if api_kind == "Ingress":
            name = f"churn-{n:06d}"
            fqdn = f"{name}.{synth.ZONE}"
            obj = {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": {"name": name, "namespace": "team-0"},
                "spec": {"ingressClassName": "nginx", "rules": [{"host": fqdn.rstrip(".")}]},
                "status": {"loadBalancer": {"ingress": [{"ip": ip}]}},
            }
        else:
            name = f"churn-svc-{n:06d}"
            fqdn = f"{name}.team-0.{synth.ZONE}"
            obj = {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "namespace": "team-0"},
                "spec": {"type": "LoadBalancer", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]},
                "status": {"loadBalancer": {"ingress": [{"ip": ip}]}},
            }
        applied = self._write("create", api_kind, Expect(fqdn, ip), lambda: self.cluster.apply(obj))
        self._created.append(_Created(obj["apiVersion"], api_kind, "team-0", name, applied))
        return applied

    def _delete(self) -> Applied:
        gone = self._created.popleft()
        fqdn = gone.change.expect.fqdn
        return self._write(
            "delete",
            gone.api_kind,
            Expect(fqdn, None),
            lambda: self.cluster.delete(gone.api_version, gone.api_kind, gone.namespace, gone.name),
        )

    def _write(self, kind: str, api_kind: str, expect: Expect, write: Callable[[], object]) -> Applied:
        applied = Applied(kind, api_kind, expect, time.perf_counter())
        write()
        self.expected[expect.fqdn] = expect
        self.last[api_kind] = applied
        return applied


async def drive(churner: Churner, rate: float, seconds: float, on_change: Callable[[Applied], None]) -> float:
    """`rate` changes a second for `seconds` (late ones catch up at once); the seconds it took."""
    start = time.perf_counter()
    for i in range(max(1, round(rate * seconds))):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await trio.sleep(delay)
        on_change(churner.step())
    return time.perf_counter() - start + 1 / rate


# ---- the checker ---------------------------------------------------------------------------------


@dataclass
class CheckerStats:
    sent: int = 0
    received: int = 0
    lost: int = 0
    reverted: int = 0  # a name whose change had been seen answered otherwise later
    late_replies: int = 0  # lost ones whose reply came after all: k8sgw answered, too late to count
    seconds: float = 0.0

    @property
    def qps(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0


class Checker:
    """Times changes from the outside: UDP queries to k8sgw at a constant `rate`.

    Each round (every CHECKER_TICK s) spends the budget earned since the last one: first on pending
    changes, least recently asked first, one query in flight each; the rest on `confirm` names (a
    change already seen, or a seeded name), round-robin. Visibility time = arrival of the first
    reply with the new state − the write to the DevCluster: an upper bound by at most one round
    trip and one round.
    """

    def __init__(self, port: int, rate: float, deadline: float) -> None:
        self.port, self.rate, self.deadline = port, rate, deadline
        self.stats = CheckerStats()
        self.pending: dict[str, Applied] = {}
        self._asked: dict[str, float] = {}  # fqdn of a pending change → when its last query went
        self._waiting: set[str] = set()  # pending fqdns with a query in flight
        self.confirm: OrderedDict[str, Expect] = OrderedDict()
        self._inflight: dict[int, tuple[Expect, Applied | None, float]] = {}
        self._expired: dict[int, float] = {}  # qid counted lost → when it was sent
        self._qid = 0
        self._stopping = False
        self._changed = trio.Event()

    def watch(self, change: Applied) -> None:
        fqdn = change.expect.fqdn
        self.confirm.pop(fqdn, None)
        self.pending[fqdn] = change
        self._asked[fqdn] = -math.inf

    def seed(self, expects: Sequence[Expect]) -> None:
        for e in expects:
            self._confirmed(e)

    def _confirmed(self, expect: Expect) -> None:
        self.confirm[expect.fqdn] = expect
        self.confirm.move_to_end(expect.fqdn)
        while len(self.confirm) > CONFIRM_NAMES:
            self.confirm.popitem(last=False)

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def settle(self) -> None:
        """Until every change watched so far is visible or past its deadline."""
        while self.pending:
            await self._changed.wait()

    def stop(self) -> None:
        self._stopping = True

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            await sock.connect(("127.0.0.1", self.port))
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._receive, sock)
                task_status.started()
                started = time.perf_counter()
                await self._send_loop(sock)
                self.stats.seconds = time.perf_counter() - started
                with trio.move_on_after(CHECKER_TIMEOUT):
                    while self._inflight:
                        await self._changed.wait()
                self.stats.lost += len(self._inflight)
                self._inflight.clear()
                nursery.cancel_scope.cancel()

    async def _send(self, sock: trio.socket.SocketType, expect: Expect, change: Applied | None) -> None:
        self._qid = (self._qid + 1) & 0xFFFF
        while self._qid in self._inflight:
            self._qid = (self._qid + 1) & 0xFFFF
        now = time.perf_counter()
        self._inflight[self._qid] = (expect, change, now)
        self._expired.pop(self._qid, None)
        self.stats.sent += 1
        try:
            await sock.send(struct.pack("!H", self._qid) + expect.wire[2:])
        except ConnectionRefusedError:  # an earlier ICMP unreachable; the query counts as lost
            pass

    async def _send_loop(self, sock: trio.socket.SocketType) -> None:
        tokens, last = 1.0, time.perf_counter()
        while not self._stopping:
            now = time.perf_counter()
            tokens = min(tokens + (now - last) * self.rate, max(1.0, self.rate * 10 * CHECKER_TICK))
            last = now
            for qid, (_, _, sent) in list(self._inflight.items()):
                if now - sent > CHECKER_TIMEOUT:
                    del self._inflight[qid]
                    self._expired[qid] = sent
                    self.stats.lost += 1
            for qid, sent in list(self._expired.items()):
                if now - sent > 30:  # well before the 16-bit id comes round again at this rate
                    del self._expired[qid]
            for fqdn in sorted(self.pending, key=self._asked.__getitem__):
                change = self.pending.get(fqdn)  # the receiver may have finished it while we sent
                if change is None:
                    continue
                if now - change.at > self.deadline:
                    self._finish(change)
                    continue
                if tokens < 1 or (fqdn in self._waiting and now - self._asked[fqdn] < CHECKER_RETRY):
                    continue
                self._asked[fqdn] = now
                self._waiting.add(fqdn)
                tokens -= 1
                await self._send(sock, change.expect, change)
            while tokens >= 1 and self.confirm:
                fqdn, expect = next(iter(self.confirm.items()))
                self.confirm.move_to_end(fqdn)
                tokens -= 1
                await self._send(sock, expect, None)
            await trio.sleep(CHECKER_TICK)

    def _finish(self, change: Applied) -> None:
        change.done = True
        fqdn = change.expect.fqdn
        if self.pending.get(fqdn) is change:
            del self.pending[fqdn]
            del self._asked[fqdn]
            self._waiting.discard(fqdn)
        self._wake()

    async def _receive(self, sock: trio.socket.SocketType) -> None:
        while True:
            try:
                data = await sock.recv(65535)
            except ConnectionRefusedError:
                continue
            arrived = time.perf_counter()
            if len(data) < 12:
                continue
            qid = struct.unpack_from("!H", data)[0]
            entry = self._inflight.pop(qid, None)
            if entry is None:
                if self._expired.pop(qid, None) is not None:
                    self.stats.late_replies += 1
                continue
            self.stats.received += 1
            expect, change, _ = entry
            try:
                ok = expect.met_by_wire(data)
            except Exception:  # a malformed reply is not the new state
                ok = False
            if change is not None:
                if ok and not change.done and self.pending.get(expect.fqdn) is change:
                    change.visible_ms = (arrived - change.at) * 1000
                    self._finish(change)
                    self._confirmed(expect)
                elif self.pending.get(expect.fqdn) is change:
                    self._waiting.discard(expect.fqdn)  # the old state still: ask again next round
            elif not ok and self.confirm.get(expect.fqdn) is expect:
                self.stats.reverted += 1
            if not self._inflight:
                self._wake()


# ---- the run -------------------------------------------------------------------------------------


@dataclass
class PhaseCpu:
    """k8sgw's CPU time over one window, from /proc (utime + stime of its process)."""

    seconds: float
    cpu_s: float
    other_pct: float | None = None  # everyone else on the server's CPU, % of it

    @property
    def pct(self) -> float:
        return 100 * self.cpu_s / self.seconds if self.seconds else 0.0


class _CpuWindow:
    def __init__(self, pid: int, server_cpu: int | None) -> None:
        self._pid, self._cpu = pid, server_cpu
        self._t0 = time.perf_counter()
        self._p0 = process_ticks(pid)
        self._c0 = cpu_ticks(server_cpu) if server_cpu is not None else (0, 0)

    def stop(self) -> PhaseCpu:
        hz = os.sysconf("SC_CLK_TCK")
        seconds = time.perf_counter() - self._t0
        cpu_s = (process_ticks(self._pid) - self._p0) / hz
        other = None
        if self._cpu is not None:
            busy, total = cpu_ticks(self._cpu)
            elapsed = total - self._c0[1]
            if elapsed > 0:
                other = max(0.0, 100 * (busy - self._c0[0]) / elapsed - 100 * cpu_s * hz / elapsed)
        return PhaseCpu(seconds, cpu_s, other)


@dataclass
class Traffic:
    """The queries of one phase with traffic: dnsperf's run, the probe's JSON, the checker's counts."""

    dnsperf: LoadResult
    probe: dict[str, Any]
    checker: CheckerStats
    cpu: PhaseCpu

    @property
    def lost(self) -> int:
        return self.dnsperf.lost + self.probe["lost"] + self.checker.lost

    @property
    def qps(self) -> float:
        """Answered queries per second, all three sources."""
        probe_qps = (self.probe["sent"] - self.probe["lost"]) / max(self.probe_seconds, 1e-9)
        return self.dnsperf.qps + probe_qps + self.checker.received / max(self.checker.seconds, 1e-9)

    @property
    def probe_seconds(self) -> float:
        return self.probe.get("seconds", self.cpu.seconds)


@dataclass
class ChurnResult:
    objects: int
    rate: float
    seconds: float
    deadline_s: float
    query_rate: float
    dnsperf_rate: float
    probe_rate: float
    checker_rate: float
    max_qps: float | None = None  # measured in phase 1 (None: --query-rate given)
    changes: list[tuple[str, float | None]] = field(default_factory=list)  # (kind, visible ms)
    applied_s: float = 0.0  # first change written → last, plus one interval
    combined: Traffic | None = None
    answering: Traffic | None = None
    indexing: PhaseCpu | None = None
    indexing_changes: int = 0
    server_cpus: str | None = None
    load_cpus: str | None = None

    @property
    def applied_rate(self) -> float:
        return len(self.changes) / self.applied_s if self.applied_s else 0.0

    def visible(self) -> list[float]:
        return sorted(ms for _, ms in self.changes if ms is not None)

    @property
    def never(self) -> int:
        return sum(ms is None for _, ms in self.changes)

    @property
    def late(self) -> int:
        """Changes not answered within the target (never answered ones included)."""
        return sum(ms is None or ms > TARGET_VISIBLE_MS for _, ms in self.changes)

    def visible_pct(self, p: float, kind: str | None = None) -> float | None:
        values = sorted(ms for k, ms in self.changes if ms is not None and kind in (None, k))
        if not values:
            return None
        return values[max(1, math.ceil(p / 100 * len(values))) - 1]

    @property
    def worst_ms(self) -> float | None:
        if self.never:
            return math.inf
        v = self.visible()
        return v[-1] if v else None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(
            applied_rate=self.applied_rate,
            never=self.never,
            late=self.late,
            visible_p50_ms=self.visible_pct(50),
            visible_p99_ms=self.visible_pct(99),
            worst_ms=None if self.worst_ms in (None, math.inf) else self.worst_ms,
            checks=[{**asdict(c), "verdict": c.verdict} for c in churn_checks(self)],
        )
        return out


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _int_cpu(server_cpus: str | None) -> int | None:
    return int(server_cpus) if server_cpus is not None and server_cpus.isdigit() else None


async def churn(
    settings: ChurnSettings | argparse.Namespace,
    workdir: Path,
    server_cpus: str | None,
    load_cpus: str | None,
) -> ChurnResult:
    """The four phases (module docstring) against one k8sgw; the caller keeps itself off server_cpus."""
    s = settings
    query_file = workdir / "queries.txt"
    async with trio.open_nursery() as nursery:
        devcluster, _, kubeconfig = await _start_cluster(nursery, workdir, s.objects)
        query_file.write_text("\n".join(synth.query_lines(s.objects, QUERY_LINES)) + "\n")
        k8sgw = await start_k8sgw(
            nursery, workdir / "k8sgw", kubeconfig, cpus=server_cpus, log_level=s.k8sgw_log_level,
            plugins=list(s.plugins),
        )
        await wait_answers(k8sgw, _sample_names(s.objects), sync_timeout=SYNC_TIMEOUT)
        # No cyclic collection in this process while it times anything: one full collection of its
        # heap (the dev cluster, every import) stalled the dev API server and the checker for
        # 240 ms, which the checker then timed as k8sgw's delay in showing a change. What the phases
        # leave is mostly freed by reference counting; the collector runs again after them.
        with _collector_paused():

            async def dnsperf(name: str, duration: float, rate: float | None = None, passes: int | None = None):
                return await run_dnsperf(
                    k8sgw.port, query_file, mode="udp", duration=duration, clients=s.clients,
                    outstanding=s.outstanding, rate=rate, passes=passes, cpus=load_cpus,
                    niceness=DNSPERF_NICENESS if rate is not None else 0, out_file=workdir / f"dnsperf-{name}.txt",
                )

            await dnsperf("warmup", min(5.0, s.max_seconds), passes=1)
            max_qps = None
            query_rate = s.query_rate
            if query_rate is None:
                max_qps = (await dnsperf("max", s.max_seconds)).qps
                query_rate = max_qps / 2
            dnsperf_rate = query_rate - PROBE_RATE - s.checker_rate
            if dnsperf_rate < 1:
                raise SystemExit(
                    f"query rate {query_rate:,.0f}/s is below the probe's and the checker's "
                    f"{PROBE_RATE + s.checker_rate:,.0f}/s"
                )
            result = ChurnResult(
                objects=s.objects, rate=s.rate, seconds=s.seconds, deadline_s=s.deadline,
                query_rate=query_rate, dnsperf_rate=dnsperf_rate, probe_rate=PROBE_RATE,
                checker_rate=s.checker_rate, max_qps=max_qps, server_cpus=server_cpus, load_cpus=load_cpus,
            )
            churner = Churner(devcluster, s.objects)
            seeds = synth.names(s.objects)[:: max(1, s.objects // CONFIRM_NAMES)]

            def seed() -> list[Expect]:
                return [churner.current(n.fqdn, n.ipv4) for n in seeds]

            args = (k8sgw, query_file, dnsperf, s, dnsperf_rate, _int_cpu(server_cpus), load_cpus)
            result.answering, _ = await _traffic_phase(*args, s.ref_seconds, seed(), None)
            result.indexing, result.indexing_changes = await _indexing_phase(
                k8sgw, churner, s.rate, s.ref_seconds, _int_cpu(server_cpus)
            )
            result.combined, changes = await _traffic_phase(*args, s.seconds, seed(), churner)
            result.changes = [(c.kind, c.visible_ms) for c in changes[0]]
            result.applied_s = changes[1]
        if k8sgw.process.returncode is not None:
            raise RuntimeError(f"k8sgw exited {k8sgw.process.returncode}:\n{k8sgw.log_tail()}")
        nursery.cancel_scope.cancel()
    return result


async def _traffic_phase(
    k8sgw: Server,
    query_file: Path,
    dnsperf: Callable[..., Any],
    s: ChurnSettings | argparse.Namespace,
    dnsperf_rate: float,
    server_cpu: int | None,
    load_cpus: str | None,
    seconds: float,
    seeds: list[Expect],
    churner: Churner | None,
) -> tuple[Traffic, tuple[list[Applied], float]]:
    """dnsperf, the probe and the checker for `seconds` (+ the changes when churner is given)."""
    checker = Checker(k8sgw.port, s.checker_rate, s.deadline)
    checker.seed(seeds)
    loads: dict[str, Any] = {}
    changes: list[Applied] = []
    applied_s = 0.0

    async def background() -> None:
        loads["dnsperf"] = await dnsperf(
            "churn" if churner else "answering", WARMUP_S + seconds + s.deadline + 0.5, rate=dnsperf_rate
        )

    async def probe() -> None:
        started = time.perf_counter()
        loads["probe"] = await run_probe(k8sgw.port, PROBE_RATE, seconds, query_file, load_cpus)
        loads["probe"]["seconds"] = min(seconds, time.perf_counter() - started)

    def on_change(change: Applied) -> None:
        changes.append(change)
        checker.watch(change)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(background)
        await trio.sleep(WARMUP_S)  # dnsperf reaches its rate first
        await nursery.start(checker.run)
        window = _CpuWindow(k8sgw.pid, server_cpu)
        async with trio.open_nursery() as timed:
            timed.start_soon(probe)
            if churner is not None:
                churner.busy = checker.pending.__contains__
                applied_s = await drive(churner, s.rate, seconds, on_change)
            else:
                await trio.sleep(seconds)
            cpu = window.stop()
        await checker.settle()
        checker.stop()
    return Traffic(loads["dnsperf"], loads["probe"], checker.stats, cpu), (changes, applied_s)


async def _indexing_phase(
    k8sgw: Server, churner: Churner, rate: float, seconds: float, server_cpu: int | None
) -> tuple[PhaseCpu, int]:
    """The changes alone; the window closes when the last change of each kind answers."""
    count = 0

    def on_change(change: Applied) -> None:
        nonlocal count
        count += 1
        change.done = True  # nothing times it; deletes may follow creates after DELETE_MIN_AGE

    churner.busy = lambda _: False
    window = _CpuWindow(k8sgw.pid, server_cpu)
    await drive(churner, rate, seconds, on_change)
    with trio.fail_after(SYNC_TIMEOUT):
        for change in list(churner.last.values()):
            while True:
                reply = await ask(k8sgw.port, change.expect.fqdn, reply_timeout=0.05)
                if reply is not None and change.expect.met_by(reply):
                    break
                await trio.sleep(0.001)  # polling an external process: no event to wait on
    return window.stop(), count


# ---- the report ----------------------------------------------------------------------------------


def _num(value: float | None, fmt: str = ",.0f") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if value == math.inf:
        return "never"
    return format(value, fmt)


def churn_checks(r: ChurnResult) -> list[Check]:
    """The churn target as bench.report Checks (PASS/MISS; CPU rows are info)."""
    out = [
        Check(
            f"churn: changes applied per s (of {r.rate:g})",
            r.applied_rate,
            f">= {TARGET_RATE_SHARE * r.rate:g}",
            r.applied_rate >= TARGET_RATE_SHARE * r.rate,
        ),
        Check(
            f"churn: changes not answered within {TARGET_VISIBLE_MS:g} ms",
            r.late,
            "0",
            bool(r.changes) and r.late == 0,
        ),
        Check("churn: answers reverted after a change was seen", r.combined.checker.reverted if r.combined else None, "0",
              r.combined is not None and r.combined.checker.reverted == 0),
    ]
    if r.combined is not None:
        p99 = r.combined.probe["p99_ms"]
        out.append(
            Check("churn: latency p99", p99, f"<= {TARGET_P99_MS:g} ms", p99 is not None and p99 <= TARGET_P99_MS)
        )
        out.append(Check("churn: lost queries (dnsperf + probe + checker)", r.combined.lost, "0", r.combined.lost == 0))
        share = r.combined.qps / r.query_rate if r.query_rate else 0.0
        out.append(Check("churn: queries answered, share of the query rate", share, f">= {TARGET_QUERY_SHARE:g}",
                         share >= TARGET_QUERY_SHARE))
        out.append(Check("churn: k8sgw CPU %, churn", r.combined.cpu.pct, "info", None))
    if r.indexing is not None:
        out.append(Check("churn: k8sgw CPU %, indexing only", r.indexing.pct, "info", None))
    if r.answering is not None:
        out.append(Check("churn: k8sgw CPU %, answering only", r.answering.cpu.pct, "info", None))
    return out


def churn_lines(r: ChurnResult) -> list[str]:
    """Table rows in the style of bench.report.render: label, value, target, result."""

    def row(label: str, value: str, target: str = "", verdict: str = "") -> str:
        return f"{label:<44}{value:>24}  {target:<14}{verdict}"

    checks = {c.name: c for c in churn_checks(r)}

    def verdict(name: str) -> str:
        return checks[name].verdict

    max_text = f"half the max {_num(r.max_qps)}" if r.max_qps is not None else "given"
    head = row(
        f"churn ({r.objects:,} objects, {r.rate:g} changes/s, {r.seconds:g} s)", "value", "target", "result"
    )
    lines = [head, "-" * len(head)]
    lines.append(
        f"  query rate {_num(r.query_rate)}/s ({max_text}) = dnsperf {_num(r.dnsperf_rate)} + probe "
        f"{_num(r.probe_rate)} + checker {_num(r.checker_rate)}"
    )
    rate_name = f"churn: changes applied per s (of {r.rate:g})"
    lines.append(row(f"changes applied, per s ({len(r.changes):,} in all)", _num(r.applied_rate, ",.1f"),
                     checks[rate_name].target, verdict(rate_name)))
    lines.append(row("change → first answer p50, ms", _num(r.visible_pct(50), ".1f"), "", "info"))
    lines.append(row("change → first answer p99, ms", _num(r.visible_pct(99), ".1f"), "", "info"))
    lines.append(row("change → first answer worst, ms", _num(r.worst_ms, ".1f"), f"<= {TARGET_VISIBLE_MS:g} ms",
                     "PASS" if r.changes and r.late == 0 else "MISS"))
    late = f"churn: changes not answered within {TARGET_VISIBLE_MS:g} ms"
    lines.append(row(f"  not answered within {TARGET_VISIBLE_MS:g} ms (never)", f"{r.late:,} ({r.never:,})", "0",
                     verdict(late)))
    kinds = ", ".join(f"{k} {_num(r.visible_pct(99, k), '.1f')}" for k in CYCLE if any(c == k for c, _ in r.changes))
    lines.append(f"  p99 ms by change: {kinds}")
    if r.combined is not None:
        c = r.combined
        lines.append(row("  answers reverted after being seen", f"{c.checker.reverted:,}", "0",
                         verdict("churn: answers reverted after a change was seen")))
        for key, label in (("p50_ms", "p50"), ("p99_ms", "p99"), ("p999_ms", "p99.9"), ("max_ms", "max")):
            value = c.probe.get(key)
            if key == "p99_ms":
                lines.append(row(f"latency {label} under churn, ms (probe)", _num(value, ".3f"),
                                 f"<= {TARGET_P99_MS:g} ms", verdict("churn: latency p99")))
            else:
                lines.append(row(f"  {label}, ms", _num(value, ".3f"), "", "info"))
        lines.append(row("lost queries: dnsperf / probe / checker",
                         f"{c.dnsperf.lost:,} / {c.probe['lost']:,} / {c.checker.lost:,}", "0",
                         verdict("churn: lost queries (dnsperf + probe + checker)")))
        if c.checker.lost:
            lines.append(f"  (the checker's lost: {c.checker.late_replies:,} answered after {CHECKER_TIMEOUT:g} s, "
                         f"{c.checker.lost - c.checker.late_replies:,} never)")
        share = "churn: queries answered, share of the query rate"
        lines.append(row("answered, queries/s (all three)", f"{_num(c.qps)} ({checks[share].value:.1%})",
                         checks[share].target, verdict(share)))
        lines.append(row("  sent: dnsperf / probe / checker",
                         f"{c.dnsperf.sent:,} / {c.probe['sent']:,} / {c.checker.sent:,}", "", "info"))
        lines.append(row("  dnsperf queries/s: reached / asked (-Q)",
                         f"{_num(c.dnsperf.qps)} / {_num(r.dnsperf_rate)}", "", "info"))
    lines.append("k8sgw CPU, % of its core (others on that core %; CPU µs each)")
    if r.combined is not None:
        lines.append(row("  churn: queries + changes", _cpu(r.combined.cpu), "", "info"))
    if r.indexing is not None:
        per = r.indexing.cpu_s / r.indexing_changes * 1e6 if r.indexing_changes else None
        lines.append(row(f"  indexing only ({r.indexing_changes:,} changes)",
                         f"{_cpu(r.indexing)} ({_num(per, ',.0f')} µs/change)", "", "info"))
    if r.answering is not None:
        a = r.answering
        queries = a.qps * a.cpu.seconds
        per = a.cpu.cpu_s / queries * 1e6 if queries else None
        lines.append(row("  answering only (same queries)", f"{_cpu(a.cpu)} ({_num(per, '.1f')} µs/query)",
                         "", "info"))
        lines.append(row("    lost queries, answering only", f"{a.lost:,}", "", "info"))
    if r.combined is not None and r.indexing is not None and r.answering is not None:
        extra = r.combined.cpu.pct - r.indexing.pct - r.answering.cpu.pct
        lines.append(row("  churn − (indexing + answering), points", _num(extra, "+.1f"), "", "info"))
    others = [p.other_pct for p in (r.combined and r.combined.cpu, r.indexing, r.answering.cpu if r.answering else None)
              if p is not None and p.other_pct is not None]
    short = [t for t in (r.answering, r.combined) if t is not None and t.dnsperf.qps < 0.9 * r.dnsperf_rate]
    if short:
        lines.append(
            "warning: dnsperf reached under 90% of its -Q rate (the load CPU is shared with this process, "
            "the probe and the checker): the server saw less than the query rate"
        )
    if others and max(others) >= 5:
        lines.append(f"warning: other processes used up to {max(others):.0f}% of the server's CPU during these runs")
    return lines


def _cpu(p: PhaseCpu) -> str:
    """k8sgw's % of its core, and (others %) on that core: a neighbour there slows every row."""
    return f"{p.pct:.1f}" + (f" (others {p.other_pct:.0f})" if p.other_pct is not None else "")


# ---- the command ---------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    d = ChurnSettings()
    p = argparse.ArgumentParser(prog="python -m bench.churn", description=__doc__.splitlines()[0])
    p.add_argument("--objects", type=int, default=None, help=f"objects in the cluster (default {d.objects})")
    p.add_argument("--rate", type=float, default=None, help=f"changes per second (default {d.rate:g})")
    p.add_argument("--seconds", type=float, default=None, help=f"seconds of churn (default {d.seconds:g})")
    p.add_argument("--query-rate", type=float, default=None,
                   help="queries/s in all (default: half the maximum UDP rate, measured first)")
    p.add_argument("--ref-seconds", type=float, default=None,
                   help=f"seconds of each reference phase (default {d.ref_seconds:g})")
    p.add_argument("--max-seconds", type=float, default=None,
                   help=f"seconds of the maximum-rate run (default {d.max_seconds:g})")
    p.add_argument("--deadline", type=float, default=d.deadline,
                   help=f"seconds a change is polled before it counts as never answered (default {d.deadline:g})")
    p.add_argument("--checker-rate", type=float, default=d.checker_rate,
                   help=f"queries/s of the checker (default {d.checker_rate:g})")
    p.add_argument("--clients", type=int, default=d.clients, help="dnsperf -c")
    p.add_argument("--outstanding", type=int, default=d.outstanding, help="dnsperf -q")
    p.add_argument("--server-cpu", type=int, default=1, help="the CPU k8sgw is pinned to (default 1)")
    p.add_argument("--quick", action="store_true", help="CI size: 200 objects, 100 changes/s for 3 s")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the result as JSON")
    p.add_argument("--workdir", type=Path, help="keep configs, query file and logs here (default: a temp dir)")
    return p


def settings_from(args: argparse.Namespace) -> ChurnSettings:
    base = ChurnSettings.quick() if args.quick else ChurnSettings()
    for key in ("objects", "rate", "seconds", "query_rate", "ref_seconds", "max_seconds"):
        if getattr(args, key) is not None:
            setattr(base, key, getattr(args, key))
    base.deadline, base.checker_rate = args.deadline, args.checker_rate
    base.clients, base.outstanding = args.clients, args.outstanding
    return base


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = settings_from(args)
    server_cpus, load_set = cpu_plan(args.server_cpu)
    if load_set is not None:
        os.sched_setaffinity(0, load_set)  # the dev API server, the checker and the loads keep off k8sgw's CPU
    load_cpus = ",".join(map(str, sorted(load_set))) if load_set else None
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        result = trio.run(churn, settings, args.workdir, server_cpus, load_cpus)
    else:
        with tempfile.TemporaryDirectory(prefix="k8sgw-churn-") as tmp:
            result = trio.run(churn, settings, Path(tmp), server_cpus, load_cpus)
    pinning = f"k8sgw on CPU {server_cpus}, load on CPU {load_cpus}" if server_cpus else "no CPU pinning"
    print(f"k8sgw under churn (python -m bench.churn); {pinning}")
    print("\n".join(churn_lines(result)), flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(result.to_json(), indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
