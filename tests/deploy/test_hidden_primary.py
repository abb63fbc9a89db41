"""The hidden-primary overlay and the README's secondary configurations.

The overlay changes the base only where it says (a Secret from keys.conf, one projected volume,
fsGroup, a ClusterIP Service, `transfer` and `tsig` in the Corefile); the key file is mounted where
the Corefile reads it; k8sgw refuses the placeholder key and accepts a real one.

The NSD and Knot configurations in README "Hidden primary", as written there (only the primary's
address, the secret and NSD's directory changed, a server section added for ports), pass their
servers' own checks, transfer a zone with TSIG from a primary on 127.0.0.1, follow its signed
NOTIFY, and refuse NOTIFY without the key. The primary is NSD (provide-xfr, notify).
"""

from __future__ import annotations

import base64
import copy
import os
import posixpath
import re
import signal
import subprocess
import sys
from pathlib import Path

import dns.asyncquery
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.tsig
import dns.tsigkeyring
import pytest
import trio

from bench.servers import addresses, ask, free_port
from k8sgw.config import parse_corefile
from k8sgw.errors import ConfigError
from tests.conftest import tool
from tests.deploy.test_kustomize import ROOT, by_kind, render

OVERLAY = "deploy/kustomize/overlays/hidden-primary"
BASE = "deploy/kustomize/base"
README = ROOT / "README.md"
SECTION = "## Hidden primary (zone transfer to secondaries)"
KEY_NAME = "k8sgw-xfr"
ZONE = "example.com"


def keyed(objs: list[dict]) -> dict[tuple[str, str], dict]:
    return {(o["kind"], o["metadata"]["name"]): copy.deepcopy(o) for o in objs}


def pod_spec(objs: list[dict]) -> dict:
    (dep,) = by_kind(objs, "Deployment")
    return dep["spec"]["template"]["spec"]


