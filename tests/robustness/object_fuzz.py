"""The object fuzz: random Kubernetes objects through the translators and the indexer.

    python -m tests.robustness.object_fuzz --objects 100000 [--seed S]

Every field a translator reads gets random strings: host names with empty, long, non-ASCII,
wildcard and odd labels; addresses with zone indexes, bad octets and garbage; DNSEndpoint record
types, numbers in other scripts' digits, huge TXT targets; annotations, labels, parentRefs,
listeners and EndpointSlices. Each object is validated into its model (as the watcher does: one
that the model refuses is the watcher's to skip and is counted, not a crash), translated on its
own (`translate`), and applied to one RecordStore with random deletions, so Gateways and
EndpointSlices re-translate what depends on them. A crash is an exception escaping either, or a
published map that breaks what answering relies on (a CNAME beside other data, an apex without
SOA, an RRset larger than a reply can carry).

Prints `objects=N crashes=C refused=R duration=Ss rate=R/s seed=S` and exits 1 if C > 0, with the
first crashing objects and their tracebacks.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

import dns.name
import dns.rdatatype
import pydantic

from k8sgw.kubeapi.events import Deleted, Synced, Upserted
from k8sgw.kubeapi.kinds import KINDS
from k8sgw.records.recordmap import RecordMap
from k8sgw.records.sources import RRSET_BYTES_MAX, record_bytes, translate
from k8sgw.records.store import RecordStore, ZoneSettings

ZONES = ("foo.org.", "sub.foo.org.", "example.com.")
RESOURCES = ("HTTPRoute", "TLSRoute", "GRPCRoute", "Ingress", "Service", "DNSEndpoint")
NAMESPACES = ("default", "kube-system", "infra", "x")

_PIECES = (
    "", "a", "web", "foo", "org", "sub", "example", "com", "*", "-", "_", "xn--bcher-kva", "bücher", "²",
    "١", "a" * 63, "a" * 64, "b" * 200, "dns1", "kube-system", "bad_host!", " ", ".", "..", "\x00", "\t",
    "ß", "İ", "0", "192", "1", "@", "%eth0", "::", "fe80", "/", "Ü", "\u200b", "é",
)

class Gen:
    """Random field values, biased towards what a parser gets wrong."""

    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)

    def pick(self, seq):
        return self.r.choice(seq)

    def text(self, max_len: int = 40) -> str:
        r = self.r
        roll = r.random()
        if roll < 0.15:
            return "".join(chr(r.randrange(0x20, 0x3000)) for _ in range(r.randrange(max_len)))
        if roll < 0.2:
            return "".join(chr(r.randrange(0, 0x110000)) for _ in range(r.randrange(8))).encode(
                "utf-8", "replace").decode("utf-8", "replace")
        return "".join(r.choice(_PIECES) for _ in range(r.randrange(1, 6)))

    def host(self) -> str:
        r = self.r
        roll = r.random()
        if roll < 0.45:
            labels = [self.pick(("a", "web", "*", "x-y", "b1", "_s", "Web", "a" * r.randrange(1, 70))) for _ in range(r.randrange(0, 4))]
            return ".".join([*labels, self.pick(ZONES).rstrip(".")]) + self.pick(("", ".", ". ", ".."))
        if roll < 0.55:
            return ".".join("a" * r.randrange(1, 64) for _ in range(r.randrange(1, 8)))  # long names
        if roll < 0.65:
            return self.pick(("foo.org", "dns1.kube-system.foo.org", "a.dns1.kube-system.foo.org", "example.com."))
        return self.text()

    def ip(self) -> str:
        r = self.r
        roll = r.random()
        if roll < 0.4:
            return f"192.0.2.{r.randrange(0, 300)}"
        if roll < 0.55:
            return f"2001:db8::{r.randrange(0, 0x1ffff):x}" + self.pick(("", "%eth0", "%1", "/64"))
        if roll < 0.65:
            return self.pick(("0.0.0.0", "::", "fe80::1%eth0", "::ffff:192.0.2.1", "255.255.255.255", " 192.0.2.1 "))
        return self.text(20)

    def number(self) -> str:
        return self.pick(("0", "10", "65535", "65536", "-1", "²", "١٢", "1e3", "", "007", "99999999999999"))

    def target(self, record_type: str) -> str:
        r = self.r
        if record_type in ("MX", "SRV") and r.random() < 0.7:
            n = 1 if record_type == "MX" else 3
            return " ".join([self.number() for _ in range(n)] + [self.pick((self.host(), "."))])
        if record_type == "TXT" and r.random() < 0.05:
            return "t" * self.pick((255, 256, 65000, 65535, 70000))
        return self.pick((self.ip(), self.host(), self.text()))

    def maybe(self, value: Callable[[], Any], p: float = 0.8) -> Any:
        """value(), else null or "" (other JSON types in a string field are the model's to refuse:
        a few are sent by `obj`, not many, so the translators get most of the objects)."""
        return value() if self.r.random() < p else self.pick((None, ""))

    def many(self, value: Callable[[], Any], most: int = 4, *, huge: bool = False) -> list[Any]:
        """Up to `most` values; where `huge`, now and then 100 to 3,000 (lists of lists stay small)."""
        r = self.r
        n = r.randrange(100, 3000) if huge and r.random() < 0.02 else r.randrange(most + 1)
        return [value() for _ in range(n)]

    def meta(self, kind: str) -> dict[str, Any]:
        r = self.r
        annotations: dict[str, Any] = {}
        if r.random() < 0.5:
            annotations[self.pick(("coredns.io/hostname", "external-dns.alpha.kubernetes.io/hostname"))] = ",".join(
                self.many(self.host, 3))
        if r.random() < 0.3:
            annotations["k8s-gateway.dns/resolve-endpoints"] = self.pick(("true", "TRUE", " true ", "false", self.text()))
        labels: dict[str, Any] = {}
        if r.random() < 0.1:
            labels["k8s-gateway.dns/ignore"] = self.pick(("true", "false", self.text()))
        if r.random() < 0.3:
            labels["kubernetes.io/service-name"] = self.pick(("web", "api", "dns1", self.text()))
        if r.random() < 0.2:
            labels[self.text(10)] = self.text(10)
        name = self.pick(("web", "api", "dns1", "gw", "a", "b", self.text(20)))
        if kind == "Service" and r.random() < 0.05:
            name, namespace = "dns1", "kube-system"
        else:
            namespace = self.pick((*NAMESPACES, self.text(10)))
        return {"name": name, "namespace": namespace, "labels": labels, "annotations": annotations,
                "resourceVersion": self.pick(("", "1", "12", self.text(5)))}

    def lb(self) -> dict[str, Any]:
        return {"ingress": self.many(lambda: {"ip": self.maybe(self.ip, 0.6), "hostname": self.maybe(self.host, 0.3)}, huge=True)}

    def obj(self, kind: str) -> dict[str, Any]:
        if self.r.random() < 0.02:
            return {"metadata": self.meta(kind), "spec": self.pick(([], "x", {"rules": {}}, {"type": 1}))}
        meta = self.meta(kind)
        if kind == "Ingress":
            return {"metadata": meta, "spec": {"ingressClassName": self.maybe(self.text, 0.2),
                                               "rules": self.many(lambda: {"host": self.maybe(self.host)}, huge=True)},
                    "status": {"loadBalancer": self.lb()}}
        if kind == "Service":
            return {"metadata": meta, "spec": {"type": self.pick(("LoadBalancer", "ClusterIP", "LoadBalancer", self.text(8))),
                                               "externalIPs": self.many(self.ip, 2) if self.r.random() < 0.3 else None},
                    "status": {"loadBalancer": self.lb()}}
        if kind == "EndpointSlice":
            return {"metadata": meta, "addressType": self.pick(("IPv4", "IPv6", "FQDN", self.text(5))),
                    "endpoints": self.many(lambda: {"addresses": self.many(self.ip, 2),
                                                    "conditions": {"ready": self.pick((True, False, None))}}, huge=True)}
        if kind == "Gateway":
            return {"metadata": meta,
                    "spec": {"gatewayClassName": self.pick(("example", self.text(5))),
                             "listeners": self.many(lambda: {"name": self.pick(("http", "shop", self.text(5))),
                                                             "hostname": self.maybe(self.host, 0.5)}, 70 if self.r.random() < 0.05 else 4)},
                    "status": {"addresses": self.many(lambda: {"type": self.pick((None, "IPAddress", "Hostname", "NamedAddress", self.text(5))),
                                                               "value": self.pick((self.ip(), self.host()))})}}
        if kind in ("HTTPRoute", "TLSRoute", "GRPCRoute"):
            def ref() -> dict[str, Any]:
                return {"name": self.pick(("gw", "web", self.text(5))), "namespace": self.maybe(lambda: self.pick(NAMESPACES), 0.5),
                        "group": self.pick((None, "gateway.networking.k8s.io", "", self.text(5))),
                        "kind": self.pick((None, "Gateway", "Service")), "sectionName": self.maybe(lambda: self.pick(("http", "shop")), 0.3),
                        "port": self.pick((None, 80, 65536))}
            parents = self.many(lambda: {"parentRef": ref(), "conditions": [{"type": "Accepted", "status": self.pick(("True", "False"))}]}, 2)
            return {"metadata": meta, "spec": {"parentRefs": self.many(ref, 3), "hostnames": self.many(self.host, 3, huge=True)},
                    "status": {"parents": parents if self.r.random() < 0.4 else []}}
        # DNSEndpoint
        def ep() -> dict[str, Any]:
            record_type = self.pick(("A", "AAAA", "CNAME", "TXT", "MX", "SRV", "a", "NS", "PTR", self.text(4)))
            return {"dnsName": self.host(), "recordType": record_type,
                    "targets": self.many(lambda: self.target(record_type.upper()), 3),
                    "recordTTL": self.pick((0, 60, -1, 2**31, 2**40))}
        return {"metadata": meta, "spec": {"endpoints": self.many(ep, 4, huge=True)}}

def check_map(m: RecordMap) -> str | None:
    """What answering relies on, in one published map; a message when it does not hold."""
    for key, node in m.nodes.items():
        if dns.rdatatype.CNAME in node.rrsets and len(node.rrsets) > 1:
            return f"{key}: a CNAME beside other data"
        for rdtype, rdatas in node.rrsets.items():
            if sum(record_bytes(r) for r in rdatas) > RRSET_BYTES_MAX:
                return f"{key} {dns.rdatatype.to_text(rdtype)}: larger than a reply can carry"
    for zone in ZONES:
        apex = m.get(dns.name.from_text(zone))
        if apex is None or dns.rdatatype.SOA not in apex.rrsets or dns.rdatatype.CNAME in apex.rrsets:
            return f"{zone}: apex without SOA, or with a CNAME"
    return None

KINDS_FUZZED = (*RESOURCES, "Gateway", "EndpointSlice")

def run(objects: int, seed: int, *, check_every: int = 500) -> tuple[int, int, list[str]]:
    """Fuzz `objects` objects; returns (crashes, refused by the model, reports of the first crashes)."""

    gen = Gen(seed)
    settings = ZoneSettings(ZONES, secondary="ns2.kube-system")
    store = RecordStore(settings, RESOURCES)
    store.apply([Synced(kind, ()) for kind in store.kinds])
    crashes, refused, reports = 0, 0, []
    for i in range(objects):
        kind = gen.pick(KINDS_FUZZED)
        raw = gen.obj(kind)
        try:
            obj = KINDS[kind].model.model_validate(raw)
        except pydantic.ValidationError:
            refused += 1
            continue
        try:
            if kind not in ("Gateway", "EndpointSlice"):
                translate(kind, obj, settings.scope)
            events = [Upserted(kind, obj)]
            if gen.r.random() < 0.1:
                events.append(Deleted(gen.pick(KINDS_FUZZED), gen.pick(NAMESPACES), gen.pick(("web", "api", "gw", "a"))))
            store.apply(events)
            if i % check_every == 0 and (problem := check_map(store.current)) is not None:
                raise AssertionError(problem)
        except Exception:  # what the fuzz is looking for
            crashes += 1
            if len(reports) < 5:
                reports.append(f"object {i} ({kind}, seed {seed}): {raw!r:.2000}\n{traceback.format_exc()}")
    if (problem := check_map(store.current)) is not None:
        crashes += 1
        reports.append(f"final map: {problem}")
    return crashes, refused, reports

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.robustness.object_fuzz", description=__doc__.split("\n\n")[0])
    p.add_argument("--objects", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=20261202)
    args = p.parse_args(argv)
    logging.disable(logging.WARNING)  # every object warns: the fuzz counts crashes, not lines
    start = time.perf_counter()
    crashes, refused, reports = run(args.objects, args.seed)
    duration = time.perf_counter() - start
    for report in reports:
        print(report, file=sys.stderr)
    print(f"objects={args.objects} crashes={crashes} refused={refused} duration={duration:.1f}s "
          f"rate={args.objects / duration:.0f}/s seed={args.seed}")
    return 1 if crashes else 0

if __name__ == "__main__":
    sys.exit(main())
