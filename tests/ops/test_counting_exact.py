"""With `prometheus` on, every query dnsperf sends is counted exactly, whatever the traffic: the
same query repeated, names never asked before, NXDOMAIN floods and random letter case."""

from __future__ import annotations

import random
import shutil

import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from bench.load import parse_dnsperf
from k8sgw.dnsserver.fastpath import FastPath
from k8sgw.dnsserver.sockets import bind_dns_sockets
from k8sgw.dnsserver.udp import serve_udp
from k8sgw.ops.instrument import instrument
from k8sgw.ops.metrics import Metrics
from tests.zonetext import view_from_text

pytestmark = pytest.mark.skipif(shutil.which("dnsperf") is None, reason="dnsperf is not installed")

ZONE = "\n".join(f"h{i}.example.org. 60 IN A 192.0.2.{i}" for i in range(1, 200))


def totals(metrics: Metrics) -> dict[str, float]:
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for s in family.samples:
            if s.name in ("coredns_dns_requests_total", "coredns_dns_responses_total", "coredns_dns_do_requests_total"):
                out[s.name] = out.get(s.name, 0) + s.value
            if s.name == "coredns_dns_request_size_bytes_count":
                out[s.name] = out.get(s.name, 0) + s.value
            if s.name == "coredns_dns_responses_total":
                assert s.labels["zone"] == "example.org." and s.labels["plugin"] == "k8s_gateway", s.labels
                rcode = f"rcode {s.labels['rcode']}"
                out[rcode] = out.get(rcode, 0) + s.value
    return out


def query_file(path, lines: int) -> None:
    rng = random.Random(5)
    out = []
    for i in range(lines):
        kind = i % 4
        if kind == 0:
            out.append("h1.example.org. A")  # repeated byte for byte
        elif kind == 1:
            out.append(f"h{rng.randrange(1, 200)}.example.org. A")  # existing names
        elif kind == 2:
            out.append(f"{rng.getrandbits(48):012x}.example.org. A")  # never asked before, NXDOMAIN
        else:
            name = "h7.example.org."
            out.append("".join(c.upper() if rng.random() < 0.5 else c for c in name) + " A")  # 0x20
    path.write_text("\n".join(out) + "\n")


async def dnsperf(port: int, path, *extra: str) -> tuple[int, int, int]:
    proc = await trio.run_process(
        ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(path), "-n", "1", "-Q", "4000", "-q", "20", "-t", "5", *extra],
        capture_stdout=True,
        check=True,
    )
    result = parse_dnsperf(proc.stdout, "udp")
    return result.sent, result.completed, result.lost


async def test_requests_total_is_what_dnsperf_sent(nursery, tmp_path):
    view, _ = view_from_text(ZONE)
    metrics = Metrics(process_metrics=False)
    udp, tcp = await bind_dns_sockets("127.0.0.1", 0)
    tcp.close()
    handler = instrument(FastPath(view).handle_udp, view, proto="udp", address=("127.0.0.1", 53), metrics=metrics)
    _, port = await nursery.start(serve_udp, udp, handler)
    path = tmp_path / "queries.txt"
    query_file(path, 3000)
    expected = {"rcode NOERROR": 0, "rcode NXDOMAIN": 0}
    for extra in ((), ("-D",)):  # -D: EDNS with DO
        sent, completed, lost = await dnsperf(port, path, *extra)
        assert sent == completed == 3000 and lost == 0
        for name in ("coredns_dns_requests_total", "coredns_dns_responses_total", "coredns_dns_request_size_bytes_count"):
            expected[name] = expected.get(name, 0) + 3000
        expected["rcode NOERROR"] += 2250
        expected["rcode NXDOMAIN"] += 750
        if extra:
            expected["coredns_dns_do_requests_total"] = 3000  # no series until a query has DO
        assert totals(metrics) == expected
