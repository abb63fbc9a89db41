"""Child processes of the peers: wait until one answers its health endpoint, and stop one."""

from __future__ import annotations

import ssl
import subprocess
import time
from pathlib import Path

import httpx

__all__ = ["log_tail", "stop", "wait_ready"]


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_ready(
    proc: subprocess.Popen[bytes],
    name: str,
    url: str,
    log: Path,
    *,
    timeout: float,
    tls: ssl.SSLContext | bool = False,
    interval: float = 0.1,
) -> None:
    """Until `url` answers 200; an exited process or the deadline fails with its log's tail.

    A child process offers no readiness event to wait on, so this asks its health endpoint, as
    kubelet's probes do.
    """
    deadline = time.monotonic() + timeout
    with httpx.Client(verify=tls, timeout=5) as http:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{log_tail(log)}")
            try:
                if http.get(url).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} not ready after {timeout:.0f}s:\n{log_tail(log)}")
            time.sleep(interval)


def stop(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
