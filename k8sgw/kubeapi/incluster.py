"""Service-account discovery: the Connection a pod gets from its environment and mounted token.

As client-go's rest.InClusterConfig: the API is https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT,
the bearer token is the projected `token` file (re-read as the kubelet rotates it), and `ca.crt`
is the CA. This module reads no kubeconfig and never logs or raises the token.
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Mapping

from k8sgw.kubeapi.auth import TokenAuth
from k8sgw.kubeapi.connection import Connection
from k8sgw.kubeapi.errors import KubeconfigError
from k8sgw.kubeapi.tls import ssl_context

__all__ = ["DEFAULT_INCLUSTER_DIR", "incluster_connection", "incluster_unavailable_reason"]

logger = logging.getLogger(__name__)

DEFAULT_INCLUSTER_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def incluster_unavailable_reason(env: Mapping[str, str], incluster_dir: str) -> str | None:
    """Why the in-cluster configuration cannot be used, or None when it can (client-go's Possible())."""
    if not env.get("KUBERNETES_SERVICE_HOST") or not env.get("KUBERNETES_SERVICE_PORT"):
        return "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set"
    token_file = os.path.join(incluster_dir, "token")
    if not os.path.isfile(token_file):
        return f"KUBERNETES_SERVICE_HOST is set but {token_file} does not exist"
    return None


def incluster_connection(
    env: Mapping[str, str], incluster_dir: str = DEFAULT_INCLUSTER_DIR
) -> Connection | None:
    """The service account's Connection, or None when not running in a cluster.

    "In a cluster" means both KUBERNETES_SERVICE_* variables are non-empty and the token file
    exists (a pod with automountServiceAccountToken: false falls through to kubeconfig).

    Raises:
        KubeconfigError: the token file exists but cannot be read, or ca.crt is not a certificate.
    """
    if incluster_unavailable_reason(env, incluster_dir) is not None:
        return None
    host = env["KUBERNETES_SERVICE_HOST"]
    port = env["KUBERNETES_SERVICE_PORT"]
    if ":" in host and not host.startswith("["):  # JoinHostPort: IPv6 literals get brackets
        host = f"[{host}]"
    base_url = f"https://{host}:{port}"

    token_file = os.path.join(incluster_dir, "token")
    auth = TokenAuth(token_file=token_file)
    try:
        with open(token_file, "rb"):
            pass
    except OSError as exc:
        raise KubeconfigError(
            f"cannot read service account token: {exc.strerror}", filename=token_file
        ) from exc

    ca_file = os.path.join(incluster_dir, "ca.crt")
    verify: ssl.SSLContext
    if os.path.exists(ca_file):
        try:
            verify = ssl_context(ca_file=ca_file)
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise KubeconfigError(
                "service account CA is not a readable PEM certificate", filename=ca_file
            ) from exc
    else:
        # client-go only logs this and falls back to the system roots.
        logger.warning("%s does not exist; verifying the API server against the system CAs", ca_file)
        verify = ssl_context()
    return Connection(
        base_url=base_url, verify=verify, auth=auth, source=f"in-cluster service account ({base_url})"
    )
