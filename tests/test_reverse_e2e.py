"""Reverse zones end to end: kubectl applies and deletes objects of every source kind on the dev API
server; dig, kdig and unbound (stub-zone, qname minimisation on) ask k8sgw for their PTR records."""

from __future__ import annotations

import subprocess

import dns.asyncquery
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.reversename
import trio

from k8sgw.records.recordmap import RecordMap
from tests.conftest import EXAMPLES, start_k8sgw, tool
from tests.test_cli import Lines
from tests.test_resolver import free_port, unbound_conf
from tests.test_tools import kubectl_env, run

REVERSE = ("2.0.192.in-addr.arpa", "8.b.d.0.1.0.0.2.ip6.arpa")
MANIFEST = EXAMPLES / "reverse.yaml"
# Every address of the manifest → the names owning it, in the documented (canonical) order.
EXPECTED = {
    "192.0.2.81": ["rev.foo.org."],  # Ingress
    "2001:db8::81": ["rev.foo.org."],
    "192.0.2.82": ["also.foo.org.", "rev-svc.default.foo.org."],  # Service, two names
    "2001:db8::82": ["also.foo.org.", "rev-svc.default.foo.org."],
    "192.0.2.83": ["grpc.foo.org.", "route.foo.org.", "tls.foo.org."],  # GRPC-, HTTP-, TLSRoute
    "2001:db8::83": ["grpc.foo.org.", "route.foo.org.", "tls.foo.org."],
    "192.0.2.85": ["rev-pods.default.foo.org."],  # a Service's EndpointSlices
    "2001:db8::85": ["rev-pods.default.foo.org."],
    "192.0.2.84": ["ep.foo.org."],  # DNSEndpoint
    "2001:db8::84": ["ep.foo.org."],
}


def reverse_corefile(kubeconfig, resources: str = "Ingress Service HTTPRoute GRPCRoute TLSRoute DNSEndpoint") -> str:
    """foo.org and the reverse zones, in the block's keys and the directive alike."""
    zones = " ".join(("foo.org", *REVERSE))
    return f"""
{zones} {{
    bind 127.0.0.1
    k8s_gateway {zones} {{
        kubeconfig {kubeconfig}
        resources {resources}
    }}
}}
"""


def ptr_of(address: str, *names: str):
    owner = dns.reversename.from_address(address)

    def check(records: RecordMap) -> bool:
        return [str(r.target) for r in records.rdatas(owner, dns.rdatatype.PTR)] == list(names)

    return check


def all_ptrs(records: RecordMap) -> bool:
    """Ready (before, every answer is SERVFAIL) and every PTR of the manifest there."""
    return records.ready and all(ptr_of(a, *names)(records) for a, names in EXPECTED.items())


def reverse_unbound_conf(tmp_path, port: int, stub: tuple[str, int]) -> str:
    """test_resolver's unbound (qname minimisation, harden-below-nxdomain) with a stub-zone per
    reverse zone and strict minimisation. 192.0.2.0/24 and 2001:db8::/32 are documentation
    prefixes, which unbound answers itself (RFC 6303 default zones) unless told not to."""
    nodefault = "".join(f'    local-zone: "{z}." nodefault\n' for z in REVERSE)
    stubs = "".join(f'stub-zone:\n    name: "{z}"\n    stub-addr: {stub[0]}@{stub[1]}\n' for z in REVERSE)
    server = f"server:\n    qname-minimisation-strict: yes\n{nodefault}"
    return unbound_conf(tmp_path, port, stub) + server + stubs


async def test_kubectl_apply_dig_kdig_unbound_then_delete(nursery, kubeconfig, tmp_path):
    dig, kdig, unbound, kubectl = tool("dig"), tool("kdig"), tool("unbound"), tool("kubectl")
    bound = await start_k8sgw(nursery, reverse_corefile(kubeconfig))
    store = bound.stores[0]
    host, port = bound.udp[0]
    base = [kubectl, "--kubeconfig", str(kubeconfig)]
    env = kubectl_env(tmp_path)
    with trio.fail_after(60):
        await run(*base, "apply", "-f", str(MANIFEST), env=env)
        await store.wait_until(all_ptrs)
        for address, names in EXPECTED.items():
            for client in (dig, kdig):
                for transport in ("+notcp", "+tcp"):
                    out = await run(client, f"@{host}", "-p", str(port), "-x", address, transport, "+short")
                    assert out.split() == names, (client, address, transport, out)

        uport = await free_port()
        conf = tmp_path / "unbound.conf"
        conf.write_text(reverse_unbound_conf(tmp_path, uport, (host, port)))
        proc = await trio.lowlevel.open_process([unbound, "-d", "-c", str(conf)], stderr=subprocess.PIPE)
        try:
            await Lines(proc.stderr).until("start of service")
            for address, names in EXPECTED.items():
                q = dns.message.make_query(dns.reversename.from_address(address), "PTR")
                reply = await dns.asyncquery.udp(q, "127.0.0.1", port=uport, timeout=5)
                assert reply.rcode() == dns.rcode.NOERROR, address
                assert sorted(str(r.target) for rrset in reply.answer for r in rrset) == names, address
            missing = dns.message.make_query(dns.reversename.from_address("2001:db8::99"), "PTR")
            reply = await dns.asyncquery.udp(missing, "127.0.0.1", port=uport, timeout=5)
            assert reply.rcode() == dns.rcode.NXDOMAIN
        finally:
            proc.terminate()
            await proc.wait()

        await run(*base, "delete", "-f", str(MANIFEST), env=env)
        await store.wait_until(lambda m: all(ptr_of(a)(m) for a in EXPECTED))
        for address in EXPECTED:
            full = await run(dig, f"@{host}", "-p", str(port), "-x", address)
            assert "status: NXDOMAIN" in full
            assert "IN\tSOA\tdns1.kube-system." in full  # the reverse zone's own SOA
