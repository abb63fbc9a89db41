"""The wire as NSD answers it: each odd query sent to NSD and to k8sgw serving the same zone, and
the replies compared in meaning (rcode, opcode, flags, question, sections, EDNS version, DO, options).

NSD is started by the test (bench.servers.start_nsd: 127.0.0.1, a port of its own, one
server process, no rate limit); k8sgw runs in the test's trio run over the same zone text.
"""

from __future__ import annotations

import shutil
import struct
from collections.abc import Callable
from functools import partial

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone
import pytest
import trio

from bench import cluster
from bench.servers import start_nsd
from k8sgw.dnsserver.fastpath import FastPath
from k8sgw.dnsserver.sockets import bind_dns_sockets
from k8sgw.dnsserver.tcp import serve_tcp
from k8sgw.dnsserver.udp import serve_udp
from tests.zonetext import view_from_text

ZONE = cluster.ZONE
NS_HOST = f"dns1.kube-system.{ZONE}"
OBJECTS = 3

pytestmark = pytest.mark.skipif(shutil.which("nsd") is None, reason="NSD is not installed")


def zone_records(text: str) -> str:
    """The zone's records below the apex, as tests.zonetext lines (k8sgw makes its own SOA and NS)."""
    zone = dns.zone.from_text(text, origin=ZONE, relativize=False)
    lines = []
    for name, rdataset in zone.iterate_rdatasets():
        if name == zone.origin:
            continue
        lines += [f"{name} {rdataset.ttl} IN {dns.rdatatype.to_text(rdataset.rdtype)} {r}" for r in rdataset]
    return "\n".join(lines)


def _query(name: str, rdtype: str = "A", **kw) -> dns.message.Message:
    return dns.message.make_query(name, rdtype, **kw)


def _with_opcode(opcode: int, edns: int = -1) -> bytes:
    q = _query(ZONE, "SOA", use_edns=edns)
    q.set_opcode(opcode)
    if opcode == dns.opcode.NOTIFY:
        q.flags &= ~dns.flags.RD
    return q.to_wire()


def _with_record(section: str, edns: int = -1) -> bytes:
    q = _query(NS_HOST, use_edns=edns)
    getattr(q, section).append(dns.rrset.from_text(NS_HOST, 60, "IN", "A", "192.0.2.1"))
    return q.to_wire()


def _rcode_bits(edns: int = -1) -> bytes:
    wire = bytearray(_query(NS_HOST, use_edns=edns).to_wire())
    wire[3] |= 0x05
    return bytes(wire)


def _no_question(options: list[dns.edns.Option] | None, edns: int = 0) -> bytes:
    q = _query(NS_HOST, use_edns=edns, options=options or [])
    q.question = []
    return q.to_wire()


COOKIE = dns.edns.GenericOption(dns.edns.OptionType.COOKIE, b"\x01\x02\x03\x04\x05\x06\x07\x08")

# Case name → the query's bytes, and whether only the answer section is compared: NSD adds the
# zone's NS to the authority section of a positive answer, k8sgw answers minimally (as CoreDNS).
CASES: dict[str, tuple[Callable[[], bytes], bool]] = {
    "DO echoed, positive": (lambda: _query(NS_HOST, use_edns=0, want_dnssec=True).to_wire(), True),
    "DO echoed, NXDOMAIN": (lambda: _query(f"nothing.{ZONE}", use_edns=0, want_dnssec=True).to_wire(), False),
    "DO echoed, NODATA": (lambda: _query(NS_HOST, "MX", use_edns=0, want_dnssec=True).to_wire(), False),
    "DO echoed, out of zone": (lambda: _query("example.net.", use_edns=0, want_dnssec=True).to_wire(), False),
    "DO echoed, BADVERS": (lambda: _query(NS_HOST, use_edns=1, want_dnssec=True).to_wire(), False),
    "UPDATE": (partial(_with_opcode, dns.opcode.UPDATE), False),
    "UPDATE with EDNS": (partial(_with_opcode, dns.opcode.UPDATE, 0), False),
    "STATUS": (partial(_with_opcode, dns.opcode.STATUS), False),
    "NOTIFY": (partial(_with_opcode, dns.opcode.NOTIFY), False),
    "NOTIFY with EDNS": (partial(_with_opcode, dns.opcode.NOTIFY, 0), False),
    "AXFR": (lambda: _query(ZONE, "AXFR").to_wire(), False),
    "AXFR with EDNS": (lambda: _query(ZONE, "AXFR", use_edns=0).to_wire(), False),
    "IXFR": (lambda: _query(ZONE, "IXFR").to_wire(), False),
    "IXFR with EDNS": (lambda: _query(ZONE, "IXFR", use_edns=0).to_wire(), False),
    "AXFR out of zone": (lambda: _query("example.net.", "AXFR", use_edns=0).to_wire(), False),
    "AXFR of a name in the zone": (lambda: _query(NS_HOST, "AXFR").to_wire(), False),
    "IXFR out of zone": (lambda: _query("example.net.", "IXFR", use_edns=0).to_wire(), False),
    "REFUSED out of zone": (lambda: _query("example.net.", "AAAA", use_edns=0).to_wire(), False),
    "REFUSED, class CH with EDNS": (lambda: _query(NS_HOST, "A", use_edns=0, rdclass=dns.rdataclass.CH).to_wire(), False),
    "record in answer": (partial(_with_record, "answer"), False),
    "record in authority": (partial(_with_record, "authority"), False),
    "record in additional": (partial(_with_record, "additional"), False),
    "record in answer, EDNS": (partial(_with_record, "answer", 0), False),
    "record in additional, EDNS": (partial(_with_record, "additional", 0), False),
    "rcode bits set": (_rcode_bits, False),
    "rcode bits set, EDNS": (partial(_rcode_bits, 0), False),
    "trailing bytes": (lambda: _query(NS_HOST).to_wire() + b"\x00\x01\x02", True),
    "trailing bytes after OPT": (lambda: _query(NS_HOST, use_edns=0).to_wire() + b"\x00\x01\x02", True),
    "COOKIE only": (partial(_no_question, [COOKIE]), False),
    "OPT only": (partial(_no_question, None), False),
    "COOKIE with a question": (lambda: _query(NS_HOST, use_edns=0, options=[COOKIE]).to_wire(), True),
}