def mounted_files(objs: list[dict]) -> dict[str, tuple[str, int]]:
    """Every file the k8sgw container sees from ConfigMaps and Secrets: path → (content, mode)."""
    configmaps = {c["metadata"]["name"]: c.get("data", {}) for c in by_kind(objs, "ConfigMap")}
    secrets = {
        s["metadata"]["name"]: {k: base64.b64decode(v).decode() for k, v in s.get("data", {}).items()}
        for s in by_kind(objs, "Secret")
    }
    spec = pod_spec(objs)
    (container,) = spec["containers"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    files: dict[str, tuple[str, int]] = {}
    for mount in container["volumeMounts"]:
        volume = volumes[mount["name"]]
        if "projected" in volume:
            sources = volume["projected"]["sources"]
            default_mode = volume["projected"].get("defaultMode", 0o644)
        else:
            sources = [volume]
            default_mode = None
        for source in sources:
            for kind, store in (("configMap", configmaps), ("secret", secrets)):
                if kind not in source:
                    continue
                ref = source[kind]
                data = store[ref.get("name") or ref["secretName"]]  # a missing object is a KeyError
                mode = ref.get("defaultMode", 0o644) if default_mode is None else default_mode
                for item in ref.get("items") or [{"key": k, "path": k} for k in data]:
                    path = posixpath.join(mount["mountPath"], item["path"])
                    files[path] = (data[item["key"]], item.get("mode", mode))
    return files


def corefile_path(objs: list[dict]) -> str:
    args = pod_spec(objs)["containers"][0]["args"]
    return args[args.index("-conf") + 1]


def secrets_paths(corefile: str) -> list[str]:
    return re.findall(r"^\s*secrets\s+(\S+)\s*$", corefile, re.MULTILINE)


def test_overlay_changes_the_base_only_where_it_says() -> None:
    base = keyed(render(BASE))
    objs = render(OVERLAY)
    (secret,) = by_kind(objs, "Secret")
    # The name carries a hash of keys.conf: a new key is a new Secret, so the pods restart with it.
    assert re.fullmatch(r"k8sgw-tsig-[a-z0-9]{10}", secret["metadata"]["name"])
    assert secret["metadata"]["namespace"] == "k8sgw"
    assert secret["metadata"]["labels"] == {"app.kubernetes.io/name": "k8sgw"}
    ours = keyed([o for o in objs if o["kind"] != "Secret"])
    assert ours.keys() == base.keys()
    for key, obj in ours.items():
        theirs = base[key]
        if key[0] == "ConfigMap":
            assert obj["data"].pop("Corefile") != theirs["data"].pop("Corefile")
        elif key[0] == "Deployment":
            spec, base_spec = obj["spec"]["template"]["spec"], theirs["spec"]["template"]["spec"]
            assert spec["securityContext"].pop("fsGroup") == 65532
            mine, old = spec["volumes"].pop(0), base_spec["volumes"].pop(0)
            assert mine["name"] == old["name"] == "config"
            configmaps = [s["configMap"] for s in mine["projected"]["sources"] if "configMap" in s]
            assert configmaps == [old["configMap"]]
        elif key[0] == "Service":
            assert obj["spec"].pop("type") == "ClusterIP"
            theirs["spec"].pop("type")
        assert obj == theirs, key


def test_service_stays_inside_the_cluster() -> None:
    (svc,) = by_kind(render(OVERLAY), "Service")
    spec = svc["spec"]
    assert spec["type"] == "ClusterIP"
    for exposure in ("externalIPs", "loadBalancerIP", "loadBalancerSourceRanges", "externalTrafficPolicy",
                     "loadBalancerClass", "externalName"):
        assert exposure not in spec
    assert all("nodePort" not in p for p in spec["ports"])
    assert sorted((p["port"], p["protocol"], p["targetPort"]) for p in spec["ports"]) == [
        (53, "TCP", "dns-tcp"), (53, "UDP", "dns-udp"),
    ]


def test_the_key_is_mounted_where_the_corefile_reads_it() -> None:
    objs = render(OVERLAY)
    files = mounted_files(objs)
    corefile, _ = files[corefile_path(objs)]
    (path,) = secrets_paths(corefile)
    assert path == "/etc/k8sgw/tsig/keys.conf"
    content, mode = files[path]
    (secret,) = by_kind(objs, "Secret")
    assert base64.b64decode(secret["data"]["keys.conf"]).decode() == content
    assert f'key "{KEY_NAME}"' in content
    # Projected files are root's; with fsGroup their group is k8sgw's, so 0440 is readable by it
    # and by nobody else.
    security = pod_spec(objs)["securityContext"]
    assert security["fsGroup"] == security["runAsGroup"]
    assert mode & 0o040 and not mode & 0o007, oct(mode)
    (container,) = pod_spec(objs)["containers"]
    assert all(m.get("readOnly") for m in container["volumeMounts"] if m["mountPath"] == "/etc/k8sgw")


def lay_out(objs: list[dict], root: Path, keys: str | None = None) -> Path:
    """Write the container's mounted files under root; return the Corefile, its paths moved there.

    keys: the content of the secrets file instead of what the Secret holds (the user's own key).
    """
    files = mounted_files(objs)
    conf = corefile_path(objs)
    corefile, _ = files[conf]
    (keys_path,) = secrets_paths(corefile)
    for path, (content, _) in files.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(keys if keys is not None and path == keys_path else content)
    (container,) = pod_spec(objs)["containers"]
    mounts = sorted((m["mountPath"] for m in container["volumeMounts"]), key=len, reverse=True)
    inside = re.compile(r"(?<=\s)(?=(?:" + "|".join(re.escape(m) for m in mounts) + ")/)")
    corefile = inside.sub(str(root), corefile)  # one pass: a moved path is not moved again
    target = root / conf.lstrip("/")
    target.write_text(corefile)
    return target


def a_key() -> str:
    """A key file as `tsig-keygen -a hmac-sha256 k8sgw-xfr` writes one (README's recipe)."""
    secret = base64.b64encode(os.urandom(32)).decode()
    return f'key "{KEY_NAME}" {{\n\talgorithm hmac-sha256;\n\tsecret "{secret}";\n}};\n'


def test_k8sgw_refuses_the_placeholder_key(tmp_path: Path) -> None:
    objs = render(OVERLAY)
    conf = lay_out(objs, tmp_path)
    with pytest.raises(ConfigError) as caught:
        parse_corefile(conf.read_text(), filename=str(conf))
    # The error names the key file (not the Corefile), so `kubectl logs` says what to replace.
    assert caught.value.filename == str(tmp_path / "etc/k8sgw/tsig/keys.conf"), str(caught.value)
    assert "base64" in caught.value.message


def test_the_corefile_parses_with_a_real_key(tmp_path: Path) -> None:
    objs = render(OVERLAY)
    conf = lay_out(objs, tmp_path, keys=a_key())
    config = parse_corefile(conf.read_text(), filename=str(conf))
    (block,) = config.servers
    assert {"transfer", "tsig"} <= set(block.plugins)
    done = subprocess.run(
        [sys.executable, "-m", "k8sgw", "-validate", "-conf", str(conf)],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# --- the README's secondaries, run against a primary ------------------------------------------------


def readme_block(first_line: str) -> str:
    """The fenced block of the README's hidden-primary section that starts with first_line."""
    text = README.read_text()
    start = text.index(f"\n{SECTION}\n")
    section = text[start : text.index("\n## ", start + 1)]
    found = [b for b in re.findall(r"^```[a-z]*\n(.*?)^```$", section, re.DOTALL | re.MULTILINE)
             if b.startswith(first_line)]
    assert len(found) == 1, f"one block starting {first_line!r} in README {SECTION!r}"
    return found[0]


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"{old!r} should appear once in:\n{text}"
    return text.replace(old, new)


PRIMARY_ZONE = """\
$ORIGIN example.com.
$TTL 60
@ IN SOA k8sgw.k8sgw.example.com. hostmaster.k8sgw.k8sgw.example.com. {serial} 7200 1800 86400 60
@ IN NS k8sgw.k8sgw.example.com.
k8sgw.k8sgw IN A 192.0.2.1
web IN A 192.0.2.20
{extra}"""

PRIMARY_CONF = """\
server:
    server-count: 1
    ip-address: 127.0.0.1@{port}
    do-ip6: no
    username: ""
    chroot: ""
    pidfile: "{dir}/nsd.pid"
    database: ""
    zonelistfile: "{dir}/zone.list"
    xfrdfile: "{dir}/xfrd.state"
    xfrdir: "{dir}"
    verbosity: 2
remote-control:
    control-enable: no
key:
    name: {key}
    algorithm: hmac-sha256
    secret: "{secret}"
zone:
    name: example.com
    zonefile: "{dir}/example.com.zone"
    provide-xfr: 127.0.0.1 {key}
    notify: 127.0.0.1@{nsd_port} {key}
    notify: 127.0.0.1@{knot_port} {key}
"""

# What the README leaves to the user's own server section: where to listen and keep state.
NSD_SERVER = """\
server:
    server-count: 1
    ip-address: 127.0.0.1@{port}
    do-ip6: no
    username: ""
    chroot: ""
    pidfile: "{dir}/nsd.pid"
    database: ""
    zonelistfile: "{dir}/zone.list"
    xfrdfile: "{dir}/xfrd.state"
    xfrdir: "{dir}"
    verbosity: 2
remote-control:
    control-enable: no
"""

KNOT_SERVER = """\
server:
    listen: 127.0.0.1@{port}
    rundir: "{dir}"
log:
  - target: stderr
    any: info
database:
    storage: "{dir}"
template:
  - id: default
    storage: "{dir}"
"""


class Output:
    """A child's output, line by line as it arrives: the test waits on what the server logs."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.buffer = b""
        self.seen: list[str] = []

    async def until(self, pattern: str, since: int = 0) -> None:
        """Until a line from line number `since` on matches (in whatever order the processes wrote)."""
        if any(re.search(pattern, line) for line in self.seen[since:]):
            return
        while True:
            while b"\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\n", 1)
                self.seen.append(line.decode(errors="replace"))
                if re.search(pattern, self.seen[-1]):
                    return
            assert self.process.stdout is not None
            chunk = await self.process.stdout.receive_some(65536)
            assert chunk, f"{self.process.args} ended before {pattern!r}; it wrote:\n" + "\n".join(self.seen)
            self.buffer += chunk


async def start(cmd: list[str], stack: list[trio.Process]) -> Output:
    process = await trio.lowlevel.open_process(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    stack.append(process)
    return Output(process)


async def stop(processes: list[trio.Process]) -> None:
    for process in reversed(processes):
        process.send_signal(signal.SIGTERM)  # NSD stops its own children on TERM, not on KILL
        with trio.move_on_after(10) as waited:
            await process.wait()
        if waited.cancelled_caught:
            process.kill()
            await process.wait()
        if process.stdout is not None:
            await process.stdout.aclose()


async def check(cmd: list[str]) -> None:
    done = await trio.run_process(cmd, capture_stdout=True, capture_stderr=True, check=False)
    assert done.returncode == 0, (cmd, done.stdout.decode(), done.stderr.decode())


async def answers(port: int, name: str, address: str) -> None:
    """name has address now: the server has logged that it serves the new copy."""
    reply = await ask(port, name, reply_timeout=2)
    assert address in addresses(reply), (port, name, reply)


def notify(key: dict[str, str] | None) -> dns.message.Message:
    message = dns.message.make_query(f"{ZONE}.", "SOA")
    message.flags = dns.flags.AA  # RFC 1996 §3.7: AA set, RD clear (the opcode lives in flags too)
    message.set_opcode(dns.opcode.NOTIFY)
    if key is not None:
        message.use_tsig(dns.tsigkeyring.from_text(key), keyname=KEY_NAME, algorithm="hmac-sha256")
    return message


async def test_readme_secondaries_transfer_with_tsig_and_follow_notify(tmp_path: Path) -> None:
    nsd, nsd_checkconf, knotd, knotc = tool("nsd"), tool("nsd-checkconf"), tool("knotd"), tool("knotc")
    secret = base64.b64encode(os.urandom(32)).decode()
    ports: set[int] = set()
    while len(ports) < 3:
        ports.add(free_port())
    primary_port, nsd_port, knot_port = sorted(ports)
    primary, nsd_dir, knot_dir = tmp_path / "primary", tmp_path / "nsd", tmp_path / "knot"
    for d in (primary, nsd_dir, knot_dir):
        d.mkdir()
    (primary / "example.com.zone").write_text(PRIMARY_ZONE.format(serial=1, extra=""))
    (primary / "nsd.conf").write_text(PRIMARY_CONF.format(
        port=primary_port, dir=primary, key=KEY_NAME, secret=secret, nsd_port=nsd_port, knot_port=knot_port,
    ))

    nsd_conf = readme_block("# nsd.conf")
    nsd_conf = replace_once(nsd_conf, "BASE64-SECRET", secret)
    nsd_conf = replace_once(nsd_conf, "request-xfr: 10.96.0.53 ", f"request-xfr: 127.0.0.1@{primary_port} ")
    nsd_conf = replace_once(nsd_conf, '"/var/lib/nsd/', f'"{nsd_dir}/')
    (nsd_dir / "nsd.conf").write_text(NSD_SERVER.format(port=nsd_port, dir=nsd_dir) + nsd_conf)
    knot_conf = readme_block("# knot.conf")
    knot_conf = replace_once(knot_conf, "BASE64-SECRET", secret)
    knot_conf = replace_once(knot_conf, "address: 10.96.0.53@53", f"address: 127.0.0.1@{primary_port}")
    (knot_dir / "knot.conf").write_text(KNOT_SERVER.format(port=knot_port, dir=knot_dir) + knot_conf)

    await check([nsd_checkconf, str(primary / "nsd.conf")])
    await check([nsd_checkconf, str(nsd_dir / "nsd.conf")])
    await check([knotc, "-c", str(knot_dir / "knot.conf"), "conf-check"])

    processes: list[trio.Process] = []
    try:
        with trio.fail_after(30):
            prim = await start([nsd, "-d", "-c", str(primary / "nsd.conf")], processes)
            await prim.until(r"nsd started")
            second_nsd = await start([nsd, "-d", "-c", str(nsd_dir / "nsd.conf")], processes)
            second_knot = await start([knotd, "-c", str(knot_dir / "knot.conf")], processes)
            await second_nsd.until(r"received update to serial 1 .*TSIG verified with key k8sgw-xfr")
            await second_nsd.until(r"zone example\.com serial 0 is updated to 1")
            await second_knot.until(r"\[example\.com\.\] refresh, .* zone updated, .*serial none -> 1")
            for port in (nsd_port, knot_port):
                await answers(port, "web.example.com", "192.0.2.20")

            # A change on the primary reaches both by its signed NOTIFY, long before the SOA refresh.
            zonefile = primary / "example.com.zone"
            zonefile.write_text(PRIMARY_ZONE.format(serial=2, extra="new IN A 192.0.2.21\n"))
            later = zonefile.stat().st_mtime + 2  # NSD rereads a zone file on HUP when its mtime moved
            os.utime(zonefile, (later, later))
            nsd_mark, knot_mark = len(second_nsd.seen), len(second_knot.seen)
            processes[0].send_signal(signal.SIGHUP)
            for pattern in (
                r"notify for example\.com\. from 127\.0\.0\.1 serial 2",
                r"received update to serial 2 .*TSIG verified with key k8sgw-xfr",
                r"zone example\.com serial 1 is updated to 2",
            ):
                await second_nsd.until(pattern, nsd_mark)
            for pattern in (
                r"\[example\.com\.\] notify, incoming, .*serial 2",
                r"\[example\.com\.\] refresh, .* zone updated, .*serial 1 -> 2",
            ):
                await second_knot.until(pattern, knot_mark)
            for port in (nsd_port, knot_port):
                await answers(port, "new.example.com", "192.0.2.21")

            # NOTIFY without the key, or with another secret, is not taken.
            wrong = base64.b64encode(os.urandom(32)).decode()
            for port in (nsd_port, knot_port):
                reply = await dns.asyncquery.udp(notify(None), "127.0.0.1", port=port, timeout=5)
                assert reply.opcode() == dns.opcode.NOTIFY
                assert reply.rcode() in (dns.rcode.REFUSED, dns.rcode.NOTAUTH), (port, reply.to_text())
                with pytest.raises(dns.tsig.PeerError):
                    await dns.asyncquery.udp(notify({KEY_NAME: wrong}), "127.0.0.1", port=port, timeout=5)
                signed = notify({KEY_NAME: secret})
                reply = await dns.asyncquery.udp(signed, "127.0.0.1", port=port, timeout=5)
                assert (reply.opcode(), reply.rcode()) == (dns.opcode.NOTIFY, dns.rcode.NOERROR)
    finally:
        with trio.CancelScope(shield=True):
            await stop(processes)
