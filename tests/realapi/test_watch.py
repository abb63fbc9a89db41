"""How k8sgw's watches meet a real kube-apiserver: BOOKMARKs, streams dropped and resumed, a real
410 after etcd compaction, an RBAC 403 on one kind, and a CRD installed while k8sgw runs."""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
import trio

from k8sgw.kubeapi.client import KubeClient
from k8sgw.kubeapi.errors import ServerError
from k8sgw.kubeapi.events import KubeEvent
from k8sgw.kubeapi.kinds import INGRESS, SERVICE
from k8sgw.kubeapi.kubeconfig import resolve_connection
from k8sgw.kubeapi.watch import Watch, WatchState, list_objects, list_then_watch, stream_watch
from tests.conftest import corefile, start_k8sgw
from tests.realapi.conftest import (
    DNSENDPOINT_CRD,
    K8SGW_NAMESPACE,
    REAL_POLICY,
    ask,
    dnsendpoint_crd,
    has_rdata,
    kubectl,
    patch_status,
    rdatas,
    reduced_cluster_role,
)
from tests.realapi.relay import Relay


def _lines(logs, *parts: str) -> list[str]:
    return [line for line in logs.lines if all(p in line for p in parts)]


async def test_bookmarks_advance_the_resume_point_without_events(real_cluster, k8sgw_kubeconfig):
    """A real BOOKMARK: the watch cache sends one 2 s before the watch's timeout, at the revision it
    has reached (other kinds' writes move it, through etcd's progress notifications)."""
    policy = dataclasses.replace(REAL_POLICY, watch_timeout_range=(4, 4))
    async with KubeClient(resolve_connection(str(k8sgw_kubeconfig))) as client:
        _, listed_rv = await list_objects(client, SERVICE)
        await kubectl(real_cluster, "create", "configmap", "bookmark-nudge", "-n", "default")
        try:
            send, recv = trio.open_memory_channel[KubeEvent](10)
            state = WatchState(resource_version=listed_rv)
            with trio.fail_after(15):
                received = await stream_watch(Watch(client, SERVICE, send, policy=policy), state)
        finally:
            await kubectl(real_cluster, "delete", "configmap", "bookmark-nudge", "-n", "default")
    assert received >= 1
    assert recv.statistics().current_buffer_used == 0  # lines came, but no object events
    assert int(state.resource_version) > int(listed_rv)


WATCHED = """
apiVersion: v1
kind: Namespace
metadata: {name: wt}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: keep, namespace: wt}
spec: {rules: [{host: keep.watch.test}]}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: gone, namespace: wt}
spec: {rules: [{host: gone.watch.test}]}
---
apiVersion: v1
kind: Service
metadata: {name: svc, namespace: wt}
spec: {type: LoadBalancer, ports: [{port: 80}]}
"""


def _lb(ip: str) -> str:
    return json.dumps({"status": {"loadBalancer": {"ingress": [{"ip": ip}]}}})


async def test_dropped_streams_resume_and_a_compacted_revision_relists(
    nursery, real_cluster, k8sgw_token, tmp_path, logs
):
    """Streams cut by the network resume where they were (Services, from the watch cache); a watch
    whose revision etcd has compacted meets a real 410 and relists (Ingresses bypass the cache)."""
    api = urlsplit(real_cluster.api_url)
    relay = Relay((api.hostname, api.port))
    port = await nursery.start(relay.serve)
    kubeconfig = real_cluster.token_kubeconfig(
        tmp_path / "kubeconfig", k8sgw_token, server=f"https://127.0.0.1:{port}"
    )
    await kubectl(real_cluster, "apply", "-f", "-", stdin=WATCHED)
    try:
        initial = [
            ("ingress", "keep", "192.0.2.40"),
            ("ingress", "gone", "192.0.2.41"),
            ("service", "svc", "192.0.2.42"),
        ]
        await patch_status(real_cluster, "wt", [(kind, name, _lb(ip)) for kind, name, ip in initial])
        bound = await start_k8sgw(
            nursery, corefile(kubeconfig, "watch.test", "resources Ingress Service"), watch_policy=REAL_POLICY
        )
        store = bound.stores[0]
        with trio.fail_after(30):
            await store.wait_until(has_rdata("svc.wt.watch.test", "A", "192.0.2.42"))
            await store.wait_until(has_rdata("gone.watch.test", "A", "192.0.2.41"))

        relay.hold()
        relay.cut()
        await patch_status(real_cluster, "wt", [("ingress", "keep", _lb("192.0.2.43"))])
        await kubectl(real_cluster, "delete", "ingress", "gone", "-n", "wt")
        await patch_status(real_cluster, "wt", [("service", "svc", _lb("192.0.2.44"))])
        # One more write, so that the revision after the Ingress watch's is older than the compaction.
        await kubectl(real_cluster, "create", "configmap", "compact-me", "-n", "wt")
        await trio.to_thread.run_sync(real_cluster.compact)
        relay.release()

        with trio.fail_after(30):
            await store.wait_until(has_rdata("keep.watch.test", "A", "192.0.2.43"))
            await store.wait_until(has_rdata("gone.watch.test", "A"))
            await store.wait_until(has_rdata("svc.wt.watch.test", "A", "192.0.2.44"))
        assert rdatas(await ask(bound.udp[0], "keep.watch.test")) == ["192.0.2.43"]
        assert (await ask(bound.udp[0], "gone.watch.test")).rcode == "NXDOMAIN"
        assert rdatas(await ask(bound.udp[0], "svc.wt.watch.test")) == ["192.0.2.44"]
        relists = _lines(logs, "watch Ingress: resourceVersion", "no longer usable")
        assert len(relists) == 1 and "410" in relists[0], logs.text
        assert len(_lines(logs, "watch Service: listed")) == 1, logs.text  # resumed, never relisted
        assert len(_lines(logs, "watch Ingress: listed")) == 2, logs.text
        assert relay.connections > 2
    finally:
        await kubectl(real_cluster, "delete", "namespace", "wt", "--wait=false")


