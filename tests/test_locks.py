"""Writer locks between processes: fail fast naming the holder, wait, re-enter, gate."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kgrec.locks import BusyError, RecordGate, artifact_lock, graph_lock

REPO = Path(__file__).resolve().parents[1]


def hold_in_child(path: Path, ready: Path) -> int:
    """Fork a child that takes the artifact lock of ``path`` and sleeps; returns its pid."""
    pid = os.fork()
    if pid == 0:
        try:
            artifact_lock(path).acquire()
            ready.touch()
            time.sleep(60)
        finally:
            os._exit(0)
    while not ready.exists():
        time.sleep(0.01)
    return pid


def test_a_second_writer_fails_fast_naming_the_holder(tmp_path: Path) -> None:
    folder = tmp_path / "art"
    pid = hold_in_child(folder, tmp_path / "ready")
    try:
        clock = time.monotonic()
        with pytest.raises(BusyError) as info:
            artifact_lock(folder).acquire()
        assert time.monotonic() - clock < 1
        assert f"artifact folder {folder} is being written by pid {pid} (kgrec" in str(info.value)
        assert "--wait" in str(info.value) and info.value.exit_code == 75
    finally:
        os.kill(pid, signal.SIGKILL)  # the kernel releases the lock of a killed holder
        os.waitpid(pid, 0)
    lock = artifact_lock(folder)
    lock.acquire()
    lock.release()
    assert (tmp_path / ".art.lock").exists() and not folder.exists()


def test_wait_queues_behind_the_holder(tmp_path: Path) -> None:
    pid = hold_in_child(tmp_path / "art", tmp_path / "ready")
    seen = []

    def release_soon(holder: object) -> None:
        seen.append(holder)
        os.kill(pid, signal.SIGKILL)

    lock = artifact_lock(tmp_path / "art")
    lock.acquire(wait=True, on_wait=release_soon)
    lock.release()
    os.waitpid(pid, 0)
    assert len(seen) == 1 and f"pid {pid}" in str(seen[0])


def test_locks_are_reentrant_within_a_process(tmp_path: Path) -> None:
    outer, inner = graph_lock(tmp_path, "g"), graph_lock(tmp_path, "g")
    outer.acquire()
    inner.acquire()  # the command took it early, the library takes it again
    inner.release()
    other = subprocess.run(  # another process: still held by this one
        [sys.executable, "-c", f"from kgrec.locks import graph_lock; "
         f"graph_lock({str(tmp_path)!r}, 'g').acquire()"],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert other.returncode == 1 and "BusyError" in other.stderr
    outer.release()
    assert oct((tmp_path / "locks").stat().st_mode & 0o777) == "0o700"


def test_the_gate_holds_writes_back_during_a_swap(tmp_path: Path) -> None:
    order, held = tmp_path / "order", tmp_path / "held"
    pid = os.fork()  # before any lock: a child would share its parent's open locks
    if pid == 0:
        while not held.exists():
            time.sleep(0.01)
        with RecordGate(tmp_path, "g").shared(), order.open("a") as out:
            out.write("write\n")
        os._exit(0)
    with RecordGate(tmp_path, "g").exclusive():
        held.touch()
        time.sleep(0.3)
        with order.open("a") as out:
            out.write("swap\n")
    os.waitpid(pid, 0)
    assert order.read_text().split() == ["swap", "write"]
