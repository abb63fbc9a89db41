"""Hostile TCP clients (RFC 7766 §6.2): idle hordes, tricklers, lying length prefixes, floods.

Servers run in-process over the test zone (dnsenv). Short idle timeouts (TcpLimits) keep each
test under a few seconds; every wait is on a socket event under a trio fail_after. The only sleeps
are a trickler's own pacing, which is the behaviour under test.
"""

from __future__ import annotations

import socket
import struct
import tracemalloc

import dns.message
import trio

from k8sgw.dnsserver.tcp import TcpLimits
from tests.robustness.dnsenv import framed, live_connections, real_query, start_servers


def query(name: str = "web.example.org.", rdtype: str = "A", qid: int | None = None) -> tuple[int, bytes]:
    q = dns.message.make_query(name, rdtype)
    if qid is not None:
        q.id = qid
    return q.id, q.to_wire()


async def read_frame(stream: trio.SocketStream, buf: bytearray) -> bytes:
    while len(buf) < 2 or len(buf) < 2 + struct.unpack("!H", buf[:2])[0]:
        chunk = await stream.receive_some(65536)
        assert chunk, "closed before a full reply"
        buf += chunk
    size = struct.unpack("!H", buf[:2])[0]
    frame = bytes(buf[2 : 2 + size])
    del buf[: 2 + size]
    return frame


async def wait_closed(stream: trio.SocketStream) -> None:
    """Until the server closes its end (EOF or reset)."""
    try:
        while await stream.receive_some(65536):
            pass
    except trio.BrokenResourceError:
        pass


async def served(addr) -> None:
    """A fresh TCP client and a UDP client get exact answers."""
    await real_query(addr, "web.example.org.", "A", tcp=True)
    await real_query(addr, "alias.example.org.", "A")


async def test_thousand_idle_connections_are_bounded_and_timed_out(nursery):
    idle = 1.0
    udp, tcp = await start_servers(nursery, TcpLimits(idle_timeout=idle, max_connections=1000))
    tracemalloc.start()
    try:
        with trio.fail_after(20):
            base, _ = tracemalloc.get_traced_memory()
            first_open = trio.current_time()
            clients = [await trio.open_tcp_stream(*tcp) for _ in range(1000)]
            # One more than the bound: the kernel queues it, the server does not serve it yet.
            extra = await trio.open_tcp_stream(*tcp)
            qid, wire = query()
            await extra.send_all(framed(wire))
            peak_tasks = 0
            for _ in range(20):  # UDP keeps answering while every slot is held
                await real_query(udp, "web.example.org.", "A")
                await real_query(udp, "v6.example.org.", "AAAA")
                peak_tasks = max(peak_tasks, live_connections())
            assert peak_tasks <= 1000
            reply = dns.message.from_wire(await read_frame(extra, bytearray()))
            assert reply.id == qid and str(reply.answer[0][0]) == "192.0.2.10"
            waited = trio.current_time() - first_open
            _, peak = tracemalloc.get_traced_memory()
            # Served only once a slot freed, i.e. once an idle connection had timed out.
            assert waited >= idle * 0.9, waited
            for stream in clients:  # every idle connection was closed by the server
                await wait_closed(stream)
                await stream.aclose()
            await extra.aclose()
            assert peak - base < 32 * 1024 * 1024, f"{(peak - base) / 1e6:.1f} MB for 1000 connections"
            await served(tcp)
    finally:
        tracemalloc.stop()


async def test_connection_count_never_exceeds_the_bound(nursery):
    udp, tcp = await start_servers(nursery, TcpLimits(idle_timeout=0.3, max_connections=20))
    with trio.fail_after(15):
        # 20 served + 50 waiting in the listen backlog (128): all connect at once, none is refused.
        clients = [await trio.open_tcp_stream(*tcp) for _ in range(70)]
        done = trio.Event()
        peak = 0

        async def sample():
            nonlocal peak
            while not done.is_set():
                peak = max(peak, live_connections())
                await real_query(udp, "web.example.org.", "A")

        async with trio.open_nursery() as inner:
            inner.start_soon(sample)
            for stream in clients:  # served in waves of 20, each closed by the idle timeout
                await wait_closed(stream)
                await stream.aclose()
            done.set()
        assert 0 < peak <= 20, peak
        await served(tcp)


