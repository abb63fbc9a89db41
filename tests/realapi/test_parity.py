"""k8sgw beside CoreDNS+k8s_gateway: the same objects in the same kube-apiserver, the same Corefile
(but for ports), the same questions to both, the answers printed side by side.

Every difference must be a row of README's "Where k8sgw differs from k8s_gateway, and why" table,
and every row there must be a difference observed here. CASES names, for each question, the README
row it shows (None: both must answer alike); the rows no single question shows have a check below.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import dns.asyncquery
import dns.edns
import dns.message
import dns.rcode
import dns.rdatatype
import pytest
import trio

from peers import build
from peers.coredns import CorednsPeer, unavailable_reason
from tests.conftest import start_k8sgw
from tests.realapi import test_sources
from tests.realapi.conftest import REAL_POLICY, kubectl, patch_status

README = Path(__file__).resolve().parents[2] / "README.md"
ZONE = "parity.test"
OBJECTS = (
    test_sources.OBJECTS.replace(test_sources.ZONE, ZONE)
    .replace("namespace: src", "namespace: par")
    .replace("{name: src}", "{name: par}")
)

NODATA = "NXDOMAIN for TXT (or MX, SRV...) at a name that only has addresses"
ENT = "NXDOMAIN for empty non-terminals"
WILDCARD = "a wildcard replaces exactly the first label"
NOT_READY = "SERVFAIL before the first sync, with no reason"
DUAL_SOA = "each instance of a dual pair names itself in its SOA"
ORDER = "answers shuffled by the DNS library on every reply"
REPEATED = "a repeated Corefile option silently replaces the earlier one"


@dataclass(frozen=True)
class Case:
    name: str
    rdtype: str = "A"
    edns: bool = False
    row: str | None = None  # the README row this question shows, or None: the answers must agree


CASES = [
    Case(f"ing.{ZONE}"),  # Ingress
    Case(f"ing.{ZONE}", "AAAA"),
    Case(f"ing.{ZONE}", edns=True),
    Case(f"x.wild.{ZONE}"),  # an Ingress wildcard, one label
    Case(f"a.b.wild.{ZONE}", row=WILDCARD),  # two labels below it
    Case(f"aws.{ZONE}"),  # a load balancer with a hostname: CNAME
    Case(f"lb.par.{ZONE}"),  # LoadBalancer Service
    Case(f"shop.{ZONE}"),  # coredns.io/hostname
    Case(f"store.{ZONE}"),  # a hostname outside the zone, the zone appended
    Case(f"db.{ZONE}"),  # resolve-endpoints: ready EndpointSlice addresses
    Case(f"hidden.par.{ZONE}"),  # k8s-gateway.dns/ignore
    Case(f"http.{ZONE}"),  # HTTPRoute
    Case(f"grpc.{ZONE}"),  # GRPCRoute
    Case(f"tls.{ZONE}"),  # TLSRoute
    Case(ZONE, "SOA"),
    Case(ZONE, "NS"),
    Case(f"dns1.kube-system.{ZONE}"),  # the nameserver's glue
    Case(f"nothing.{ZONE}"),  # NXDOMAIN
    Case(f"ing.{ZONE}", "TXT", row=NODATA),
    Case(f"par.{ZONE}", row=ENT),  # above lb.par.<zone>
    Case("elsewhere.example.", edns=True),  # outside every zone
]
# Rows that no single question shows, each with its own check in test_parity_beyond_single_questions.
OTHER_CHECKS = {NOT_READY, DUAL_SOA, ORDER, REPEATED}


def readme_rows() -> list[str]:
    """The first cells of README's differences table."""
    text = README.read_text()
    section = text.split("### Where k8sgw differs from k8s_gateway, and why", 1)[1]
    rows = []
    for line in section.splitlines()[1:]:
        if line.startswith("|"):
            rows.append(line.split("|")[1].strip())
        elif rows:
            break
    return rows[2:]  # past the header and its rule


