"""In-process DNS servers (no API server) and the oracle the robustness tests check replies against.

The zone has every answer kind (A, AAAA, CNAME chain, TXT, wildcard, apex with glue), so fuzzed
and hostile-client runs interleave real queries whose answers are known exactly.
"""

from __future__ import annotations

import struct
from functools import partial

import dns.message
import dns.rdatatype
import trio

from k8sgw.dnsserver.fastpath import FastPath
from k8sgw.dnsserver.replies import MIN_UDP_PAYLOAD, OUR_PAYLOAD
from k8sgw.dnsserver.sockets import bind_dns_sockets
from k8sgw.dnsserver.tcp import TcpLimits, serve_tcp
from k8sgw.dnsserver.udp import serve_udp
from tests.zonetext import view_from_text

ZONE = "\n".join(
    [
        "web.example.org. 60 IN A 192.0.2.10",
        "v6.example.org. 60 IN AAAA 2001:db8::1",
        "dual.example.org. 60 IN A 192.0.2.11",
        "dual.example.org. 60 IN AAAA 2001:db8::11",
        "alias.example.org. 60 IN CNAME alias2.example.org.",
        "alias2.example.org. 60 IN CNAME web.example.org.",
        'txt.example.org. 60 IN TXT "v=spf1 -all"',
        "*.apps.example.org. 60 IN A 192.0.2.30",
        "dns1.kube-system.example.org. 60 IN A 192.0.2.53",
    ]
    + [f"big.example.org. 60 IN A 192.0.2.{i}" for i in range(100, 200)]
)

# name, type → the exact answer addresses expected (the oracle for interleaved real queries).
EXPECTED = {
    ("web.example.org.", "A"): ["192.0.2.10"],
    ("v6.example.org.", "AAAA"): ["2001:db8::1"],
    ("x.apps.example.org.", "A"): ["192.0.2.30"],
    ("alias.example.org.", "A"): ["192.0.2.10", "alias2.example.org.", "web.example.org."],
}


def make_view():
    return view_from_text(ZONE)


async def start_servers(nursery: trio.Nursery, limits: TcpLimits | None = None):
    """UDP and TCP servers on 127.0.0.1 (same port) over one FastPath of the test zone."""
    view, store = make_view()
    fast = FastPath(view)
    udp_sock, tcp_sock = await bind_dns_sockets("127.0.0.1", 0)
    udp = await nursery.start(serve_udp, udp_sock, fast.handle_udp)
    tcp = await nursery.start(partial(serve_tcp, limits=limits), tcp_sock, fast.handle_tcp)
    return udp, tcp


def answer_strings(reply: dns.message.Message) -> list[str]:
    return sorted(str(r) for rrset in reply.answer for r in rrset)


def udp_limit(query: bytes) -> int:
    """The largest UDP reply the sender of `query` accepts: 512 without EDNS, else
    min(payload, 1232) but at least 512. A query that cannot be parsed gets 512."""
    try:
        q = dns.message.from_wire(query)
    except Exception:
        return MIN_UDP_PAYLOAD
    if q.edns < 0:
        return MIN_UDP_PAYLOAD
    return max(MIN_UDP_PAYLOAD, min(q.payload, OUR_PAYLOAD))


def check_reply(query: bytes, reply: bytes | None, *, udp: bool) -> None:
    """Every reply parses as a DNS response to `query` and fits the client's UDP limit."""
    if reply is None:
        return
    if udp:
        assert len(reply) <= udp_limit(query), (len(reply), udp_limit(query), query)
    msg = dns.message.from_wire(reply)
    assert msg.id == struct.unpack("!H", query[:2])[0]
    assert msg.flags & 0x8000  # QR


async def real_query(addr, name: str, rdtype: str, *, tcp: bool = False) -> None:
    """Ask a known name and assert the exact answer."""
    import dns.asyncquery

    q = dns.message.make_query(name, rdtype)
    if tcp:
        r = await dns.asyncquery.tcp(q, addr[0], port=addr[1], timeout=5)
    else:
        r = await dns.asyncquery.udp(q, addr[0], port=addr[1], timeout=5)
    assert answer_strings(r) == EXPECTED[(name, rdtype)], (name, rdtype, r)


def framed(wire: bytes) -> bytes:
    return struct.pack("!H", len(wire)) + wire


def live_connections() -> int:
    """TCP connection tasks alive now in this trio run (walks the task tree)."""
    count = 0
    stack = [trio.lowlevel.current_root_task()]
    while stack:
        task = stack.pop()
        if task.name.endswith("_serve_connection"):
            count += 1
        for nursery in task.child_nurseries:
            stack.extend(nursery.child_tasks)
    return count
