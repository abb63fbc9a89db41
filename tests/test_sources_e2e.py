"""End to end, every source: the dev API server as the cluster, k8sgw in the same trio run, dnspython.

Each test changes the cluster and waits on the indexer's published map (`store.wait_until`), then
asks over real sockets. CNAME answers are asserted in the map: answer() serving them is the DNS
server's business.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import partial

import dns.name
import dns.rcode
import dns.rdatatype
import pytest
import trio

from k8sgw.devapi.kubeconfig import write_kubeconfig
from k8sgw.devapi.server import serve_devapi
from k8sgw.devapi.store import DevCluster
from k8sgw.records.recordmap import RecordMap
from tests.conftest import EXAMPLES, FAST_RETRY, addresses, corefile, has, query, start_k8sgw

GW = "gateway.networking.k8s.io/v1"


def rdatas(name: str, rdtype: str) -> Callable[[RecordMap], list[str]]:
    owner, t = dns.name.from_text(name), dns.rdatatype.from_text(rdtype)
    return lambda m: sorted(str(r) for r in m.rdatas(owner, t))


def holds(name: str, rdtype: str, *values: str) -> Callable[[RecordMap], bool]:
    """name has exactly these rdata of rdtype (none: it has none)."""
    get = rdatas(name, rdtype)
    return lambda m: get(m) == sorted(values)


def gateway(name="gw", ns="infra", ips=("192.0.2.100",), hostnames=(), listeners=None, cls="example", labels=None):
    addrs = [{"type": "IPAddress", "value": ip} for ip in ips] + [{"type": "Hostname", "value": h} for h in hostnames]
    return {
        "apiVersion": GW,
        "kind": "Gateway",
        "metadata": {"name": name, "namespace": ns, "labels": labels or {}},
        "spec": {"gatewayClassName": cls, "listeners": listeners or [{"name": "http", "port": 80, "protocol": "HTTP"}]},
        "status": {"addresses": addrs},
    }


def route(name, hostnames, refs=None, kind="HTTPRoute", ns="default", parents=None):
    obj = {
        "apiVersion": GW,
        "kind": kind,
        "metadata": {"name": name, "namespace": ns},
        "spec": {"parentRefs": refs or [{"name": "gw", "namespace": "infra"}], "hostnames": list(hostnames)},
    }
    if parents is not None:
        obj["status"] = {"parents": parents}
    return obj


def ingress(name, host, ip=None, hostname=None, cls=None, labels=None):
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": "default", "labels": labels or {}},
        "spec": {"ingressClassName": cls, "rules": [{"host": host}]},
        "status": {"loadBalancer": {"ingress": [{"ip": ip} if ip else {"hostname": hostname}]}},
    }


def service(name, ip=None, host=None, labels=None, annotations=None, type_="LoadBalancer", ns="default"):
    ann = dict(annotations or {})
    if host:
        ann["coredns.io/hostname"] = host
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "labels": labels or {}, "annotations": ann},
        "spec": {"type": type_, "ports": [{"port": 80}]},
        "status": {"loadBalancer": {"ingress": [{"ip": ip}] if ip else []}},
    }


def dnsendpoint(name, *endpoints):
    return {
        "apiVersion": "externaldns.k8s.io/v1alpha1",
        "kind": "DNSEndpoint",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"endpoints": list(endpoints)},
    }


def endpointslice(name, service_name, endpoints, ns="default"):
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": ns, "labels": {"kubernetes.io/service-name": service_name}},
        "addressType": "IPv4",
        "endpoints": endpoints,
    }


async def k8sgw_for(nursery, cluster: DevCluster, tmp_path, extra: str = "", **policy):
    url = await nursery.start(partial(serve_devapi, cluster))
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", url)
    bound = await start_k8sgw(
        nursery, corefile(kubeconfig, extra=extra), watch_policy=dataclasses.replace(FAST_RETRY, **policy)
    )
    with trio.fail_after(10):
        await bound.stores[0].wait_until(lambda m: m.ready)
    return bound


async def test_example_manifests_of_every_kind(nursery, cluster, tmp_path):
    examples = ["gateway", "httproute", "grpcroute", "tlsroute", "dnsendpoint", "service-endpoints",
                "endpointslice", "service-lb-hostname"]
    cluster.load_manifests([EXAMPLES / f"{name}.yaml" for name in examples])
    bound = await k8sgw_for(nursery, cluster, tmp_path)
    store, addr = bound.stores[0], bound.udp[0]
    with trio.fail_after(10):
        m = await store.wait_until(has("db.foo.org.", "192.0.2.161", "192.0.2.162"))
        assert addresses(await query(addr, "web.foo.org.")) == ["192.0.2.100"]
        assert addresses(await query(addr, "web.foo.org.", "AAAA")) == ["2001:db8::100"]
        assert addresses(await query(addr, "shop.apps.foo.org.")) == ["192.0.2.100"]
        assert (await query(addr, "store.foo.org.")).rcode() == dns.rcode.NXDOMAIN  # outside its listener
        assert addresses(await query(addr, "grpc.foo.org.")) == ["192.0.2.100"]
        assert addresses(await query(addr, "tls.apps.foo.org.")) == ["192.0.2.100"]
        assert addresses(await query(addr, "static.foo.org.")) == ["192.0.2.150"]
        assert addresses(await query(addr, "static.foo.org.", "AAAA")) == ["2001:db8::150"]
        txt = await query(addr, "foo-txt.foo.org.", "TXT")
        assert [str(r) for r in txt.answer[0]] == ['"v=spf1 -all"'] and txt.answer[0].ttl == 300
        assert addresses(await query(addr, "mail.foo.org.", "MX")) == ["10 mx1.foo.org."]
        srv = await query(addr, "_sip._tcp.foo.org.", "SRV")
        assert addresses(srv) == ["10 5 5060 sip.foo.org."] and srv.answer[0].ttl == 60
        assert addresses(await query(addr, "db.foo.org.")) == ["192.0.2.161", "192.0.2.162"]
        # CNAMEs: in the map (answer() serves and chases them)
        assert rdatas("www.foo.org.", "CNAME")(m) == ["static.foo.org."]
        assert rdatas("elb.foo.org.", "CNAME")(m) == ["a1b2c3.elb.example.net."]
        assert rdatas("elb.foo.org.", "A")(m) == []


async def test_precedence_httproute_tlsroute_grpcroute_ingress_service_dnsendpoint(k8sgw, cluster):
    store, addr = k8sgw.stores[0], k8sgw.udp[0]
    owners = [
        ("HTTPRoute", route("p", ["p.foo.org"], [{"name": "g1", "namespace": "infra"}]), "192.0.2.1"),
        ("TLSRoute", route("p", ["p.foo.org"], [{"name": "g2", "namespace": "infra"}], kind="TLSRoute"), "192.0.2.2"),
        ("GRPCRoute", route("p", ["p.foo.org"], [{"name": "g3", "namespace": "infra"}], kind="GRPCRoute"), "192.0.2.3"),
        ("Ingress", ingress("p", "p.foo.org", "192.0.2.4"), "192.0.2.4"),
        ("Service", service("p", "192.0.2.5", host="p.foo.org"), "192.0.2.5"),
        ("DNSEndpoint", dnsendpoint("p", {"dnsName": "p.foo.org", "recordType": "A", "targets": ["192.0.2.6"]}), "192.0.2.6"),
    ]
    with trio.fail_after(10):
        for i in (1, 2, 3):
            cluster.apply(gateway(f"g{i}", ips=[f"192.0.2.{i}"]))
        for _, obj, _ in reversed(owners):  # lowest precedence first: each new one takes the name
            cluster.apply(obj)
        await store.wait_until(has("p.foo.org.", "192.0.2.1"))
        for kind, obj, ip in owners:
            assert addresses(await query(addr, "p.foo.org.")) == [ip], kind
            cluster.delete(obj["apiVersion"], kind, "default", "p")
            nxt = owners.index((kind, obj, ip)) + 1
            await store.wait_until(has("p.foo.org.", *([owners[nxt][2]] if nxt < len(owners) else [])))
        assert (await query(addr, "p.foo.org.")).rcode() == dns.rcode.NXDOMAIN


async def test_gateway_address_changes_reach_every_route(k8sgw, cluster):
    store, addr = k8sgw.stores[0], k8sgw.udp[0]
    with trio.fail_after(10):
        cluster.apply(route("r1", ["r1.foo.org"]))
        cluster.apply(route("r2", ["r2.foo.org"], kind="GRPCRoute", ns="other"))
        cluster.apply(gateway(ips=["192.0.2.100"]))
        await store.wait_until(lambda m: has("r1.foo.org.", "192.0.2.100")(m) and has("r2.foo.org.", "192.0.2.100")(m))
        cluster.apply(gateway(ips=["192.0.2.101", "192.0.2.102"]))
        await store.wait_until(
            lambda m: has("r1.foo.org.", "192.0.2.101", "192.0.2.102")(m) and has("r2.foo.org.", "192.0.2.101", "192.0.2.102")(m)
        )
        assert addresses(await query(addr, "r2.foo.org.")) == ["192.0.2.101", "192.0.2.102"]
        # A Hostname address: the routes become CNAMEs to it (never resolved on the query path).
        cluster.apply(gateway(ips=[], hostnames=["gw-lb.example.net"]))
        await store.wait_until(holds("r1.foo.org.", "CNAME", "gw-lb.example.net."))
        assert rdatas("r1.foo.org.", "A")(store.current) == []
        cluster.delete(GW, "Gateway", "infra", "gw")
        await store.wait_until(lambda m: m.get(dns.name.from_text("r1.foo.org.")) is None)


async def test_section_name_listener_hostname_and_accepted(k8sgw, cluster):
    store, addr = k8sgw.stores[0], k8sgw.udp[0]
    listeners = [
        {"name": "plain", "port": 80, "protocol": "HTTP"},
        {"name": "apps", "hostname": "*.apps.foo.org", "port": 443, "protocol": "HTTPS"},
    ]
    accepted = [{"type": "Accepted", "status": "True", "reason": "Accepted"}]
    rejected = [{"type": "Accepted", "status": "False", "reason": "NotAllowedByListeners"}]
    ref = {"name": "gw", "namespace": "infra", "sectionName": "apps"}
    with trio.fail_after(10):
        cluster.apply(gateway(listeners=listeners))
        cluster.apply(route("s", ["a.apps.foo.org", "b.foo.org"], [ref]))
        cluster.apply(route("wild", [], [ref]))  # no hostnames: the listener's
        await store.wait_until(lambda m: has("a.apps.foo.org.", "192.0.2.100")(m) and has("*.apps.foo.org.", "192.0.2.100")(m))
        assert (await query(addr, "b.foo.org.")).rcode() == dns.rcode.NXDOMAIN
        assert addresses(await query(addr, "anything.apps.foo.org.")) == ["192.0.2.100"]
        cluster.apply(route("s", ["a.apps.foo.org"], [ref], parents=[{"parentRef": ref, "controllerName": "x/y", "conditions": rejected}]))
        await store.wait_until(has("a.apps.foo.org."))
        assert addresses(await query(addr, "a.apps.foo.org.")) == ["192.0.2.100"]  # now the wildcard answers it
        cluster.apply(route("s", ["a.apps.foo.org"], [ref], parents=[{"parentRef": ref, "controllerName": "x/y", "conditions": accepted}]))
        await store.wait_until(has("a.apps.foo.org.", "192.0.2.100"))


async def test_dnsendpoint_types_ttl_and_updates(k8sgw, cluster, logs):
    store, addr = k8sgw.stores[0], k8sgw.udp[0]
    long_txt = "k=" + "a" * 400
    with trio.fail_after(10):
        cluster.apply(dnsendpoint(
            "d",
            {"dnsName": "d.foo.org", "recordType": "A", "targets": ["192.0.2.7", "not-an-ip"], "recordTTL": 42},
            {"dnsName": "d.foo.org", "recordType": "TXT", "targets": [long_txt]},
            {"dnsName": "alias.foo.org", "recordType": "CNAME", "targets": ["d.foo.org"]},
        ))
        m = await store.wait_until(has("d.foo.org.", "192.0.2.7"))
        a = await query(addr, "d.foo.org.")
        assert addresses(a) == ["192.0.2.7"] and a.answer[0].ttl == 42
        txt = await query(addr, "d.foo.org.", "TXT", use_edns=0, payload=4096)
        strings = txt.answer[0][0].strings
        assert [len(s) for s in strings] == [255, 147] and b"".join(strings).decode() == long_txt
        assert txt.answer[0].ttl == 60
        assert rdatas("alias.foo.org.", "CNAME")(m) == ["d.foo.org."]
        line = await logs.wait_for("not-an-ip")
        assert "WARNING" in line and "default/d" in line
        cluster.apply(dnsendpoint("d", {"dnsName": "d.foo.org", "recordType": "A", "targets": ["192.0.2.8"]}))
        await store.wait_until(has("d.foo.org.", "192.0.2.8"))
        assert (await query(addr, "d.foo.org.")).answer[0].ttl == 60


async def test_load_balancer_hostname_is_a_cname_ips_win(k8sgw, cluster):
    store = k8sgw.stores[0]
    with trio.fail_after(10):
        cluster.apply(ingress("lbh", "lbh.foo.org", hostname="lb-1.example.net"))
        await store.wait_until(holds("lbh.foo.org.", "CNAME", "lb-1.example.net."))
        both = ingress("lbh", "lbh.foo.org", ip="192.0.2.9")
        both["status"]["loadBalancer"]["ingress"].append({"hostname": "lb-1.example.net"})
        cluster.apply(both)
        m = await store.wait_until(has("lbh.foo.org.", "192.0.2.9"))
        assert rdatas("lbh.foo.org.", "CNAME")(m) == []


async def test_resolve_endpoints_follows_endpointslices(k8sgw, cluster):
    store, addr = k8sgw.stores[0], k8sgw.udp[0]
    svc = service("api", type_="ClusterIP", annotations={"k8s-gateway.dns/resolve-endpoints": "true"})
    with trio.fail_after(10):
        cluster.apply(svc)
        cluster.apply(endpointslice("api-1", "api", [{"addresses": ["192.0.2.31"]}, {"addresses": ["192.0.2.32"], "conditions": {"ready": False}}]))
        cluster.apply(endpointslice("api-2", "api", [{"addresses": ["192.0.2.33"], "conditions": {"ready": True}}, {"addresses": ["192.0.2.31"]}]))
        await store.wait_until(has("api.default.foo.org.", "192.0.2.31", "192.0.2.33"))
        assert addresses(await query(addr, "api.default.foo.org.")) == ["192.0.2.31", "192.0.2.33"]
        cluster.apply(endpointslice("api-1", "api", [{"addresses": ["192.0.2.32"], "conditions": {"ready": True}}]))
        await store.wait_until(has("api.default.foo.org.", "192.0.2.31", "192.0.2.32", "192.0.2.33"))
        cluster.delete("discovery.k8s.io/v1", "EndpointSlice", "default", "api-2")
        await store.wait_until(has("api.default.foo.org.", "192.0.2.32"))
        cluster.delete("discovery.k8s.io/v1", "EndpointSlice", "default", "api-1")
        await store.wait_until(has("api.default.foo.org."))
        assert (await query(addr, "api.default.foo.org.")).rcode() == dns.rcode.NXDOMAIN


async def test_nameserver_hosts_belong_to_the_apex_service(k8sgw, cluster):
    store, addr = k8sgw.stores[0], k8sgw.udp[0]
    with trio.fail_after(10):
        cluster.apply(ingress("thief", "dns1.kube-system.foo.org", "192.0.2.66"))
        cluster.apply(ingress("below", "x.dns1.kube-system.foo.org", "192.0.2.67"))
        cluster.apply(service("dns1", "192.0.2.54", ns="kube-system", labels={"k8s-gateway.dns/ignore": "true"}))
        await store.wait_until(has("dns1.kube-system.foo.org.", "192.0.2.54"))
        assert addresses(await query(addr, "dns1.kube-system.foo.org.")) == ["192.0.2.54"]
        assert (await query(addr, "x.dns1.kube-system.foo.org.")).rcode() == dns.rcode.NXDOMAIN
        ns = await query(addr, "foo.org.", "NS")
        assert [str(r) for rrset in ns.additional for r in rrset] == ["192.0.2.54"]


async def test_filters_and_ignore_label(nursery, tmp_path):
    cluster = DevCluster()
    cluster.apply(gateway("ok", cls="example", ips=["192.0.2.1"]))
    cluster.apply(gateway("other", cls="other", ips=["192.0.2.2"]))
    cluster.apply(route("via-ok", ["via-ok.foo.org"], [{"name": "ok", "namespace": "infra"}]))
    cluster.apply(route("via-other", ["via-other.foo.org"], [{"name": "other", "namespace": "infra"}]))
    cluster.apply(ingress("nginx", "nginx.foo.org", "192.0.2.3", cls="nginx"))
    cluster.apply(ingress("traefik", "traefik.foo.org", "192.0.2.4", cls="traefik"))
    cluster.apply(service("web", "192.0.2.5", labels={"app": "web"}))
    cluster.apply(service("edge", "192.0.2.6", labels={"tier": "edge"}))
    cluster.apply(service("db", "192.0.2.7", labels={"app": "db"}))
    cluster.apply(service("quiet", "192.0.2.8", labels={"app": "web", "k8s-gateway.dns/ignore": "true"}))
    cluster.apply(ingress("quiet", "quiet.foo.org", "192.0.2.9", cls="nginx", labels={"k8s-gateway.dns/ignore": "true"}))
    extra = 'gatewayClasses example\n        ingressClasses nginx\n        serviceLabelSelectors "app=web" "tier in (edge, core)"'
    bound = await k8sgw_for(nursery, cluster, tmp_path, extra=extra)
    store, addr = bound.stores[0], bound.udp[0]
    with trio.fail_after(10):
        m = store.current
        assert has("via-ok.foo.org.", "192.0.2.1")(m) and has("via-other.foo.org.")(m)
        assert has("nginx.foo.org.", "192.0.2.3")(m) and has("traefik.foo.org.")(m)
        assert has("web.default.foo.org.", "192.0.2.5")(m) and has("edge.default.foo.org.", "192.0.2.6")(m)
        assert has("db.default.foo.org.")(m) and has("quiet.default.foo.org.")(m) and has("quiet.foo.org.")(m)
        assert (await query(addr, "db.default.foo.org.")).rcode() == dns.rcode.NXDOMAIN
        # Labels change: the Service leaves one selector and enters the other; the ignore label goes.
        cluster.apply(service("db", "192.0.2.7", labels={"tier": "core"}))
        cluster.apply(service("web", "192.0.2.5", labels={"app": "api"}))
        cluster.apply(ingress("quiet", "quiet.foo.org", "192.0.2.9", cls="nginx"))
        await store.wait_until(lambda m: has("db.default.foo.org.", "192.0.2.7")(m) and has("web.default.foo.org.")(m)
                               and has("quiet.foo.org.", "192.0.2.9")(m))


async def test_crd_installed_later_is_served_without_restart(nursery, tmp_path, logs):
    cluster = DevCluster(groups=["networking.k8s.io", "discovery.k8s.io"])
    cluster.apply(ingress("early", "early.foo.org", "192.0.2.10"))
    bound = await k8sgw_for(nursery, cluster, tmp_path, absent_recheck_interval=0.2)
    store = bound.stores[0]
    with trio.fail_after(10):
        assert has("early.foo.org.", "192.0.2.10")(store.current)  # absent kinds did not block readiness
        await logs.wait_for("watch DNSEndpoint: the API does not serve dnsendpoints.externaldns.k8s.io")
        cluster.enable_group("externaldns.k8s.io")
        cluster.enable_group("gateway.networking.k8s.io")
        cluster.apply(dnsendpoint("late", {"dnsName": "late.foo.org", "recordType": "A", "targets": ["192.0.2.11"]}))
        cluster.apply(gateway())
        cluster.apply(route("late", ["late-route.foo.org"], kind="TLSRoute"))
        await store.wait_until(lambda m: has("late.foo.org.", "192.0.2.11")(m) and has("late-route.foo.org.", "192.0.2.100")(m))
    skipped = [line for line in logs.lines if "does not serve dnsendpoints" in line]
    assert len(skipped) == 1 and skipped[0].startswith("INFO")  # once, not per recheck


async def test_tlsroute_v1alpha2_only_cluster(nursery, tmp_path):
    from k8sgw.devapi.kinds import KINDS as DEV_KINDS

    kinds = [dataclasses.replace(k, versions=("v1alpha2",)) if k.kind == "TLSRoute" else k for k in DEV_KINDS]
    cluster = DevCluster(kinds=kinds)
    cluster.apply(gateway())
    obj = route("old", ["old-tls.foo.org"], kind="TLSRoute")
    obj["apiVersion"] = "gateway.networking.k8s.io/v1alpha2"
    cluster.apply(obj)
    bound = await k8sgw_for(nursery, cluster, tmp_path)
    with trio.fail_after(10):
        await bound.stores[0].wait_until(has("old-tls.foo.org.", "192.0.2.100"))


async def test_forbidden_kind_warns_once_does_not_block_and_recovers(nursery, cluster, tmp_path, logs):
    cluster.faults.forbid("dnsendpoints.externaldns.k8s.io")
    cluster.apply(dnsendpoint("rbac", {"dnsName": "rbac.foo.org", "recordType": "A", "targets": ["192.0.2.12"]}))
    bound = await k8sgw_for(nursery, cluster, tmp_path, forbidden_recheck_interval=0.2)
    store, addr = bound.stores[0], bound.udp[0]
    with trio.fail_after(10):
        assert addresses(await query(addr, "myservicea.foo.org.")) == ["192.0.2.10"]  # ready without it
        line = await logs.wait_for("403 Forbidden")  # not "403": timeoutSeconds may be 403 too
        assert line.startswith("WARNING") and "dnsendpoints" in line and 'verbs: ["list", "watch"]' in line
        await logs.wait_for("still forbidden")  # retried...
        assert len([x for x in logs.lines if "403 Forbidden" in x]) == 1  # ...without a WARNING per retry
        cluster.faults.forbid("dnsendpoints.externaldns.k8s.io", False)
        await store.wait_until(has("rbac.foo.org.", "192.0.2.12"))


@pytest.mark.parametrize("selectors", ['"app=web"', '"app=web" "tier=edge"'])
async def test_label_selectors_never_hide_the_nameserver(nursery, cluster, tmp_path, selectors):
    bound = await k8sgw_for(nursery, cluster, tmp_path, extra=f"serviceLabelSelectors {selectors}")
    m = bound.stores[0].current
    assert has("dns1.kube-system.foo.org.", "192.0.2.53")(m)  # the seeded apex Service, no labels
    assert has("web.default.foo.org.")(m)  # seeded web has no app=web label
