"""Real secondaries for the transfer tests: Knot (knotd) and NSD, each started by the test in the
foreground on an address and ports of its own, configured in a temporary directory, and watched
through its output.

    async with knot_secondary(tmp_path, "foo.org.", primary=("127.0.0.1", 5300), key=KEY) as knot:
        await knot.wait_serial(serial)          # its SOA serial reached `serial` (RFC 1982)
        assert knot.transfers()[-1] == ("IXFR", serial)

Nothing here sleeps: a wait is woken by each line the process prints (read from its pipe as it
arrives) and, where the process prints nothing for what is awaited (an SOA serial being served),
the secondary is asked over DNS at each new line and, as a last resort, at a bounded interval.

How a transfer arrived (incremental or the whole zone) comes from the secondary's own words where
it says them (Knot: "IXFR, incoming, ... finished"). NSD 4.x logs a received transfer without its
kind ("received update to serial N"), so NSD's `request-xfr` goes through a TCP relay on its own
address (TransferTap) that reads each transfer reply as it passes: an IXFR reply whose second
record is an SOA is incremental (RFC 1995 §4), any other is the whole zone (AXFR, or AXFR-style
IXFR); NSD's log then says whether it committed and applied it (an IXFR that does not fit its
copy is refused and followed by an AXFR).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import trio

from bench.servers import free_port
from k8sgw.transfer.serial import serial_newer
from tests.conftest import tool

__all__ = [
    "Key",
    "Secondary",
    "SecondaryExited",
    "TransferTap",
    "ask",
    "differences",
    "free_port",
    "knot_config",
    "knot_secondary",
    "meaning",
    "nsd_config",
    "nsd_primary",
    "nsd_primary_config",
    "nsd_secondary",
    "questions",
    "serial_ge",
]

Key = tuple[str, str, str]
"""A TSIG key: (name, algorithm, base64 secret), e.g. ("xfr.", "hmac-sha256", "c2VjcmV0...")."""

START_TIMEOUT = 10.0  # seconds for a daemon to say it is serving
STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL
POLL = 0.25  # last-resort interval for asking the SOA when the process prints nothing
SOA_TIMEOUT = 0.5  # one SOA query to a local secondary

# Knot 3.x, one line per finished transfer and one per applied refresh:
#   [foo.org.] IXFR, incoming, remote 127.0.0.1@5300, finished, 0.00 seconds, 1 messages, 231 bytes
#   [foo.org.] refresh, remote 127.0.0.1@5300, zone updated, 0.01 seconds, serial 1 -> 2, expires in ...
_KNOT_FINISHED = re.compile(r"\] (AXFR|IXFR), incoming, remote \S+, finished")
_KNOT_AXFR_STYLE = re.compile(r"\] IXFR, incoming, remote \S+, receiving AXFR-style IXFR")
_KNOT_UPDATED = re.compile(r"\] refresh, remote \S+, zone updated, .*serial \S+ -> (\d+)")
# NSD 4.x: xfrd once it has a whole transfer on disk, then the reload that applies it, which
# either serves it or refuses an IXFR that does not fit its copy (and asks AXFR instead):
#   xfrd: zone foo.org. committed "received update to serial 2 at 2026-...T07:08:34 from 127.0.0.1@5300"
#   zone foo.org. received update to serial 2 at 2026-...T07:08:34 from 127.0.0.1@5300 of 242 bytes in 3.4e-05 seconds
#   Failed to apply IXFR cleanly (deletes nonexistent RRs, adds existing RRs). Zone foo.org. contents is
#   different from master, starting AXFR. Transfer received update to serial 2 at ...
_NSD_COMMITTED = re.compile(r"xfrd: zone \S+ committed \"received update to serial (\d+) ")
_NSD_APPLIED = re.compile(r": zone \S+ received update to serial (\d+) at .* of \d+ bytes")
_NSD_NOT_APPLIED = re.compile(r"Failed to apply IXFR")


class SecondaryExited(RuntimeError):
    """The daemon stopped on its own (bad configuration, a port taken, a crash): what it said."""


def serial_ge(a: int, b: int) -> bool:
    """a >= b in serial number arithmetic (RFC 1982 §3.2, SERIAL_BITS 32)."""
    return a == b or serial_newer(a, b)


def _fqdn(name: str) -> str:
    return dns.name.from_text(name).to_text()


# --- answers compared ---

QTYPES = ("A", "AAAA", "TXT", "MX", "SRV", "CNAME", "NS", "SOA", "PTR", "CAA")
"""What each name is asked: the types a cluster publishes, and some it never does (NODATA)."""


def questions(
    zone: str, names: Sequence[str], wildcards: Sequence[str], rng, *, qtypes: Sequence[str] = QTYPES
) -> list[tuple[str, str]]:
    """(name, type) pairs covering a zone: every name with every type, a missing child and a
    missing sibling of each (NXDOMAIN, or a wildcard match), and random names under each
    wildcard's parent, one and two labels deep (RFC 4592 §2.2.1)."""
    out = [(name, qtype) for name in names for qtype in qtypes]
    apex = dns.name.from_text(zone)
    for name in names:
        parsed = dns.name.from_text(name)
        out.append((f"nx{rng.randrange(10**6)}.{parsed}", "A"))
        if parsed != apex and parsed.parent() != dns.name.root:
            out.append((f"nx{rng.randrange(10**6)}.{parsed.parent()}", "AAAA"))
    for wildcard in wildcards:
        parent = dns.name.from_text(wildcard).parent()
        for qtype in ("A", "AAAA", "TXT", "MX"):
            out.append((f"w{rng.randrange(10**6)}.{parent}", qtype))
        out.append((f"deep.w{rng.randrange(10**6)}.{parent}", "A"))
    return out


