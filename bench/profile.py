"""`--py-spy DIR`: sample k8sgw with py-spy while it is measured, and summarise where time goes.

py-spy attaches to the running k8sgw process (`record --pid`, `--nonblocking`, so k8sgw is never
paused) and writes folded stacks (`-f raw`: `frame;frame;frame count`). The summary counts each
sample once per function on its stack (inclusive) and once for its leaf (self), which is enough to
say what a hot path spends its time on without opening a flame graph.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
from collections import Counter
from pathlib import Path

import trio

__all__ = ["PySpy", "summarise"]

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


class PySpy:
    """One py-spy recording of a process, stopped with stop() (SIGINT makes py-spy write its file)."""

    def __init__(self, process: trio.Process | None, out: Path) -> None:
        self._process, self.out = process, out

    @classmethod
    async def start(cls, pid: int, out: Path, *, rate: int = 250, duration: float | None = None) -> PySpy:
        if shutil.which("py-spy") is None:
            return cls(None, out)
        out.parent.mkdir(parents=True, exist_ok=True)
        cmd = [
            "py-spy",
            "record",
            "--pid",
            str(pid),
            "--nonblocking",
            "-r",
            str(rate),
            "-f",
            "raw",
            "-o",
            str(out),
        ]
        if duration is not None:
            cmd += ["--duration", str(max(1, round(duration)))]
        process = await trio.lowlevel.open_process(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return cls(process, out)

    async def stop(self) -> Path | None:
        if self._process is None:
            return None
        if self._process.returncode is None:
            self._process.send_signal(signal.SIGINT)
        with trio.move_on_after(10):
            await self._process.wait()
        if self._process.returncode is None:
            self._process.kill()
            await self._process.wait()
        return self.out if self.out.exists() else None


def _short(frame: str) -> str:
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    file = m.group("file")
    for marker in ("/site-packages/", "/k8sgw/", "/lib/python3"):
        if marker in file:
            file = file.split(marker, 1)[1] if marker != "/k8sgw/" else "k8sgw/" + file.split(marker, 1)[1]
            break
    return f"{m.group('func')} ({file})"


def summarise(folded: Path, top: int = 15) -> str:
    """The `top` functions by self time and by inclusive time, as percentages of all samples."""
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in folded.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_short(f) for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += n
        self_time[frames[-1]] += n
        for f in set(frames):
            inclusive[f] += n
    if not total:
        return f"{folded.name}: no samples"
    out = [f"{folded.name}: {total:,} samples", "  self%  function"]
    out += [f"  {100 * n / total:5.1f}  {f}" for f, n in self_time.most_common(top)]
    out += ["  incl%  function"]
    out += [f"  {100 * n / total:5.1f}  {f}" for f, n in inclusive.most_common(top)]
    return "\n".join(out)
