"""The UDP server's two read loops (recvmmsg batches and one recvfrom per datagram) over real
sockets, and the C module behind the batches (k8sgw.dnsserver._mmsg) on its own."""

from __future__ import annotations

import socket
import struct
from functools import partial

import dns.message
import dns.rcode
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from k8sgw.dnsserver import _mmsg  # built by `pip install -e .` (setup.py); gcc is on every machine
from k8sgw.dnsserver.answer import Authority, Block, View
from k8sgw.dnsserver.forward import Forwarder
from k8sgw.dnsserver.sockets import bind_dns_sockets, bind_socket
from k8sgw.dnsserver.udp import BATCHED_IO, serve_udp
from k8sgw.dnsserver.wire import handle_wire
from tests.dnsserver.test_forward import Upstream_, forward_cfg
from tests.zonetext import view_from_text

VIEW, _ = view_from_text(
    """
    web.example.org. 60 IN A 192.0.2.10
    boom.example.org. 60 IN A 192.0.2.11
    huge.example.org. 60 IN A 192.0.2.12
    """
)
LOOPS = pytest.mark.parametrize("batched", [True, False], ids=["recvmmsg", "recvfrom"])


def handle(wire: bytes, addr) -> bytes | None:
    """Answers VIEW, except: boom.* raises (a bug in a handler), huge.* gets a reply no UDP
    datagram can carry (the kernel refuses to send it: EMSGSIZE)."""
    if b"\x04boom" in wire:
        raise RuntimeError("a handler bug")
    if b"\x04huge" in wire:
        return wire[:2] + b"\x00" * 70_000
    return handle_wire(wire, VIEW, udp=True)


async def start(nursery, batched: bool, handler=handle, host: str = "127.0.0.1") -> tuple[str, int]:
    udp, tcp = await bind_dns_sockets(host, 0)
    tcp.close()
    return await nursery.start(partial(serve_udp, batched=batched), udp, handler)


def query(name: str, qid: int) -> bytes:
    q = dns.message.make_query(name, "A")
    q.id = qid
    return q.to_wire()


def client(family: int = socket.AF_INET) -> socket.socket:
    """A plain non-blocking socket: its sends return at once, so a burst of them is queued at the
    server before the server's task runs, and arrives there as one batch."""
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setblocking(False)
    return sock


async def receive(sock: socket.socket) -> dns.message.Message:
    while True:
        try:
            return dns.message.from_wire(sock.recv(65535))
        except BlockingIOError:
            await trio.lowlevel.wait_readable(sock)


def test_batched_io_is_built():
    assert BATCHED_IO, "k8sgw.dnsserver._mmsg is missing: reinstall with a C compiler (pip install -e .)"


@LOOPS
async def test_burst_from_many_clients_is_answered_to_each(nursery, batched):
    addr = await start(nursery, batched)
    clients = [client() for _ in range(10)]
    try:
        for c, sock in enumerate(clients):  # 150 queries: more than two full batches
            for k in range(15):
                sock.sendto(query("web.example.org.", c * 100 + k), addr)
        with trio.fail_after(5):
            for c, sock in enumerate(clients):
                ids = sorted([(await receive(sock)).id for _ in range(15)])
                assert ids == [c * 100 + k for k in range(15)]
    finally:
        for sock in clients:
            sock.close()


@LOOPS
async def test_a_failing_handler_or_send_costs_only_its_datagram(nursery, batched, caplog):
    addr = await start(nursery, batched)
    with client() as sock:
        sock.sendto(query("boom.example.org.", 1), addr)
        sock.sendto(query("huge.example.org.", 2), addr)
        sock.sendto(query("web.example.org.", 3), addr)
        sock.sendto(b"\x00\x04garbage", addr)  # under 12 bytes: dropped
        sock.sendto(query("web.example.org.", 5), addr)
        with trio.fail_after(5):
            replies = [await receive(sock), await receive(sock)]
    assert [(r.id, r.rcode()) for r in replies] == [(3, dns.rcode.NOERROR), (5, dns.rcode.NOERROR)]
    assert "UDP query from 127.0.0.1 failed" in caplog.text


@LOOPS
async def test_ipv6_clients_get_their_replies(nursery, batched):
    try:
        addr = await start(nursery, batched, host="::1")
    except OSError as exc:
        pytest.fail(f"no IPv6 loopback on this machine: {exc}")
    with client(socket.AF_INET6) as sock:
        sock.sendto(query("web.example.org.", 7), addr)
        with trio.fail_after(5):
            reply = await receive(sock)
    assert reply.id == 7 and str(reply.answer[0][0]) == "192.0.2.10"


@LOOPS
async def test_forwarded_replies_go_out_beside_our_own(nursery, batched):
    up = Upstream_()
    base, store = view_from_text("web.example.org. 60 IN A 192.0.2.10", zones=("example.org.",))
    authority = Authority(base.blocks[0].authority.settings, store, None)
    view = View([Block((dns.name.root,), authority, Forwarder(forward_cfg(await up.start(nursery))), False)])
    addr = await start(nursery, batched, lambda w, a: handle_wire(w, view, udp=True))
    with client() as sock:
        sock.sendto(query("www.example.net.", 1), addr)  # forwarded: answered later, from a task
        sock.sendto(query("web.example.org.", 2), addr)  # ours: answered in the batch
        with trio.fail_after(5):
            replies = {r.id: r for r in [await receive(sock), await receive(sock)]}
    assert str(replies[1].answer[0][0]) == "198.51.100.1"
    assert str(replies[2].answer[0][0]) == "192.0.2.10"


