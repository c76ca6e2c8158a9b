"""Helpers of the fault-injection suite: real ``kgrec`` processes, real signals, a real
embedded FalkorDB server per test (``home`` in ``conftest.py``; some tests kill it)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "data" / "demo"
OLD_TITLE, NEW_TITLE = "The Golden Signal", "The Golden Sign"
"""Item i0001's title in the demo data and in its changed copy (tells two builds apart)."""


def env_for(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a ``kgrec`` subprocess: this checkout first, its own state folder."""
    env = dict(os.environ)
    env.update(PYTHONPATH=str(REPO), KGREC_HOME=str(home), COLUMNS="200", **extra)
    env.pop("KGREC_FAULT_AT", None)
    env.pop("KGREC_FAULT_SIGNAL", None)
    env.update(extra)
    return env


def kgrec_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "kgrec", *args]


def run_kgrec(
    home: Path, *args: str, timeout: float = 300, **extra: str
) -> subprocess.CompletedProcess[str]:
    """Run ``kgrec args`` to the end (or its death)."""
    return subprocess.run(
        kgrec_cmd(*args),
        env=env_for(home, **extra),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


def start_kgrec(
    home: Path, *args: str, log: Path | None = None, **extra: str
) -> subprocess.Popen[str]:
    """Start ``kgrec args`` in the background (output to pipes, or to the file ``log``)."""
    out = log.open("w") if log is not None else subprocess.PIPE
    try:
        return subprocess.Popen(
            kgrec_cmd(*args),
            env=env_for(home, **extra),
            stdout=out,
            stderr=subprocess.STDOUT if log is not None else subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
    finally:
        if log is not None:
            out.close()  # type: ignore[union-attr]


def fork_kgrec(home: Path, *args: str, log: Path, **extra: str) -> int:
    """Run ``kgrec args`` in a forked child of this test process (a real process, killed for
    real, without the seconds a fresh interpreter spends importing torch); output to ``log``.

    Returns the child's pid; reap it with :func:`wait_exit`.
    """
    log.write_text("")
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        if "torch" in sys.modules:  # the parent's thread pool did not survive the fork
            sys.modules["torch"].set_num_threads(1)
        os.environ.update(env_for(home, **extra))
        for name in ("KGREC_FAULT_AT", "KGREC_FAULT_SIGNAL"):
            if name not in extra:
                os.environ.pop(name, None)
        fd = os.open(log, os.O_WRONLY | os.O_APPEND)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        sys.stdout = sys.stderr = open(fd, "w", buffering=1, closefd=False)  # noqa: SIM115
        sys.argv = ["kgrec", *args]
        from kgrec.cli import app

        app(list(args), prog_name="kgrec")
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # a traceback is what the tests look for
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        os._exit(code)


def wait_exit(pid: int, timeout: float = 300) -> int:
    """The exit code of child ``pid`` (negative: killed by that signal)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    raise AssertionError(f"process {pid} did not finish within {timeout} s")


def wait_stopped(pid: int, timeout: float = 120) -> None:
    """Wait until process ``pid`` stopped itself (``KGREC_FAULT_SIGNAL=STOP``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            state = "gone"
        if state == "T":
            return
        if state in ("Z", "gone"):
            raise AssertionError(f"process {pid} exited before its fault point")
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    raise AssertionError("the process never reached its fault point")


def one_line_error(result: subprocess.CompletedProcess[str] | object | str) -> str:
    """The command's error: exactly one ``error:`` line and no traceback."""
    if isinstance(result, str):
        stderr = result
    elif isinstance(result, subprocess.CompletedProcess):
        stderr = str(result.stderr or "")
    else:  # a CliRunner result: its output holds stdout and stderr
        stderr = str(getattr(result, "output", "") or "")
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    return errors[0]


def write_config(
    path: Path, home: Path, artifacts: Path, graph: str = "kgrec", data: Path = DEMO
) -> Path:
    """A YAML config for a test's build (its own state folder, graph and artifacts)."""
    config = {
        "dataset": {"path": str(data)},
        "store": {"graph": graph},
        "artifacts": str(artifacts),
        "state_dir": str(home),
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def changed_demo(folder: Path) -> Path:
    """A copy of the demo data whose item i0001 has another title."""
    shutil.copytree(DEMO, folder)
    items = folder / "items.csv"
    items.write_text(items.read_text().replace(OLD_TITLE, NEW_TITLE, 1), encoding="utf-8")
    return folder


def servers_of(home: Path) -> list[int]:
    """Pids of every redis-server working in ``home``'s data folder."""
    data = (home / "falkordb" / "data").resolve()
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes()
                cwd = (proc / "cwd").resolve()
            except OSError:
                continue
            if b"redis-server" in cmdline and cwd == data:
                pids.append(int(proc.name))
    return pids


def server_pid(home: Path) -> int:
    return int(json.loads((home / "falkordb" / "server.json").read_text())["pid"])


def kill_server(home: Path) -> None:
    """``kill -9`` of the embedded server, waiting until it is gone."""
    pid = server_pid(home)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        stat = Path(f"/proc/{pid}/stat").read_text() if Path(f"/proc/{pid}").exists() else ""
        if stat and stat.rsplit(")", 1)[1].split()[0] == "Z":
            break
        time.sleep(0.02)
