"""The latency probe: one query at a time over UDP at a fixed rate, each timed, as its own process.

`python -m bench.probe PORT RATE SECONDS QUERYFILE` prints one JSON object: sent, lost and the
sorted latencies' p50/p99/p99.9/max in ms.

Why not dnsperf `-v`: dnsperf's sender and receiver threads share the load generator's one core,
and either can wait a scheduler slice for the other, which adds milliseconds to its own p99 (README
"Performance" has what NSD measured that way). This probe runs beside dnsperf (which
provides the load without -v), blocks in recv() between queries, and asks for SCHED_FIFO when the
kernel allows it, so it wakes the moment the reply arrives: what it measures is the server's queue.
"""

from __future__ import annotations

import json
import math
import os
import socket
import struct
import sys
import time

import dns.message

__all__ = ["main", "probe"]


def probe(port: int, rate: float, seconds: float, lines: list[str], *, timeout: float = 1.0) -> dict:
    wires = []
    for line in lines:
        name, rdtype = line.split()
        wires.append(dns.message.make_query(name, rdtype, use_edns=False).to_wire())
    latencies: list[float] = []
    lost = 0
    sent = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(("127.0.0.1", port))
        sock.settimeout(timeout)
        interval = 1 / rate
        start = next_at = time.perf_counter()
        while time.perf_counter() - start < seconds:
            sent += 1
            qid = sent & 0xFFFF
            wire = struct.pack("!H", qid) + wires[sent % len(wires)][2:]
            t0 = time.perf_counter()
            sock.send(wire)
            try:
                while True:
                    reply = sock.recv(65535)
                    if reply[:2] == wire[:2]:
                        break
                latencies.append(time.perf_counter() - t0)
            except (TimeoutError, ConnectionRefusedError):
                lost += 1
            next_at += interval
            pause = next_at - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
    latencies.sort()

    def pct(p: float) -> float | None:
        if not latencies:
            return None
        return latencies[max(1, math.ceil(p / 100 * len(latencies))) - 1] * 1000

    return {
        "sent": sent,
        "lost": lost,
        "p50_ms": pct(50),
        "p99_ms": pct(99),
        "p999_ms": pct(99.9),
        "max_ms": latencies[-1] * 1000 if latencies else None,
    }


def main(argv: list[str]) -> int:
    port, rate, seconds, query_file = int(argv[0]), float(argv[1]), float(argv[2]), argv[3]
    realtime = True
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
    except (AttributeError, OSError):
        realtime = False
    with open(query_file) as f:
        lines = [line for line in f.read().splitlines() if line.strip()]
    result = probe(port, rate, seconds, lines)
    result["realtime"] = realtime
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