# -- the C module on its own -------------------------------------------------------------------


async def bound(host: str = "127.0.0.1") -> socket.socket:
    tsock = await bind_socket(host, 0, socket.SOCK_DGRAM)
    sock = socket.socket(tsock.family, tsock.type, fileno=tsock.detach())
    sock.setblocking(False)
    return sock


async def test_recvmmsg_gives_what_recvfrom_gives():
    server, sender = await bound(), client()
    with server, sender:
        with pytest.raises(BlockingIOError):
            _mmsg.recvmmsg(server)
        big = bytes(range(256)) * 255  # 65,280 bytes: near the largest IPv4 datagram
        for payload in (b"one", b"", big):
            sender.sendto(payload, server.getsockname())
        batch = _mmsg.recvmmsg(server)
        expected_addr = ("127.0.0.1", sender.getsockname()[1])
        assert batch == [(b"one", expected_addr), (b"", expected_addr), (big, expected_addr)]


async def test_recvmmsg_reads_at_most_a_batch():
    server, sender = await bound(), client()
    with server, sender:
        for k in range(_mmsg.BATCH + 5):
            sender.sendto(struct.pack("!H", k), server.getsockname())
        first, rest = _mmsg.recvmmsg(server), _mmsg.recvmmsg(server)
    assert [d for d, _ in first + rest] == [struct.pack("!H", k) for k in range(_mmsg.BATCH + 5)]
    assert len(first) == _mmsg.BATCH


async def test_sendmmsg_sends_from_start_and_reports_the_first_refusal():
    server, receiver = await bound(), await bound()
    with server, receiver:
        to = receiver.getsockname()
        replies = [(b"a", to), (b"b", to), (b"\x00" * 70_000, to), (b"d", to)]
        assert _mmsg.sendmmsg(server, replies, 1) == 1  # stops before the one the kernel refuses
        with pytest.raises(OSError, match="Message too long"):
            _mmsg.sendmmsg(server, replies, 2)
        assert _mmsg.sendmmsg(server, replies, 3) == 1
        assert [receiver.recvfrom(10)[0] for _ in range(2)] == [b"b", b"d"]
        with pytest.raises(PermissionError):  # broadcast without SO_BROADCAST: EACCES
            _mmsg.sendmmsg(server, [(b"x", ("255.255.255.255", 9))], 0)


async def test_sendmmsg_rejects_what_is_not_a_reply():
    with await bound() as server:
        for bad in ([("text", ("127.0.0.1", 9))], [(b"x", "127.0.0.1")], [(b"x", ("localhost", 9))]):
            with pytest.raises((TypeError, ValueError)):
                _mmsg.sendmmsg(server, bad, 0)
        with pytest.raises(IndexError):
            _mmsg.sendmmsg(server, [], 0)


async def test_ipv6_addresses_round_trip():
    try:
        server = await bound("::1")
    except OSError as exc:
        pytest.fail(f"no IPv6 loopback on this machine: {exc}")
    with server, client(socket.AF_INET6) as sender:
        sender.sendto(b"q", server.getsockname()[:2])
        ((data, addr),) = _mmsg.recvmmsg(server)
        assert addr == ("::1", sender.getsockname()[1], 0, 0)  # (host, port, flowinfo, scope_id)
        assert _mmsg.sendmmsg(server, [(b"r", addr)], 0) == 1
        assert sender.recvfrom(10) == (b"r", server.getsockname())


def _large(size: int) -> bytes:
    return (bytes(range(256)) * 256)[:size]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 2), st.one_of(st.binary(max_size=600), st.integers(60000, 65507).map(_large))),
        min_size=1,
        max_size=150,
    )
)
def test_recvmmsg_and_sendmmsg_carry_any_datagrams_unchanged(datagrams):
    """Random sizes from several senders, in batches: every byte and address arrives as sent, and
    sendmmsg sends each back to where it came from."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        server.setblocking(False)
        senders = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
        try:
            for s in senders:
                s.bind(("127.0.0.1", 0))
                s.settimeout(5)  # a lost echo fails the test instead of hanging it
            chunk: list[tuple[int, bytes]] = []
            for k, (who, payload) in enumerate(datagrams):
                senders[who].sendto(payload, server.getsockname())
                chunk.append((who, payload))
                # A chunk at a time, well under the default receive buffers (~200 KB).
                if sum(len(p) + 1024 for _, p in chunk) > 100_000 or k == len(datagrams) - 1:
                    _echo_chunk(server, senders, chunk)
                    chunk = []
        finally:
            for s in senders:
                s.close()


def _echo_chunk(server: socket.socket, senders: list[socket.socket], chunk: list[tuple[int, bytes]]) -> None:
    received = []
    while True:
        try:
            received += _mmsg.recvmmsg(server)
        except BlockingIOError:
            break
    assert received == [(payload, senders[who].getsockname()) for who, payload in chunk]
    done = 0
    while done < len(received):
        done += _mmsg.sendmmsg(server, received, done)
    for who, s in enumerate(senders):
        mine = [payload for w, payload in chunk if w == who]
        assert [s.recv(65535) for _ in mine] == mine
