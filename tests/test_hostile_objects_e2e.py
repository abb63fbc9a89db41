"""The table of hostile objects (tests/hostile.py) through the real watch path of the dev API server.

In process: every row is applied while a prober asks for every good name over UDP, which must
answer exactly throughout; each row's WARNING names the object, and its probe answers what the
row says over TCP. As a process: `python -m k8sgw` against the dev API with every row present,
killed and started again: it starts, stays up and answers both times (one of these objects once
made the process exit at every start).
"""

from __future__ import annotations

import signal
import subprocess
import sys

import dns.message
import dns.rcode
import dns.rdatatype
import trio

from tests.conftest import addresses, corefile, has, query
from tests.hostile import GOOD, HOSTILE, Hostile, marker
from tests.test_cli import Lines
from tests.test_sources_e2e import k8sgw_for


class GoodNames:
    """Asks every good name in turn over UDP until cancelled; any wrong answer fails the test."""

    def __init__(self, addr: tuple[str, int]) -> None:
        self.addr = addr
        self.rounds = 0
        self._round_done = trio.Event()

    async def next_round(self) -> None:
        """Until the round under way (or the next one) has asked every good name."""
        await self._round_done.wait()

    async def run(self, task_status=trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            for name, rdtype, expected in GOOD:
                reply = await query(self.addr, name, rdtype)
                assert reply.rcode() == dns.rcode.NOERROR and addresses(reply) == sorted(expected), (name, reply)
            self.rounds += 1
            self._round_done.set()
            self._round_done = trio.Event()
            await trio.sleep(0.005)  # pacing, not waiting for anything


def probe_ok(row: Hostile, reply: dns.message.Message) -> bool:
    if dns.rcode.to_text(reply.rcode()) != row.rcode:
        return False
    found = [r for rrset in reply.answer if rrset.rdtype == dns.rdatatype.from_text(row.probe[1]) for r in rrset]
    if row.count is not None:
        return len(found) == row.count
    return sorted(str(r) for r in found) == sorted(row.answer)


async def test_every_hostile_object_warns_and_every_other_name_answers_throughout(nursery, cluster, tmp_path, logs):
    bound = await k8sgw_for(nursery, cluster, tmp_path)
    store, addr = bound.stores[0], bound.udp[0]
    good = GoodNames(addr)
    await nursery.start(good.run)
    with trio.fail_after(60):
        for i, row in enumerate(HOSTILE, 1):
            for extra in row.extra:
                cluster.apply(extra)
            since = len(logs.lines)
            cluster.apply(row.manifest)
            obj, host, ip = marker(row.kind, i)
            cluster.apply(obj)
            await store.wait_until(has(host, ip))
            assert logs.count(lambda line, row=row: line.startswith("WARNING") and row.warning in line, since), row.id
            if row.probe is not None:
                reply = await query(addr, row.probe[0], row.probe[1], tcp=True)
                assert probe_ok(row, reply), (row.id, reply)
        await good.next_round()  # and still, after all of them: one whole round more
        await good.next_round()
    warned = [line for line in logs.lines if line.startswith("WARNING")]
    for row in HOSTILE:
        if row.id != "cname-beside-a":  # that warning names the owner name, not one object
            assert any(row.who in line and row.warning in line for line in warned), row.id
    assert len(warned) < 4 * len(HOSTILE), "\n".join(warned)  # a line per problem, not per record


async def test_the_process_starts_and_answers_with_every_hostile_object_present(cluster, kubeconfig, tmp_path):
    for row in HOSTILE:
        for extra in row.extra:
            cluster.apply(extra)
        cluster.apply(row.manifest)
    path = tmp_path / "Corefile"
    path.write_text(corefile(kubeconfig))
    for start in ("first start", "restart"):
        with trio.fail_after(60):
            proc = await trio.lowlevel.open_process(
                [sys.executable, "-m", "k8sgw", "-conf", str(path), "-dns.port", "0"], stderr=subprocess.PIPE
            )
            try:
                lines = Lines(proc.stderr)
                m = await lines.until(r"serving DNS on 127\.0\.0\.1 port (\d+)")
                addr = ("127.0.0.1", int(m.group(1)))
                await lines.seen_or_until("ready: every watched kind has synced")
                for name, rdtype, expected in GOOD:
                    assert addresses(await query(addr, name, rdtype)) == sorted(expected), start
                for row in HOSTILE:
                    if row.probe is not None:
                        reply = await query(addr, row.probe[0], row.probe[1], tcp=True)
                        assert probe_ok(row, reply), (start, row.id, reply)
                assert proc.poll() is None, start
                proc.send_signal(signal.SIGKILL if start == "first start" else signal.SIGTERM)
                code = await proc.wait()
                assert code == (-signal.SIGKILL if start == "first start" else 0), "\n".join(lines.seen)
            finally:
                proc.kill()
                await proc.wait()


async def test_a_missing_apex_service_leaves_its_ns_host_nodata_with_a_warning(nursery, cluster, tmp_path, logs):
    cluster.delete("v1", "Service", "kube-system", "dns1")
    bound = await k8sgw_for(nursery, cluster, tmp_path)
    addr = bound.udp[0]
    with trio.fail_after(10):
        line = await logs.wait_for("nameserver Service kube-system/dns1 does not exist")
    assert line.startswith("WARNING") and "dns1.kube-system.foo.org." in line
    reply = await query(addr, "dns1.kube-system.foo.org.", "A")
    assert reply.rcode() == dns.rcode.NOERROR and not reply.answer  # NODATA: the NS names it
    assert [rrset.rdtype for rrset in reply.authority] == [dns.rdatatype.SOA]
    ns = await query(addr, "foo.org.", "NS")
    assert [str(r) for rrset in ns.answer for r in rrset] == ["dns1.kube-system.foo.org."] and not ns.additional
    cluster.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "dns1", "namespace": "kube-system"},
                   "spec": {"type": "ClusterIP", "externalIPs": ["192.0.2.53"]}})
    with trio.fail_after(10):
        await bound.stores[0].wait_until(has("dns1.kube-system.foo.org.", "192.0.2.53"))
        await logs.wait_for("has an address again")
