"""The query log's batched writer: every line written once, in order, in few writes; a slow reader
makes answering wait (never drops); a broken stream is counted; and, through the real process,
exactly one stderr line per answered query, including the lines still buffered at SIGTERM."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import dns.asyncquery
import dns.message
import httpx
import pytest
import trio

from bench.servers import free_port
from k8sgw.ops.logsink import LineSink
from tests.test_cli import Lines


def lines(n: int, width: int = 100) -> list[str]:
    return [f"{i:08d} " + "x" * (width - 10) + "\n" for i in range(n)]


def test_lines_are_written_in_order_in_one_write_at_close():
    out = io.StringIO()
    # A linger longer than the test: the batch is written because close() asks, not a timer.
    sink = LineSink(out, linger=3600, batch_bytes=2**30, max_bytes=2**30)
    expected = lines(10_000)
    for line in expected:
        sink.append(line)
    sink.close()
    assert out.getvalue() == "".join(expected)
    assert (sink.appended, sink.written, sink.unwritten, sink.waits, sink.writes) == (10_000, 10_000, 0, 0, 1)
    sink.append("after close\n")  # written at once: nothing is lost after shutdown either
    assert out.getvalue().endswith("after close\n") and sink.written == 10_001
    sink.close()  # idempotent


def test_a_slow_reader_makes_append_wait_and_loses_nothing():
    read_fd, write_fd = os.pipe()
    stream = open(write_fd, "w", encoding="ascii")  # noqa: SIM115 - closed below, after the sink
    stalled = threading.Event()
    held: list[int] = []
    max_bytes = 64 * 1024
    sink: LineSink

    def on_wait() -> None:
        held.append(sink.appended - sink.written)  # lines buffered or being written right now
        stalled.set()

    sink = LineSink(stream, max_bytes=max_bytes, batch_bytes=16 * 1024, linger=0.001, on_wait=on_wait)
    received: list[bytes] = []
    saw_stall: list[bool] = []

    def reader() -> None:
        # Nobody reads until answering has had to wait: the pipe (64 KiB) and the sink's buffer fill.
        saw_stall.append(stalled.wait(60))
        with open(read_fd, "rb") as f:
            while chunk := f.read(65536):
                received.append(chunk)

    thread = threading.Thread(target=reader)
    thread.start()
    expected = lines(20_000)  # 2 MB: far past the pipe and the buffer
    for line in expected:
        sink.append(line)
    sink.close()
    stream.close()
    thread.join()
    assert saw_stall == [True] and sink.waits >= 1
    assert b"".join(received).decode() == "".join(expected)
    assert sink.written == 20_000 and sink.unwritten == 0
    # The buffer stayed bounded: what was held when append waited is max_bytes and one line.
    assert held and max(held) * 100 <= max_bytes + 100


def test_a_broken_stream_counts_lines_as_unwritten():
    read_fd, write_fd = os.pipe()
    os.close(read_fd)  # EPIPE on every write (Python ignores SIGPIPE)
    stream = open(write_fd, "w", encoding="ascii")  # noqa: SIM115
    sink = LineSink(stream, linger=3600)
    for line in lines(100):
        sink.append(line)
    sink.close()
    assert (sink.written, sink.unwritten) == (0, 100)
    try:
        stream.close()
    except BrokenPipeError:
        pass  # the text layer still held the failed batch


# -- the real process ----------------------------------------------------------------------------

_QUERY_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO k8sgw\.query: 127\.0\.0\.1:\d+ - (\d+) "
    r'"A IN (\S+) udp \d+ false 512" (NOERROR|NXDOMAIN) qr,aa,rd \d+ \d+(?:\.\d+)?s$'
)


def corefile(kubeconfig: Path, level_line: str = "") -> str:
    return f"""
