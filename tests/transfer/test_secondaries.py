"""k8sgw as the hidden primary of real secondaries: Knot (knotd) and NSD, started by the tests on
127.0.0.1 with ports of their own (tests/transfer/secondaries.py), and the transfer commands as
users type them (kdig AXFR, dig IXFR=N, dig AXFR -y).

The cluster is a dev API server holding a seeded random cluster: Services, Ingresses and
DNSEndpoints with A, AAAA, TXT, MX, SRV and CNAME records, a wildcard, and the nameserver host.
After its first transfer each secondary must answer every name exactly as k8sgw does; then objects
are created, modified and deleted, and each change must reach both by NOTIFY and IXFR and be
answered within 2 s of the change.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Callable, Iterable
from typing import Any

import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest
import trio

from k8sgw.records.keys import NameKey
from k8sgw.records.recordmap import RecordMap
from tests.conftest import LogWaiter, start_k8sgw, tool
from tests.transfer.secondaries import (
    Key,
    Secondary,
    ask,
    differences,
    free_port,
    knot_secondary,
    nsd_secondary,
    questions,
)

ZONE = "foo.org."
APEX = dns.name.from_text(ZONE)
KEY: Key = ("k8sgw-xfr.", "hmac-sha256", base64.b64encode(b"secondaries test key, 32 bytes!!").decode())
WRONG: Key = (KEY[0], KEY[1], base64.b64encode(b"not the key k8sgw knows, 32 byte").decode())
SEED = 13
NAMESPACES = ("default", "shop", "team-a", "team-b")


# --- the cluster ---


def service(name: str, ns: str, ips: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"type": "LoadBalancer", "ports": [{"name": "https", "port": 443, "protocol": "TCP"}]},
        "status": {"loadBalancer": {"ingress": [{"ip": ip} for ip in ips]}},
    }


def ingress(name: str, ns: str, hosts: list[str], ips: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"ingressClassName": "nginx", "rules": [{"host": host} for host in hosts]},
        "status": {"loadBalancer": {"ingress": [{"ip": ip} for ip in ips]}},
    }


def dnsendpoint(name: str, ns: str, endpoints: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "externaldns.k8s.io/v1alpha1",
        "kind": "DNSEndpoint",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"endpoints": endpoints},
    }


def endpoint(name: str, rdtype: str, targets: list[str], ttl: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"dnsName": name, "recordType": rdtype, "targets": targets}
    if ttl is not None:
        out["recordTTL"] = ttl
    return out


def random_cluster(rng: random.Random, count: int = 36) -> list[dict[str, Any]]:
    """`count` objects, a third of each kind, every name unique (no kind shadows another), with
    addresses from the documentation ranges (RFC 5737, RFC 3849)."""
    objects: list[dict[str, Any]] = [
        ingress("apps", "default", ["*.apps.foo.org"], ["203.0.113.80"]),
        ingress("exact", "default", ["exact.apps.foo.org"], ["203.0.113.81"]),
    ]
    hosts: list[str] = []
    for i in range(count):
        ns = rng.choice(NAMESPACES)
        v4 = f"198.51.100.{i + 1}"
        v6 = [f"2001:db8:1::{i + 1:x}"] if rng.random() < 0.4 else []
        if i % 3 == 0:
            objects.append(service(f"svc{i}", ns, [v4, *v6]))
            hosts.append(f"svc{i}.{ns}.foo.org")
        elif i % 3 == 1:
            host = f"app{i}.foo.org" if rng.random() < 0.5 else f"app{i}.{rng.choice(['eu', 'us'])}.web.foo.org"
            objects.append(ingress(f"ing{i}", ns, [host], [f"203.0.113.{i + 1}", *v6]))
            hosts.append(host)
        else:
            name = f"ep{i}.foo.org"
            endpoints = [endpoint(name, "A", [v4, f"192.0.2.{i + 1}"][: rng.randint(1, 2)])]
            if v6:
                endpoints.append(endpoint(name, "AAAA", v6))
            endpoints.append(endpoint(name, "TXT", [f"v=test{i}", "k8sgw secondaries"], ttl=rng.choice([30, 300])))
            endpoints.append(endpoint(name, "MX", [f"10 mx{i}.foo.org", f"20 {rng.choice(hosts or [name])}"]))
            endpoints.append(endpoint(f"_https._tcp.{name}", "SRV", [f"0 5 443 {rng.choice(hosts or [name])}"]))
            # In-zone CNAMEs are followed in the answer (by k8sgw, NSD and Knot alike); one out of zone.
            target = rng.choice(hosts) if hosts and rng.random() < 0.7 else "lb.example.net"
            endpoints.append(endpoint(f"alias{i}.foo.org", "CNAME", [target]))
            objects.append(dnsendpoint(f"records{i}", ns, endpoints))
    return objects


def names_of(records: RecordMap) -> tuple[list[str], list[str]]:
    """(every name in the zone, the wildcard owners among them) as k8sgw holds them."""
    names = sorted(NameKey(key).name().to_text() for key in records.nodes if NameKey(key).is_subdomain(NameKey.of(APEX)))
    wildcards = [n for n in names if n.startswith("*.")]
    return [n for n in names if n not in wildcards], wildcards


def corefile(kubeconfig, to: Iterable[str], key: Key | None = None, require: str = "AXFR IXFR") -> str:
    tsig = f"    tsig {{\n        secret {key[0]} {key[2]}\n        require {require}\n    }}\n" if key else ""
    return f"""
