"""The dual-nameserver deployment of k8s_gateway's README: two k8sgw instances, each naming the
other as `secondary`, publish the same SOA, NS set and glue, so a delegation to both is consistent."""

from __future__ import annotations

import dns.rcode
import dns.rdatatype
import trio

from tests.conftest import has, query, start_k8sgw
from tests.test_app import ingress, lb_service


def pair_corefile(kubeconfig, apex: str, secondary: str) -> str:
    return f"""
foo.org {{
    bind 127.0.0.1
    k8s_gateway foo.org {{
        kubeconfig {kubeconfig}
        apex {apex}
        secondary {secondary}
    }}
}}
"""


def sections(reply) -> tuple[list[str], list[str]]:
    answer = sorted(line for rrset in reply.answer for line in str(rrset).splitlines())
    additional = sorted(line for rrset in reply.additional for line in str(rrset).splitlines())
    return answer, additional


async def test_pair_agrees_on_soa_ns_and_glue(nursery, kubeconfig, cluster):
    cluster.apply(lb_service("dns2", "192.0.2.54", ns="kube-system"))
    one = await start_k8sgw(nursery, pair_corefile(kubeconfig, "dns1.kube-system", "dns2.kube-system"))
    two = await start_k8sgw(nursery, pair_corefile(kubeconfig, "dns2.kube-system", "dns1.kube-system"))
    with trio.fail_after(10):
        # A change after both have synced: each sees the same event, so the serials agree too.
        cluster.apply(ingress("pair", "pair.foo.org", "192.0.2.99"))
        for bound in (one, two):
            await bound.stores[0].wait_until(has("pair.foo.org.", "192.0.2.99"))
        replies = {}
        for name, bound in (("one", one), ("two", two)):
            addr = bound.udp[0]
            replies[name] = {
                "soa": await query(addr, "foo.org.", "SOA"),
                "ns": await query(addr, "foo.org.", "NS"),
                "ns1": await query(addr, "dns1.kube-system.foo.org.", "A"),
                "ns2": await query(addr, "dns2.kube-system.foo.org.", "A"),
                "below": await query(addr, "x.dns2.kube-system.foo.org.", "A"),
                "ns_txt": await query(addr, "dns2.kube-system.foo.org.", "TXT"),
            }
    for kind in ("soa", "ns", "ns1", "ns2"):
        assert sections(replies["one"][kind]) == sections(replies["two"][kind]), kind
    ns_answer, glue = sections(replies["one"]["ns"])
    assert ns_answer == [
        "foo.org. 60 IN NS dns1.kube-system.foo.org.",
        "foo.org. 60 IN NS dns2.kube-system.foo.org.",
    ]
    assert glue == [
        "dns1.kube-system.foo.org. 60 IN A 192.0.2.53",
        "dns2.kube-system.foo.org. 60 IN A 192.0.2.54",
    ]
    soa = replies["one"]["soa"].answer[0][0]
    assert str(soa.mname) == "dns1.kube-system.foo.org."  # the pair's first name, on both
    for name in ("one", "two"):
        assert replies[name]["below"].rcode() == dns.rcode.NXDOMAIN  # below a nameserver host
        nodata = replies[name]["ns_txt"]
        assert (nodata.rcode(), nodata.answer) == (dns.rcode.NOERROR, [])
        assert nodata.authority[0].rdtype == dns.rdatatype.SOA
