"""CoreDNS with the k8s_gateway plugin as a running peer, for the parity tests and the benchmark.

    with CorednsPeer.start(workdir, body, cpu=1) as peer:
        dig @127.0.0.1 -p {peer.port} ...

`body` is the inside of one server block (`k8s_gateway ZONE { kubeconfig ... }` and any other
plugin); this module adds `bind 127.0.0.1` and a `ready` endpoint and chooses the port. The peer is
ready when CoreDNS's `ready` plugin says every plugin is (k8s_gateway: its informers synced), so
`ready_seconds` is the time to a first full answer. GOMAXPROCS=1 and an optional CPU pin match how
the benchmark runs k8sgw.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dns.asyncquery
import dns.exception
import dns.message

from peers import build
from peers.cluster import free_port
from peers.process import stop, wait_ready

__all__ = ["CorednsPeer", "PeerUnavailableError", "server_block"]

_START_TIMEOUT = 60.0


class PeerUnavailableError(RuntimeError):
    """CoreDNS+k8s_gateway is not built here; the message says why (the module proxy's answer)."""


def unavailable_reason() -> str | None:
    """None when the binary is cached; else why not, in one line."""
    if build.COREDNS.binary.exists():
        return None
    refused = build.unavailable_reason(build.COREDNS)
    if refused:
        return f"CoreDNS+k8s_gateway cannot be built here: {refused.splitlines()[0]}"
    if not build.go_available():
        return "CoreDNS+k8s_gateway needs Go 1.26+ (with the module proxy): install Go, then python -m peers.build"
    return "CoreDNS+k8s_gateway is not built: run `python -m peers.build coredns`"


def server_block(zone: str, port: int, ready_port: int, body: str) -> str:
    """One Corefile server block on 127.0.0.1:port with a `ready` endpoint and `body` inside."""
    return f"{zone}:{port} {{\n    bind 127.0.0.1\n    ready 127.0.0.1:{ready_port}\n{body}\n}}\n"


@dataclass
class CorednsPeer:
    port: int
    ready_port: int
    process: subprocess.Popen[bytes]
    log: Path
    ready_seconds: float

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    async def first_reply(self, query: dns.message.Message, tries: int = 20) -> dns.message.Message:
        """The first reply to `query`, asking again each second while CoreDNS may not be listening yet."""
        for _ in range(tries - 1):
            try:
                return await dns.asyncquery.udp(query, "127.0.0.1", port=self.port, timeout=1)
            except dns.exception.Timeout:
                continue
        return await dns.asyncquery.udp(query, "127.0.0.1", port=self.port, timeout=1)

    def rss_bytes(self) -> int:
        """Resident memory now, from /proc (Linux)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS in /proc status")

    @classmethod
    @contextmanager
    def start(
        cls, workdir: Path, zone: str, body: str, *, cpu: int | None = None, wait: bool = True
    ) -> Iterator[CorednsPeer]:
        """Run CoreDNS until the block ends; `wait=False` yields before its plugins are ready."""
        reason = unavailable_reason()
        if reason:
            raise PeerUnavailableError(reason)
        workdir.mkdir(parents=True, exist_ok=True)
        port, ready_port = free_port(), free_port()
        corefile = workdir / "Corefile"
        corefile.write_text(server_block(zone, port, ready_port, body))
        argv = [str(build.COREDNS.binary), "-conf", str(corefile)]
        if cpu is not None and shutil.which("taskset"):
            argv = ["taskset", "-c", str(cpu), *argv]
        log = workdir / "coredns.log"
        started = time.monotonic()
        with log.open("wb") as out:
            proc = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "GOMAXPROCS": "1"},
                cwd=workdir,
            )
        try:
            if wait:
                wait_ready(
                    proc,
                    "coredns",
                    f"http://127.0.0.1:{ready_port}/ready",
                    log,
                    timeout=_START_TIMEOUT,
                    interval=0.05,
                )
            yield cls(port, ready_port, proc, log, time.monotonic() - started)
        finally:
            stop(proc)