def _section(rrsets: Sequence[dns.rrset.RRset]) -> frozenset[tuple[str, str, int, frozenset[str]]]:
    return frozenset(
        (
            rrset.name.to_text().lower(),
            dns.rdatatype.to_text(rrset.rdtype),
            rrset.ttl,
            frozenset(r.to_text().lower() for r in rrset),
        )
        for rrset in rrsets
    )


def meaning(reply: dns.message.Message) -> tuple[str, frozenset, frozenset]:
    """What two authoritative servers of one zone must agree on: rcode, and the answer and
    authority sections as sets of RRsets, TTLs included."""
    return dns.rcode.to_text(reply.rcode()), _section(reply.answer), _section(reply.authority)


async def ask(address: tuple[str, int], name: str, qtype: str) -> dns.message.Message:
    q = dns.message.make_query(name, qtype)
    reply, _ = await dns.asyncquery.udp_with_fallback(q, address[0], port=address[1], timeout=5)
    return reply


async def differences(
    reference: tuple[str, int], other: tuple[str, int], asked: Sequence[tuple[str, str]]
) -> list[str]:
    """Each question whose answer from `other` differs from `reference`'s, both sides printed."""
    out = []
    for name, qtype in asked:
        want = meaning(await ask(reference, name, qtype))
        got = meaning(await ask(other, name, qtype))
        if want != got:
            out.append(f"{name} {qtype}:\n  want {_show(want)}\n  got  {_show(got)}")
    return out


def _show(m: tuple[str, frozenset, frozenset]) -> str:
    def rrsets(section: frozenset) -> str:
        return "; ".join(f"{n} {ttl} {t} {' '.join(sorted(rd))}" for n, t, ttl, rd in sorted(section)) or "-"

    return f"{m[0]} | answer: {rrsets(m[1])} | authority: {rrsets(m[2])}"


# --- configurations (the same text README shows users, with the test's addresses and paths) ---


def knot_config(
    directory: Path, zone: str, primary: tuple[str, int], listen: tuple[str, int], key: Key | None = None
) -> str:
    """knotd's configuration for a secondary of `zone` whose primary is `primary`."""
    key_id = _fqdn(key[0]) if key else None
    keys = (
        f"key:\n  - id: {key_id}\n    algorithm: {key[1]}\n    secret: {key[2]}\n\n" if key else ""
    )
    with_key = f"\n    key: {key_id}" if key_id else ""
    return f"""\
# Knot DNS as a secondary of {_fqdn(zone)}, written by tests/transfer/secondaries.py.
server:
    rundir: "{directory}"
    listen: {listen[0]}@{listen[1]}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1

log:
  - target: stderr
    any: info

database:
    storage: "{directory}"

{keys}remote:
  - id: primary
    address: {primary[0]}@{primary[1]}
    via: {listen[0]}{with_key}

acl:
  - id: notify-from-primary
    address: {primary[0]}
    action: notify{with_key}

template:
  - id: default
    storage: "{directory}"

zone:
  - domain: {_fqdn(zone)}
    master: primary
    acl: notify-from-primary
"""


