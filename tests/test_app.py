"""End to end: the dev API server as the cluster, k8sgw in the same trio run, dnspython as the client."""

from __future__ import annotations

import ssl
from functools import partial

import dns.flags
import dns.rcode
import dns.rdatatype
import pytest
import trio
import trustme

from k8sgw.devapi.kubeconfig import write_kubeconfig
from k8sgw.devapi.server import serve_devapi
from k8sgw.devapi.store import DevCluster
from tests.conftest import addresses, corefile, has, query, start_k8sgw


def ingress(name: str, host: str, ip: str, ns: str = "default") -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"rules": [{"host": host}]},
        "status": {"loadBalancer": {"ingress": [{"ip": ip}]}},
    }


def lb_service(name: str, ip: str, ns: str = "default", annotations: dict | None = None) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "annotations": annotations or {}},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]},
        "status": {"loadBalancer": {"ingress": [{"ip": ip}]}},
    }


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
async def test_seeded_examples_are_answered(k8sgw, tcp):
    udp_addr = k8sgw.udp[0] if not tcp else k8sgw.tcp[0]
    with trio.fail_after(10):
        a = await query(udp_addr, "myservicea.foo.org.", tcp=tcp)
        web = await query(udp_addr, "web.default.foo.org.", tcp=tcp)
        shop = await query(udp_addr, "SHOP.foo.org.", tcp=tcp)
        missing = await query(udp_addr, "nothing.foo.org.", tcp=tcp)
        outside = await query(udp_addr, "myservicea.example.com.", tcp=tcp)
    assert addresses(a) == ["192.0.2.10"] and a.flags & dns.flags.AA
    assert a.answer[0].ttl == 60
    assert addresses(web) == ["192.0.2.20"]
    assert addresses(shop) == ["192.0.2.30"]  # hostname annotation replaces web.default
    assert missing.rcode() == dns.rcode.NXDOMAIN
    assert str(missing.authority[0][0].mname) == "dns1.kube-system.foo.org."
    assert outside.rcode() == dns.rcode.REFUSED


async def test_added_modified_deleted_are_answered_live(k8sgw, cluster):
    store, addr = k8sgw.stores[0], k8sgw.udp[0]
    with trio.fail_after(10):
        cluster.apply(ingress("live", "live.foo.org", "192.0.2.40"))
        await store.wait_until(has("live.foo.org.", "192.0.2.40"))
        assert addresses(await query(addr, "live.foo.org.")) == ["192.0.2.40"]
        cluster.apply(ingress("live", "live.foo.org", "192.0.2.41"))
        await store.wait_until(has("live.foo.org.", "192.0.2.41"))
        assert addresses(await query(addr, "live.foo.org.")) == ["192.0.2.41"]
        cluster.delete("networking.k8s.io/v1", "Ingress", "default", "live")
        await store.wait_until(has("live.foo.org."))
        assert (await query(addr, "live.foo.org.")).rcode() == dns.rcode.NXDOMAIN


async def test_ingress_wins_over_service(k8sgw, cluster):
    store, addr = k8sgw.stores[0], k8sgw.udp[0]
    with trio.fail_after(10):
        cluster.apply(lb_service("both", "192.0.2.51", annotations={"coredns.io/hostname": "both.foo.org"}))
        await store.wait_until(has("both.foo.org.", "192.0.2.51"))
        cluster.apply(ingress("both", "both.foo.org", "192.0.2.50"))
        await store.wait_until(has("both.foo.org.", "192.0.2.50"))
        assert addresses(await query(addr, "both.foo.org.")) == ["192.0.2.50"]


async def test_dropped_stream_resumes_and_misses_nothing(k8sgw, cluster):
    store = k8sgw.stores[0]
    with trio.fail_after(10):
        kinds = len(store.kinds)  # one stream per watched kind
        await cluster.wait_watch_count(kinds)
        assert cluster.faults.drop_watches() == kinds
        cluster.apply(ingress("after-drop", "after-drop.foo.org", "192.0.2.60"))
        await store.wait_until(has("after-drop.foo.org.", "192.0.2.60"))


