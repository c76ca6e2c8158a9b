"""Locks between kgrec processes on one machine (``fcntl.flock``; released by the kernel when
the holder exits, so a killed process never leaves a stale lock behind).

- :func:`artifact_lock`: one writer per artifact folder (``build-graph``, ``add-items``, the
  promotion of a trained model, the recovery of an interrupted swap). The lock file lies
  beside the folder (``.<name>.lock``), since the folder itself is swapped.
- :func:`graph_lock`: one writer per database graph (``build-graph``, ``add-items``), in the
  state folder (``locks/``).
- :class:`RecordGate`: writes into a live graph (served records, shared) against the swap that
  replaces it (exclusive). A turnstile keeps a stream of writers from starving the swap.

A holder writes who it is (pid, command, since) into the lock file, so a second writer fails
fast with a message naming it, or waits for it (``--wait``).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kgrec.errors import KgrecError
from kgrec.files import private_dir


class BusyError(KgrecError):
    """Another process is writing the same artifact folder or graph."""

    exit_code = 75  # EX_TEMPFAIL: try again later


@dataclass(frozen=True)
class Holder:
    """Who holds a lock."""

    pid: int
    command: str
    since: str

    def __str__(self) -> str:
        return f"pid {self.pid} ({self.command}, since {self.since})"


def _this_process() -> Holder:
    command = shlex.join(["kgrec", *sys.argv[1:]]) if sys.argv else "kgrec"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
    return Holder(os.getpid(), command, since)


def _open(path: Path, private: bool = True) -> int:
    if private:
        private_dir(path.parent)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)


_HELD: dict[Path, int] = {}
"""Locks this process holds, with how many times it took each (a lock is re-entrant within
a process: a command may take it early and the library again)."""


class WriterLock:
    """An exclusive lock on one resource, named ``what`` in messages.

    Use as a context manager, or :meth:`acquire` / :meth:`release`. Re-entrant within one
    process; exclusive between processes.
    """

    def __init__(self, path: Path, what: str, *, private_folder: bool = True) -> None:
        self.path = path
        self.what = what
        self.private_folder = private_folder
        self._fd: int | None = None
        self._nested = False

    def holder(self) -> Holder | None:
        """The recorded holder (meaningful only while someone holds the lock)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return Holder(int(data["pid"]), str(data["command"]), str(data["since"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def acquire(
        self,
        *,
        wait: bool = False,
        on_wait: Callable[[Holder | None], None] | None = None,
        hint: str = "wait for it to finish, or pass --wait to queue behind it",
    ) -> None:
        """Take the lock; when busy raise :class:`BusyError` (ending with ``hint``) or, with
        ``wait``, block."""
        key = self.path.absolute()
        if key in _HELD:
            _HELD[key] += 1
            self._nested = True
            return
        fd = _open(self.path, self.private_folder)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self.holder()
            if not wait:
                os.close(fd)
                who = str(holder) if holder else "another process"
                raise BusyError(f"{self.what} is being written by {who}: {hint}") from None
            if on_wait is not None:
                on_wait(holder)
            fcntl.flock(fd, fcntl.LOCK_EX)
        me = _this_process()
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me.__dict__).encode(), 0)
        self._fd = fd
        _HELD[key] = 1

    def release(self) -> None:
        key = self.path.absolute()
        if self._nested:
            _HELD[key] -= 1
            self._nested = False
            return
        if self._fd is not None:
            _HELD.pop(key, None)
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def artifact_lock(artifacts_dir: Path | str) -> WriterLock:
    """The writer lock of an artifact folder (``<parent>/.<name>.lock``)."""
    folder = Path(artifacts_dir).absolute()
    return WriterLock(
        folder.parent / f".{folder.name}.lock", f"artifact folder {folder}", private_folder=False
    )


def _safe(name: str) -> str:
    """A file-name-safe form of a graph name (with a hash, so distinct names stay distinct)."""
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{re.sub(r'[^A-Za-z0-9_.-]', '_', name)[:60]}-{digest}"


def graph_lock(state_dir: Path, graph: str) -> WriterLock:
    """The writer lock of a database graph (``<state>/locks/graph-<graph>.lock``)."""
    return WriterLock(Path(state_dir) / "locks" / f"graph-{_safe(graph)}.lock", f"graph {graph!r}")


@contextmanager
def writer_locks(
    artifacts_dir: Path,
    state_dir: Path | None = None,
    graph: str | None = None,
    *,
    wait: bool = False,
    on_wait: Callable[[Holder | None], None] | None = None,
) -> Iterator[None]:
    """Hold the artifact folder's lock, then (with ``state_dir``) the graph's.

    Always in this order, so two writers never wait for each other in a circle. Busy:
    :class:`BusyError`, or with ``wait`` block (``on_wait`` is told who is ahead).
    """
    locks = [artifact_lock(artifacts_dir)]
    if state_dir is not None and graph is not None:
        locks.append(graph_lock(state_dir, graph))
    held: list[WriterLock] = []
    try:
        for lock in locks:
            lock.acquire(wait=wait, on_wait=on_wait)
            held.append(lock)
        yield
    finally:
        for lock in reversed(held):
            lock.release()


class RecordGate:
    """Writes into the live graph ``graph`` (shared) against its replacement (exclusive)."""

    def __init__(self, lock_dir: Path, graph: str) -> None:
        self.turnstile = Path(lock_dir) / f"gate-{_safe(graph)}.turnstile"
        self.gate = Path(lock_dir) / f"gate-{_safe(graph)}.lock"

    @contextmanager
    def shared(self) -> Iterator[None]:
        """Held while one write runs against the live graph."""
        turnstile, gate = _open(self.turnstile), _open(self.gate)
        try:
            fcntl.flock(turnstile, fcntl.LOCK_EX)  # queue behind a waiting swap
            fcntl.flock(gate, fcntl.LOCK_SH)
            fcntl.flock(turnstile, fcntl.LOCK_UN)
            yield
        finally:
            os.close(gate)
            os.close(turnstile)

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Held while the live graph is replaced: no write runs meanwhile."""
        turnstile, gate = _open(self.turnstile), _open(self.gate)
        try:
            fcntl.flock(turnstile, fcntl.LOCK_EX)
            fcntl.flock(gate, fcntl.LOCK_EX)
            yield
        finally:
            os.close(gate)
            os.close(turnstile)