def nsd_config(
    directory: Path,
    zone: str,
    primary: tuple[str, int],
    listen: tuple[str, int],
    key: Key | None = None,
    *,
    transfer_from: tuple[str, int] | None = None,
) -> str:
    """nsd's configuration for a secondary of `zone`: NOTIFY accepted from `primary`'s address,
    transfers asked of `transfer_from` (the primary itself, or a TransferTap in front of it)."""
    source = transfer_from or primary
    key_name = _fqdn(key[0]) if key else "NOKEY"
    keys = f'key:\n    name: {key_name}\n    algorithm: {key[1]}\n    secret: "{key[2]}"\n\n' if key else ""
    return f"""\
# NSD as a secondary of {_fqdn(zone)}, written by tests/transfer/secondaries.py.
server:
    server-count: 1
    ip-address: {listen[0]}@{listen[1]}
    do-ip6: no
    username: ""
    chroot: ""
    zonesdir: "{directory}"
    pidfile: "{directory}/nsd.pid"
    database: ""
    zonelistfile: "{directory}/zone.list"
    xfrdfile: "{directory}/xfrd.state"
    xfrdir: "{directory}"
    verbosity: 2
    # Answers as small as the primary's: no NS RRset added to positive answers.
    minimal-responses: yes
    # No response rate limiting: the tests ask a few hundred questions at once.
    rrl-ratelimit: 0
    # Serve each transfer as soon as it is in (by default reloads are at least 1 s apart).
    xfrd-reload-timeout: 0

remote-control:
    control-enable: no

{keys}zone:
    name: {_fqdn(zone)}
    zonefile: "{directory}/secondary.zone"
    # IXFR over TCP, falling back to AXFR when the primary cannot answer it (NSD's default).
    request-xfr: {source[0]}@{source[1]} {key_name}
    allow-notify: {primary[0]} {key_name}
    outgoing-interface: {listen[0]}
"""


# --- the running daemon ---


