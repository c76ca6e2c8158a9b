"""``kill -9`` of ``build-graph`` at every step, of the server mid-load, and two builds at
once: the database and the artifacts are always the old build's or the new one's, together,
and the next command recovers (issue 13, failures 3, 4 and 7)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from kgrec.build import build_graph, load_artifact
from kgrec.cli import app
from kgrec.config import load_config
from kgrec.store.falkordb import FalkorDBStore
from kgrec.store.server import FalkorDBServer
from tests.faults.helpers import (
    NEW_TITLE,
    OLD_TITLE,
    changed_demo,
    fork_kgrec,
    kill_server,
    one_line_error,
    run_kgrec,
    start_kgrec,
    wait_exit,
    wait_stopped,
    write_config,
)

GRAPH = "g"
STEPS = [
    ("locked", OLD_TITLE),
    ("artifacts-written", OLD_TITLE),
    ("store-batch", OLD_TITLE),
    ("store-loaded", OLD_TITLE),
    ("journal-written", OLD_TITLE),
    ("db-swapped", NEW_TITLE),
    ("artifacts-half-swapped", NEW_TITLE),
    ("swapped", NEW_TITLE),
]


def connect(home: Path) -> FalkorDBStore:
    server = FalkorDBServer(home)
    info = server.start()
    return FalkorDBStore(info.host, info.port, server.password(), graph=GRAPH)


def graphs(home: Path) -> list[str]:
    store = connect(home)
    try:
        return sorted(store._db.list_graphs())
    finally:
        store.close()


def artifact_title(artifacts: Path) -> str:
    items = pd.read_parquet(artifacts / "tables" / "items.parquet")
    return str(items.set_index("item_id").loc["i0001", "title"])


def tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def leftovers(parent: Path) -> list[str]:
    """Temporaries and journals beside the artifact folders (lock files are expected)."""
    return sorted(
        p.name for p in parent.iterdir() if p.name.startswith(".") and ".lock" not in p.name
    )


@pytest.fixture
def old_build(home: Path, tmp_path: Path) -> dict[str, Path]:
    """The demo built into graph ``g`` and ``<tmp>/art``; a config for changed data."""
    artifacts = tmp_path / "art"
    old = write_config(tmp_path / "old.yaml", home, artifacts, GRAPH)
    build_graph(load_config(old))
    new = write_config(tmp_path / "new.yaml", home, artifacts, GRAPH, changed_demo(tmp_path / "d"))
    return {"old": old, "new": new, "artifacts": artifacts}


def read_title_through_the_cli(config: Path, home: Path) -> tuple[str, str]:
    """The next command (a graph read): it recovers first; returns (title, stderr)."""
    result = CliRunner().invoke(
        app,
        ["cypher", "run", "MATCH (i:Item {id: 'i0001'}) RETURN i.title AS t", "-f", "json",
         "-c", str(config)],
        env={"KGREC_HOME": str(home)},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)[0]["t"], result.stderr


@pytest.mark.parametrize(("step", "title"), STEPS, ids=[s for s, _ in STEPS])
def test_kill_9_at_each_step_then_the_next_command_recovers(
    step: str, title: str, home: Path, old_build: dict[str, Path]
) -> None:
    artifacts = old_build["artifacts"]
    log = artifacts.parent / "killed.log"
    pid = fork_kgrec(home, "build-graph", "-c", str(old_build["new"]), log=log, KGREC_FAULT_AT=step)
    assert wait_exit(pid) == -signal.SIGKILL, log.read_text()
    log.unlink()

    in_db, notes = read_title_through_the_cli(old_build["new"], home)
    assert in_db == title == artifact_title(artifacts)  # both old or both new, never mixed
    journaled = step in ("journal-written", "db-swapped", "artifacts-half-swapped")
    assert ("interrupted build-graph" in notes) == journaled, notes
    load_artifact(artifacts)  # every file matches the manifest's checksums
    assert graphs(home) == [GRAPH] or step in ("store-batch", "store-loaded")

    # the next build removes what the killed one left (temporaries, its staging graph)
    report = build_graph(load_config(old_build["new"]))
    assert report.store_counts == report.expected_store_counts
    assert artifact_title(artifacts) == NEW_TITLE
    assert leftovers(artifacts.parent) == []
    assert graphs(home) == [GRAPH]


def test_server_killed_mid_load_is_one_line_and_changes_nothing(
    home: Path, old_build: dict[str, Path]
) -> None:
    artifacts = old_build["artifacts"]
    before = tree_digest(artifacts)
    build = start_kgrec(  # a fresh interpreter: the whole CLI, as people run it
        home, "build-graph", "-c", str(old_build["new"]),
        KGREC_FAULT_AT="store-batch", KGREC_FAULT_SIGNAL="STOP",
    )  # fmt: skip
    wait_stopped(build.pid)
    kill_server(home)
    os.kill(build.pid, signal.SIGCONT)
    _, stderr = build.communicate(timeout=120)
    assert build.returncode == 3
    line = one_line_error(stderr)
    assert "lost the connection to FalkorDB" in line and "kgrec db status" in line

    assert tree_digest(artifacts) == before
    assert leftovers(artifacts.parent) == []
    in_db, _ = read_title_through_the_cli(old_build["new"], home)  # restarts the server
    assert in_db == OLD_TITLE
    report = build_graph(load_config(old_build["new"]))
    assert report.store_counts == report.expected_store_counts
    assert artifact_title(artifacts) == NEW_TITLE


def test_two_builds_into_one_graph_never_interleave(home: Path, tmp_path: Path) -> None:
    first = write_config(tmp_path / "a.yaml", home, tmp_path / "a", GRAPH)
    second = write_config(
        tmp_path / "b.yaml", home, tmp_path / "b", GRAPH, changed_demo(tmp_path / "d")
    )
    same_folder = write_config(tmp_path / "c.yaml", home, tmp_path / "a", "other")
    a = fork_kgrec(
        home, "build-graph", "-c", str(first), log=tmp_path / "a.log",
        KGREC_FAULT_AT="store-loaded", KGREC_FAULT_SIGNAL="STOP",
    )  # fmt: skip
    try:
        wait_stopped(a)
        # a fresh interpreter fails at once, before its heavy imports
        busy = run_kgrec(home, "build-graph", "-c", str(second))
        assert busy.returncode == 75, busy.stderr
        line = one_line_error(busy)
        assert f"graph '{GRAPH}' is being written by pid {a} (kgrec build-graph -c {first}" in line
        assert "--wait" in line
        other = fork_kgrec(home, "build-graph", "-c", str(same_folder), log=tmp_path / "c.log")
        assert wait_exit(other) == 75
        line = one_line_error((tmp_path / "c.log").read_text())
        assert f"artifact folder {tmp_path / 'a'} is being written by pid {a}" in line

        b = fork_kgrec(home, "build-graph", "-c", str(second), "--wait", log=tmp_path / "b.log")
        deadline = time.monotonic() + 120
        while f"waiting for pid {a}" not in (tmp_path / "b.log").read_text():
            assert time.monotonic() < deadline, (tmp_path / "b.log").read_text()
            time.sleep(0.1)
    finally:
        os.kill(a, signal.SIGCONT)
    assert wait_exit(a) == 0, (tmp_path / "a.log").read_text()
    assert wait_exit(b) == 0, (tmp_path / "b.log").read_text()
    in_db, _ = read_title_through_the_cli(second, home)
    assert in_db == NEW_TITLE == artifact_title(tmp_path / "b")  # the later build is live
    assert artifact_title(tmp_path / "a") == OLD_TITLE
    assert graphs(home) == [GRAPH]
