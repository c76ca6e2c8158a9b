"""The embedded server's state folder: one server per data folder even when ``server.json``
is unreadable (failure 5), private files (failure 8), leftovers of killed runs (failure 10)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from kgrec.build import build_graph
from kgrec.config import load_config
from kgrec.store.falkordb import FalkorDBStore
from kgrec.store.server import FalkorDBServer
from tests.faults.helpers import (
    fork_kgrec,
    one_line_error,
    run_kgrec,
    servers_of,
    wait_exit,
    write_config,
)


@pytest.mark.parametrize("damage", ["garbage", "empty", "missing", "unreadable"])
def test_an_unreadable_server_json_never_starts_a_second_server(home: Path, damage: str) -> None:
    server = FalkorDBServer(home)
    info = server.start()
    if damage == "garbage":
        server.info_file.write_bytes(b"\xff\x00{not json")
    elif damage == "empty":
        server.info_file.write_text("")
    elif damage == "missing":
        server.info_file.unlink()
    else:
        server.info_file.unlink()
        server.info_file.mkdir()  # a folder where the file was: reading it fails

    again = FalkorDBServer(home)
    found = again.start()
    assert (found.pid, found.port) == (info.pid, info.port)
    assert servers_of(home) == [info.pid]
    if damage != "unreadable":
        assert any("found the running server" in note for note in again.notes)
    else:
        server.info_file.rmdir()

    status = run_kgrec(home, "db", "status", "--json")  # the CLI finds it too
    assert status.returncode == 0, status.stderr
    assert f'"pid": {info.pid}' in status.stdout
    assert servers_of(home) == [info.pid]


def test_state_is_private_even_when_an_older_version_left_it_open(
    home: Path, tmp_path: Path
) -> None:
    root = home / "falkordb"
    (root / "data").mkdir(parents=True)
    (root / "server.log").write_text("an older log\n")
    for path in (home, root, root / "data"):
        path.chmod(0o755)
    (root / "server.log").chmod(0o644)

    config = load_config(write_config(tmp_path / "c.yaml", home, tmp_path / "art", "g"))
    build_graph(config)
    server = FalkorDBServer(home)
    assert server.stop()  # writes the dump (all user histories)
    assert (root / "data" / "dump.rdb").exists()
    assert any((root / "data" / "appendonlydir").iterdir())

    for path in [home, *home.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path}: {oct(mode)}"


def test_the_append_only_log_keeps_a_graph_written_before_it_was_turned_on(
    home: Path,
) -> None:
    old = FalkorDBServer(home, appendonly=False)  # how an older kgrec ran the server
    info = old.start()
    store = FalkorDBStore(info.host, info.port, old.password(), graph="g")
    store.query("CREATE (:Item {id: 'kept'})", write=True)
    store.close()
    old.stop()  # only dump.rdb now

    server = FalkorDBServer(home)
    info = server.start()  # must not start empty: the log is made from the snapshot
    store = FalkorDBStore(info.host, info.port, server.password(), graph="g")
    try:
        assert store.query("MATCH (n:Item) RETURN n.id").rows == [["kept"]]
    finally:
        store.close()
    assert "appendonly yes" in server.conf_file.read_text()


def test_a_killed_runs_temporaries_are_removed_by_the_next_build(
    home: Path, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "c.yaml", home, tmp_path / "art", "g")
    dead = 4_194_000  # above any pid in use (pid_max is 4194304)
    stale = [tmp_path / f".art.tmp-{dead}", tmp_path / f".art.old-{dead}"]
    for folder in stale:
        (folder / "tables").mkdir(parents=True)
    log = tmp_path / "build.log"
    assert wait_exit(fork_kgrec(home, "build-graph", "-c", str(config), log=log)) == 0
    assert not any(p.exists() for p in stale)
    assert f"removed .art.tmp-{dead} left behind by a killed run" in " ".join(
        log.read_text().split()
    )


def test_bad_numbers_in_a_config_are_named(home: Path, tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("store:\n  batch_size: 0\n")
    result = run_kgrec(home, "build-graph", "-c", str(config), "--no-db")
    assert result.returncode == 1
    assert "store.batch_size: must be at least 1, got 0" in one_line_error(result)
