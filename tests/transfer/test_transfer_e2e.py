"""AXFR, IXFR, NOTIFY and TSIG end to end: the dev API server, k8sgw, and dnspython as the client
(the secondaries NSD and Knot are in test_secondaries.py)."""

from __future__ import annotations

import base64
import struct
import time
import types

import dns.asyncquery
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.renderer
import dns.rrset
import dns.tsig
import dns.tsigkeyring
import dns.zone
import pytest
import trio

from k8sgw.transfer import notify
from tests.conftest import EXAMPLES, corefile, query, start_k8sgw
from tests.test_app import ingress

ZONE = dns.name.from_text("foo.org.")
SECRET = base64.b64encode(b"k8sgw transfer test secret 32 b.").decode()


def transfer_corefile(kubeconfig, transfer: str, extra: str = "") -> str:
    return corefile(kubeconfig).replace("    k8s_gateway", f"    {transfer}\n    {extra}\n    k8s_gateway", 1)


async def started(nursery, text: str, cluster=None):
    bound = await start_k8sgw(nursery, text)
    with trio.fail_after(10):
        records = await bound.stores[0].wait_until(lambda m: m.ready)
        await bound.feeds.get(ZONE).wait_serial(records.serial)
    return bound


async def read_transfer(addr, q: dns.message.Message, *, keyring=None) -> list[dns.message.Message]:
    """Every message of a transfer, read off one TCP connection until the closing SOA."""
    stream = await trio.open_tcp_stream(*addr)
    async with stream:
        wire = q.to_wire()
        await stream.send_all(struct.pack("!H", len(wire)) + wire)
        buffer = b""
        out: list[dns.message.Message] = []
        ctx = None
        while True:
            while len(buffer) < 2 or len(buffer) < 2 + struct.unpack("!H", buffer[:2])[0]:
                chunk = await stream.receive_some(65536)
                assert chunk, "the server closed the connection mid-transfer"
                buffer += chunk
            size = struct.unpack("!H", buffer[:2])[0]
            message = dns.message.from_wire(
                buffer[2 : 2 + size], keyring=keyring, request_mac=q.mac if keyring else b"",
                xfr=True, origin=None, tsig_ctx=ctx, multi=bool(out),
            )
            ctx = message.tsig_ctx
            buffer = buffer[2 + size :]
            out.append(message)
            if message.rcode() != dns.rcode.NOERROR or _complete(q.question[0].rdtype, out):
                return out


def _complete(rdtype: int, messages: list[dns.message.Message]) -> bool:
    """The closing SOA has come (RFC 5936 §2.2, RFC 1995 §4), or the one SOA of a current IXFR."""
    soas = [r.serial if t == dns.rdatatype.SOA else None for t, r in _rdatas(messages)]
    if rdtype == dns.rdatatype.IXFR and len(messages) == 1 and len(soas) == 1:
        return soas[0] is not None
    if len(soas) < 2 or soas[-1] != soas[0]:
        return False
    if rdtype == dns.rdatatype.AXFR or soas[1] is None:  # AXFR, or IXFR answered AXFR-style
        return soas.count(soas[0]) == 2
    return soas.count(soas[0]) == 3


def _rdatas(messages: list[dns.message.Message]):
    return [(rrset.rdtype, rdata) for m in messages for rrset in m.answer for rdata in rrset]


def records_of(messages: list[dns.message.Message]) -> list[tuple[str, int, int, str]]:
    return [
        (rrset.name.to_text().lower(), rrset.rdtype, rrset.ttl, rdata.to_text())
        for m in messages for rrset in m.answer for rdata in rrset
    ]


def axfr_query(**kw) -> dns.message.Message:
    return dns.message.make_query(ZONE, dns.rdatatype.AXFR, **kw)


def ixfr_query(serial: int) -> dns.message.Message:
    q = dns.message.make_query(ZONE, dns.rdatatype.IXFR)
    soa = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.SOA, f"ns. host. {serial} 0 0 0 0")
    q.authority.append(dns.rrset.from_rdata(ZONE, 0, soa))
    return q