async def test_a_kind_rbac_forbids_is_one_warning_and_the_rest_is_served(
    nursery, real_cluster, tmp_path, logs
):
    name = "k8sgw-no-ingresses"
    await kubectl(real_cluster, "create", "serviceaccount", name, "-n", K8SGW_NAMESPACE)
    await kubectl(real_cluster, "apply", "-f", "-", stdin=reduced_cluster_role(name, "ingresses"))
    await kubectl(real_cluster, "create", "namespace", "rb")
    try:
        await kubectl(real_cluster, "create", "service", "loadbalancer", "web", "-n", "rb", "--tcp=80:80")
        await patch_status(real_cluster, "rb", [("service", "web", _lb("192.0.2.60"))])
        token = await trio.to_thread.run_sync(real_cluster.service_account_token, K8SGW_NAMESPACE, name)
        kubeconfig = real_cluster.token_kubeconfig(tmp_path / "kubeconfig", token)
        bound = await start_k8sgw(nursery, corefile(kubeconfig, "rbac.test"), watch_policy=REAL_POLICY)
        with trio.fail_after(30):
            await bound.stores[0].wait_until(lambda m: m.ready)
            # Two more tries after the first refusal, so a WARNING per try would show.
            await logs.wait_count(lambda line: "watch Ingress: still forbidden" in line, 2)
        assert rdatas(await ask(bound.udp[0], "web.rb.rbac.test")) == ["192.0.2.60"]
        warnings = [line for line in logs.lines if line.startswith("WARNING") and "Ingress" in line]
        assert len(warnings) == 1, logs.text
        assert "403" in warnings[0] and 'resources: ["ingresses"]' in warnings[0], warnings[0]
        # Nothing else warns but the zone's own missing nameserver Service (no apex Service here).
        others = [line for line in logs.lines if line.startswith("WARNING") and "Ingress" not in line]
        assert all("nameserver Service kube-system/dns1 does not exist" in line for line in others), others
    finally:
        await kubectl(real_cluster, "delete", "namespace", "rb", "--wait=false")
        await kubectl(real_cluster, "delete", "clusterrole,clusterrolebinding", name)


ENDPOINTS = """
apiVersion: externaldns.k8s.io/v1alpha1
kind: DNSEndpoint
metadata: {name: records, namespace: default}
spec:
  endpoints:
    - {dnsName: a.crd.test, recordType: A, targets: [192.0.2.70, 192.0.2.71]}
    - {dnsName: a.crd.test, recordType: AAAA, targets: ["2001:db8::70"]}
    - {dnsName: www.crd.test, recordType: CNAME, targets: [a.crd.test]}
    - {dnsName: txt.crd.test, recordType: TXT, recordTTL: 300, targets: ["v=spf1 -all"]}
    - {dnsName: crd.test, recordType: MX, targets: ["10 mail.crd.test"]}
    - {dnsName: _https._tcp.crd.test, recordType: SRV, targets: ["10 5 443 a.crd.test"]}
"""


