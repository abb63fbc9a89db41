"""Fixtures for the tests against a real kube-apiserver + etcd (built by `python -m peers.build`).

One control plane per test session (it starts in a few seconds, but its CRDs take longer), with the
Gateway API CRDs installed, RBAC on, and k8sgw's ServiceAccount bound to exactly the ClusterRole of
deploy/kustomize. Tests keep to their own names, so they can share it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import dns.asyncquery
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import pytest
import trio
import yaml

from k8sgw.records.recordmap import RecordMap
from peers import build, versions
from peers.cluster import RealCluster, kubectl_binary
from tests.conftest import FAST_RETRY, tool

REPO = Path(__file__).resolve().parents[2]
RBAC_YAML = REPO / "deploy" / "kustomize" / "base" / "rbac.yaml"
K8SGW_NAMESPACE = "k8sgw"
# The Gateway API CRDs k8sgw reads (GatewayClass too: Gateways name one).
GATEWAY_CRDS = ("gatewayclasses", "gateways", "httproutes", "grpcroutes", "tlsroutes")
DNSENDPOINT_CRD = "dnsendpoints.externaldns.k8s.io"

# Pages of two objects, so every list of more than two takes continue tokens; CRDs and RBAC fixes
# are looked for again within a second.
REAL_POLICY = dataclasses.replace(
    FAST_RETRY, list_page_size=2, absent_recheck_interval=0.5, forbidden_recheck_interval=0.5
)


def need_peers() -> None:
    """Skip (or, with CI set, fail) unless kube-apiserver, etcd and kubectl are there."""
    missing = [p.name for p in (build.KUBE_APISERVER, build.ETCD) if not p.binary.exists()]
    if not missing and kubectl_binary():
        return
    if os.environ.get("CI"):
        pytest.fail(f"{', '.join(missing) or 'kubectl'} missing: .ci/run builds them (python -m peers.build)")
    if missing and not build.go_available():
        pytest.skip(
            "real-API tests need Go 1.26+ (with the module proxy): install Go, then python -m peers.build"
        )
    if missing:
        pytest.skip(f"{', '.join(missing)} not built: run `python -m peers.build` (a few minutes, once)")
    pytest.skip("kubectl is not installed")


def module_dir(module: str, version: str) -> Path:
    """Where the Go module cache holds `module@version` (downloaded now if it is not there)."""
    try:
        return build.module_dir(module, version)
    except build.BuildError as err:
        pytest.fail(str(err))


def gateway_crds() -> list[Path]:
    root = module_dir("sigs.k8s.io/gateway-api", versions.GATEWAY_API) / "config" / "crd" / "standard"
    return [root / f"gateway.networking.k8s.io_{plural}.yaml" for plural in GATEWAY_CRDS]


def has_rdata(name: str, rdtype: str, *values: str) -> Callable[[RecordMap], bool]:
    """A RecordMap predicate: `name` has exactly these `rdtype` records (none: it has none)."""
    owner, rt = dns.name.from_text(name), dns.rdatatype.from_text(rdtype)

    def check(records: RecordMap) -> bool:
        return sorted(str(r) for r in records.rdatas(owner, rt)) == sorted(values)

    return check


async def patch_status(cluster: RealCluster, namespace: str, patches: Iterable[tuple[str, str, str]]) -> None:
    """Write (resource, name, merge patch) through the /status subresource, as a controller does."""
    for resource, name, patch in patches:
        await kubectl(
            cluster,
            "patch",
            resource,
            name,
            "-n",
            namespace,
            "--subresource=status",
            "--type=merge",
            "-p",
            patch,
        )


def dnsendpoint_crd() -> Path:
    root = module_dir("sigs.k8s.io/external-dns", versions.EXTERNAL_DNS)
    return root / "config" / "crd" / "standard" / f"{DNSENDPOINT_CRD}.yaml"


def reduced_cluster_role(name: str, drop_resource: str) -> str:
    """deploy/'s ClusterRole and binding, renamed, with one resource taken out of its rules."""
    docs = list(yaml.safe_load_all(RBAC_YAML.read_text()))
    out = []
    for doc in docs:
        doc["metadata"]["name"] = name
        if doc["kind"] == "ClusterRole":
            for rule in doc["rules"]:
                rule["resources"] = [r for r in rule["resources"] if r != drop_resource]
            doc["rules"] = [r for r in doc["rules"] if r["resources"]]
        if doc["kind"] == "ClusterRoleBinding":
            doc["roleRef"]["name"] = name
            doc["subjects"][0]["name"] = name
        out.append(doc)
    return yaml.safe_dump_all(out)


