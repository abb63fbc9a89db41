"""ExternalName Services, target/ttl annotations and TCP/UDP routes end to end: kubectl applies and
deletes the examples on the dev API server; dig and kdig ask k8sgw, forward and reverse."""

from __future__ import annotations

import dns.name
import dns.rdatatype
import dns.reversename
import trio

from k8sgw import devrun
from k8sgw.devapi.store import DevCluster
from tests.conftest import EXAMPLES, has, query, start_k8sgw, tool
from tests.test_reverse_e2e import ptr_of, reverse_corefile
from tests.test_sources_e2e import gateway, k8sgw_for, route
from tests.test_tools import kubectl_env, run

RESOURCES = "Ingress Service TCPRoute UDPRoute"
MANIFESTS = [EXAMPLES / name for name in ("externalname.yaml", "target-ttl.yaml", "tcproute.yaml")]


def has_rdata(name: str, rdtype: str):
    """The map is ready (before, answers are SERVFAIL) and name has rdata of rdtype."""
    owner, t = dns.name.from_text(name), dns.rdatatype.from_text(rdtype)
    return lambda m: m.ready and bool(m.rdatas(owner, t))


async def test_kubectl_apply_and_delete_with_dig_and_kdig(nursery, kubeconfig, tmp_path):
    dig, kdig, kubectl = tool("dig"), tool("kdig"), tool("kubectl")
    bound = await start_k8sgw(nursery, reverse_corefile(kubeconfig, RESOURCES))
    store = bound.stores[0]
    host, port = bound.udp[0]
    base = [kubectl, "--kubeconfig", str(kubeconfig)]
    env = kubectl_env(tmp_path)

    async def ask(client: str, *query: str) -> list[str]:
        out = await run(client, f"@{host}", "-p", str(port), *query, "+noall", "+answer")
        return [" ".join(line.split()) for line in out.splitlines() if line.strip() and not line.startswith(";")]

    with trio.fail_after(60):
        for path in MANIFESTS:
            await run(*base, "apply", "-f", str(path), env=env)
        await store.wait_until(
            lambda m: has_rdata("db.default.foo.org.", "CNAME")(m)
            and has_rdata("edge.foo.org.", "CNAME")(m)
            and has_rdata("syslog.foo.org.", "AAAA")(m)
            and ptr_of("192.0.2.90", "pg.foo.org.", "syslog.foo.org.")(m)
        )
        for client in (dig, kdig):
            # ExternalName: a CNAME; an in-zone target is followed in the same answer.
            assert await ask(client, "db.default.foo.org", "A") == [
                "db.default.foo.org. 60 IN CNAME rds.example.net."
            ]
            assert await ask(client, "alias.default.foo.org", "A") == [
                "alias.default.foo.org. 60 IN CNAME myservicea.foo.org.",
                "myservicea.foo.org. 60 IN A 192.0.2.10",
            ]
            # target replaces the load balancer's address; ttl 5m is 300 seconds.
            assert await ask(client, "pinned.foo.org", "A") == ["pinned.foo.org. 300 IN A 192.0.2.61"]
            assert await ask(client, "edge.foo.org", "A") == ["edge.foo.org. 60 IN CNAME edge.example.net."]
            # TCPRoute and UDPRoute, named by their hostname annotations.
            assert await ask(client, "pg.foo.org", "AAAA", "+tcp") == ["pg.foo.org. 60 IN AAAA 2001:db8::90"]
            assert await ask(client, "syslog.foo.org", "A") == ["syslog.foo.org. 60 IN A 192.0.2.90"]
            # Their PTRs, IPv4 and IPv6; the target annotation's address maps back, not the LB's.
            for address in ("192.0.2.90", "2001:db8::90"):
                assert await ask(client, "-x", address) == [
                    f"{dns.reversename.from_address(address).to_text()} 60 IN PTR pg.foo.org.",
                    f"{dns.reversename.from_address(address).to_text()} 60 IN PTR syslog.foo.org.",
                ]
            assert await ask(client, "-x", "192.0.2.61") == ["61.2.0.192.in-addr.arpa. 60 IN PTR pinned.foo.org."]
            assert await ask(client, "-x", "192.0.2.60") == []

        for path in MANIFESTS:
            await run(*base, "delete", "-f", str(path), env=env)
        await store.wait_until(lambda m: not m.rdatas(dns.name.from_text("pg.foo.org."), dns.rdatatype.A) and ptr_of("192.0.2.90")(m))
        for name in ("db.default.foo.org", "pinned.foo.org", "pg.foo.org", "syslog.foo.org"):
            assert "status: NXDOMAIN" in await run(dig, f"@{host}", "-p", str(port), name)
        assert "status: NXDOMAIN" in await run(kdig, f"@{host}", "-p", str(port), "-x", "2001:db8::90")