async def test_a_crd_installed_after_start_is_served_without_a_restart(
    nursery, real_cluster, k8sgw_kubeconfig, logs
):
    await kubectl(real_cluster, "delete", "crd", DNSENDPOINT_CRD, "--ignore-not-found", "--wait=true")
    bound = await start_k8sgw(nursery, corefile(k8sgw_kubeconfig, "crd.test"), watch_policy=REAL_POLICY)
    store = bound.stores[0]
    with trio.fail_after(30):
        await store.wait_until(lambda m: m.ready)
        await logs.wait_for("watch DNSEndpoint: the API does not serve")
    assert (await ask(bound.udp[0], "a.crd.test")).rcode == "NXDOMAIN"

    await kubectl(real_cluster, "apply", "--server-side", "-f", str(dnsendpoint_crd()))
    await trio.to_thread.run_sync(real_cluster.wait_established, DNSENDPOINT_CRD)
    await kubectl(real_cluster, "apply", "--server-side", "-f", "-", stdin=ENDPOINTS)
    try:
        with trio.fail_after(30):
            await store.wait_until(has_rdata("a.crd.test", "A", "192.0.2.70", "192.0.2.71"))
            await store.wait_until(has_rdata("_https._tcp.crd.test", "SRV", "10 5 443 a.crd.test."))
        addr = bound.udp[0]
        assert rdatas(await ask(addr, "a.crd.test")) == ["192.0.2.70", "192.0.2.71"]
        assert rdatas(await ask(addr, "a.crd.test", "AAAA"), "AAAA") == ["2001:db8::70"]
        www = await ask(addr, "www.crd.test")
        assert rdatas(www, "CNAME") == ["a.crd.test."] and rdatas(www) == ["192.0.2.70", "192.0.2.71"]
        assert rdatas(await ask(addr, "txt.crd.test", "TXT"), "TXT") == ['"v=spf1 -all"']
        assert rdatas(await ask(addr, "crd.test", "MX"), "MX") == ["10 mail.crd.test."]
        assert rdatas(await ask(addr, "_https._tcp.crd.test", "SRV"), "SRV") == ["10 5 443 a.crd.test."]
    finally:
        await kubectl(real_cluster, "delete", "dnsendpoint", "records", "-n", "default")


_PK_NAMESPACES = itertools.count()


@pytest.fixture
async def compacted_update(real_cluster) -> AsyncIterator[int]:
    """The revision of an Ingress update at which etcd was then compacted. A watch on Ingresses (no
    watch cache here) from just below it gets one ERROR 500 from a real apiserver, "etcd event
    received with PrevKv=nil", and the same again for every watch from there."""
    # A namespace of its own each time: the last one may still be terminating.
    namespace = f"pk-{next(_PK_NAMESPACES)}"
    await kubectl(real_cluster, "create", "namespace", namespace)
    try:
        await kubectl(real_cluster, "create", "ingress", "a", "-n", namespace, "--rule=a.prevkv.test/*=svc:80")
        patched = await kubectl(
            real_cluster,
            "patch",
            "ingress",
            "a",
            "-n",
            namespace,
            "--subresource=status",
            "--type=merge",
            "-p",
            _lb("192.0.2.80"),
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        )
        yield await trio.to_thread.run_sync(real_cluster.compact, int(patched))
    finally:
        await kubectl(real_cluster, "delete", "namespace", namespace, "--wait=false")


async def test_a_watch_at_the_compacted_revision_meets_a_repeatable_500(k8sgw_kubeconfig, compacted_update):
    send, _recv = trio.open_memory_channel[KubeEvent](10)
    async with KubeClient(resolve_connection(str(k8sgw_kubeconfig))) as client:
        for _ in range(2):  # the server's answer at that revision, each time
            state = WatchState(resource_version=str(compacted_update - 1))
            with trio.fail_after(15), pytest.raises(ServerError, match="PrevKv=nil"):
                await stream_watch(Watch(client, INGRESS, send, policy=REAL_POLICY), state)
            assert state.resource_version is None  # so watch_forever's retry relists


async def test_after_a_repeatable_watch_error_the_retry_relists(k8sgw_kubeconfig, compacted_update):
    send, _recv = trio.open_memory_channel[KubeEvent](10)
    state = WatchState(resource_version=str(compacted_update - 1), synced_once=True)
    async with KubeClient(resolve_connection(str(k8sgw_kubeconfig))) as client:
        with trio.fail_after(15), pytest.raises(ServerError, match="PrevKv=nil"):
            await list_then_watch(Watch(client, INGRESS, send, policy=REAL_POLICY), state)
    assert state.resource_version is None  # the retry must list afresh
