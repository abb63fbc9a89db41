"""The command lines as a user runs them: `k8sgw` flags, a served Corefile, SIGTERM, and `k8sgw-dev`."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import dns.rcode
import pytest
import trio

from k8sgw import __version__
from tests.conftest import EXAMPLES, addresses, corefile, query, tool

PYTHON = sys.executable
DEV_ZONES = ("example.com", "2.0.192.in-addr.arpa", "8.b.d.0.1.0.0.2.ip6.arpa")


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, "-m", "k8sgw", *args], capture_output=True, text=True, timeout=60, cwd=cwd, check=False
    )


def test_version():
    out = run_cli("-version")
    assert out.returncode == 0 and out.stdout.strip() == f"k8sgw-{__version__}"
    assert run_cli("--version").stdout == out.stdout


def test_plugins_lists_supported_directives():
    out = run_cli("-plugins")
    assert out.returncode == 0
    assert "k8s_gateway" in out.stdout.split() and "bind" in out.stdout.split()


def test_validate_good_corefile(tmp_path):
    path = tmp_path / "Corefile"
    path.write_text(corefile("/nonexistent/kubeconfig"))  # -validate touches no file but the Corefile
    out = run_cli("-validate", "-conf", str(path), "-dns.port", "5353")
    assert out.returncode == 0, out.stderr
    assert "foo.org.:5353" in out.stdout
    assert run_cli("--validate", "--conf", str(path)).returncode == 0


def test_validate_bad_corefile_names_file_and_line(tmp_path):
    path = tmp_path / "Corefile"
    path.write_text("foo.org {\n    k8s_gateway {\n        ttl forever\n    }\n}\n")
    out = run_cli("-validate", "-conf", str(path))
    assert out.returncode == 1
    assert f"{path}:3:" in out.stderr and "ttl" in out.stderr


def test_default_corefile_is_read_from_the_working_directory(tmp_path):
    out = run_cli("-validate", cwd=tmp_path)
    assert out.returncode == 1 and "Corefile" in out.stderr
    (tmp_path / "Corefile").write_text(corefile("k"))
    assert run_cli("-validate", cwd=tmp_path).returncode == 0


class Lines:
    """A child process's output, read line by line as it arrives (the test waits on output, not time)."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self.stream = stream
        self.buffer = b""
        self.seen: list[str] = []

    async def until(self, pattern: str) -> re.Match:
        """Read until a new line matches pattern."""
        while True:
            while b"\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\n", 1)
                self.seen.append(line.decode(errors="replace"))
                if m := re.search(pattern, self.seen[-1]):
                    return m
            chunk = await self.stream.receive_some(65536)
            assert chunk, "process output ended; saw:\n" + "\n".join(self.seen)
            self.buffer += chunk

    async def seen_or_until(self, pattern: str) -> None:
        if not any(re.search(pattern, line) for line in self.seen):
            await self.until(pattern)


async def test_serves_a_corefile_and_stops_cleanly_on_sigterm(kubeconfig, tmp_path):
    path = tmp_path / "Corefile"
    path.write_text(corefile(kubeconfig))
    with trio.fail_after(30):
        proc = await trio.lowlevel.open_process(
            [PYTHON, "-m", "k8sgw", "-conf", str(path), "-dns.port", "0"], stderr=subprocess.PIPE
        )
        try:
            lines = Lines(proc.stderr)
            m = await lines.until(r"serving DNS on 127\.0\.0\.1 port (\d+)")
            addr = ("127.0.0.1", int(m.group(1)))
            await lines.seen_or_until("ready: every watched kind has synced")
            assert addresses(await query(addr, "myservicea.foo.org.")) == ["192.0.2.10"]
            assert (await query(addr, "nothing.foo.org.", tcp=True)).rcode() == dns.rcode.NXDOMAIN
            proc.send_signal(signal.SIGTERM)
            assert await proc.wait() == 0
        finally:
            proc.kill()
            await proc.wait()


