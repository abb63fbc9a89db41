"""Build the real peers from the Go module proxy into a cache keyed by version.

    python -m peers.build [kube-apiserver] [etcd] [coredns] [--check]

Each binary lands in ``$K8SGW_PEERS_CACHE`` (default ``${XDG_CACHE_HOME:-~/.cache}/k8sgw-peers``) under
``<name>-<version>/``; a binary already there is reused, so a second run builds nothing. Each build is a
throw-away Go module of ours, written beside the binary: k8s.io/kubernetes and etcd's server replace
their sibling modules with local paths, so neither can be ``go install``ed; our module requires the
release and points each of those siblings at its published version instead.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from peers import versions

GO_VERSION_LINE = "go 1.26"


class BuildError(RuntimeError):
    """A peer could not be built; the message says which module and what the go command said."""


class ModuleUnavailableError(BuildError):
    """The module proxy refuses the module itself (403/404/410): no retry or fix on our side helps."""


_REFUSED = re.compile(r"\b(403 Forbidden|404 Not Found|410 Gone)\b")


@dataclass(frozen=True)
class Peer:
    name: str
    version: str

    @property
    def dir(self) -> Path:
        return cache_root() / f"{self.name}-{self.version}"

    @property
    def binary(self) -> Path:
        return self.dir / "bin" / self.name


KUBE_APISERVER = Peer("kube-apiserver", versions.KUBERNETES)
ETCD = Peer("etcd", versions.ETCD)
COREDNS = Peer("coredns", versions.K8S_GATEWAY)
ALL = {p.name: p for p in (KUBE_APISERVER, ETCD, COREDNS)}


def cache_root() -> Path:
    explicit = os.environ.get("K8SGW_PEERS_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "k8sgw-peers"


def go_available() -> bool:
    return shutil.which("go") is not None


def _go(args: list[str], cwd: Path, *, retry: bool = False) -> str:
    """Run one go command; a network-bound step (download, get) is retried once, as proxies hiccup."""
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOWORK": "off", "CGO_ENABLED": "0"}
    for attempt in (1, 2):
        proc = subprocess.run(["go", *args], cwd=cwd, env=env, capture_output=True, text=True)
        if proc.returncode == 0:
            return proc.stdout
        if "-json" in args and proc.stdout.strip().startswith("{") and _REFUSED.search(proc.stdout):
            return proc.stdout  # the proxy's refusal, in the JSON; retrying cannot change it
        if not retry or attempt == 2:
            raise BuildError(
                f"`go {' '.join(args)}` in {cwd} failed:\n{(proc.stderr or proc.stdout).strip()}"
            )
        print(
            f"peers: `go {args[0]}` failed, retrying once:\n{(proc.stderr or proc.stdout).strip()}",
            file=sys.stderr,
        )
        time.sleep(5)
    raise AssertionError("unreachable")


def module_dir(module: str, version: str, *, scratch: Path | None = None) -> Path:
    """The module's unpacked source in the Go module cache (downloaded if missing)."""
    where = scratch or cache_root()
    where.mkdir(parents=True, exist_ok=True)
    out = _go(["mod", "download", "-json", f"{module}@{version}"], where, retry=True)
    return Path(_download_info(module, version, out)["Dir"])


def _go_mod_file(module: str, version: str, where: Path) -> str:
    out = _go(["mod", "download", "-json", f"{module}@{version}"], where, retry=True)
    return Path(_download_info(module, version, out)["GoMod"]).read_text()


def _download_info(module: str, version: str, out: str) -> dict[str, str]:
    info = json.loads(out)
    if error := info.get("Error"):
        kind = ModuleUnavailableError if _REFUSED.search(error) else BuildError
        raise kind(f"go mod download {module}@{version}: {error}")
    return info


_REPLACE = re.compile(r"^\s*(?:replace\s+)?(\S+)(?:\s+v\S+)?\s+=>\s+(\S+(?:\s+v\S+)?)\s*$", re.M)


def replaces(go_mod: str) -> dict[str, str]:
    """A go.mod's replace directives: module → what replaces it ("./staging/x" or "other/mod v1.2.3")."""
    return {m.group(1): m.group(2) for m in _REPLACE.finditer(go_mod)}


def local_replaces(go_mod: str) -> list[str]:
    """The modules a go.mod replaces with a local directory (its monorepo siblings)."""
    return [module for module, target in replaces(go_mod).items() if target.startswith(("./", "../"))]


def staging_version(kubernetes_version: str) -> str:
    """k8s.io/kubernetes v1.N.P publishes its staging modules as v0.N.P."""
    major, minor, patch = kubernetes_version.lstrip("v").split(".")
    if major != "1":
        raise BuildError(f"cannot map Kubernetes {kubernetes_version} to staging versions")
    return f"v0.{minor}.{patch}"


def _write_module(
    src: Path, name: str, requires: dict[str, str], replacements: dict[str, str], main: str
) -> None:
    """Our throw-away module: `requires`, each module of `replacements` => its target, and `main`."""
    src.mkdir(parents=True, exist_ok=True)
    lines = [f"module k8sgw.invalid/peers/{name}", "", GO_VERSION_LINE, "", "require ("]
    lines += [f"\t{m} {v}" for m, v in requires.items()]
    lines += [")", ""]
    if replacements:
        lines += ["replace ("]
        lines += [f"\t{m} => {target}" for m, target in sorted(replacements.items())]
        lines += [")", ""]
    (src / "go.mod").write_text("\n".join(lines))
    # A blank import keeps the main package (and so every dependency it needs) in our module graph.
    (src / "tools.go").write_text(f'//go:build tools\n\npackage tools\n\nimport _ "{main}"\n')


