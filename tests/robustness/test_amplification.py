"""Amplification: no UDP reply is larger than it needs to be.

Every answer kind is measured (tests/robustness/amplification.py prints the table): replies to
queries without EDNS fit 512 bytes, ANY is minimal (RFC 8482: one RRset, never everything the name
has), and no kind amplifies more than 5x (the largest, the apex SOA, is 3.6x).
"""

from __future__ import annotations

import trio

from tests.conftest import EXAMPLES
from tests.robustness.amplification import measure, table


async def test_reply_sizes_per_answer_kind(nursery, cluster, kubeconfig):
    from tests.conftest import corefile, start_k8sgw

    cluster.load_manifests([EXAMPLES / "dnsendpoint.yaml"])
    bound = await start_k8sgw(nursery, corefile(kubeconfig))
    with trio.fail_after(10):
        await bound.stores[0].wait_until(lambda m: m.ready)
        rows = await measure(bound.udp[0])
    print(table(rows))
    by = {label: row for label, *row in rows}
    for label, (_question, q, r, _eq, er, rcode) in by.items():
        assert r <= 512 and er <= 1232, label
        assert rcode in ("NOERROR", "NXDOMAIN"), (label, rcode)
        assert r / q <= 5.0, (label, r, q)  # bounded: every kind under 5x
    # ANY is answered with one RRset (RFC 8482), no larger than the A answer for the same name.
    assert by["ANY (RFC 8482)"][2] <= by["A hit"][2]
    # The EDNS variant costs exactly the OPT record (11 bytes) each way, nothing more.
    for label, (_question, q, r, eq, er, _rcode) in by.items():
        assert er - r == eq - q == 11, label
