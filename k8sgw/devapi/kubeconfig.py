"""write_kubeconfig: a kubeconfig (v1) that points kubectl or any client at a dev API server."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import yaml

__all__ = ["write_kubeconfig"]

NAME = "k8sgw-dev"


def write_kubeconfig(
    path: str | Path,
    base_url: str,
    *,
    token: str | None = None,
    ca_pem: bytes | None = None,
    namespace: str = "default",
    insecure_skip_tls_verify: bool = False,
) -> Path:
    """Write a single-context kubeconfig (mode 0600) and return its path.

    Over http:// kubectl ignores `token`; use https with `ca_pem` for authenticated access."""
    path = Path(path)
    cluster: dict[str, Any] = {"server": base_url}
    if ca_pem is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    elif insecure_skip_tls_verify:
        cluster["insecure-skip-tls-verify"] = True
    user: dict[str, Any] = {"token": token} if token else {}
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": NAME, "cluster": cluster}],
        "users": [{"name": NAME, "user": user}],
        "contexts": [{"name": NAME, "context": {"cluster": NAME, "user": NAME, "namespace": namespace}}],
        "current-context": NAME,
        "preferences": {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    return path
