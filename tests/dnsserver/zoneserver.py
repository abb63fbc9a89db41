"""k8sgw's UDP and TCP servers over the robustness test zone, in a process of their own.

    python -m tests.dnsserver.zoneserver [--forward HOST:PORT]

Prints the port (UDP and TCP, 127.0.0.1) on stdout once both answer, logs to stderr, and serves
until killed. With --forward, names outside example.org. go to that upstream (`forward . HOST:PORT`
with CoreDNS's defaults). Tests that must measure the server alone (its RSS, its file descriptors,
its latency while another process floods it) start it; the two servers share one nursery as in
k8sgw.app, so a failing one ends the other.
"""

from __future__ import annotations

import argparse
import logging
import sys
from functools import partial

import dns.name
import trio

from k8sgw.config.dnsplugins import ForwardConfig, Upstream
from k8sgw.dnsserver.answer import Block, View
from k8sgw.dnsserver.fastpath import FastPath
from k8sgw.dnsserver.forward import Forwarder
from k8sgw.dnsserver.sockets import bind_dns_sockets
from k8sgw.dnsserver.tcp import TcpLimits, serve_tcp
from k8sgw.dnsserver.udp import serve_udp
from tests.robustness.dnsenv import make_view


def view(forward: str | None) -> View:
    zone_view, _ = make_view()
    if forward is None:
        return zone_view
    host, port = forward.rsplit(":", 1)
    cfg = ForwardConfig(zone=".", upstreams=(Upstream(host=host, port=int(port)),), line=1)
    return View([*zone_view.blocks, Block((dns.name.root,), forwarder=Forwarder(cfg))])


async def main(forward: str | None) -> None:
    fast = FastPath(view(forward))
    udp_sock, tcp_sock = await bind_dns_sockets("127.0.0.1", 0)
    async with trio.open_nursery() as nursery:
        _, port = await nursery.start(serve_udp, udp_sock, fast.handle_udp)
        await nursery.start(partial(serve_tcp, limits=TcpLimits(idle_timeout=30)), tcp_sock, fast.handle_tcp)
        print(port, flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--forward")
    args = parser.parse_args()
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    trio.run(main, args.forward)
