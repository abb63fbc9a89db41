"""A real resolver agrees: unbound with a stub-zone at k8sgw, qname minimisation and hardening on.

Every served name is resolved through unbound, including names under empty non-terminals and
wildcard names, which an RFC-incorrect NXDOMAIN would break under qname minimisation.
"""

from __future__ import annotations

import subprocess

import dns.asyncquery
import dns.message
import dns.rcode
import trio

from k8sgw.dnsserver.sockets import bind_dns_sockets
from tests.conftest import addresses, corefile, has, start_k8sgw, tool
from tests.test_app import ingress
from tests.test_cli import Lines


async def free_port() -> int:
    udp, tcp = await bind_dns_sockets("127.0.0.1", 0)
    port = udp.getsockname()[1]
    udp.close()
    tcp.close()
    return port


def unbound_conf(tmp_path, port: int, stub: tuple[str, int]) -> str:
    return f"""
server:
    interface: 127.0.0.1
    port: {port}
    do-ip6: no
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "{tmp_path}"
    pidfile: ""
    use-syslog: no
    logfile: ""
    verbosity: 1
    module-config: "iterator"
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
    qname-minimisation: yes
    harden-below-nxdomain: yes
    cache-max-negative-ttl: 0

stub-zone:
    name: "foo.org"
    stub-addr: {stub[0]}@{stub[1]}
"""


async def resolve(port: int, name: str, rdtype: str = "A") -> dns.message.Message:
    q = dns.message.make_query(name, rdtype)
    return await dns.asyncquery.udp(q, "127.0.0.1", port=port, timeout=5)


async def test_unbound_resolves_every_served_name(nursery, kubeconfig, cluster, tmp_path):
    unbound = tool("unbound")
    bound = await start_k8sgw(nursery, corefile(kubeconfig))
    cluster.apply(ingress("apps", "*.apps.foo.org", "192.0.2.70"))
    cluster.apply(ingress("deep", "x.y.z.foo.org", "192.0.2.71"))
    with trio.fail_after(10):
        await bound.stores[0].wait_until(has("x.y.z.foo.org.", "192.0.2.71"))
    port = await free_port()
    conf = tmp_path / "unbound.conf"
    conf.write_text(unbound_conf(tmp_path, port, bound.udp[0]))
    with trio.fail_after(30):
        proc = await trio.lowlevel.open_process([unbound, "-d", "-c", str(conf)], stderr=subprocess.PIPE)
        try:
            await Lines(proc.stderr).until("start of service")
            expected = {
                "myservicea.foo.org.": ["192.0.2.10"],
                "web.default.foo.org.": ["192.0.2.20"],  # below the empty non-terminal default.foo.org
                "shop.foo.org.": ["192.0.2.30"],
                "dns1.kube-system.foo.org.": ["192.0.2.53"],
                "x.apps.foo.org.": ["192.0.2.70"],  # wildcard
                "a.b.apps.foo.org.": ["192.0.2.70"],  # wildcard, two labels deep
                "x.y.z.foo.org.": ["192.0.2.71"],  # below two empty non-terminals
            }
            for name, ips in expected.items():
                reply = await resolve(port, name)
                assert reply.rcode() == dns.rcode.NOERROR, name
                assert addresses(reply) == ips, name
            for ent in ("default.foo.org.", "y.z.foo.org.", "apps.foo.org."):
                reply = await resolve(port, ent)
                assert (reply.rcode(), reply.answer) == (dns.rcode.NOERROR, []), ent
            nodata = await resolve(port, "myservicea.foo.org.", "AAAA")
            assert (nodata.rcode(), nodata.answer) == (dns.rcode.NOERROR, [])
            assert (await resolve(port, "nothing.foo.org.")).rcode() == dns.rcode.NXDOMAIN
            # The zone's own records, through the resolver too.
            assert (await resolve(port, "foo.org.", "SOA")).answer
            assert (await resolve(port, "foo.org.", "NS")).answer
        finally:
            proc.terminate()
            await proc.wait()
