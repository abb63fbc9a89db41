"""forward/fallthrough/loop wired through a Corefile, end to end with the dev cluster."""

from __future__ import annotations

import dns.name
import dns.rcode
import pytest
import trio

from k8sgw.dnsserver.forward import LoopDetectedError
from k8sgw.dnsserver.sockets import bind_dns_sockets
from tests.conftest import addresses, query, start_k8sgw
from tests.dnsserver.test_forward import Upstream_


def forwarding_corefile(kubeconfig, upstream: tuple[str, int], *, gateway: str = "", plugins: str = "") -> str:
    """One block on 127.0.0.1: k8s_gateway foo.org and `forward .` to upstream, plus more lines."""
    return f"""
.:0 {{
    bind 127.0.0.1
    k8s_gateway foo.org {{
        kubeconfig {kubeconfig}
        {gateway}
    }}
    forward . {upstream[0]}:{upstream[1]}
    {plugins}
}}
"""


async def test_corefile_forward_with_fallthrough(nursery, kubeconfig):
    up = Upstream_("legacy.foo.org. 60 IN A 198.51.100.7\nwww.example.net. 60 IN A 198.51.100.1", zones=("foo.org.", "example.net."))
    upstream = await up.start(nursery)
    corefile = forwarding_corefile(kubeconfig, upstream, gateway="fallthrough", plugins="cache 30\n    loadbalance")
    bound = await start_k8sgw(nursery, corefile)
    addr = bound.udp[0]
    with trio.fail_after(10):
        await bound.stores[0].wait_until(lambda m: m.ready)
        assert addresses(await query(addr, "myservicea.foo.org.")) == ["192.0.2.10"]
        assert addresses(await query(addr, "legacy.foo.org.")) == ["198.51.100.7"]
        assert addresses(await query(addr, "www.example.net.")) == ["198.51.100.1"]
        assert addresses(await query(addr, "www.example.net.", tcp=True)) == ["198.51.100.1"]  # cached
    assert up.udp_queries == ["legacy.foo.org.", "www.example.net."]


async def test_without_forward_other_names_are_refused(k8sgw):
    with trio.fail_after(5):
        assert (await query(k8sgw.udp[0], "www.example.net.")).rcode() == dns.rcode.REFUSED


async def test_corefile_loop_stops_the_server(nursery):
    # Learn a free port, then configure k8sgw to forward to itself on it.
    udp, tcp = await bind_dns_sockets("127.0.0.1", 0)
    port = udp.getsockname()[1]
    udp.close()
    tcp.close()
    text = f".:{port} {{\n    bind 127.0.0.1\n    forward . 127.0.0.1:{port}\n    loop\n}}\n"
    with trio.fail_after(15), pytest.RaisesGroup(LoopDetectedError, flatten_subgroups=True):
        async with trio.open_nursery() as inner:
            await start_k8sgw(inner, text)
    assert dns.name.root  # the server ended with the loop error above


async def test_forwarded_over_tcp_with_log_and_prometheus(nursery, kubeconfig):
    """The per-query counting wraps a forwarded reply; TCP awaits it as any other (before: the
    connection failed with a traceback, a wrapped reply was taken for bytes)."""
    up = Upstream_("www.example.net. 60 IN A 198.51.100.1", zones=("example.net.",))
    corefile = forwarding_corefile(kubeconfig, await up.start(nursery), plugins="log\n    prometheus 127.0.0.1:0")
    bound = await start_k8sgw(nursery, corefile)
    with trio.fail_after(10):
        assert addresses(await query(bound.udp[0], "www.example.net.", tcp=True)) == ["198.51.100.1"]
        assert addresses(await query(bound.udp[0], "www.example.net.")) == ["198.51.100.1"]
