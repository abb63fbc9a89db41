"""UDP and TCP servers over real sockets on 127.0.0.1, port 0, queried with dnspython."""

from __future__ import annotations

import socket
import struct
from functools import partial

import dns.asyncquery
import dns.message
import dns.rcode
import pytest
import trio

from k8sgw.dnsserver.sockets import bind_dns_sockets
from k8sgw.dnsserver.tcp import TcpLimits, serve_tcp
from k8sgw.dnsserver.udp import serve_udp
from k8sgw.dnsserver.wire import handle_wire
from tests.zonetext import view_from_text

VIEW, _ = view_from_text("web.example.org. 60 IN A 192.0.2.10")


def handle_udp(wire: bytes, addr) -> bytes | None:
    return handle_wire(wire, VIEW, udp=True)


def handle_tcp(wire: bytes, addr) -> bytes | None:
    return handle_wire(wire, VIEW, udp=False)


@pytest.fixture
async def udp_addr(nursery):
    udp, tcp = await bind_dns_sockets("127.0.0.1", 0)
    tcp.close()
    return await nursery.start(serve_udp, udp, handle_udp)


async def tcp_server(nursery, **limits) -> tuple[str, int]:
    udp, tcp = await bind_dns_sockets("127.0.0.1", 0)
    udp.close()
    return await nursery.start(partial(serve_tcp, limits=TcpLimits(**limits)), tcp, handle_tcp)


def query_wire(name: str = "web.example.org.") -> tuple[dns.message.Message, bytes]:
    q = dns.message.make_query(name, "A")
    return q, q.to_wire()


_pending: dict[int, bytes] = {}  # bytes read past one reply, per stream, for pipelined replies


async def read_reply(stream: trio.SocketStream) -> dns.message.Message:
    buf = _pending.pop(id(stream), b"")
    while len(buf) < 2 or len(buf) < 2 + struct.unpack("!H", buf[:2])[0]:
        chunk = await stream.receive_some(65536)
        assert chunk, "connection closed before a full reply"
        buf += chunk
    size = struct.unpack("!H", buf[:2])[0]
    _pending[id(stream)] = buf[2 + size :]
    return dns.message.from_wire(buf[2 : 2 + size])


async def test_udp_answers(udp_addr):
    with trio.fail_after(5):
        q = dns.message.make_query("web.example.org.", "A")
        r = await dns.asyncquery.udp(q, udp_addr[0], port=udp_addr[1], timeout=2)
    assert r.answer[0] == dns.rrset.from_text("web.example.org.", 60, "IN", "A", "192.0.2.10")


async def test_udp_survives_garbage(udp_addr):
    with trio.fail_after(5):
        sock = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with sock:
            await sock.connect(udp_addr)
            for junk in (b"", b"\x01", b"\x00" * 11, b"\xff" * 40, b"\x12\x34\x81\x00" + b"\x00" * 8):
                await sock.send(junk)
            await sock.send(b"\xbe\xef\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xff")
            formerr = dns.message.from_wire(await sock.recv(65535))
            assert (formerr.id, formerr.rcode()) == (0xBEEF, dns.rcode.FORMERR)
            q, wire = query_wire()
            await sock.send(wire)
            reply = dns.message.from_wire(await sock.recv(65535))
        assert reply.id == q.id and reply.answer


async def test_tcp_answers_with_dnspython(nursery):
    addr = await tcp_server(nursery)
    with trio.fail_after(5):
        q = dns.message.make_query("web.example.org.", "A")
        r = await dns.asyncquery.tcp(q, addr[0], port=addr[1], timeout=2)
    assert str(r.answer[0][0]) == "192.0.2.10"


async def test_tcp_pipelined_queries_in_one_write(nursery):
    addr = await tcp_server(nursery)
    with trio.fail_after(5):
        stream = await trio.open_tcp_stream(*addr)
        async with stream:
            queries = [query_wire(n) for n in ("web.example.org.", "nx.example.org.", "web.example.org.")]
            await stream.send_all(b"".join(struct.pack("!H", len(w)) + w for _, w in queries))
            replies = [await read_reply(stream) for _ in queries]
    assert [r.id for r in replies] == [q.id for q, _ in queries]
    assert [r.rcode() for r in replies] == [dns.rcode.NOERROR, dns.rcode.NXDOMAIN, dns.rcode.NOERROR]


async def test_tcp_long_pipeline_is_answered_in_order(nursery):
    # More messages than one batch (tcp.MAX_BATCH), in one write.
    addr = await tcp_server(nursery)
    with trio.fail_after(5):
        stream = await trio.open_tcp_stream(*addr)
        async with stream:
            queries = [query_wire("web.example.org." if k % 3 else "nx.example.org.") for k in range(200)]
            await stream.send_all(b"".join(struct.pack("!H", len(w)) + w for _, w in queries))
            replies = [await read_reply(stream) for _ in queries]
    assert [r.id for r in replies] == [q.id for q, _ in queries]
    assert [r.rcode() for r in replies] == [
        dns.rcode.NOERROR if k % 3 else dns.rcode.NXDOMAIN for k in range(200)
    ]


async def test_tcp_message_to_drop_sends_what_came_before_then_closes(nursery):
    addr = await tcp_server(nursery)
    with trio.fail_after(5):
        stream = await trio.open_tcp_stream(*addr)
        async with stream:
            (q1, w1), (_, w2) = query_wire(), query_wire()
            response = w2[:2] + bytes([w2[2] | 0x80]) + w2[3:]  # QR set: a response, never answered
            await stream.send_all(b"".join(struct.pack("!H", len(w)) + w for w in (w1, response, w1)))
            assert (await read_reply(stream)).id == q1.id
            assert await stream.receive_some(10) == b""


async def test_tcp_message_split_across_writes(nursery):
    addr = await tcp_server(nursery)
    with trio.fail_after(5):
        stream = await trio.open_tcp_stream(*addr)
        async with stream:
            q, wire = query_wire()
            framed = struct.pack("!H", len(wire)) + wire
            for i in range(len(framed)):
                await stream.send_all(framed[i : i + 1])
            assert (await read_reply(stream)).id == q.id


async def test_tcp_idle_connection_is_closed(nursery):
    addr = await tcp_server(nursery, idle_timeout=0.2)
    with trio.fail_after(5):
        stream = await trio.open_tcp_stream(*addr)
        async with stream:
            await stream.send_all(b"\x00")  # half a length prefix, then nothing: a slow writer
            assert await stream.receive_some(10) == b""  # the server closed it


async def test_tcp_connections_are_bounded(nursery):
    addr = await tcp_server(nursery, max_connections=2, idle_timeout=30)
    with trio.fail_after(5):
        first = await trio.open_tcp_stream(*addr)
        second = await trio.open_tcp_stream(*addr)
        # Both held: each is served (so each owns a slot).
        for stream in (first, second):
            q, wire = query_wire()
            await stream.send_all(struct.pack("!H", len(wire)) + wire)
            assert (await read_reply(stream)).id == q.id
        third = await trio.open_tcp_stream(*addr)  # accepted by the kernel, not served yet
        q, wire = query_wire()
        await third.send_all(struct.pack("!H", len(wire)) + wire)
        with trio.move_on_after(0.3) as waiting:
            await third.receive_some(1)
        assert waiting.cancelled_caught, "a third connection was served beyond the bound"
        await first.aclose()
        assert (await read_reply(third)).id == q.id
        await second.aclose()
        await third.aclose()
