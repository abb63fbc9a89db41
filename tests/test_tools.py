"""Real clients against a running k8sgw: dig and kdig ask, kubectl changes the cluster."""

from __future__ import annotations

import dns.rcode
import pytest
import trio

from tests.conftest import EXAMPLES, addresses, has, query, tool


async def run(*argv: str, **kw) -> str:
    done = await trio.run_process(list(argv), capture_stdout=True, capture_stderr=True, **kw)
    return done.stdout.decode()


@pytest.mark.parametrize("client", ["dig", "kdig"])
async def test_dig_and_kdig(k8sgw, client):
    exe = tool(client)
    host, port = k8sgw.udp[0]
    with trio.fail_after(20):
        short = await run(exe, f"@{host}", "-p", str(port), "myservicea.foo.org", "A", "+short")
        assert short.split() == ["192.0.2.10"]
        tcp = await run(exe, f"@{host}", "-p", str(port), "web.default.foo.org", "A", "+tcp", "+short")
        assert tcp.split() == ["192.0.2.20"]
        full = await run(exe, f"@{host}", "-p", str(port), "nothing.foo.org", "A")
        assert "NXDOMAIN" in full
        assert "dns1.kube-system.foo.org." in full  # the SOA in the authority section


def kubectl_env(tmp_path) -> dict[str, str]:
    return {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "KUBECACHEDIR": str(tmp_path / "cache")}


async def test_kubectl_apply_and_delete_change_answers(k8sgw, kubeconfig, tmp_path):
    kubectl = tool("kubectl")
    store, addr = k8sgw.stores[0], k8sgw.udp[0]
    base = [kubectl, "--kubeconfig", str(kubeconfig)]
    env = kubectl_env(tmp_path)
    with trio.fail_after(60):
        listed = await run(*base, "get", "ingress", "-A", env=env)
        assert "myservicea" in listed
        await run(*base, "apply", "-f", str(EXAMPLES / "myserviceb.yaml"), env=env)
        await store.wait_until(has("myserviceb.foo.org.", "192.0.2.11"))
        assert addresses(await query(addr, "myserviceb.foo.org.")) == ["192.0.2.11"]
        await run(*base, "apply", "-f", str(EXAMPLES / "myservicea-moved.yaml"), env=env)
        await store.wait_until(has("myservicea.foo.org.", "192.0.2.12"))
        assert addresses(await query(addr, "myservicea.foo.org.")) == ["192.0.2.12"]
        await run(*base, "delete", "-f", str(EXAMPLES / "myserviceb.yaml"), env=env)
        await store.wait_until(has("myserviceb.foo.org."))
        assert (await query(addr, "myserviceb.foo.org.")).rcode() == dns.rcode.NXDOMAIN