def test_every_readme_difference_has_a_check():
    """Runs everywhere: the table and the checks name the same differences, both ways."""
    claimed = {c.row for c in CASES if c.row} | OTHER_CHECKS
    assert set(readme_rows()) == claimed


@pytest.fixture
def coredns() -> None:
    """Skip (before the cluster starts) where CoreDNS+k8s_gateway is not built, saying why."""
    reason = unavailable_reason()
    if reason is None:
        return
    # A module the proxy refuses cannot be fixed by .ci/run; one that was merely not built can.
    if os.environ.get("CI") and build.unavailable_reason(build.COREDNS) is None:
        pytest.fail(reason)
    pytest.skip(reason)


def _body(kubeconfig: Path, extra: str = "") -> str:
    return f"    k8s_gateway {ZONE} {{\n        kubeconfig {kubeconfig}\n{extra}    }}"


async def _ask(addr: tuple[str, int], case: Case) -> str:
    query = dns.message.make_query(case.name, case.rdtype, use_edns=0 if case.edns else None)
    reply = await dns.asyncquery.udp(query, addr[0], port=addr[1], timeout=5)
    parts = [dns.rcode.to_text(reply.rcode()), "aa" if reply.flags & dns.flags.AA else "-"]
    for section in (reply.answer, reply.authority, reply.additional):
        lines = []
        for rrset in section:
            for rd in rrset:
                text = rd.to_text()
                if rrset.rdtype == dns.rdatatype.SOA:  # serial: time vs. API revision, see DUAL_SOA
                    fields = text.split()
                    text = " ".join(fields[:2] + ["<serial>"] + fields[3:])
                lines.append(f"{rrset.name} {dns.rdatatype.to_text(rrset.rdtype)} {text}")
        parts.append(",".join(sorted(lines)) or "-")
    if case.edns:
        parts.append(f"edns={reply.edns}")
    return " | ".join(parts)


async def test_parity_side_by_side(coredns, nursery, real_cluster, k8sgw_kubeconfig, tmp_path):
    await kubectl(real_cluster, "apply", "-f", "-", stdin=OBJECTS)
    await patch_status(real_cluster, "par", test_sources.STATUS)
    try:
        bound = await start_k8sgw(
            nursery,
            f"{ZONE} {{\n    bind 127.0.0.1\n{_body(k8sgw_kubeconfig)}\n}}\n",
            watch_policy=REAL_POLICY,
        )
        with trio.fail_after(30):
            await bound.stores[0].wait_until(lambda m: m.ready)
        with CorednsPeer.start(tmp_path / "coredns", ZONE, _body(k8sgw_kubeconfig)) as peer:
            rows = [(case, await _ask(peer.address, case), await _ask(bound.udp[0], case)) for case in CASES]
        width = max(len(f"{c.name} {c.rdtype}") for c in CASES)
        print(f"\n{'question':{width}}  k8s_gateway  ||  k8sgw", file=sys.stderr)
        for case, theirs, ours in rows:
            mark = "==" if theirs == ours else "!="
            print(f"{case.name + ' ' + case.rdtype:{width}}  {theirs}  {mark}  {ours}", file=sys.stderr)
        for case, theirs, ours in rows:
            if case.row is None:
                assert theirs == ours, (
                    f"{case}: not in README's table:\n  k8s_gateway {theirs}\n  k8sgw       {ours}"
                )
            else:
                assert theirs != ours, f"{case}: README says they differ ({case.row}), both: {ours}"
    finally:
        await kubectl(real_cluster, "delete", "namespace", "par", "--wait=false")