def _build(peer: Peer, src: Path, main: str, ldflags: str = "") -> Path:
    _go(["mod", "tidy"], src, retry=True)
    tmp = peer.binary.with_suffix(".partial")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    _go(["build", "-trimpath", f"-ldflags=-s -w {ldflags}".strip(), "-o", str(tmp), main], src)
    tmp.rename(peer.binary)  # only a finished build is ever found in the cache
    (peer.dir / "build-seconds").write_text(f"{time.monotonic() - started:.0f}\n")
    return peer.binary


def build_kube_apiserver() -> Path:
    peer = KUBE_APISERVER
    src = peer.dir / "src"
    src.mkdir(parents=True, exist_ok=True)
    go_mod = _go_mod_file("k8s.io/kubernetes", peer.version, src)
    staging = staging_version(peer.version)
    staged = {m: f"{m} {staging}" for m in local_replaces(go_mod)}
    if not staged:
        raise BuildError(f"k8s.io/kubernetes@{peer.version}: go.mod has no staging replaces to map")
    main = "k8s.io/kubernetes/cmd/kube-apiserver"
    _write_module(src, peer.name, {"k8s.io/kubernetes": peer.version}, staged, main)
    minor = staging.split(".")[1]
    # The version the server reports in /version: kubectl (and its dispatcher) choose by it.
    stamp = {
        "gitVersion": peer.version,
        "gitMajor": "1",
        "gitMinor": minor,
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
    }
    ldflags = " ".join(
        f"-X k8s.io/{pkg}/version.{k}={v}"
        for pkg in ("component-base", "client-go/pkg")
        for k, v in stamp.items()
    )
    return _build(peer, src, main, ldflags)


def build_etcd() -> Path:
    peer = ETCD
    src = peer.dir / "src"
    src.mkdir(parents=True, exist_ok=True)
    module = "go.etcd.io/etcd/server/v3"
    go_mod = _go_mod_file(module, peer.version, src)
    siblings = {m: f"{m} {peer.version}" for m in local_replaces(go_mod) if m.startswith("go.etcd.io/etcd/")}
    _write_module(src, peer.name, {module: peer.version}, siblings, module)
    return _build(peer, src, module)


def build_coredns() -> Path:
    peer = COREDNS
    src = peer.dir / "src"
    src.mkdir(parents=True, exist_ok=True)
    module = versions.K8S_GATEWAY_MODULE
    go_mod = _go_mod_file(module, peer.version, src)
    # Its own replace directives to published modules still apply to a build from our module.
    published = {m: target for m, target in replaces(go_mod).items() if not target.startswith(("./", "../"))}
    main = f"{module}/cmd"
    _write_module(src, peer.name, {module: peer.version}, published, main)
    return _build(peer, src, main)


BUILDERS = {"kube-apiserver": build_kube_apiserver, "etcd": build_etcd, "coredns": build_coredns}


def unavailable_reason(peer: Peer) -> str | None:
    """Why the module proxy refused this peer's module on the last build attempt, if it did."""
    marker = peer.dir / "unavailable"
    return marker.read_text().strip() if marker.exists() else None


def ensure(name: str) -> Path:
    """The peer's binary: from the cache, or built now.

    A module the proxy refuses is recorded in `<dir>/unavailable` (tests report it instead of a
    missing build) and tried again on the next build.
    """
    peer = ALL[name]
    if peer.binary.exists():
        return peer.binary
    if not go_available():
        raise BuildError(f"{name}: Go is not installed (install Go 1.26+ with access to the module proxy)")
    marker = peer.dir / "unavailable"
    try:
        path = BUILDERS[name]()
    except ModuleUnavailableError as err:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(f"{err}\n")
        raise
    marker.unlink(missing_ok=True)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m peers.build", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"any of {', '.join(ALL)} (default: all)")
    parser.add_argument("--check", action="store_true", help="only say which binaries are cached")
    parser.add_argument(
        "--optional",
        action="append",
        default=[],
        metavar="NAME",
        help="a peer whose module the proxy may refuse: reported, not a failure",
    )
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in ALL]
    if unknown:
        parser.error(f"unknown peer {unknown[0]!r}; choose from {', '.join(ALL)}")
    failed = 0
    for name in args.names or list(ALL):
        peer = ALL[name]
        if args.check:
            print(f"{name} {peer.version}: {'cached' if peer.binary.exists() else 'missing'} {peer.binary}")
            continue
        cached = peer.binary.exists()
        started = time.monotonic()
        try:
            path = ensure(name)
        except ModuleUnavailableError as err:
            print(
                f"peers: {name} {peer.version} NOT built, the module proxy refuses it: {err}", file=sys.stderr
            )
            failed += name not in args.optional
            continue
        except BuildError as err:
            print(f"peers: {name} {peer.version} NOT built: {err}", file=sys.stderr)
            failed += 1
            continue
        took = time.monotonic() - started
        print(f"peers: {name} {peer.version} {'reused' if cached else f'built in {took:.0f}s'}: {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