async def test_nodes_by_address_type_forward_and_reverse(nursery, kubeconfig, tmp_path):
    dig, kdig, kubectl = tool("dig"), tool("kdig"), tool("kubectl")
    text = reverse_corefile(kubeconfig, "Node")
    bound = await start_k8sgw(nursery, text)
    external = await start_k8sgw(nursery, text.replace("resources Node", "resources Node\n        nodeAddressType ExternalIP"))
    base = [kubectl, "--kubeconfig", str(kubeconfig)]
    env = kubectl_env(tmp_path)
    with trio.fail_after(60):
        await run(*base, "apply", "-f", str(EXAMPLES / "node.yaml"), env=env)
        await bound.stores[0].wait_until(has_rdata("worker-1.foo.org.", "AAAA"))
        await external.stores[0].wait_until(has_rdata("worker-1.foo.org.", "A"))
        for client in (dig, kdig):
            host, port = bound.udp[0]
            short = await run(client, f"@{host}", "-p", str(port), "worker-1.foo.org", "A", "+short")
            assert short.split() == ["192.0.2.21"]
            short = await run(client, f"@{host}", "-p", str(port), "-x", "2001:db8::21", "+short")
            assert short.split() == ["worker-1.foo.org."]
            ehost, eport = external.udp[0]
            short = await run(client, f"@{ehost}", "-p", str(eport), "worker-1.foo.org", "A", "+short")
            assert short.split() == ["198.51.100.21"]
        await run(*base, "delete", "-f", str(EXAMPLES / "node.yaml"), env=env)
        await bound.stores[0].wait_until(lambda m: not m.rdatas(dns.name.from_text("worker-1.foo.org."), dns.rdatatype.A))
        host, port = bound.udp[0]
        assert "status: NXDOMAIN" in await run(dig, f"@{host}", "-p", str(port), "-x", "192.0.2.21")


async def test_k8sgw_dev_serves_the_examples_reverse_zones_and_nodes(nursery, tmp_path):
    args = devrun.parser().parse_args(["--dns-port", "0", "--kubeconfig-out", str(tmp_path / "kubeconfig")])
    bound = await nursery.start(devrun.run, args)
    with trio.fail_after(20):
        await bound.stores[0].wait_until(lambda m: m.ready and ptr_of("192.0.2.10", "myservicea.foo.org.")(m))
        reply = await query(bound.udp[0], "10.2.0.192.in-addr.arpa.", "PTR")
        assert [str(r.target) for rrset in reply.answer for r in rrset] == ["myservicea.foo.org."]
        assert "Node" in bound.stores[0].kinds


async def test_standard_channel_without_tcp_udp_routes_is_ready_and_serves_the_rest(nursery, tmp_path, logs):
    """Gateway API's standard channel serves no TCPRoute or UDPRoute: both are skipped (INFO),
    readiness is not held up, and the other routes answer."""
    from k8sgw.devapi.kinds import KINDS as DEV_KINDS

    cluster = DevCluster(kinds=[k for k in DEV_KINDS if k.kind not in ("TCPRoute", "UDPRoute")])
    cluster.apply(gateway())
    cluster.apply(route("web", ["web.foo.org"]))
    bound = await k8sgw_for(nursery, cluster, tmp_path)
    with trio.fail_after(10):
        await bound.stores[0].wait_until(lambda m: m.ready and has("web.foo.org.", "192.0.2.100")(m))
        await logs.wait_for("the API does not serve tcproutes.gateway.networking.k8s.io")
        await logs.wait_for("the API does not serve udproutes.gateway.networking.k8s.io")
