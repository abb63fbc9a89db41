"""An API server replaced under k8sgw (restored from a backup, another cluster at the same address):
its resourceVersions start again low, so k8sgw's resume point means nothing there. k8sgw must
notice (a BOOKMARK or event below what it saw), relist, drop what the new API does not have, and
keep moving its SOA serial on."""

from __future__ import annotations

from functools import partial

import dns.rcode
import dns.rdatatype
import trio

from k8sgw.devapi.kubeconfig import write_kubeconfig
from k8sgw.devapi.server import serve_devapi
from k8sgw.devapi.store import DevCluster
from tests.conftest import EXAMPLES, FAST_RETRY, addresses, corefile, has, query, start_k8sgw
from tests.robustness.test_failing_api import ingress


def seeded(**kw) -> DevCluster:
    cluster = DevCluster(**kw)
    cluster.load_manifests(sorted((EXAMPLES / "seed").glob("*.yaml")))
    return cluster


async def test_replaced_api_relists_and_serial_moves_on(nursery, tmp_path, logs):
    old = seeded()
    for n in range(50):  # the old API's history runs well past anything the new one will reach
        old.apply(ingress("gone", "gone.foo.org", f"192.0.2.{100 + n % 50}"))
    old_api = trio.CancelScope()
    old_gone = trio.Event()

    async def run_old(*, task_status=trio.TASK_STATUS_IGNORED):
        try:
            with old_api:
                await serve_devapi(old, task_status=task_status)
        finally:
            old_gone.set()  # its socket is closed: the port is free for the new one

    url = await nursery.start(run_old)
    port = int(url.rsplit(":", 1)[1])
    bound = await start_k8sgw(nursery, corefile(write_kubeconfig(tmp_path / "kubeconfig", url)), watch_policy=FAST_RETRY)
    store = bound.stores[0]
    with trio.fail_after(20):
        before = await store.wait_until(lambda m: m.ready and has("gone.foo.org.", "192.0.2.149")(m))
        old_api.cancel()  # the API goes away ...
        await old_gone.wait()
        # ... and another comes up at the same address, with fewer objects and low resourceVersions
        new = seeded(bookmark_interval=0.2)
        assert new.resource_version < old.resource_version
        await nursery.start(partial(serve_devapi, new, port=port))
        after = await store.wait_until(has("gone.foo.org."))
        line = await logs.wait_for("API server replaced")
    assert after.serial > before.serial
    assert "resourceVersion" in line
    reply = await query(bound.udp[0], "gone.foo.org.")
    assert reply.rcode() == dns.rcode.NXDOMAIN
    assert addresses(await query(bound.udp[0], "myservicea.foo.org.")) == ["192.0.2.10"]
    soa = await query(bound.udp[0], "foo.org.", "SOA")
    # The other kinds' relists may publish again meanwhile: the serial served is at least the one
    # that dropped the deleted name, and never ahead of the store's.
    assert soa.answer[0].rdtype == dns.rdatatype.SOA
    assert after.serial <= soa.answer[0][0].serial <= store.current.serial