@dataclass
class Secondary:
    """A running secondary: where it answers, what it has printed, and waits on both."""

    kind: str  # "knot" | "nsd"
    zone: dns.name.Name
    address: tuple[str, int]
    directory: Path
    config: str
    process: trio.Process | None = None
    lines: list[str] = field(default_factory=list)
    tap: TransferTap | None = None
    _changed: trio.Event = field(default_factory=trio.Event)
    _stopping: bool = False
    _output_done: trio.Event = field(default_factory=trio.Event)

    # What the process prints: every line, and a wake-up per line.

    def _add_line(self, line: str) -> None:
        self.lines.append(line)
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def output(self, last: int | None = None) -> str:
        return "\n".join(self.lines[-last:] if last else self.lines)

    def _exited(self) -> SecondaryExited:
        rc = self.process.returncode if self.process else None
        return SecondaryExited(
            f"{self.kind} secondary on {self.address[0]}@{self.address[1]} exited with status {rc}.\n"
            f"Its configuration:\n{self.config}\nIts output:\n{self.output()}"
        )

    async def _next_line(self, at_most: float = float("inf")) -> None:
        """Until the process prints a line (or at_most seconds pass). Should it exit instead, the
        task watching it fails the whole block with its output (_watch_exit)."""
        with trio.move_on_after(at_most):
            await self._changed.wait()

    async def wait_line(self, pattern: str | re.Pattern[str], since: int = 0) -> str:
        """The first line (from index `since` on) that matches the regular expression."""
        regex = re.compile(pattern)
        seen = since
        while True:
            for line in self.lines[seen:]:
                if regex.search(line):
                    return line
            seen = max(seen, len(self.lines))
            await self._next_line()

    # What it serves.

    async def query(self, name: str | dns.name.Name, rdtype: str | int = "A", *, tcp: bool = False) -> dns.message.Message:
        q = dns.message.make_query(name, rdtype)
        q.flags &= ~dns.flags.RD
        if tcp:
            return await dns.asyncquery.tcp(q, self.address[0], port=self.address[1], timeout=5)
        return await dns.asyncquery.udp(q, self.address[0], port=self.address[1], timeout=5)

    async def serial(self) -> int | None:
        """The SOA serial it answers now; None while it has no zone (SERVFAIL) or does not answer."""
        q = dns.message.make_query(self.zone, dns.rdatatype.SOA)
        try:
            reply = await dns.asyncquery.udp(q, self.address[0], port=self.address[1], timeout=SOA_TIMEOUT)
        except (dns.exception.DNSException, OSError):
            return None
        if reply.rcode() != dns.rcode.NOERROR:
            return None
        for rrset in reply.answer:
            if rrset.rdtype == dns.rdatatype.SOA and rrset.name == self.zone:
                return rrset[0].serial
        return None

    async def wait_serial(self, serial: int) -> int:
        """Until it serves `serial` or a later one (RFC 1982); returns the serial it serves.

        Asked again at each line it prints (a transfer is logged as it lands), and at most POLL
        seconds apart (the serving processes may start answering it a moment after the log line).
        The caller bounds the wait (trio.fail_after)."""
        while True:
            seen = await self.serial()
            if seen is not None and serial_ge(seen, serial):
                return seen
            await self._next_line(POLL)

    # How the zone arrived.

    async def wait_transfer(self, serial: int) -> tuple[str, int]:
        """The first applied transfer (see transfers()) that brought `serial` or a later one,
        once the secondary has logged it (it may answer the new serial a moment before)."""
        while True:
            for kind, got in self.transfers():
                if serial_ge(got, serial):
                    return kind, got
            await self._next_line()

    def transfers(self) -> list[tuple[str, int]]:
        """("IXFR" | "AXFR", serial) for each transfer it applied, oldest first. "AXFR" is any
        transfer of the whole zone, including an AXFR-style answer to its IXFR (RFC 1995 §4)."""
        if self.kind == "knot":
            return _knot_transfers(self.lines)
        assert self.tap is not None
        return _nsd_transfers(self.lines, self.tap.transfers)


def _knot_transfers(lines: Sequence[str]) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    kind: str | None = None
    for line in lines:
        if _KNOT_AXFR_STYLE.search(line):
            kind = "AXFR"
        elif m := _KNOT_FINISHED.search(line):
            kind = "AXFR" if kind == "AXFR" else m.group(1)
        elif (m := _KNOT_UPDATED.search(line)) and kind is not None:
            out.append((kind, int(m.group(1))))
            kind = None
    return out


