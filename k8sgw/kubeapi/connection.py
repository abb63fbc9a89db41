"""How to reach one API server: what kubeconfig.py / incluster.py resolve and client.py uses.

Kept apart so that credential resolution and the HTTP client do not import each other.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import httpx

__all__ = ["Connection"]


@dataclass(frozen=True)
class Connection:
    """Everything needed to open an httpx client to one API server.

    Attributes:
        base_url: "https://host:port" (or "http://..."), no trailing slash, possibly with a path prefix.
        verify: an SSLContext carrying the CA and any client certificate, or False for
            insecure-skip-tls-verify; irrelevant for http.
        auth: an httpx.Auth that adds the bearer token or basic credentials, re-reads token files,
            runs exec plugins and retries once after a 401; None over http (as client-go: no
            credentials are sent over plain http) or when the client certificate is the credential.
        tls_server_name: SNI and certificate name to check instead of the URL's host, if set.
        source: where this came from, for logs ("kubeconfig /x/config, context dev", "in-cluster");
            never contains secrets.
    """

    base_url: str
    verify: ssl.SSLContext | bool = True
    auth: httpx.Auth | None = None
    tls_server_name: str | None = None
    source: str = ""