def meaning(wire: bytes, *, answer_only: bool) -> dict[str, object]:
    """What a reply says, without what two servers may rightly differ in (SOA values, TTLs, sizes)."""
    m = dns.message.from_wire(wire)

    def section(rrsets: list[dns.rrset.RRset]) -> list[tuple[str, str, tuple[str, ...]]]:
        return sorted(
            (
                rrset.name.to_text().lower(),
                dns.rdatatype.to_text(rrset.rdtype),
                () if rrset.rdtype == dns.rdatatype.SOA else tuple(sorted(r.to_text() for r in rrset)),
            )
            for rrset in rrsets
        )

    out: dict[str, object] = {
        "rcode": dns.rcode.to_text(m.rcode()),
        "opcode": dns.opcode.to_text(m.opcode()),
        "flags": dns.flags.to_text(m.flags),
        "question": [(q.name.to_text().lower(), q.rdtype, q.rdclass) for q in m.question],
        "answer": section(m.answer),
        "edns": m.edns,
        "do": bool(m.ednsflags & dns.flags.DO),
        # Extended DNS Errors (RFC 8914) by their info-code, other options by their code only.
        "options": sorted((int(o.otype), int(getattr(o, "code", -1))) for o in m.options),
    }
    if not answer_only:
        out["authority"] = section(m.authority)
        out["additional"] = section(m.additional)
    return out


async def exchange(port: int, wire: bytes, *, tcp: bool) -> bytes | None:
    """One query to 127.0.0.1:port; None when no reply came within 2 s (or the connection closed)."""
    with trio.move_on_after(2):
        if tcp:
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            async with stream:
                await stream.send_all(struct.pack("!H", len(wire)) + wire)
                data = b""
                while len(data) < 2 or len(data) < 2 + struct.unpack("!H", data[:2])[0]:
                    chunk = await stream.receive_some()
                    if not chunk:
                        return None
                    data += chunk
                return data[2:]
        with trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM) as sock:
            await sock.connect(("127.0.0.1", port))
            await sock.send(wire)
            return await sock.recv(65535)
    return None


async def start_k8sgw(nursery: trio.Nursery, zone_text: str) -> int:
    view, _ = view_from_text(zone_records(zone_text), zones=(ZONE,), ttl=cluster.TTL)
    fast = FastPath(view)
    udp_sock, tcp_sock = await bind_dns_sockets("127.0.0.1", 0)
    _, port = await nursery.start(serve_udp, udp_sock, fast.handle_udp)
    await nursery.start(serve_tcp, tcp_sock, fast.handle_tcp)
    return port


async def test_odd_queries_are_answered_as_nsd_answers_them(tmp_path):
    async with trio.open_nursery() as nursery:
        nsd = await start_nsd(nursery, tmp_path / "nsd", OBJECTS, cpus=None)
        port = await start_k8sgw(nursery, cluster.zone_text(OBJECTS))
        differences = []
        for name, (build, answer_only) in CASES.items():
            wire = build()
            for tcp in (False, True):
                theirs = await exchange(nsd.port, wire, tcp=tcp)
                ours = await exchange(port, wire, tcp=tcp)
                assert theirs is not None, f"NSD did not answer {name}"
                assert ours is not None, f"k8sgw did not answer {name}"
                want, got = meaning(theirs, answer_only=answer_only), meaning(ours, answer_only=answer_only)
                if want != got:
                    differences.append(f"{name} over {'TCP' if tcp else 'UDP'}:\n  NSD   {want}\n  k8sgw {got}")
        nursery.cancel_scope.cancel()
    assert not differences, "\n".join(differences)


@pytest.mark.parametrize("name", ["version.bind.", "id.server.", "hostname.bind.", "version.server."])
async def test_chaos_names_are_refused_where_nsd_tells(tmp_path, name):
    """k8sgw's decision (README "The wire"): no CHAOS answers, as k8s_gateway in a CoreDNS without
    the `chaos` plugin. NSD tells its version and host name."""
    wire = _query(name, "TXT", rdclass=dns.rdataclass.CH).to_wire()
    async with trio.open_nursery() as nursery:
        nsd = await start_nsd(nursery, tmp_path / "nsd", OBJECTS, cpus=None)
        port = await start_k8sgw(nursery, cluster.zone_text(OBJECTS))
        theirs = dns.message.from_wire(await exchange(nsd.port, wire, tcp=False))
        ours = dns.message.from_wire(await exchange(port, wire, tcp=False))
        nursery.cancel_scope.cancel()
    if name != "version.server.":  # NSD 4.6 knows version.bind, id.server and hostname.bind
        assert theirs.rcode() == dns.rcode.NOERROR and theirs.answer[0].rdtype == dns.rdatatype.TXT
    assert ours.rcode() == dns.rcode.REFUSED
    assert ours.answer == [] and ours.question[0].name == dns.name.from_text(name)