async def test_axfr_holds_every_rrset_as_k8sgw_answers_it(nursery, kubeconfig, cluster):
    cluster.load_manifests([EXAMPLES / "dnsendpoint.yaml"])
    bound = await started(nursery, transfer_corefile(kubeconfig, "transfer {\n to 127.0.0.1\n }"))
    with trio.fail_after(10):
        messages = await read_transfer(bound.tcp[0], axfr_query())
    rrs = records_of(messages)
    assert rrs[0][1] == rrs[-1][1] == dns.rdatatype.SOA and rrs[0] == rrs[-1]
    assert messages[0].flags & dns.flags.AA and messages[0].question[0].name == ZONE
    assert sum(1 for r in rrs if r[1] == dns.rdatatype.SOA) == 2
    zone: dict[tuple[str, int], list[tuple[int, str]]] = {}
    for name, rdtype, ttl, text in rrs[1:-1]:
        zone.setdefault((name, rdtype), []).append((ttl, text))
    kinds = {rdtype for _, rdtype in zone}
    assert {dns.rdatatype.NS, dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.CNAME, dns.rdatatype.TXT,
            dns.rdatatype.MX, dns.rdatatype.SRV} <= kinds
    for (name, rdtype), records in zone.items():
        reply = await query(bound.udp[0], name, dns.rdatatype.to_text(rdtype))
        answered = [(rrset.ttl, r.to_text()) for rrset in reply.answer if rrset.rdtype == rdtype for r in rrset]
        assert sorted(answered) == sorted(records), (name, rdtype)
    # And every A name k8sgw answers is in the transfer.
    for name in ("myservicea.foo.org.", "static.foo.org.", "dns1.kube-system.foo.org."):
        assert (name, dns.rdatatype.A) in zone


async def test_axfr_over_udp_is_notimp_and_an_unlisted_client_is_refused(nursery, kubeconfig, logs):
    bound = await started(nursery, transfer_corefile(kubeconfig, "transfer {\n to 10.0.0.0/8 192.0.2.1:5353\n }"))
    with trio.fail_after(10):
        udp = await dns.asyncquery.udp(axfr_query(), *bound.udp[0][:1], port=bound.udp[0][1], timeout=5)
        assert udp.rcode() == dns.rcode.NOTIMP
        refused = await read_transfer(bound.tcp[0], axfr_query())
        assert refused[0].rcode() == dns.rcode.REFUSED and not refused[0].answer
        line = await logs.wait_for("AXFR of foo.org. refused for 127.0.0.1")
    assert "`to`" in line
    # A zone k8sgw does not transfer: refused as before (NOTAUTH for a name that is no zone of ours).
    sub = dns.message.make_query("sub.foo.org.", dns.rdatatype.AXFR)
    with trio.fail_after(10):
        assert (await read_transfer(bound.tcp[0], sub))[0].rcode() == dns.rcode.NOTAUTH


async def test_ixfr_after_a_change_is_the_condensed_difference(nursery, kubeconfig, cluster):
    bound = await started(nursery, transfer_corefile(kubeconfig, "transfer {\n to 127.0.0.1\n }"))
    store, feed = bound.stores[0], bound.feeds.get(ZONE)
    before = store.current.serial
    with trio.fail_after(10):
        cluster.apply(ingress("web", "web.foo.org", "192.0.2.77"))
        middle = (await store.wait_until(lambda m: m.serial != before)).serial
        await feed.wait_serial(middle)  # journaled: a client at middle gets its own difference
        cluster.apply(ingress("web", "web.foo.org", "192.0.2.78"))  # the .77 came and went again
        cluster.apply(ingress("extra", "extra.foo.org", "192.0.2.90"))
        records = await store.wait_until(lambda m: any(str(r) == "192.0.2.90" for r in m.rdatas(dns.name.from_text("extra.foo.org."), 1)))
        await feed.wait_serial(records.serial)
        messages = await read_transfer(bound.tcp[0], ixfr_query(before))
    rrs = records_of(messages)
    soa = [i for i, r in enumerate(rrs) if r[1] == dns.rdatatype.SOA]
    assert len(soa) == 4 and soa[0] == 0 and soa[-1] == len(rrs) - 1
    assert int(rrs[1][3].split()[2]) == before  # the client's version opens the deletions
    removed, added = rrs[soa[1] + 1 : soa[2]], rrs[soa[2] + 1 : soa[3]]
    assert removed == []
    assert sorted((n, t) for n, t, _, _ in added) == [("extra.foo.org.", 1), ("web.foo.org.", 1)]
    assert {r[3] for r in added} == {"192.0.2.78", "192.0.2.90"}
    assert sum(len(m.to_wire()) for m in messages) < 600  # a few hundred bytes, whatever the zone's size

    with trio.fail_after(10):
        mid = records_of(await read_transfer(bound.tcp[0], ixfr_query(middle)))
        current = await read_transfer(bound.tcp[0], ixfr_query(records.serial))
        unknown = records_of(await read_transfer(bound.tcp[0], ixfr_query(1)))
        over_udp = await dns.asyncquery.udp(ixfr_query(before), bound.udp[0][0], port=bound.udp[0][1], timeout=5)
    assert ("web.foo.org.", 1, 60, "192.0.2.77") in mid and ("web.foo.org.", 1, 60, "192.0.2.78") in mid
    assert [r[1] for r in records_of(current)] == [dns.rdatatype.SOA]  # current: the single SOA
    assert unknown[1][1] != dns.rdatatype.SOA and unknown[0] == unknown[-1]  # older than the journal: AXFR-style
    assert ("extra.foo.org.", 1, 60, "192.0.2.90") in unknown
    assert [rrset.rdtype for rrset in over_udp.answer] == [dns.rdatatype.SOA]  # over UDP: ask again over TCP
    assert over_udp.answer[0][0].serial == records.serial