async def test_parity_beyond_single_questions(coredns, nursery, real_cluster, k8sgw_kubeconfig, tmp_path):
    """The rows no single question shows: answer order, the SOA of a pair's second member, an option
    given twice, and answers before the first sync."""
    name = f"multi.{ZONE}"
    await kubectl(real_cluster, "create", "namespace", "par2")
    try:
        await kubectl(
            real_cluster,
            "apply",
            "-f",
            "-",
            stdin=(
                "apiVersion: v1\nkind: Service\nmetadata: {name: multi, namespace: par2, annotations: "
                f"{{coredns.io/hostname: {name}}}}}\nspec: {{type: LoadBalancer, ports: [{{port: 80}}], "
                "externalIPs: [192.0.2.1, 192.0.2.2, 192.0.2.3, 192.0.2.4]}\n"
            ),
        )
        second = _body(
            k8sgw_kubeconfig, "        apex dns2.kube-system\n        secondary dns1.kube-system\n"
        )
        bound = await start_k8sgw(
            nursery, f"{ZONE} {{\n    bind 127.0.0.1\n{second}\n}}\n", watch_policy=REAL_POLICY
        )
        with trio.fail_after(30):
            await bound.stores[0].wait_until(lambda m: m.ready)
        with CorednsPeer.start(tmp_path / "coredns", ZONE, second) as peer:
            orders = {}
            for side, addr in (("k8s_gateway", peer.address), ("k8sgw", bound.udp[0])):
                seen = set()
                for _ in range(12):
                    reply = await dns.asyncquery.udp(
                        dns.message.make_query(name, "A"), addr[0], port=addr[1], timeout=5
                    )
                    seen.add(tuple(str(r) for r in reply.answer[0]))
                orders[side] = seen
            assert len(orders["k8sgw"]) == 1 and len(orders["k8s_gateway"]) > 1, (ORDER, orders)
            soa = {}
            for side, addr in (("k8s_gateway", peer.address), ("k8sgw", bound.udp[0])):
                reply = await dns.asyncquery.udp(
                    dns.message.make_query(ZONE, "SOA"), addr[0], port=addr[1], timeout=5
                )
                soa[side] = reply.answer[0][0].mname.to_text()
            assert soa["k8sgw"] == f"dns1.kube-system.{ZONE}." != soa["k8s_gateway"], (DUAL_SOA, soa)

        twice = _body(k8sgw_kubeconfig, "        ttl 30\n        ttl 40\n")
        corefile = tmp_path / "twice.Corefile"
        corefile.write_text(f"{ZONE}:0 {{\n{twice}\n}}\n")
        validated = await trio.run_process(
            [sys.executable, "-m", "k8sgw", "-conf", str(corefile), "-validate"],
            capture_stderr=True,
            check=False,
        )
        assert validated.returncode == 1 and b"ttl" in validated.stderr, (REPEATED, validated.stderr)
        with CorednsPeer.start(tmp_path / "coredns-twice", ZONE, twice):
            pass  # it starts: the second ttl silently wins

        # Before the first sync: an API server that accepts and never answers.
        with trio.socket.socket() as hold:
            await hold.bind(("127.0.0.1", 0))
            hold.listen(8)
            port = hold.getsockname()[1]
            stuck = real_cluster.token_kubeconfig(tmp_path / "stuck", "x", server=f"https://127.0.0.1:{port}")
            bound = await start_k8sgw(nursery, f"{ZONE} {{\n    bind 127.0.0.1\n{_body(stuck)}\n}}\n")
            query = dns.message.make_query(f"ing.{ZONE}", "A", use_edns=0)
            ours = await dns.asyncquery.udp(query, bound.udp[0][0], port=bound.udp[0][1], timeout=5)
            assert ours.rcode() == dns.rcode.SERVFAIL
            assert [o.code for o in ours.options] == [dns.edns.EDECode.NOT_READY], (NOT_READY, ours)
            with CorednsPeer.start(tmp_path / "coredns-stuck", ZONE, _body(stuck), wait=False) as peer:
                theirs = await peer.first_reply(query)
            assert theirs.rcode() == dns.rcode.SERVFAIL and not theirs.options, (NOT_READY, theirs)
    finally:
        await kubectl(real_cluster, "delete", "namespace", "par2", "--wait=false")