def _nsd_transfers(lines: Sequence[str], seen: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    """The tapped transfers NSD committed (each commit takes the next one of its serial; one
    it rejected, a bad TSIG say, never commits) and then applied: reloads apply commits in order,
    each logging one outcome, so the n-th outcome line belongs to the n-th commit."""
    pending = list(seen)
    committed: list[tuple[str, int]] = []
    outcomes: list[bool] = []
    for line in lines:
        if m := _NSD_COMMITTED.search(line):
            serial = int(m.group(1))
            match = next((t for t in pending if t[1] == serial), None)
            if match is not None:
                pending = pending[pending.index(match) + 1 :]
            committed.append(match or ("?", serial))
        elif _NSD_APPLIED.search(line):
            outcomes.append(True)
        elif _NSD_NOT_APPLIED.search(line):
            outcomes.append(False)
    return [transfer for transfer, applied in zip(committed, outcomes, strict=False) if applied]


async def _read_lines(process: trio.Process, secondary: Secondary) -> None:
    assert process.stdout is not None
    pending = b""
    try:
        async for chunk in process.stdout:
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for raw in complete:
                secondary._add_line(raw.decode(errors="replace").rstrip("\r"))
        if pending:
            secondary._add_line(pending.decode(errors="replace"))
    finally:
        secondary._output_done.set()
        secondary._wake()


async def _watch_exit(process: trio.Process, secondary: Secondary) -> None:
    await process.wait()
    with trio.move_on_after(2):  # the last lines may still be in the pipe
        await secondary._output_done.wait()
    secondary._wake()
    if not secondary._stopping:
        raise secondary._exited()


async def _stop(process: trio.Process) -> None:
    if process.returncode is not None:
        return
    process.terminate()
    with trio.move_on_after(STOP_GRACE) as waited:
        await process.wait()
    if waited.cancelled_caught:
        process.kill()
        await process.wait()


@asynccontextmanager
async def _running(
    secondary: Secondary, command: list[str], ready: str, extra: Callable[[trio.Nursery], None] | None = None
) -> AsyncIterator[Secondary]:
    """Run `command` (stdout and stderr to one pipe) until the block ends; ready once a line
    matches `ready`. An early exit fails the block with the daemon's output."""
    try:
        async with trio.open_nursery() as nursery:
            if extra is not None:
                extra(nursery)
            process = await trio.lowlevel.open_process(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                cwd=secondary.directory,
            )
            secondary.process = process
            try:
                nursery.start_soon(_read_lines, process, secondary)
                nursery.start_soon(_watch_exit, process, secondary)
                with trio.fail_after(START_TIMEOUT):
                    await secondary.wait_line(ready)
                yield secondary
            finally:
                secondary._stopping = True
                with trio.CancelScope(shield=True):
                    await _stop(process)
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # One failure (the test's own, or the daemon's exit): raise it as itself, not in a group.
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise


@asynccontextmanager
async def knot_secondary(
    tmp: Path | str,
    zone: str,
    primary: tuple[str, int],
    key: Key | None = None,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
) -> AsyncIterator[Secondary]:
    """knotd in the foreground (`knotd -c CONF`), a secondary of `zone` transferring from `primary`
    and accepting its NOTIFY (signed with `key` when given). Knot asks IXFR once it has the zone."""
    directory = Path(tmp) / f"knot-{host}"
    directory.mkdir(parents=True, exist_ok=True)
    listen = (host, port or free_port(host))
    config = knot_config(directory, zone, primary, listen, key)
    (directory / "knot.conf").write_text(config)
    secondary = Secondary("knot", dns.name.from_text(zone), listen, directory, config)
    # The control socket: knotd stops when it cannot bind it, and a UNIX socket's path has at most
    # 107 bytes (sun_path), which a pytest tmp_path with a long test name can pass.
    control = Path(tempfile.mkdtemp(prefix="knot-"))
    command = [tool("knotd"), "-c", str(directory / "knot.conf"), "-s", str(control / "knot.sock")]
    try:
        async with _running(secondary, command, r"server started in the foreground") as running:
            yield running
    finally:
        shutil.rmtree(control, ignore_errors=True)


@asynccontextmanager
async def nsd_secondary(
    tmp: Path | str,
    zone: str,
    primary: tuple[str, int],
    key: Key | None = None,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
) -> AsyncIterator[Secondary]:
    """nsd in the foreground (`nsd -d -c CONF`), a secondary of `zone`: `request-xfr` (IXFR over
    TCP, AXFR fallback) through a TransferTap to `primary`, `allow-notify` from its address."""
    directory = Path(tmp) / f"nsd-{host}"
    directory.mkdir(parents=True, exist_ok=True)
    listen = (host, port or free_port(host))
    listener = (await trio.open_tcp_listeners(0, host=host))[0]
    tap = TransferTap(primary, source=host)
    tap_address = (host, listener.socket.getsockname()[1])
    config = nsd_config(directory, zone, primary, listen, key, transfer_from=tap_address)
    (directory / "nsd.conf").write_text(config)
    secondary = Secondary("nsd", dns.name.from_text(zone), listen, directory, config, tap=tap)

    def serve_tap(nursery: trio.Nursery) -> None:
        nursery.start_soon(trio.serve_listeners, tap.handle, [listener])

    command = [tool("nsd"), "-d", "-c", str(directory / "nsd.conf")]
    async with _running(secondary, command, r"nsd started \(NSD ", serve_tap) as running:
        yield running


# --- NSD as a primary: a zone file served to the secondaries, to prove them without k8sgw ---


def nsd_primary_config(
    directory: Path,
    zone: str,
    listen: tuple[str, int],
    notify: Sequence[tuple[str, int]],
    key: Key | None = None,
    *,
    ixfr: bool = True,
    allow: str = "127.0.0.0/8",
) -> str:
    """nsd serving `zone` from primary.zone: transfers to `allow` (with `key` when given), NOTIFY
    to each of `notify`, and IXFR from the differences between zone file versions."""
    key_name = _fqdn(key[0]) if key else "NOKEY"
    keys = f'key:\n    name: {key_name}\n    algorithm: {key[1]}\n    secret: "{key[2]}"\n\n' if key else ""
    notifies = "".join(f"    notify: {host}@{port} {key_name}\n" for host, port in notify)
    journal = "    store-ixfr: yes\n    create-ixfr: yes\n" if ixfr else "    store-ixfr: no\n"
    return f"""\
# NSD as the primary of {_fqdn(zone)}, written by tests/transfer/secondaries.py.
server:
    server-count: 1
    ip-address: {listen[0]}@{listen[1]}
    do-ip6: no
    username: ""
    chroot: ""
    zonesdir: "{directory}"
    pidfile: "{directory}/nsd.pid"
    database: ""
    zonelistfile: "{directory}/zone.list"
    xfrdfile: "{directory}/xfrd.state"
    xfrdir: "{directory}"
    verbosity: 2
    minimal-responses: yes
    rrl-ratelimit: 0

remote-control:
    control-enable: no

{keys}zone:
    name: {_fqdn(zone)}
    zonefile: "{directory}/primary.zone"
    provide-xfr: {allow} {key_name}
{notifies}{journal}"""


@dataclass
class Primary:
    """NSD serving a zone file; `load` replaces the file and has NSD read it (SIGHUP)."""

    daemon: Secondary
    zone_file: Path

    @property
    def address(self) -> tuple[str, int]:
        return self.daemon.address

    async def load(self, text: str) -> None:
        """Serve `text` as the zone from now on: returns once NSD has read it."""
        old = self.zone_file.stat().st_mtime_ns
        self.zone_file.write_text(text)
        # SIGHUP reads zone files whose mtime changed (nsd(8)); a rewrite within the same clock
        # tick would not count, so the new file is dated a second after the old one.
        later = max(self.zone_file.stat().st_mtime_ns, old + 1_000_000_000)
        os.utime(self.zone_file, ns=(later, later))
        since = len(self.daemon.lines)
        assert self.daemon.process is not None
        self.daemon.process.send_signal(signal.SIGHUP)
        await self.daemon.wait_line(r"zone \S+ read with success", since=since)


@asynccontextmanager
async def nsd_primary(
    tmp: Path | str,
    zone: str,
    text: str,
    notify: Sequence[tuple[str, int]] = (),
    key: Key | None = None,
    *,
    ixfr: bool = True,
    allow: str = "127.0.0.0/8",
    host: str = "127.0.0.1",
    port: int | None = None,
) -> AsyncIterator[Primary]:
    """nsd in the foreground serving `text` as `zone`, notifying `notify` of each new serial."""
    directory = Path(tmp) / f"nsd-primary-{host}"
    directory.mkdir(parents=True, exist_ok=True)
    listen = (host, port or free_port(host))
    zone_file = directory / "primary.zone"
    zone_file.write_text(text)
    config = nsd_primary_config(directory, zone, listen, notify, key, ixfr=ixfr, allow=allow)
    (directory / "nsd.conf").write_text(config)
    daemon = Secondary("nsd primary", dns.name.from_text(zone), listen, directory, config)
    command = [tool("nsd"), "-d", "-c", str(directory / "nsd.conf")]
    async with _running(daemon, command, r"nsd started \(NSD ") as running:
        yield Primary(running, zone_file)


# --- NSD's transfers, read on the wire ---


class TransferTap:
    """A TCP relay from a secondary to its primary that notes each zone transfer's form.

    Connections to the primary are made from `source` (the secondary's own address), so the
    primary's access lists see the secondary. Bytes pass unchanged (TSIG included)."""

    def __init__(self, primary: tuple[str, int], source: str) -> None:
        self.primary = primary
        self.source = source
        self.transfers: list[tuple[str, int]] = []
        self.requests: list[str] = []  # the type of every query that passed ("IXFR", "AXFR", "SOA")

    async def handle(self, downstream: trio.SocketStream) -> None:
        async with downstream:
            try:
                upstream = await trio.open_tcp_stream(*self.primary, local_address=self.source)
            except OSError:
                return
            asked: dict[int, str] = {}
            async with upstream, trio.open_nursery() as nursery:
                nursery.start_soon(self._pump, downstream, upstream, _Reader(self._query_seen(asked)), nursery)
                nursery.start_soon(self._pump, upstream, downstream, _Reader(self._reply_seen(asked)), nursery)

    async def _pump(self, src: trio.SocketStream, dst: trio.SocketStream, reader: _Reader, nursery: trio.Nursery) -> None:
        try:
            while data := await src.receive_some(65536):
                reader.feed(data)
                await dst.send_all(data)
            await dst.send_eof()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            nursery.cancel_scope.cancel()

    def _query_seen(self, asked: dict[int, str]) -> Callable[[bytes], None]:
        def seen(wire: bytes) -> None:
            qid, qtype, _ = _parse(wire, answers=0)
            kind = dns.rdatatype.to_text(qtype) if qtype is not None else "?"
            asked[qid] = kind
            self.requests.append(kind)

        return seen

    def _reply_seen(self, asked: dict[int, str]) -> Callable[[bytes], None]:
        # Per query id: the first two answer records' (type, SOA serial) across its messages.
        firsts: dict[int, list[tuple[int, int | None]]] = {}

        def seen(wire: bytes) -> None:
            qid, _, records = _parse(wire, answers=2)
            kind = asked.get(qid)
            if kind not in ("AXFR", "IXFR"):
                return
            got = firsts.setdefault(qid, [])
            if len(got) >= 2:
                return
            got.extend(records[: 2 - len(got)])
            if len(got) < 2 or got[0][0] != dns.rdatatype.SOA or got[0][1] is None:
                return  # a single SOA (IXFR: already current) or not a transfer: nothing arrived
            incremental = kind == "IXFR" and got[1][0] == dns.rdatatype.SOA
            self.transfers.append(("IXFR" if incremental else "AXFR", got[0][1]))

        return seen


class _Reader:
    """Splits a DNS-over-TCP byte stream into messages (two-byte length prefix, RFC 1035 §4.2.2)."""

    def __init__(self, on_message: Callable[[bytes], None]) -> None:
        self.buffer = b""
        self.on_message = on_message

    def feed(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= 2:
            (size,) = struct.unpack("!H", self.buffer[:2])
            if len(self.buffer) < 2 + size:
                return
            wire, self.buffer = self.buffer[2 : 2 + size], self.buffer[2 + size :]
            try:
                self.on_message(wire)
            except (dns.exception.DNSException, struct.error, ValueError, IndexError):
                pass  # not ours to judge: the secondary reads the same bytes and says what is wrong


def _parse(wire: bytes, answers: int) -> tuple[int, int | None, list[tuple[int, int | None]]]:
    """(id, qtype, up to `answers` answer records as (rdtype, SOA serial or None)), read from the
    wire without dnspython's message parser, which refuses a TSIG-signed message without its key."""
    qid, _flags, qdcount, ancount = struct.unpack("!HHHH", wire[:8])
    offset, qtype = 12, None
    for _ in range(qdcount):
        _, used = dns.name.from_wire(wire, offset)
        offset += used
        (qtype,) = struct.unpack("!H", wire[offset : offset + 2])
        offset += 4
    records: list[tuple[int, int | None]] = []
    for _ in range(min(ancount, answers)):
        _, used = dns.name.from_wire(wire, offset)
        offset += used
        rdtype, rdclass, _ttl, rdlen = struct.unpack("!HHIH", wire[offset : offset + 10])
        offset += 10
        serial = None
        if rdtype == dns.rdatatype.SOA:
            serial = dns.rdata.from_wire(dns.rdataclass.IN, rdtype, wire, offset, rdlen).serial
        records.append((rdtype, serial))
        offset += rdlen
    return qid, qtype, records