@pytest.mark.parametrize("algorithm", ["hmac-sha1", "hmac-sha256", "hmac-sha384", "hmac-sha512"])
async def test_tsig_signed_transfers_and_every_error(nursery, kubeconfig, algorithm):
    text = transfer_corefile(
        kubeconfig, "transfer {\n to 127.0.0.1\n }", f"tsig {{\n secret xfr. {SECRET}\n require AXFR IXFR\n }}"
    )
    bound = await started(nursery, text)
    key = dns.tsig.Key("xfr.", SECRET, algorithm)
    signed = axfr_query()
    signed.use_tsig(key)
    with trio.fail_after(10):
        messages = await read_transfer(bound.tcp[0], signed, keyring=key)  # every message verifies
        assert messages[-1].had_tsig and records_of(messages)[0][1] == dns.rdatatype.SOA
        unsigned = await read_transfer(bound.tcp[0], axfr_query())
        assert unsigned[0].rcode() == dns.rcode.REFUSED
        # A signed plain query is answered, signed; an unsigned one too (require names AXFR IXFR only).
        soa = dns.message.make_query(ZONE, dns.rdatatype.SOA)
        soa.use_tsig(key)
        reply = await dns.asyncquery.udp(soa, bound.udp[0][0], port=bound.udp[0][1], timeout=5)
        assert reply.had_tsig and reply.answer[0].rdtype == dns.rdatatype.SOA
        assert (await query(bound.udp[0], "foo.org.", "SOA")).answer

        wrong = axfr_query()
        wrong.use_tsig(dns.tsig.Key("xfr.", base64.b64encode(b"another secret").decode(), algorithm))
        with pytest.raises(dns.tsig.PeerBadSignature):
            await dns.asyncquery.tcp(wrong, bound.tcp[0][0], port=bound.tcp[0][1], timeout=5)
        nokey = axfr_query()
        nokey.use_tsig(dns.tsig.Key("other.", SECRET, algorithm))
        with pytest.raises(dns.tsig.PeerBadKey):
            await dns.asyncquery.tcp(nokey, bound.tcp[0][0], port=bound.tcp[0][1], timeout=5)


async def test_tsig_badtime_is_signed_with_the_servers_time(nursery, kubeconfig, monkeypatch):
    text = transfer_corefile(kubeconfig, "transfer {\n to 127.0.0.1\n }", f"tsig {{\n secret xfr. {SECRET}\n }}")
    bound = await started(nursery, text)
    key = dns.tsig.Key("xfr.", SECRET, "hmac-sha256")
    skewed = dns.message.make_query(ZONE, dns.rdatatype.SOA)
    skewed.use_tsig(key)
    monkeypatch.setattr(dns.message, "time", types.SimpleNamespace(time=lambda: time.time() - 3600))
    wire = skewed.to_wire()
    monkeypatch.undo()
    with trio.socket.socket(type=trio.socket.SOCK_DGRAM) as sock:
        await sock.connect(bound.udp[0])
        await sock.send(wire)
        with trio.fail_after(5):
            data = await sock.recv(4096)
    with pytest.raises(dns.tsig.PeerBadTime):  # what a client makes of it
        dns.message.from_wire(data, keyring=key, request_mac=skewed.mac)
    reply = dns.message.from_wire(data, keyring=False)
    assert reply.rcode() == dns.rcode.NOTAUTH and reply.tsig_error == dns.rcode.BADTIME
    assert len(reply.tsig[0].mac) == 32  # signed (RFC 8945 §5.2.3), unlike BADKEY and BADSIG
    (high, low) = struct.unpack("!HI", reply.tsig[0].other)
    assert abs((high << 32 | low) - time.time()) < 60


