"""Reply size over query size for each answer kind, measured against a running k8sgw.

    python -m tests.robustness.amplification

prints the table (seeded dev cluster + examples/dnsendpoint.yaml, zone foo.org, queries as
dnspython makes them: without EDNS, and with EDNS payload 1232). test_amplification.py asserts
the bounds.
"""

from __future__ import annotations

from functools import partial

import dns.asyncquery
import dns.message
import trio

CASES = [
    ("A hit", "myservicea.foo.org.", "A"),
    ("AAAA", "static.foo.org.", "AAAA"),
    ("NXDOMAIN + SOA", "nothing.foo.org.", "A"),
    ("NODATA + SOA", "myservicea.foo.org.", "AAAA"),
    ("apex NS + glue", "foo.org.", "NS"),
    ("apex SOA", "foo.org.", "SOA"),
    ("ANY (RFC 8482)", "myservicea.foo.org.", "ANY"),
    ("ANY at apex", "foo.org.", "ANY"),
    ("TXT (DNSEndpoint)", "foo-txt.foo.org.", "TXT"),
    ("CNAME chain", "www.foo.org.", "A"),
]


async def measure(addr) -> list[tuple[str, str, int, int, int, int, str]]:
    """(label, question, query bytes, reply bytes, EDNS query bytes, EDNS reply bytes, rcode)."""
    rows = []
    for label, name, rdtype in CASES:
        sizes = []
        for edns in (-1, 0):
            q = dns.message.make_query(name, rdtype, use_edns=edns, payload=1232)
            wire = q.to_wire()
            with trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM) as s:
                await s.sendto(wire, addr)
                with trio.fail_after(5):
                    reply = await s.recv(65535)
            sizes += [len(wire), len(reply)]
            rcode = dns.rcode.to_text(dns.message.from_wire(reply).rcode())
        rows.append((label, f"{name} {rdtype}", *sizes, rcode))
    return rows


def table(rows) -> str:
    out = [
        "| answer kind | question | query B | reply B | ratio | EDNS query B | EDNS reply B | EDNS ratio | rcode |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, question, q, r, eq, er, rcode in rows:
        out.append(
            f"| {label} | {question} | {q} | {r} | {r / q:.1f} | {eq} | {er} | {er / eq:.1f} | {rcode} |"
        )
    return "\n".join(out)


async def _main() -> None:
    import tempfile
    from pathlib import Path

    from k8sgw.devapi.kubeconfig import write_kubeconfig
    from k8sgw.devapi.server import serve_devapi
    from k8sgw.devapi.store import DevCluster
    from tests.conftest import EXAMPLES, corefile, start_k8sgw

    cluster = DevCluster()
    cluster.load_manifests([*sorted((EXAMPLES / "seed").glob("*.yaml")), EXAMPLES / "dnsendpoint.yaml"])
    with tempfile.TemporaryDirectory() as tmp:
        async with trio.open_nursery() as nursery:
            url = await nursery.start(partial(serve_devapi, cluster))
            kubeconfig = write_kubeconfig(Path(tmp) / "kubeconfig", url)
            bound = await start_k8sgw(nursery, corefile(kubeconfig))
            await bound.stores[0].wait_until(lambda m: m.ready)
            print(table(await measure(bound.udp[0])))
            nursery.cancel_scope.cancel()


import dns.rcode  # noqa: E402

if __name__ == "__main__":
    trio.run(_main)
