"""watch_corefile: new contents when the SHA-256 changes; unreadable files are survived. No sleeps."""

from __future__ import annotations

import os

import pytest
import trio
import trio.testing

from k8sgw.ops.reload import watch_corefile

INTERVAL = 30.0


async def next_change(recv) -> tuple[str, float]:
    start = trio.current_time()
    text = await recv.receive()
    return text, trio.current_time() - start


async def test_yields_on_change_only(tmp_path, autojump_clock):
    path = tmp_path / "Corefile"
    path.write_text("a")
    with trio.fail_after(1000):
        async with watch_corefile(path, INTERVAL) as changes:
            await trio.testing.wait_all_tasks_blocked()
            start = trio.current_time()
            path.write_text("b")
            assert await changes.receive() == "b"
            assert trio.current_time() - start == INTERVAL
            # Rewriting the same contents (a new mtime) is not a change; the next real one is.
            path.write_text("b")
            with trio.move_on_after(INTERVAL * 3):
                await changes.receive()
                raise AssertionError("same contents reported as a change")
            path.write_text("c")
            # (The check that was cancelled above may still be running: at most one interval.)
            text, waited = await next_change(changes)
            assert text == "c" and waited <= INTERVAL


async def test_initial_contents_are_the_reference(tmp_path, autojump_clock):
    path = tmp_path / "Corefile"
    path.write_text("edited before watching")
    with trio.fail_after(1000):
        async with watch_corefile(path, INTERVAL, initial="as loaded") as changes:
            text, waited = await next_change(changes)
            assert text == "edited before watching" and waited == INTERVAL


async def test_configmap_symlink_swap(tmp_path, autojump_clock):
    """Kubernetes updates a mounted ConfigMap by re-pointing a symlink."""
    (tmp_path / "v1").mkdir()
    (tmp_path / "v2").mkdir()
    (tmp_path / "v1" / "Corefile").write_text("one")
    (tmp_path / "v2" / "Corefile").write_text("two")
    os.symlink("v1", tmp_path / "..data")
    os.symlink("..data/Corefile", tmp_path / "Corefile")
    with trio.fail_after(1000):
        async with watch_corefile(tmp_path / "Corefile", INTERVAL) as changes:
            await trio.testing.wait_all_tasks_blocked()
            os.symlink("v2", tmp_path / "..tmp")
            os.replace(tmp_path / "..tmp", tmp_path / "..data")
            assert await changes.receive() == "two"


async def test_missing_and_undecodable_files_are_logged_and_survived(tmp_path, autojump_clock, caplog):
    path = tmp_path / "Corefile"
    path.write_text("a")
    with trio.fail_after(1000):
        async with watch_corefile(path, INTERVAL) as changes:
            await trio.testing.wait_all_tasks_blocked()
            # (The channel checks only while someone waits on it.)
            path.unlink()
            with trio.move_on_after(INTERVAL * 1.5):
                await changes.receive()
            assert "reload: cannot read" in caplog.text
            path.write_bytes(b"\xff\xfe")
            with trio.move_on_after(INTERVAL):
                await changes.receive()
            assert "is not UTF-8 text" in caplog.text
            path.write_text("fixed")
            assert await changes.receive() == "fixed"


@pytest.mark.parametrize("initial", [b"a", None])
async def test_file_missing_at_start(tmp_path, autojump_clock, initial):
    path = tmp_path / "Corefile"
    with trio.fail_after(1000):
        async with watch_corefile(path, INTERVAL, initial=initial) as changes:
            await trio.testing.wait_all_tasks_blocked()
            path.write_text("now")
            assert await changes.receive() == "now"