async def test_notify_on_each_serial_coalesced_retried_and_signed(nursery, kubeconfig, cluster, monkeypatch):
    monkeypatch.setattr(notify, "FIRST_WAIT", 0.05)
    secondary = trio.socket.socket(type=trio.socket.SOCK_DGRAM)
    nursery.start_soon(_close_at_end, secondary)
    await secondary.bind(("127.0.0.1", 0))
    port = secondary.getsockname()[1]
    key = dns.tsig.Key("xfr.", SECRET, "hmac-sha256")
    text = transfer_corefile(
        kubeconfig, f"transfer {{\n to 127.0.0.1:{port} 10.0.0.0/8\n }}", f"tsig {{\n secret xfr. {SECRET}\n }}"
    )
    bound = await started(nursery, text)

    async def receive() -> tuple[dns.message.Message, tuple, float]:
        data, addr = await secondary.recvfrom(4096)
        return dns.message.from_wire(data, keyring={key.name: key}), addr, trio.current_time()

    with trio.fail_after(20):
        first, _, t0 = await receive()  # the first serial, not acknowledged
        again, addr, t1 = await receive()  # retried after FIRST_WAIT
        assert first.opcode() == again.opcode() == dns.opcode.NOTIFY and first.had_tsig
        assert first.flags & dns.flags.AA and first.question[0].name == ZONE
        assert t1 - t0 >= 0.04
        ack = dns.message.make_response(again)
        await secondary.sendto(ack.to_wire(), addr)
        serial0 = first.answer[0][0].serial
        assert serial0 == bound.stores[0].current.serial
        for i in range(5):  # a burst of changes: one NOTIFY, for the newest serial
            cluster.apply(ingress(f"burst{i}", f"burst{i}.foo.org", f"192.0.2.{100 + i}"))
        last = await bound.stores[0].wait_until(lambda m: m.rdatas(dns.name.from_text("burst4.foo.org."), 1))
        seen = []
        while not seen or seen[-1][0].answer[0][0].serial != bound.stores[0].current.serial:
            message, addr, at = await receive()
            await secondary.sendto(dns.message.make_response(message).to_wire(), addr)
            seen.append((message, at))
    assert last.serial != serial0
    # A round per serial (a retry repeats its round's serial), at most one a second.
    rounds: dict[int, float] = {serial0: t0}
    for message, at in seen:
        rounds.setdefault(message.answer[0][0].serial, at)
    starts = sorted(rounds.values())
    assert all(later - earlier >= notify.MIN_INTERVAL * 0.9 for earlier, later in zip(starts, starts[1:], strict=False))
    assert len(rounds) <= 3  # five changes, the newest serial within a round or two


async def test_reload_keeps_the_journal_and_a_transfer_in_progress(nursery, kubeconfig, cluster, tmp_path, logs):
    from tests.test_ops_app import start_from_file

    path = tmp_path / "Corefile"
    text = transfer_corefile(kubeconfig, "transfer {\n to 127.0.0.1\n }", "reload 2s 0s")
    for i in range(300):  # enough records for a transfer of several messages
        cluster.apply(ingress(f"bulk{i}", f"bulk{i}.foo.org", f"198.51.100.{i % 250}"))
    path.write_text(text)
    reloaded = trio.Event()
    bound = await start_from_file(nursery, path, reloaded=lambda b: reloaded.set())
    store = bound.stores[0]
    with trio.fail_after(10):
        records = await store.wait_until(lambda m: m.ready)
        await bound.feeds.get(ZONE).wait_serial(records.serial)
    before = records.serial
    cluster.apply(ingress("late", "late.foo.org", "192.0.2.200"))
    with trio.fail_after(10):
        changed = await store.wait_until(lambda m: m.serial != before)
        await bound.feeds.get(ZONE).wait_serial(changed.serial)
    stream = await trio.open_tcp_stream(*bound.tcp[0])
    q = axfr_query()
    wire = q.to_wire()
    await stream.send_all(struct.pack("!H", len(wire)) + wire)
    first = await stream.receive_some(100)  # the transfer has started; the rest waits in buffers
    assert first
    path.write_text(text.replace("to 127.0.0.1", "to 127.0.0.1 10.0.0.0/8"))
    with trio.fail_after(30):
        await reloaded.wait()
        data = first
        while True:
            chunk = await stream.receive_some(65536)
            if not chunk:
                break
            data += chunk
            if _closing_soa_seen(data):
                break
    await stream.aclose()
    assert _closing_soa_seen(data)
    with trio.fail_after(10):
        messages = await read_transfer(bound.tcp[0], ixfr_query(before))
    rrs = records_of(messages)
    assert [r for r in rrs if r[1] != dns.rdatatype.SOA] == [("late.foo.org.", 1, 60, "192.0.2.200")]


def _closing_soa_seen(data: bytes) -> bool:
    messages = []
    offset = 0
    while offset + 2 <= len(data):
        size = struct.unpack_from("!H", data, offset)[0]
        if offset + 2 + size > len(data):
            break
        messages.append(dns.message.from_wire(data[offset + 2 : offset + 2 + size], xfr=True))
        offset += 2 + size
    return sum(1 for m in messages for rrset in m.answer if rrset.rdtype == dns.rdatatype.SOA for _ in rrset) >= 2


async def _close_at_end(sock) -> None:
    try:
        await trio.sleep_forever()
    finally:
        sock.close()
