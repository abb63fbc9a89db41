"""Inputs for fuzzing the DNS pipeline: real queries of every shape, and mutations of them.

Shared by the hypothesis tests (bounded budget, CI) and long_fuzz (a million inputs, by hand).
"""

from __future__ import annotations

import random
import struct

import dns.flags
import dns.message
import dns.rdatatype

NAMES = [
    "web.example.org.",
    "v6.example.org.",
    "dual.example.org.",
    "alias.example.org.",
    "txt.example.org.",
    "x.apps.example.org.",
    "a.b.apps.example.org.",
    "big.example.org.",
    "nothing.example.org.",
    "example.org.",
    "dns1.kube-system.example.org.",
    "outside.example.com.",
    ".",
    "org.",
    "a" * 63 + ".example.org.",
]
TYPES = [1, 28, 5, 2, 6, 16, 15, 33, 255, 65, 99, 252, 251, 41, 0, 65535]


def make_query(rng: random.Random) -> bytes:
    """A well-formed query: any name (mixed case), type, EDNS version/payload/DO, flags, ID."""
    name = "".join(c.upper() if rng.random() < 0.2 else c for c in rng.choice(NAMES))
    rdtype = rng.choice(TYPES) if rng.random() < 0.8 else rng.randrange(65536)
    edns = rng.choice([-1, -1, 0, 0, 1])
    payload = rng.choice([0, 1, 511, 512, 513, 1232, 1400, 4096, 65535, rng.randrange(65536)])
    q = dns.message.make_query(
        name, rdtype, use_edns=edns, payload=payload, want_dnssec=edns >= 0 and rng.random() < 0.3
    )
    q.id = rng.randrange(65536)
    q.flags = (dns.flags.RD if rng.random() < 0.7 else 0) | (dns.flags.CD if rng.random() < 0.1 else 0)
    if rng.random() < 0.05:
        q.set_opcode(rng.randrange(16))
    wire = q.to_wire()
    if rng.random() < 0.05:  # class other than IN, or QDCOUNT lies
        wire = wire[: -4 - (11 if edns >= 0 else 0)] + wire[-4 - (11 if edns >= 0 else 0) :]
        wire = wire[:4] + struct.pack("!H", rng.choice([0, 2, 65535])) + wire[6:]
    return wire


def mutate(wire: bytes, rng: random.Random) -> bytes:
    """One to four mutations: bit flips, byte sets, truncation, insertion, deletion, splicing,
    header field overwrites, compression-pointer loops."""
    data = bytearray(wire)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(9)
        if op == 0 and data:
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
        elif op == 1 and data:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif op == 2:
            del data[rng.randrange(len(data) + 1) :]
        elif op == 3:
            i = rng.randrange(len(data) + 1)
            data[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif op == 4 and data:
            i = rng.randrange(len(data))
            del data[i : i + rng.randint(1, 8)]
        elif op == 5:
            other = make_query(rng)
            i = rng.randrange(len(data) + 1)
            data = data[:i] + other[rng.randrange(len(other) + 1) :]
        elif op == 6 and len(data) >= 12:
            field = rng.randrange(6)
            data[2 * field : 2 * field + 2] = struct.pack(
                "!H", rng.choice([0, 1, 2, 255, 0x8000, 0xFFFF, rng.randrange(65536)])
            )
        elif op == 7 and len(data) > 14:
            i = rng.randrange(12, len(data) - 1)  # a compression pointer, maybe to itself
            data[i : i + 2] = struct.pack("!H", 0xC000 | rng.choice([i, 12, rng.randrange(len(data))]))
        elif op == 8 and len(data) >= 4:
            data[2] |= 0x80 if rng.random() < 0.3 else 0  # QR set: must be dropped
    return bytes(data)


def fuzz_input(rng: random.Random) -> bytes:
    """One datagram: mostly mutated queries, some untouched, some pure noise."""
    r = rng.random()
    if r < 0.15:
        return make_query(rng)
    if r < 0.25:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))
    return mutate(make_query(rng), rng)


def fuzz_stream(rng: random.Random) -> bytes:
    """One TCP byte stream: framed (often mutated) messages, lying prefixes, noise."""
    parts = []
    for _ in range(rng.randint(1, 12)):
        wire = fuzz_input(rng)
        r = rng.random()
        if r < 0.75:
            parts.append(struct.pack("!H", len(wire)) + wire)
        elif r < 0.85:
            parts.append(struct.pack("!H", rng.randrange(65536)) + wire)  # a lying prefix
        else:
            parts.append(wire)  # unframed
    return b"".join(parts)
