"""The k8sgw configurations the benchmark runs side by side, each as its own process in the same run.

- "plain": k8s_gateway alone (plus any `--plugin` lines): what the fast path can do.
- "deployed": the directives of the Corefile `kubectl apply -k deploy/kustomize/base` ships
  (errors, health, ready, prometheus, reload), read from its ConfigMap so the benchmark follows
  that file; their listen addresses become 127.0.0.1 port 0, so nothing collides.
- "log": `log` (a line per query, CoreDNS's common format) at -log.level info.

Each has its own targets against NSD (bench.report); the same answers come out of all three (the
fast-path property test runs the same configurations).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CONFIGS", "Config", "deployed_directives", "select"]

DEPLOYED_COREFILE = Path(__file__).resolve().parent.parent / "deploy/kustomize/base/configmap.yaml"
# A directive's listen address (":8080", "0.0.0.0:9153"): rebound to a free port on loopback.
_LISTEN = re.compile(r"^(health|ready|prometheus)\s+\S*:\d+")


@dataclass(frozen=True)
class Config:
    name: str  # the server's name in the results: "k8sgw", "k8sgw deployed", "k8sgw log"
    key: str  # what --configs calls it
    plugins: tuple[str, ...]
    log_level: str | None  # None: the --k8sgw-log-level given
    modes: tuple[str, ...]  # the throughput rows it runs
    flood: bool  # whether the flood row (a real name beside a random-subdomain flood) runs on it


def deployed_directives(path: Path = DEPLOYED_COREFILE) -> tuple[str, ...]:
    """The server block's directives before `k8s_gateway`, each as one line (a block joined by `;`
    is not Corefile syntax, so a block is kept as its lines)."""
    text = path.read_text()
    body = text.split("Corefile: |", 1)[1]
    lines = [line.strip() for line in body.splitlines()]
    start = next(i for i, line in enumerate(lines) if line.endswith("{")) + 1
    out: list[str] = []
    depth = 0
    for line in lines[start:]:
        if depth == 0 and line.startswith("k8s_gateway"):
            break
        line = _LISTEN.sub(lambda m: f"{m.group(1)} 127.0.0.1:0", line)
        if depth == 0:
            out.append(line)
        else:
            out[-1] += "\n        " + line
        depth += line.count("{") - line.count("}")
    return tuple(out)


def select(keys: list[str], extra_plugins: list[str], modes: tuple[str, ...], traffic: tuple[str, ...]) -> list[Config]:
    """The configurations named in `--configs`, in the order given."""
    known = {
        "plain": Config("k8sgw", "plain", tuple(extra_plugins), None, (*modes, *traffic), True),
        "deployed": Config(
            "k8sgw deployed", "deployed", deployed_directives(), None, (*modes, *traffic), True
        ),
        "log": Config("k8sgw log", "log", ("log",), "info", modes, False),
    }
    unknown = [k for k in keys if k not in known]
    if unknown:
        raise SystemExit(f"--configs: unknown {', '.join(unknown)} (known: {', '.join(known)})")
    return [known[k] for k in keys]


CONFIGS = ("plain", "deployed", "log")
