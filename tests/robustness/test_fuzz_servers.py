"""Fuzzed datagrams and TCP streams against the real UDP and TCP servers (bounded budget for CI).

The servers run in a thread of their own (one trio run for the whole module), so hypothesis can
drive them example by example with plain blocking sockets. After every example a real query over
UDP and one over TCP must get their exact answers, no server task may have died, and nothing may
have been logged at ERROR (a bug caught by a supervision point is still a bug).

Properties checked per fuzzed input: at most one UDP reply; every reply parses as a DNS message
with QR set and the query's ID; a UDP reply never exceeds the client's limit (512 without EDNS,
else min(payload, 1232) but at least 512); TCP replies are whole frames that parse.
"""

from __future__ import annotations

import logging
import random
import socket
import struct
import threading

import dns.message
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from k8sgw.dnsserver.tcp import TcpLimits
from tests.robustness.dnsenv import EXPECTED, answer_strings, check_reply, start_servers
from tests.robustness.fuzzing import fuzz_input, fuzz_stream, make_query, mutate

BUDGET = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(self.format(record))


class ServerThread:
    def __init__(self) -> None:
        self.ready = threading.Event()
        self.crash: BaseException | None = None
        self.udp = self.tcp = None
        self._cancel = None
        self._token = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:  # noqa: BLE001 - reported to the tests
            self.crash = exc
            self.ready.set()

    async def _main(self) -> None:
        async with trio.open_nursery() as nursery:
            self.udp, self.tcp = await start_servers(nursery, TcpLimits(idle_timeout=2, max_connections=64))
            self._cancel = nursery.cancel_scope
            self._token = trio.lowlevel.current_trio_token()
            self.ready.set()

    def stop(self) -> None:
        if self._token is not None:
            self._token.run_sync_soon(self._cancel.cancel)
        self.thread.join(10)


@pytest.fixture(scope="module")
def servers():
    errors = Errors()
    logging.getLogger("k8sgw").addHandler(errors)
    server = ServerThread()
    server.thread.start()
    assert server.ready.wait(10)
    server.errors = errors
    yield server
    server.stop()
    logging.getLogger("k8sgw").removeHandler(errors)
    assert server.crash is None, server.crash


def healthy(server) -> None:
    """The servers are up, nothing was logged at ERROR, and real queries get exact answers."""
    assert server.crash is None, server.crash
    assert server.thread.is_alive()
    assert not server.errors.records, server.errors.records
    for (name, rdtype), expected in EXPECTED.items():
        q = dns.message.make_query(name, rdtype)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.sendto(q.to_wire(), server.udp)
            assert answer_strings(dns.message.from_wire(s.recv(65535))) == expected
    q = dns.message.make_query("alias.example.org.", "A")
    with socket.create_connection(server.tcp, timeout=5) as s:
        wire = q.to_wire()
        s.sendall(struct.pack("!H", len(wire)) + wire)
        reply = _read_frames(s, want=1)[0]
    assert answer_strings(dns.message.from_wire(reply)) == EXPECTED[("alias.example.org.", "A")]


def _read_frames(s: socket.socket, want: int | None = None) -> list[bytes]:
    """Frames until `want` are read, or until the server closes (then no partial frame may remain)."""
    buf, frames = b"", []
    while want is None or len(frames) < want:
        chunk = s.recv(65536)
        if not chunk:
            assert not buf, f"a partial frame at close: {buf[:40]!r}"
            break
        buf += chunk
        while len(buf) >= 2 and len(buf) >= 2 + struct.unpack("!H", buf[:2])[0]:
            size = struct.unpack("!H", buf[:2])[0]
            frames.append(buf[2 : 2 + size])
            buf = buf[2 + size :]
    return frames


seeds = st.integers(0, 2**32 - 1)
datagrams = st.one_of(
    st.binary(max_size=600),
    seeds.map(lambda n: fuzz_input(random.Random(n))),
    st.tuples(seeds, st.binary(min_size=1, max_size=8)).map(
        lambda t: mutate(make_query(random.Random(t[0])), random.Random(t[1]))
    ),
)


MARKER = "wEb.ExAmPlE.oRg."  # spelled so that no fuzzed query asks for it by chance (replies echo case)


def exchange(s: socket.socket, server, wire: bytes) -> list[bytes]:
    """Send a fuzzed datagram, then a real query right behind it. The one UDP task answers in
    arrival order, so whatever arrives before the real reply answers the fuzzed datagram: the
    replies to it (at most one is allowed), without waiting out a timeout for a dropped one."""
    s.sendto(wire, server.udp)
    real = dns.message.make_query(MARKER, "A")
    real.id = (struct.unpack("!H", wire[:2])[0] ^ 0x5A5A) if len(wire) >= 2 else 0x5A5A
    s.sendto(real.to_wire(), server.udp)
    replies = []
    while True:
        data = s.recv(65535)
        if data[:2] == real.to_wire()[:2]:
            msg = dns.message.from_wire(data)
            if (
                msg.question
                and msg.question[0].name.to_text() == MARKER
                and msg.question[0].name.labels == real.question[0].name.labels
            ):
                assert answer_strings(msg) == ["192.0.2.10"]
                return replies
        replies.append(data)


@BUDGET
@given(st.lists(datagrams, min_size=1, max_size=8))
def test_fuzzed_datagrams(servers, batch):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        for wire in batch:
            replies = exchange(s, servers, wire)
            assert len(replies) <= 1, replies
            for reply in replies:
                check_reply(wire, reply, udp=True)
    healthy(servers)


@BUDGET
@given(st.one_of(st.binary(max_size=2000), seeds.map(lambda n: fuzz_stream(random.Random(n)))))
def test_fuzzed_tcp_streams(servers, stream):
    with socket.create_connection(servers.tcp, timeout=5) as s:
        try:
            s.sendall(stream)
            s.shutdown(socket.SHUT_WR)  # EOF: the server answers what it has, then closes
            frames = _read_frames(s)
        except ConnectionResetError:
            frames = []  # closed on us mid-write (a message it refuses to answer): fine
    for frame in frames:
        msg = dns.message.from_wire(frame)
        assert msg.flags & 0x8000
    healthy(servers)


def test_fuzz_smoke_is_not_vacuous(servers):
    """The fuzz inputs reach every branch class: answers, FORMERR, NOTIMP, REFUSED, drops."""
    rng = random.Random(7)
    rcodes = set()
    dropped = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        for _ in range(400):
            wire = fuzz_input(rng)
            replies = exchange(s, servers, wire)
            assert len(replies) <= 1
            dropped += not replies
            for reply in replies:
                check_reply(wire, reply, udp=True)
                rcodes.add(dns.message.from_wire(reply).rcode())
    assert {0, 1, 3, 4, 5} <= rcodes, rcodes  # NOERROR FORMERR NXDOMAIN NOTIMP REFUSED
    assert dropped > 0
    healthy(servers)
