"""The long fuzz: a million (or more) inputs through the DNS pipeline, in-process and fast.

    python -m tests.robustness.long_fuzz --inputs 1000000 [--jobs N] [--seed S]

Drives FastPath.handle_udp / handle_tcp (the exact handlers the servers call, with handle_wire
behind the reply cache) over the robustness test zone, with the inputs of tests/robustness/
fuzzing.py: well-formed queries of every shape, mutations of them (bit flips, truncation,
insertion, splicing, header overwrites, compression loops, QR set) and noise. Every input is sent
both as a UDP datagram and as a TCP message. A crash is any of:

  - an exception escaping the handler (the servers would log it and drop the query);
  - anything logged at ERROR (handle_wire's "bug while answering": SERVFAIL for a bug);
  - a reply that does not parse, lacks QR, or has another ID than the query;
  - a UDP reply larger than the client allows (512 without EDNS, else min(payload, 1232), ≥ 512);
  - a cached (fast path) reply that differs from a freshly computed one (checked every 64th input);
  - a wrong answer to the real queries interleaved every 256 inputs.

Prints one result line, `inputs=N crashes=C duration=Ss rate=R/s`, and exits 1 if C > 0 (the
first crashing inputs are printed as hex, with their seeds, to reproduce).
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import random
import sys
import time

import dns.message

CHECK_FAST_EVERY = 64
REAL_QUERY_EVERY = 256


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0
        self.last = ""

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        self.last = record.getMessage()


def _work(args: tuple[int, int]) -> tuple[int, int, list[str]]:
    """Fuzz `count` inputs from `seed`; returns (inputs, crashes, first crash reports)."""
    seed, count = args
    from k8sgw.dnsserver.fastpath import FastPath
    from k8sgw.dnsserver.wire import handle_wire
    from tests.robustness.dnsenv import EXPECTED, answer_strings, check_reply, make_view
    from tests.robustness.fuzzing import fuzz_input

    errors = _Errors()
    logging.getLogger("k8sgw").addHandler(errors)
    logging.getLogger("k8sgw").propagate = False  # counted, not printed a million times
    view, _ = make_view()
    fast = FastPath(view)
    rng = random.Random(seed)
    real = [(dns.message.make_query(n, t), e) for (n, t), e in EXPECTED.items()]
    crashes, reports = 0, []
    for i in range(count):
        wire = fuzz_input(rng)
        for udp in (True, False):
            before = errors.count
            try:
                reply = fast.handle_udp(wire) if udp else fast.handle_tcp(wire)
                check_reply(wire, reply, udp=udp)
                if reply is not None and not udp:
                    assert len(reply) <= 65535
                if i % CHECK_FAST_EVERY == 0:
                    assert reply == handle_wire(wire, view, udp=udp), "fast path differs"
                assert errors.count == before, f"logged at ERROR: {errors.last}"
            except BaseException as exc:  # noqa: BLE001 - every escape is a crash to report
                crashes += 1
                if len(reports) < 5:
                    reports.append(
                        f"seed={seed} input={i} udp={udp} {type(exc).__name__}: {exc} wire={wire.hex()}"
                    )
        if i % REAL_QUERY_EVERY == 0:
            q, expected = real[(i // REAL_QUERY_EVERY) % len(real)]
            q.id = rng.randrange(65536)
            got = answer_strings(dns.message.from_wire(fast.handle_udp(q.to_wire())))
            if got != expected:
                crashes += 1
                reports.append(f"seed={seed} input={i} real query {q.question[0]} answered {got}")
    return count, crashes, reports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=1_000_000)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seed", type=int, default=None, help="base seed (default: random, printed)")
    args = parser.parse_args(argv)
    base = args.seed if args.seed is not None else random.randrange(2**31)
    chunk = 10_000
    tasks = []
    remaining, n = args.inputs, 0
    while remaining > 0:
        tasks.append((base + n, min(chunk, remaining)))
        remaining -= chunk
        n += 1
    start = time.monotonic()
    done = crashes = 0
    reports: list[str] = []
    with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
        for count, crashed, rep in pool.imap_unordered(_work, tasks):
            done += count
            crashes += crashed
            reports.extend(rep)
            if len(tasks) > 10 and done % (chunk * max(1, len(tasks) // 10)) == 0:
                print(f"  {done} inputs, {crashes} crashes, {time.monotonic() - start:.0f}s", file=sys.stderr)
    duration = time.monotonic() - start
    for report in reports[:10]:
        print(report)
    print(
        f"inputs={done} crashes={crashes} duration={duration:.1f}s rate={done / duration:.0f}/s seed={base} jobs={args.jobs}"
    )
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
