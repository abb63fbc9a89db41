"""serve_devapi: run the dev API server's ASGI app under hypercorn's trio worker.

HTTP/1.1 only (ALPN `http/1.1`): watch streams are chunked bodies, one event per chunk.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from typing import NoReturn

import hypercorn.trio
import trio
from hypercorn.config import Config

from .app import DevApiApp
from .store import DevCluster

__all__ = ["serve_devapi"]

logger = logging.getLogger(__name__)


class _Config(Config):
    """hypercorn Config that can use a ready-made SSLContext instead of cert/key files."""

    ready_ssl_context: ssl.SSLContext | None = None

    @property
    def ssl_enabled(self) -> bool:
        return self.ready_ssl_context is not None or super().ssl_enabled

    def create_ssl_context(self) -> ssl.SSLContext | None:
        if self.ready_ssl_context is not None:
            return self.ready_ssl_context
        return super().create_ssl_context()


async def serve_devapi(
    cluster: DevCluster,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    ssl_context: ssl.SSLContext | None = None,
    certfile: str | Path | None = None,
    keyfile: str | Path | None = None,
    token: str | None = None,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Serve `cluster` over HTTP(S) until cancelled.

    Args:
        ssl_context: a server SSLContext (its ALPN is set to http/1.1); or `certfile`/`keyfile` paths.
        token: if given, every request except /healthz, /readyz, /livez needs `Authorization: Bearer <token>`
            (rotate later with `cluster.set_token`). kubectl sends tokens only over https.

    Calls `task_status.started(base_url)` once bound, e.g. "http://127.0.0.1:41234".
    Never returns unless cancelled.
    """
    if token is not None:
        cluster.set_token(token)
    config = _Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.alpn_protocols = ["http/1.1"]
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")  # our logging config, not a second handler
    config.graceful_timeout = 0.5  # open watch streams never finish on their own
    if ssl_context is not None:
        ssl_context.set_alpn_protocols(["http/1.1"])
        config.ready_ssl_context = ssl_context
    elif certfile is not None and keyfile is not None:
        config.certfile, config.keyfile = str(certfile), str(keyfile)
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(hypercorn.trio.serve, DevApiApp(cluster), config)
        logger.info("dev API server listening on %s", binds[0])
        task_status.started(binds[0])
    raise AssertionError("hypercorn.trio.serve returned")