async def test_gone_relists_and_drops_objects_deleted_while_away(k8sgw, cluster):
    store, addr = k8sgw.stores[0], k8sgw.udp[0]
    with trio.fail_after(10):
        cluster.apply(ingress("doomed", "doomed.foo.org", "192.0.2.70"))
        await store.wait_until(has("doomed.foo.org.", "192.0.2.70"))
        await cluster.wait_watch_count(len(store.kinds))
        cluster.faults.unavailable(True)  # reconnects fail while we change things behind its back
        assert cluster.faults.drop_watches() == len(store.kinds)
        cluster.delete("networking.k8s.io/v1", "Ingress", "default", "doomed")
        cluster.compact()  # the history k8sgw would resume from is gone: the next watch gets 410
        cluster.faults.unavailable(False)
        await store.wait_until(has("doomed.foo.org."))
        assert (await query(addr, "doomed.foo.org.")).rcode() == dns.rcode.NXDOMAIN
        assert addresses(await query(addr, "myservicea.foo.org.")) == ["192.0.2.10"]


async def test_unreachable_api_is_servfail_and_keeps_serving(nursery, tmp_path):
    # A port that nothing listens on: bind one, note it, close it.
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{port}")
    bound = await start_k8sgw(nursery, corefile(kubeconfig))
    with trio.fail_after(10):
        for _ in range(3):
            reply = await query(bound.udp[0], "myservicea.foo.org.", use_edns=0)
            assert reply.rcode() == dns.rcode.SERVFAIL
            assert reply.options[0].code == 14  # EDE "Not Ready" (RFC 8914)
        assert (await query(bound.tcp[0], "myservicea.foo.org.", tcp=True)).rcode() == dns.rcode.SERVFAIL


async def test_api_outage_keeps_last_good_state(k8sgw, cluster):
    with trio.fail_after(10):
        kinds = len(k8sgw.stores[0].kinds)
        await cluster.wait_watch_count(kinds)
        cluster.faults.unavailable(True)
        assert cluster.faults.drop_watches() == kinds
        for _ in range(3):
            assert addresses(await query(k8sgw.udp[0], "myservicea.foo.org.")) == ["192.0.2.10"]
        cluster.faults.unavailable(False)
        cluster.apply(ingress("back", "back.foo.org", "192.0.2.80"))
        await k8sgw.stores[0].wait_until(has("back.foo.org.", "192.0.2.80"))


@pytest.fixture
def tls(tmp_path):
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    return ca, server_ctx


async def test_wrong_token_is_logged_and_retried(nursery, tmp_path, tls, logs):
    ca, server_ctx = tls
    cluster = DevCluster()
    cluster.apply(ingress("secret", "secret.foo.org", "192.0.2.90"))
    url = await nursery.start(partial(serve_devapi, cluster, ssl_context=server_ctx, token="tok-right-1f2e"))
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", url, token="tok-wrong-9a8b", ca_pem=ca.cert_pem.bytes())
    bound = await start_k8sgw(nursery, corefile(kubeconfig))
    store = bound.stores[0]
    with trio.fail_after(10):
        line = await logs.wait_for("401 Unauthorized")  # not "401": timeoutSeconds may be 401 too
        assert line.startswith("ERROR k8sgw.kubeapi.watch: watch ") and "credentials" in line
        assert (await query(bound.udp[0], "secret.foo.org.")).rcode() == dns.rcode.SERVFAIL
        assert "tok-wrong-9a8b" not in logs.text  # the token itself is never logged
        cluster.set_token("tok-wrong-9a8b")  # the API now accepts what k8sgw sends: it recovers by retrying
        await store.wait_until(has("secret.foo.org.", "192.0.2.90"))