foo.org {{
    bind 127.0.0.1
    transfer {{
        to {' '.join(to)}
    }}
{tsig}    k8s_gateway foo.org {{
        kubeconfig {kubeconfig}
    }}
}}
"""


async def started(nursery, text: str):
    bound = await start_k8sgw(nursery, text)
    with trio.fail_after(10):
        await bound.stores[0].wait_until(lambda m: m.ready)
    return bound


async def serial_of(address: tuple[str, int]) -> int:
    reply = await ask(address, ZONE, "SOA")
    assert reply.rcode() == dns.rcode.NOERROR, reply
    return reply.answer[0][0].serial


def serves(name: str, rdtype: str, *texts: str) -> Callable[[RecordMap], bool]:
    """A RecordMap predicate: name has exactly these rdatas of rdtype (none: it has none)."""
    owner, kind = dns.name.from_text(name), dns.rdatatype.from_text(rdtype)

    def check(records: RecordMap) -> bool:
        return sorted(r.to_text() for r in records.rdatas(owner, kind)) == sorted(texts)

    return check


async def wait_for_change(store, secondaries: list[Secondary], address, ready: Callable[[RecordMap], bool]) -> int:
    """Once k8sgw's index holds the change: its new serial, served by every secondary, brought by
    an IXFR each (RFC 1995 §4: the second record of the reply is an SOA)."""
    await store.wait_until(ready)
    serial = await serial_of(address)
    for secondary in secondaries:
        await secondary.wait_serial(serial)
        kind, _ = await secondary.wait_transfer(serial)
        assert kind == "IXFR", f"{secondary.kind} got serial {serial} by {kind}:\n{secondary.output(30)}"
    return serial


async def same_answers(address, secondaries: list[Secondary], asked: list[tuple[str, str]]) -> None:
    for secondary in secondaries:
        different = await differences(address, secondary.address, asked)
        assert not different, f"{secondary.kind} answers {len(different)} of {len(asked)} questions differently:\n" + "\n".join(
            different[:20]
        )


# --- the secondaries follow k8sgw ---


@pytest.mark.parametrize("tsig", [False, True], ids=["no-key", "tsig"])
async def test_secondaries_copy_k8sgw_and_follow_every_change(nursery, cluster, kubeconfig, tmp_path, tsig):
    rng = random.Random(SEED)
    for obj in random_cluster(rng):
        cluster.apply(obj)
    key = KEY if tsig else None
    knot_port, nsd_port = free_port(), free_port()  # k8sgw's `to` names them before they start
    bound = await started(nursery, corefile(kubeconfig, [f"127.0.0.1:{knot_port}", f"127.0.0.1:{nsd_port}"], key))
    store, address, primary = bound.stores[0], bound.udp[0], bound.tcp[0]
    async with (
        knot_secondary(tmp_path, ZONE, primary, key, port=knot_port) as knot,
        nsd_secondary(tmp_path, ZONE, primary, key, port=nsd_port) as nsd,
    ):
        both = [knot, nsd]
        first = await serial_of(address)
        with trio.fail_after(10):
            for secondary in both:
                await secondary.wait_serial(first)
                assert await secondary.wait_transfer(first) == ("AXFR", first), secondary.output()

        names, wildcards = names_of(store.current)
        asked = questions(ZONE, names, wildcards, rng)
        assert len(asked) > 300 and wildcards == ["*.apps.foo.org."]
        await same_answers(address, both, asked)

        # Created: a DNSEndpoint with a new name (A and TXT) and a new Ingress.
        with trio.fail_after(2):
            cluster.apply(dnsendpoint("late", "default", [
                endpoint("late.foo.org", "A", ["192.0.2.200"]), endpoint("late.foo.org", "TXT", ["created"]),
            ]))
            cluster.apply(ingress("fresh", "shop", ["fresh.foo.org"], ["203.0.113.200"]))
            await wait_for_change(store, both, address, lambda m: serves("late.foo.org.", "TXT", '"created"')(m)
                                  and serves("fresh.foo.org.", "A", "203.0.113.200")(m))
        await same_answers(address, both, [(n, t) for n in ("late.foo.org.", "fresh.foo.org.") for t in ("A", "TXT", "AAAA")])

        # Modified: a Service moves to a new address; a DNSEndpoint's TXT changes.
        moved = next(o for o in cluster_objects(cluster, "Service") if o["metadata"]["name"].startswith("svc"))
        moved_name = f"{moved['metadata']['name']}.{moved['metadata']['namespace']}.foo.org."
        with trio.fail_after(2):
            cluster.apply(service(moved["metadata"]["name"], moved["metadata"]["namespace"], ["198.51.100.250"]))
            cluster.apply(dnsendpoint("late", "default", [
                endpoint("late.foo.org", "A", ["192.0.2.200"]), endpoint("late.foo.org", "TXT", ["modified"]),
            ]))
            await wait_for_change(store, both, address, lambda m: serves(moved_name, "A", "198.51.100.250")(m)
                                  and serves("late.foo.org.", "TXT", '"modified"')(m))
        await same_answers(address, both, [(n, t) for n in (moved_name, "late.foo.org.") for t in ("A", "AAAA", "TXT")])

        # Deleted: the new Ingress and the DNSEndpoint go; their names become NXDOMAIN.
        with trio.fail_after(2):
            cluster.delete("networking.k8s.io/v1", "Ingress", "shop", "fresh")
            cluster.delete("externaldns.k8s.io/v1alpha1", "DNSEndpoint", "default", "late")
            await wait_for_change(store, both, address, lambda m: m.get(dns.name.from_text("fresh.foo.org.")) is None
                                  and m.get(dns.name.from_text("late.foo.org.")) is None)
        for secondary in both:
            assert (await secondary.query("late.foo.org.", "TXT")).rcode() == dns.rcode.NXDOMAIN
        await same_answers(address, both, [(n, t) for n in ("late.foo.org.", "fresh.foo.org.") for t in ("A", "TXT")])

        # Every transfer after the first was incremental, and the whole zone still agrees.
        for secondary in both:
            later = secondary.transfers()[1:]
            assert later and all(kind == "IXFR" for kind, _ in later), (secondary.kind, secondary.transfers())
        names, wildcards = names_of(store.current)
        await same_answers(address, both, questions(ZONE, names, wildcards, rng))


def cluster_objects(cluster, kind: str) -> list[dict[str, Any]]:
    api_version = "v1" if kind == "Service" else "networking.k8s.io/v1"
    items = cluster.list_objects(cluster.kind_of(api_version, kind), None)
    return sorted(items, key=lambda o: (o["metadata"]["namespace"], o["metadata"]["name"]))


# --- and those it must not serve get nothing ---

SECONDARIES = {"knot": knot_secondary, "nsd": nsd_secondary}
# What each secondary says when its transfer (or the SOA query before it) fails.
FAILED = {
    "knot": r"\] refresh, remote \S+(, address \S+)?, failed",
    "nsd": r"xfrd: zone \S+ (received error code|, from \S+: (bad tsig|tsig error))",
}


# Each kind's unlisted secondary has an address of its own: k8sgw logs a refused client once a
# minute, and that memory is the process's, shared by every k8sgw a test run starts.
UNLISTED = {"knot": "127.0.0.2", "nsd": "127.0.0.3"}


def tsig_refused(line: str) -> bool:
    return "TSIG" in line and "BadSignature" in line


@pytest.mark.parametrize("kind", SECONDARIES)
async def test_a_wrong_key_or_an_unlisted_address_gets_nothing(nursery, cluster, kubeconfig, tmp_path, logs: LogWaiter, kind):
    """Three secondaries of one k8sgw that requires TSIG for transfers: one listed with the key
    (it gets the zone, so the setup is sound), one listed with a wrong key (same name, another
    secret), and one with the key on 127.0.0.2 or .3, which `to` does not list."""
    for obj in random_cluster(random.Random(SEED), count=9):
        cluster.apply(obj)
    unlisted_host = UNLISTED[kind]
    good_port, wrong_port, unlisted_port = free_port(), free_port(), free_port(unlisted_host)
    bound = await started(nursery, corefile(kubeconfig, [f"127.0.0.1:{good_port}", f"127.0.0.1:{wrong_port}"], KEY))
    primary, start = bound.tcp[0], SECONDARIES[kind]
    async with (
        start(tmp_path / "good", ZONE, primary, KEY, port=good_port) as good,
        start(tmp_path / "wrong", ZONE, primary, WRONG, port=wrong_port) as wrong,
        start(tmp_path / "unlisted", ZONE, primary, KEY, host=unlisted_host, port=unlisted_port) as unlisted,
    ):
        with trio.fail_after(10):
            await good.wait_serial(await serial_of(bound.udp[0]))
            await logs.wait_count(tsig_refused, 1)
            await wrong.wait_line(FAILED[kind])
            await logs.wait_for(f"refused for {unlisted_host}")
            await unlisted.wait_line(FAILED[kind])
        for secondary in (wrong, unlisted):
            assert secondary.transfers() == [], secondary.output()
            assert await secondary.serial() is None  # its zone is empty: SERVFAIL
            assert (await secondary.query("dns1.kube-system.foo.org.", "A")).rcode() == dns.rcode.SERVFAIL
        line = next(line for line in logs.lines if f"refused for {unlisted_host}" in line)
        assert line.startswith("INFO") and "`to`" in line


# --- the commands users type ---


def parse_records(output: str) -> list[tuple[str, str, int, str]]:
    """(owner, type, TTL, rdata) of each record line dig or kdig printed, TSIG lines left out."""
    out = []
    for line in output.splitlines():
        if not line.strip() or line.startswith(";"):
            continue
        name, ttl, rdclass, rdtype, *rdata = line.split(None, 4)
        if rdtype == "TSIG":
            continue
        rrset = dns.rrset.from_text(name, int(ttl), rdclass, rdtype, *rdata)
        out.append((rrset.name.to_text().lower(), rdtype, rrset.ttl, rrset[0].to_text().lower()))
    return out


def tsig_lines(output: str) -> int:
    return sum(1 for line in output.splitlines() if not line.startswith(";") and "\tTSIG\t" in line.replace(" ", "\t"))


async def run(*command: str) -> str:
    done = await trio.run_process(list(command), capture_stdout=True, capture_stderr=True, check=False)
    return done.stdout.decode() + done.stderr.decode()


async def same_as_k8sgw(address, records: list[tuple[str, str, int, str]]) -> None:
    """Each RRset of a transfer is what k8sgw answers for its owner and type (a `*` owner asked
    literally is the wildcard itself, RFC 4592 §2.1.1)."""
    zone: dict[tuple[str, str], set[tuple[int, str]]] = {}
    for name, rdtype, ttl, text in records:
        zone.setdefault((name, rdtype), set()).add((ttl, text))
    for (name, rdtype), rrs in zone.items():
        reply = await ask(address, name, rdtype)
        answered = {(rrset.ttl, r.to_text().lower()) for rrset in reply.answer
                    if rrset.rdtype == dns.rdatatype.from_text(rdtype) and rrset.name == dns.name.from_text(name) for r in rrset}
        assert answered == rrs, (name, rdtype)


def axfr_body(records: list[tuple[str, str, int, str]]) -> list[tuple[str, str, int, str]]:
    """The records between the opening and closing SOA (RFC 5936 §2.2), checked to be framed so."""
    assert records and records[0][1] == "SOA" and records[-1] == records[0], records[:1] + records[-1:]
    assert sum(1 for r in records if r[1] == "SOA") == 2
    return records[1:-1]


def rrset_names(records: RecordMap) -> set[tuple[str, str]]:
    """(owner, type) of every RRset k8sgw holds in the zone."""
    out = set()
    for key, node in records.nodes.items():
        if NameKey(key).is_subdomain(NameKey.of(APEX)):
            for rdtype in node.rrsets:
                out.add((NameKey(key).name().to_text(), dns.rdatatype.to_text(rdtype)))
    return out


async def test_kdig_axfr_and_dig_ixfr_as_users_type_them(nursery, cluster, kubeconfig):
    for obj in random_cluster(random.Random(SEED), count=18):
        cluster.apply(obj)
    bound = await started(nursery, corefile(kubeconfig, ["127.0.0.1"]))
    store, address = bound.stores[0], bound.udp[0]
    host, port = bound.tcp[0]
    with trio.fail_after(20):
        output = await run(tool("kdig"), f"@{host}", "-p", str(port), "AXFR", ZONE)
        records = parse_records(output)
        body = axfr_body(records)
        assert {(name, rdtype) for name, rdtype, _, _ in body} | {(ZONE, "SOA")} == rrset_names(store.current)
        await same_as_k8sgw(address, body)
        before = records[0]
        old_serial = int(before[3].split()[2])

        moved = next(o for o in cluster_objects(cluster, "Ingress") if o["metadata"]["name"].startswith("ing"))
        host_name = moved["spec"]["rules"][0]["host"] + "."
        old_ips = sorted(i["ip"] for i in moved["status"]["loadBalancer"]["ingress"] if "." in i["ip"])
        cluster.apply(ingress(moved["metadata"]["name"], moved["metadata"]["namespace"], [host_name.rstrip(".")],
                              ["203.0.113.250"] + [i["ip"] for i in moved["status"]["loadBalancer"]["ingress"] if ":" in i["ip"]]))
        await store.wait_until(serves(host_name, "A", "203.0.113.250"))
        new_serial = await serial_of(address)

        # dig IXFR=N: new SOA, old SOA, the deletions, new SOA, the additions, new SOA (RFC 1995 §4).
        output = await run(tool("dig"), f"@{host}", "-p", str(port), ZONE, f"IXFR={old_serial}")
        rrs = parse_records(output)
        soas = [i for i, r in enumerate(rrs) if r[1] == "SOA"]
        assert len(soas) == 4 and soas[0] == 0 and soas[-1] == len(rrs) - 1, output
        serials = [int(rrs[i][3].split()[2]) for i in soas]
        assert serials == [new_serial, old_serial, new_serial, new_serial], output
        deleted, added = rrs[soas[1] + 1 : soas[2]], rrs[soas[2] + 1 : soas[3]]
        assert {(n, t, r) for n, t, _, r in deleted} == {(host_name, "A", ip) for ip in old_ips}, output
        assert {(n, t, r) for n, t, _, r in added} == {(host_name, "A", "203.0.113.250")}, output
        await same_as_k8sgw(address, added)

        # Current: the single SOA.
        output = await run(tool("dig"), f"@{host}", "-p", str(port), ZONE, f"IXFR={new_serial}")
        assert [(r[1], int(r[3].split()[2])) for r in parse_records(output)] == [("SOA", new_serial)], output


async def test_dig_axfr_with_a_key_as_users_type_it(nursery, cluster, kubeconfig):
    for obj in random_cluster(random.Random(SEED), count=12):
        cluster.apply(obj)
    bound = await started(nursery, corefile(kubeconfig, ["127.0.0.1"], KEY))
    store, address = bound.stores[0], bound.udp[0]
    host, port = bound.tcp[0]
    dig = [tool("dig"), f"@{host}", "-p", str(port), "AXFR", ZONE]
    with trio.fail_after(20):
        output = await run(*dig, "-y", f"hmac-sha256:{KEY[0].rstrip('.')}:{KEY[2]}")
        assert "Couldn't verify" not in output and "failed" not in output.lower(), output
        assert tsig_lines(output) >= 1, output  # every message signed; dig verified each
        body = axfr_body(parse_records(output))
        assert {(name, rdtype) for name, rdtype, _, _ in body} | {(ZONE, "SOA")} == rrset_names(store.current)
        await same_as_k8sgw(address, body)

        # `require AXFR IXFR`: unsigned, or signed with another secret, nothing is transferred.
        for extra in ([], ["-y", f"hmac-sha256:{WRONG[0].rstrip('.')}:{WRONG[2]}"]):
            output = await run(*dig, *extra)
            assert parse_records(output) == [] and "Transfer failed" in output, output