async def test_k8sgw_dev_runs_the_embedded_default_and_kubectl_changes_it(tmp_path):
    kubectl = tool("kubectl")
    kubeconfig = tmp_path / "kubeconfig"
    with trio.fail_after(60):
        proc = await trio.lowlevel.open_process(
            [PYTHON, "-m", "k8sgw.devrun", "--dns-port", "0", "--kubeconfig-out", str(kubeconfig), "--log.level", "debug"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            lines = Lines(proc.stdout)
            m = await lines.until(r"on 127\.0\.0\.1 port (\d+)")
            addr = ("127.0.0.1", int(m.group(1)))
            await lines.seen_or_until("ready True")
            assert addresses(await query(addr, "myservicea.foo.org.")) == ["192.0.2.10"]
            assert (await query(addr, "myserviceb.foo.org.")).rcode() == dns.rcode.NXDOMAIN
            applied = await trio.run_process(
                [kubectl, "--kubeconfig", str(kubeconfig), "--cache-dir", str(tmp_path / "cache"),
                 "apply", "-f", str(EXAMPLES / "myserviceb.yaml")],
                capture_stdout=True, capture_stderr=True, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
            )
            assert b"created" in applied.stdout, applied.stderr
            while (reply := await query(addr, "myserviceb.foo.org.")).rcode() != dns.rcode.NOERROR:
                await lines.until("published record map version")
            assert addresses(reply) == ["192.0.2.11"]
            proc.send_signal(signal.SIGINT)
            assert await proc.wait() == 0
        finally:
            proc.kill()
            await proc.wait()


def test_dev_runner_help_names_its_defaults():
    out = subprocess.run([PYTHON, "-m", "k8sgw.devrun", "--help"], capture_output=True, text=True, check=True)
    assert "1053" in out.stdout and "foo.org" in out.stdout


@pytest.mark.parametrize("flag", ["-conf", "--conf"])
def test_missing_corefile_is_a_clear_error(flag, tmp_path):
    out = run_cli(flag, str(tmp_path / "nope"))
    assert out.returncode == 1 and "nope" in out.stderr


@pytest.mark.parametrize("flag", ["-h", "-help", "--help"])
def test_help_is_coredns_spelled_and_names_every_kind(flag):
    out = run_cli(flag)
    assert out.returncode == 0, out.stderr
    text = " ".join(out.stdout.split())
    for kind in ("HTTPRoute", "TLSRoute", "GRPCRoute", "Ingress", "LoadBalancer Service", "DNSEndpoint"):
        assert kind in text
    for name in ("-conf", "-dns.port", "-pidfile", "-plugins", "-quiet", "-version", "-validate"):
        assert name in text


@pytest.mark.parametrize(
    "args, says",
    [
        (["-v"], "unrecognized arguments: -v"),  # neither -version nor -validate: no abbreviations
        (["-dns.port", "abc"], 'expected a port from 0 to 65535, got "abc"'),
        (["-dns.port=70000"], 'got "70000"'),
        (["-conf"], "expected one argument"),
        (["-nonsense"], "unrecognized arguments"),
    ],
)
def test_a_bad_command_line_exits_1_with_one_line(args, says):
    out = run_cli(*args)
    assert out.returncode == 1
    assert says in out.stderr.splitlines()[0] and out.stderr.startswith("k8sgw: ")
    assert "-help" in out.stderr


def test_a_huge_flag_value_is_not_echoed_whole():
    out = run_cli("-dns.port", "9" * 50_000)
    assert out.returncode == 1 and len(out.stderr) < 1000


async def test_quiet_pidfile_and_a_taken_port(kubeconfig, tmp_path):
    path = tmp_path / "Corefile"
    path.write_text(corefile(kubeconfig))
    pidfile = tmp_path / "k8sgw.pid"
    with trio.fail_after(30):
        proc = await trio.lowlevel.open_process(
            [PYTHON, "-m", "k8sgw", "-conf", str(path), "-dns.port", "0", "-pidfile", str(pidfile)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        try:
            out = Lines(proc.stdout)
            m = await out.until(r"^foo\.org\.:(\d+)$")  # as coredns prints its server blocks
            port = int(m.group(1))
            await out.until(r"^k8sgw-")
            assert pidfile.read_text().strip() == str(proc.pid)
            # A second k8sgw on the same port says which listener and address, as coredns does.
            second = await trio.run_process(
                [PYTHON, "-m", "k8sgw", "-conf", str(path), "-dns.port", str(port), "-quiet"],
                capture_stdout=True, capture_stderr=True, check=False,
            )
            assert second.returncode == 1
            assert f"k8sgw: listen tcp 127.0.0.1:{port}: address already in use" in second.stderr.decode()
            assert b"Errno" not in second.stderr and second.stdout == b""
            proc.send_signal(signal.SIGTERM)
            assert await proc.wait() == 0
            assert not pidfile.exists()
        finally:
            proc.kill()
            await proc.wait()


async def test_k8sgw_dev_for_another_zone_and_started_twice(tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    with trio.fail_after(60):
        proc = await trio.lowlevel.open_process(
            [PYTHON, "-m", "k8sgw.devrun", "--dns-port", "0", "--zone", "example.com", "--kubeconfig-out", str(kubeconfig)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        try:
            lines = Lines(proc.stdout)
            port = int((await lines.until(r"serves example\.com on 127\.0\.0\.1 port (\d+)")).group(1))
            hint = (await lines.until(r"kubectl .* apply -f (\S+)")).group(1)
            await lines.until(r"^example\.com:(\d+) .*\{$")
            # The Corefile shows the port it serves, for the zone and the examples' reverse zones.
            assert lines.seen[-1].split() == [f"{zone}:{port}" for zone in DEV_ZONES] + ["{"]
            assert "foo.org" not in "\n".join(line for line in lines.seen if "kubeapi" not in line)
            assert "example.com" in await trio.Path(hint).read_text()
            await lines.seen_or_until("ready: every watched kind has synced")
            addr = ("127.0.0.1", port)
            assert addresses(await query(addr, "myservicea.example.com.")) == ["192.0.2.10"]
            before = kubeconfig.read_text()
            # A second one on the same port: one line, and the first one's kubeconfig is left alone.
            second = await trio.run_process(
                [PYTHON, "-m", "k8sgw.devrun", "--dns-port", str(port), "--kubeconfig-out", str(kubeconfig)],
                capture_stdout=True, capture_stderr=True, check=False,
            )
            stderr = second.stderr.decode()
            assert second.returncode == 1
            assert stderr.splitlines() == [stderr.strip()]
            assert f"listen tcp 127.0.0.1:{port}: address already in use" in stderr
            assert kubeconfig.read_text() == before
            proc.send_signal(signal.SIGINT)
            assert await proc.wait() == 0
        finally:
            proc.kill()
            await proc.wait()
