"""watch_corefile: the file-watching half of the ``reload`` directive.

It only notices changes; parsing the new text and swapping the running configuration is the
caller's job (a new Corefile that does not parse must leave the old one running, as in CoreDNS).
Changes are detected by SHA-256 of the contents, not by mtime: Kubernetes updates a mounted
ConfigMap by swapping a symlink, which mtime-based checks can miss.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager

import trio

__all__ = ["watch_corefile"]

logger = logging.getLogger(__name__)


def watch_corefile(
    path: str | os.PathLike[str], interval: float, *, initial: str | bytes | None = None
) -> AbstractAsyncContextManager[trio.MemoryReceiveChannel[str]]:
    """Yield the Corefile's new text every time its SHA-256 changes, checking every ``interval`` s.

    Use as ``async with watch_corefile(path, cfg.pick_interval(random.random())) as changes:
    async for text in changes: ...``.

    Args:
        path: the Corefile.
        interval: seconds between checks (``ReloadConfig.pick_interval`` applies the jitter).
        initial: the contents the running configuration was loaded from; changes are relative to
            it (so an edit made between loading and watching is not missed). None = the file's
            contents when watching starts.

    A file that cannot be read or is not UTF-8 is logged at WARNING and checked again at the next
    interval; the last good contents stay the reference. Never ends unless cancelled.

    The reference is taken when this is called (the channel's generator only runs while someone
    waits on it, see ``trio.as_safe_channel``).
    """
    if initial is None:
        seen = _digest(path)
    else:
        seen = hashlib.sha256(initial.encode() if isinstance(initial, str) else initial).hexdigest()
    return _watch(path, interval, seen)


@trio.as_safe_channel
async def _watch(path: str | os.PathLike[str], interval: float, seen: str | None) -> AsyncIterator[str]:
    while True:
        await trio.sleep(interval)
        try:
            data = _read(path)
        except OSError as exc:
            logger.warning("reload: cannot read %s: %s; trying again in %.1fs", path, exc.strerror or exc, interval)
            continue
        digest = hashlib.sha256(data).hexdigest()
        if digest == seen:
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            logger.warning("reload: %s is not UTF-8 text (%s); keeping the running configuration", path, exc.reason)
            seen = digest
            continue
        seen = digest
        logger.info("reload: %s changed (SHA-256 %s)", path, digest[:16])
        yield text


def _read(path: str | os.PathLike[str]) -> bytes:
    # A plain blocking read, not trio.Path (a thread per check): a Corefile is a few hundred bytes
    # on a local or tmpfs (ConfigMap) mount, read every 30 s; the thread hop would cost more.
    with open(path, "rb") as f:
        return f.read()


def _digest(path: str | os.PathLike[str]) -> str | None:
    try:
        return hashlib.sha256(_read(path)).hexdigest()
    except OSError:
        return None
