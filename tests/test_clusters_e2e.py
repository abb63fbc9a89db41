"""Several clusters in one zone, end to end: two dev API servers are two clusters; k8sgw merges
their names, SERVFAILs (and /ready names the cluster) until both have synced, and keeps answering
every name while one is stopped and restarted."""

from __future__ import annotations

import dns.rcode
import trio
import trio.lowlevel

from k8sgw.devapi.kubeconfig import write_kubeconfig
from k8sgw.devapi.server import serve_devapi
from k8sgw.devapi.store import DevCluster
from k8sgw.ops.endpoints import ready_route
from tests.conftest import addresses, corefile, has, query, start_k8sgw


def ingress(name: str, host: str, ip: str) -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": name, "namespace": "default"},
        "spec": {"rules": [{"host": host}]}, "status": {"loadBalancer": {"ingress": [{"ip": ip}]}},
    }


def cname(name: str, host: str, target: str) -> dict:
    return {
        "apiVersion": "externaldns.k8s.io/v1alpha1", "kind": "DNSEndpoint", "metadata": {"name": name, "namespace": "default"},
        "spec": {"endpoints": [{"dnsName": host, "recordType": "CNAME", "targets": [target]}]},
    }


class Api:
    """One dev API server that can be stopped and started again on the same port."""

    def __init__(self, cluster: DevCluster) -> None:
        self.cluster = cluster
        self.port = 0
        self._scope = trio.CancelScope()

    async def start(self, nursery: trio.Nursery) -> str:
        self._scope = scope = trio.CancelScope()

        async def run(task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
            with scope:
                await serve_devapi(self.cluster, port=self.port, task_status=task_status)

        url = await nursery.start(run)
        self.port = int(url.rsplit(":", 1)[1])
        return url

    def stop(self) -> None:
        self._scope.cancel()


async def test_two_clusters_merge_and_one_stopped_keeps_its_last_names(nursery, tmp_path, logs):
    east, west = DevCluster(), DevCluster()
    east.apply(ingress("a", "a.foo.org", "192.0.2.1"))
    east.apply(ingress("shared", "shared.foo.org", "192.0.2.1"))
    east.apply(ingress("conflict", "conflict.foo.org", "192.0.2.1"))
    west.apply(ingress("b", "b.foo.org", "192.0.2.2"))
    west.apply(ingress("shared", "shared.foo.org", "192.0.2.2"))
    west.apply(cname("conflict", "conflict.foo.org", "elsewhere.example.net"))  # Ingress owns the name
    east_api, west_api = Api(east), Api(west)
    east_kc = write_kubeconfig(tmp_path / "east.kubeconfig", await east_api.start(nursery))
    west_kc = write_kubeconfig(tmp_path / "west.kubeconfig", await west_api.start(nursery))
    west_api.stop()  # west is unreachable when k8sgw starts
    await trio.lowlevel.checkpoint()  # its task ends at once

    text = corefile(east_kc, extra=f"kubeconfig {west_kc}\n        resources Ingress DNSEndpoint")
    bound = await start_k8sgw(nursery, text)
    store, addr = bound.stores[0], bound.udp[0]
    assert store.clusters == ("east", "west")
    ready = ready_route(bound.stores)
    with trio.fail_after(10):  # east lists, west cannot
        await logs.wait_for("synced Ingress in cluster east")
        await logs.wait_for("synced DNSEndpoint in cluster east")
    assert set(store.behind()) == {"west"}
    assert (await query(addr, "a.foo.org.")).rcode() == dns.rcode.SERVFAIL  # west not yet synced
    status, _, body = ready()
    assert status == 503 and b"(cluster west: Ingress, DNSEndpoint)" in body

    await west_api.start(nursery)  # same port: the watchers' retries find it
    with trio.fail_after(10):
        await store.wait_until(lambda m: m.ready and has("b.foo.org.", "192.0.2.2")(m))
    assert ready()[0] == 200
    assert addresses(await query(addr, "a.foo.org.")) == ["192.0.2.1"]
    assert addresses(await query(addr, "b.foo.org.")) == ["192.0.2.2"]
    assert addresses(await query(addr, "shared.foo.org.")) == ["192.0.2.1", "192.0.2.2"]  # one kind: merged
    assert addresses(await query(addr, "conflict.foo.org.")) == ["192.0.2.1"]  # Ingress before DNSEndpoint

    failures: list[str] = []
    asked = 0
    stop_asking = trio.Event()

    async def ask_all_the_time() -> None:
        nonlocal asked
        expected = {"a.foo.org.": ["192.0.2.1"], "shared.foo.org.": ["192.0.2.1", "192.0.2.2"]}
        while not stop_asking.is_set():
            for name, want in expected.items():
                got = addresses(await query(addr, name))
                asked += 1
                if got != want:
                    failures.append(f"{name} {got}")
            b = addresses(await query(addr, "b.foo.org."))
            if b not in (["192.0.2.2"], ["192.0.2.3"]):
                failures.append(f"b.foo.org. {b}")
            await trio.sleep(0.005)

    nursery.start_soon(ask_all_the_time)
    west_api.stop()
    with trio.fail_after(10):
        # east still changes while west is down; west's names answer from its last good state
        east.apply(ingress("c", "c.foo.org", "192.0.2.4"))
        await store.wait_until(has("c.foo.org.", "192.0.2.4"))
        assert addresses(await query(addr, "b.foo.org.")) == ["192.0.2.2"]
        west.apply(ingress("b", "b.foo.org", "192.0.2.3"))  # changed while nobody could see it
        await west_api.start(nursery)
        await store.wait_until(has("b.foo.org.", "192.0.2.3"))
    stop_asking.set()
    assert asked > 20 and failures == []
    assert addresses(await query(addr, "b.foo.org.")) == ["192.0.2.3"]
