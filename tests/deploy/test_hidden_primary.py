"""The hidden-primary overlay: transfer and tsig in the Corefile, the key mounted from a Secret
where the Corefile reads it, and a Service that stays inside the cluster."""

from __future__ import annotations

import base64

import dns.rdatatype

from k8sgw.config import parse_corefile
from tests.deploy.test_kustomize import by_kind, corefiles, render

OVERLAY = "deploy/kustomize/overlays/hidden-primary"


def test_hidden_primary_overlay(tmp_path) -> None:
    objs = render(OVERLAY)
    (svc,) = by_kind(objs, "Service")
    assert svc["spec"]["type"] == "ClusterIP"
    assert not any("nodePort" in p for p in svc["spec"]["ports"])
    (secret,) = by_kind(objs, "Secret")
    (dep,) = by_kind(objs, "Deployment")
    spec = dep["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: m for m in spec["containers"][0]["volumeMounts"]}
    mount = mounts["/etc/k8sgw-tsig"]
    assert mount["readOnly"] is True
    assert volumes[mount["name"]]["secret"]["secretName"] == secret["metadata"]["name"]
    (text,) = corefiles(OVERLAY).values()
    assert "secrets /etc/k8sgw-tsig/keys.conf" in text
    # The Corefile as the pod reads it, with the Secret's file where the mount puts it.
    keys = tmp_path / "keys.conf"
    keys.write_bytes(base64.b64decode(secret["data"]["keys.conf"]))
    cfg = parse_corefile(text.replace("/etc/k8sgw-tsig/keys.conf", str(keys)), filename=str(tmp_path / "Corefile"))
    (server,) = cfg.servers
    assert server.transfer is not None and server.transfer.notify_targets() == (("192.0.2.53", 53), ("192.0.2.54", 53))
    assert [(s.name, s.algorithm) for s in server.tsig.secrets] == [("k8sgw-xfr.", "hmac-sha256.")]
    assert server.tsig.requires(dns.rdatatype.AXFR) and server.tsig.requires(dns.rdatatype.IXFR)
    assert not server.tsig.requires(dns.rdatatype.A)  # everyone else asks unsigned, as before