@pytest.fixture(scope="session")
def real_cluster(tmp_path_factory) -> Iterator[RealCluster]:
    need_peers()
    workdir = tmp_path_factory.mktemp("realapi")
    # Progress notifications every second let the watch cache advance (and send BOOKMARKs) while
    # other kinds change; ingresses bypass the watch cache, so a watch on them meets etcd's own
    # compaction (a real 410) rather than the cache's window.
    with RealCluster.start(
        workdir,
        etcd_args=["--watch-progress-notify-interval=1s"],
        apiserver_args=["--watch-cache-sizes=ingresses.networking.k8s.io#0"],
    ) as cluster:
        for crd in gateway_crds():
            cluster.kubectl("apply", "--server-side", "-f", str(crd))
        for plural in GATEWAY_CRDS:
            cluster.wait_established(f"{plural}.gateway.networking.k8s.io")
        cluster.kubectl("create", "namespace", K8SGW_NAMESPACE)
        cluster.kubectl("apply", "-n", K8SGW_NAMESPACE, "-f", str(RBAC_YAML))
        yield cluster


@pytest.fixture(scope="session")
def k8sgw_token(real_cluster: RealCluster) -> str:
    """A token of k8sgw's ServiceAccount (deploy/'s ClusterRole, nothing more)."""
    return real_cluster.service_account_token(K8SGW_NAMESPACE, "k8sgw")


@pytest.fixture(scope="session")
def k8sgw_kubeconfig(real_cluster: RealCluster, k8sgw_token: str, tmp_path_factory) -> Path:
    return real_cluster.token_kubeconfig(tmp_path_factory.mktemp("sa") / "kubeconfig", k8sgw_token)


@pytest.fixture(scope="session")
def with_dnsendpoints(real_cluster: RealCluster) -> RealCluster:
    """The cluster with external-dns's DNSEndpoint CRD installed."""
    real_cluster.kubectl("apply", "--server-side", "-f", str(dnsendpoint_crd()))
    real_cluster.wait_established(DNSENDPOINT_CRD)
    return real_cluster


async def kubectl(cluster: RealCluster, *args: str, stdin: str | None = None) -> str:
    """kubectl from inside a trio test, without blocking the servers running in it."""
    return await trio.to_thread.run_sync(lambda: cluster.kubectl(*args, input=stdin).stdout)


@dataclasses.dataclass(frozen=True)
class Answer:
    """What a reply says, in a form both dnspython's and dig's replies reduce to."""

    rcode: str
    answer: tuple[str, ...]  # "owner TYPE rdata", sorted, TTLs left out
    authority: tuple[str, ...]


def _rr_lines(section) -> tuple[str, ...]:
    return tuple(
        sorted(
            f"{rrset.name.to_text().lower()} {dns.rdatatype.to_text(rrset.rdtype)} {rd.to_text().lower()}"
            for rrset in section
            for rd in rrset
        )
    )


async def ask_dnspython(addr: tuple[str, int], name: str, rdtype: str = "A", **kw) -> Answer:
    q = dns.message.make_query(name, rdtype, **kw)
    reply = await dns.asyncquery.udp(q, addr[0], port=addr[1], timeout=5)
    return Answer(dns.rcode.to_text(reply.rcode()), _rr_lines(reply.answer), _rr_lines(reply.authority))


async def ask_dig(addr: tuple[str, int], name: str, rdtype: str = "A") -> Answer:
    proc = await trio.run_process(
        [
            tool("dig"),
            f"@{addr[0]}",
            "-p",
            str(addr[1]),
            name,
            rdtype,
            "+norecurse",
            "+time=3",
            "+tries=1",
            "+nocmd",
            "+nostats",
            "+noquestion",
        ],
        capture_stdout=True,
        check=False,
    )
    text = proc.stdout.decode()
    if proc.returncode != 0:
        raise AssertionError(f"dig {name} {rdtype} failed ({proc.returncode}):\n{text}")
    rcode = text.split("status: ", 1)[1].split(",", 1)[0]
    sections: dict[str, list[str]] = {"ANSWER": [], "AUTHORITY": []}
    current = None
    for line in text.splitlines():
        if line.startswith(";; ") and line.endswith(" SECTION:"):
            current = line[3:].split()[0]
            continue
        if not line.strip() or line.startswith(";"):
            current = None if not line.strip() else current
            continue
        if current in sections:
            owner, _ttl, _cls, rtype, rdata = line.split(None, 4)
            sections[current].append(f"{owner.lower()} {rtype} {rdata.lower()}")
    return Answer(rcode, tuple(sorted(sections["ANSWER"])), tuple(sorted(sections["AUTHORITY"])))


async def ask(addr: tuple[str, int], name: str, rdtype: str = "A") -> Answer:
    """The reply to one question, asked with dnspython and with dig; both must read it the same."""
    ours = await ask_dnspython(addr, name, rdtype)
    digs = await ask_dig(addr, name, rdtype)
    assert ours == digs, f"dnspython and dig disagree on {name} {rdtype}:\n{ours}\n{digs}"
    return ours


def rdatas(answer: Answer, rdtype: str = "A") -> list[str]:
    return sorted(line.split(" ", 2)[2] for line in answer.answer if line.split(" ")[1] == rdtype)
