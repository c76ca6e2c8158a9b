"""The embedded FalkorDB server: loopback only, private password, persistence, stale state."""

from __future__ import annotations

import json
import socket
import stat
from pathlib import Path

import pytest
import redis

from kgrec.errors import StoreError
from kgrec.store.falkordb import FalkorDBStore
from kgrec.store.server import FalkorDBServer


def test_start_is_private_and_persistent(tmp_path: Path) -> None:
    server = FalkorDBServer(tmp_path)
    info = server.start()
    try:
        assert info.host == "127.0.0.1"
        for secret in (server.password_file, server.conf_file):
            assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        conf = server.conf_file.read_text()
        assert "bind 127.0.0.1" in conf
        assert "BOLT" not in conf.upper()
        with pytest.raises(redis.exceptions.AuthenticationError):
            redis.Redis(host="127.0.0.1", port=info.port).ping()
        assert server.start().pid == info.pid  # already running: same server
        store = FalkorDBStore(info.host, info.port, server.password(), graph="g")
        store.query("CREATE (:Item {id: $id})", {"id": "i1"}, write=True)
        store.close()
    finally:
        assert server.stop() is True
    assert server.status() is None
    assert (server.data_dir / "dump.rdb").exists()
    assert server.stop() is False

    info = server.start()  # the graph survives a restart
    try:
        store = FalkorDBStore(info.host, info.port, server.password(), graph="g")
        assert store.query("MATCH (n:Item) RETURN n.id AS id").rows == [["i1"]]
        store.close()
    finally:
        server.stop()


def test_stale_pid_file_is_removed_with_a_note(tmp_path: Path) -> None:
    server = FalkorDBServer(tmp_path)
    server.root.mkdir(parents=True)
    server.info_file.write_text(json.dumps({"pid": 2**22 + 12345, "port": 1}))
    assert server.status() is None
    assert not server.info_file.exists()
    assert any("stale" in note for note in server.notes)


def test_busy_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(StoreError, match=f"port {port} .* in use"):
            FalkorDBServer(tmp_path, port=port).start()


def test_wrong_password_is_a_clear_error(falkordb_home: Path) -> None:
    info = FalkorDBServer(falkordb_home).status()
    assert info is not None
    with pytest.raises(StoreError, match="refused the password"):
        FalkorDBStore(info.host, info.port, "not-the-password")


def test_unreachable_server_is_a_clear_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(StoreError, match="cannot reach FalkorDB"):
        FalkorDBStore("127.0.0.1", port, "x")