async def test_trickler_is_closed_by_the_per_message_timeout(nursery):
    """One byte per 0.6 × idle_timeout: the idle timer never fires between two bytes, but the
    message is not complete within idle_timeout, so the connection is closed (RFC 7766 §6.2.3)."""
    idle = 0.5
    udp, tcp = await start_servers(nursery, TcpLimits(idle_timeout=idle, max_connections=1))
    _, wire = query()
    data = framed(wire)
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream(*tcp)
        start = trio.current_time()
        sent = 0
        closed = False
        for byte in data:
            try:
                await stream.send_all(bytes([byte]))
            except trio.BrokenResourceError:
                closed = True
                break
            sent += 1
            with trio.move_on_after(idle * 0.6):
                if await stream.receive_some(10) == b"":
                    closed = True
                    break
        assert closed and sent < len(data), f"a trickler held the connection for {sent} bytes"
        assert trio.current_time() - start < idle * 2 + 0.5
        await stream.aclose()
        await served(tcp)  # the single slot is free again


async def test_lying_length_prefix_is_closed_by_timeout(nursery):
    idle = 0.3
    udp, tcp = await start_servers(nursery, TcpLimits(idle_timeout=idle, max_connections=1))
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream(*tcp)
        start = trio.current_time()
        await stream.send_all(struct.pack("!H", 500) + b"0123456789")  # says 500, sends 10
        await real_query(udp, "web.example.org.", "A")  # UDP unaffected meanwhile
        await wait_closed(stream)
        assert idle * 0.9 <= trio.current_time() - start < idle + 2
        await stream.aclose()
        await served(tcp)


async def test_zero_length_prefix_closes_at_once(nursery):
    udp, tcp = await start_servers(nursery, TcpLimits(idle_timeout=30, max_connections=1))
    with trio.fail_after(5):  # far below idle_timeout: the close is immediate
        stream = await trio.open_tcp_stream(*tcp)
        await stream.send_all(b"\x00\x00")
        await wait_closed(stream)
        await stream.aclose()
        await served(tcp)


async def test_pipelined_flood_is_answered_in_order(nursery):
    udp, tcp = await start_servers(nursery, TcpLimits(idle_timeout=5))
    names = [
        ("web.example.org.", "A"),
        ("v6.example.org.", "AAAA"),
        ("alias.example.org.", "A"),
        ("x.apps.example.org.", "A"),
    ]
    batch = [query(*names[i % len(names)], qid=i) for i in range(4000)]
    with trio.fail_after(30):
        stream = await trio.open_tcp_stream(*tcp)
        async with trio.open_nursery() as inner:

            async def udp_meanwhile():
                for _ in range(20):
                    await real_query(udp, "alias.example.org.", "A")

            inner.start_soon(udp_meanwhile)
            await stream.send_all(b"".join(framed(w) for _, w in batch))  # one write
            buf = bytearray()
            for i, (qid, _) in enumerate(batch):
                reply = dns.message.from_wire(await read_frame(stream, buf))
                assert reply.id == qid
                assert reply.question[0].name.to_text() == names[i % len(names)][0]
                assert reply.answer
        await stream.aclose()


async def test_flood_that_never_reads_is_closed(nursery):
    """Thousands of pipelined queries from a client that reads no reply: the server's writes block
    once the socket buffers fill; it must give up after idle_timeout, not hold the slot forever."""
    idle = 0.5
    udp, tcp = await start_servers(nursery, TcpLimits(idle_timeout=idle, max_connections=1))
    _, wire = query("big.example.org.")  # ~1.6 KB replies over TCP: the buffers fill quickly
    with trio.fail_after(15):
        sock = trio.socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        await sock.connect(tcp)
        stream = trio.SocketStream(sock)
        async with trio.open_nursery() as inner:

            async def flood():
                try:
                    for _ in range(20):
                        await stream.send_all(framed(wire) * 1000)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass

            inner.start_soon(flood)
            await served(tcp)  # the single slot came back: the flooder was dropped
            inner.cancel_scope.cancel()
        await stream.aclose()


async def test_client_reset_before_accept_does_not_stop_the_server(nursery):
    """A client that connects and resets before the server gets to it: accept() returns a dead
    socket (getpeername: ENOTCONN). That costs the connection, never the server."""
    udp, tcp = await start_servers(nursery, TcpLimits(idle_timeout=0.3, max_connections=1))
    with trio.fail_after(10):
        holder = await trio.open_tcp_stream(*tcp)  # takes the only slot
        for _ in range(5):
            sock = socket.socket()
            sock.connect(tcp)  # completes in the kernel's backlog
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()  # RST
        await wait_closed(holder)  # idle timeout frees the slot; the dead ones are accepted next
        await holder.aclose()
        await served(tcp)
        await served(tcp)