foo.org {{
    bind 127.0.0.1
    prometheus 127.0.0.1:0
    log
    {level_line}
    k8s_gateway foo.org {{
        kubeconfig {kubeconfig}
    }}
}}
"""


async def ask_all(addr: tuple[str, int], ids: range) -> None:
    """One UDP query per ID (a real name and an NXDOMAIN one in turn), 50 at a time, each answered."""
    async def one(qid: int) -> None:
        name = "myservicea.foo.org." if qid % 2 else f"nothing{qid}.foo.org."
        q = dns.message.make_query(name, "A", id=qid)
        reply = await dns.asyncquery.udp(q, addr[0], port=addr[1], timeout=5)
        assert reply.id == qid

    for start in range(ids.start, ids.stop, 50):
        async with trio.open_nursery() as nursery:
            for qid in range(start, min(start + 50, ids.stop)):
                nursery.start_soon(one, qid)


def query_ids(seen: list[str]) -> list[int]:
    ids = []
    for line in seen:
        if " k8sgw.query: " in line:
            m = _QUERY_LINE.match(line)
            assert m, line  # the format users saw before: logging's prefix, then CoreDNS's line
            ids.append(int(m.group(1)))
    return ids


async def start(path: Path, *args: str) -> tuple[trio.Process, Lines, tuple[str, int], str]:
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "k8sgw", "-conf", str(path), "-dns.port", "0", *args], stderr=subprocess.PIPE
    )
    lines = Lines(proc.stderr)
    m = await lines.until(r"serving DNS on 127\.0\.0\.1 port (\d+)")
    addr = ("127.0.0.1", int(m.group(1)))
    metrics = await lines.until(r"serving /metrics on (\S+) port (\d+)")
    await lines.seen_or_until("ready: every watched kind has synced")
    return proc, lines, addr, f"http://{metrics.group(1)}:{metrics.group(2)}/metrics"


async def read_to_end(lines: Lines) -> None:
    while chunk := await lines.stream.receive_some(65536):
        lines.buffer += chunk
    lines.seen.extend(line.decode(errors="replace") for line in lines.buffer.split(b"\n") if line)
    lines.buffer = b""


def written_metric(text: str) -> float:
    m = re.search(r'^k8sgw_query_log_lines_total\{result="written"\} (\S+)$', text, re.MULTILINE)
    assert m, text
    return float(m.group(1))


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_every_answered_query_is_one_stderr_line_also_those_buffered_at_exit(kubeconfig, tmp_path, signum):
    path = tmp_path / "Corefile"
    path.write_text(corefile(kubeconfig))
    with trio.fail_after(60):
        proc, lines, addr, metrics_url = await start(path)
        try:
            await ask_all(addr, range(1, 301))
            while len(query_ids(lines.seen)) < 300:  # each line is read from the pipe as it comes
                await lines.until(" k8sgw.query: ")
            async with httpx.AsyncClient() as http:
                assert written_metric((await http.get(metrics_url)).text) == 300
            # Then more, and the signal as soon as the last is answered: what is still buffered is
            # written on the way out.
            await ask_all(addr, range(301, 1001))
            proc.send_signal(signum)
            await read_to_end(lines)
            assert await proc.wait() == 0
        finally:
            proc.kill()
            await proc.wait()
    ids = query_ids(lines.seen)
    assert sorted(ids) == list(range(1, 1001)), f"{len(ids)} lines"
    assert any(f"{signal.Signals(signum).name}: shutting down" in line for line in lines.seen)


async def test_log_level_warning_writes_no_query_line(kubeconfig, tmp_path):
    path = tmp_path / "Corefile"
    path.write_text(corefile(kubeconfig))
    port = free_port()
    with trio.fail_after(60):
        proc = await trio.lowlevel.open_process(
            [sys.executable, "-m", "k8sgw", "-conf", str(path), "-dns.port", str(port), "-log.level", "warning"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        try:
            # With INFO off the log says nothing; the banner on stdout comes once every socket is bound.
            await Lines(proc.stdout).until(r"^k8sgw-")
            await ask_all(("127.0.0.1", port), range(1, 101))
            proc.send_signal(signal.SIGTERM)
            lines = Lines(proc.stderr)
            await read_to_end(lines)
            assert await proc.wait() == 0
        finally:
            proc.kill()
            await proc.wait()
    assert not [line for line in lines.seen if "k8sgw.query" in line], lines.seen
