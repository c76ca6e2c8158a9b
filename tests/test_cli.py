"""The command line: help that teaches, parseable output, clear failures that change nothing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kgrec.cli import app

runner = CliRunner()


def tree_digest(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (relative path -> digest)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def contract(folder: Path, interactions: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "interactions.csv").write_text(
        interactions
        or "user_id,item_id,rating,timestamp\nu1,i1,5,1\nu1,i2,4,2\nu1,i3,3,3\nu2,i1,5,4\n",
        encoding="utf-8",
    )
    (folder / "items.csv").write_text("item_id,title\ni1,Heat\ni2,Alien\ni3,Up\n", encoding="utf-8")
    (folder / "triples.csv").write_text(
        "head,relation,tail\ni1,directed_by,d1\ni2,directed_by,d1\n", encoding="utf-8"
    )
    return folder


@pytest.mark.parametrize(
    "command",
    [
        [*command, "--help"]
        for command in (
            [],
            ["build-graph"],
            ["embed"],
            ["train"],
            ["evaluate"],
            ["recommend"],
            ["explain"],
            ["db", "start"],
            ["db", "stop"],
            ["db", "status"],
            ["cypher", "list"],
            ["cypher", "run"],
        )
    ],
)
def test_help_teaches_by_example(command: list[str]) -> None:
    result = runner.invoke(app, command)
    assert result.exit_code == 0
    assert "Examples:" in result.output


def test_build_graph_json_report(tmp_path: Path) -> None:
    data = contract(tmp_path / "d")
    result = runner.invoke(
        app,
        [
            "build-graph",
            "--data",
            str(data),
            "--artifacts",
            str(tmp_path / "a"),
            "--no-db",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["input_counts"] == report["graph_counts"]
    assert report["input_counts"]["interactions"] == 4
    assert report["input_counts"]["entities"] == 1
    assert (tmp_path / "a" / "graph.pt").exists()


def test_bad_input_exits_2_names_the_place_and_changes_nothing(tmp_path: Path) -> None:
    good = contract(tmp_path / "good")
    artifacts = tmp_path / "a"
    ok = runner.invoke(
        app, ["build-graph", "--data", str(good), "--artifacts", str(artifacts), "--no-db"]
    )
    assert ok.exit_code == 0, ok.output
    before = tree_digest(artifacts)
    bad = contract(tmp_path / "bad", "user_id,item_id,rating,timestamp\nu1,i1,5,1\nu1,i7,4,2\n")
    result = runner.invoke(
        app, ["build-graph", "--data", str(bad), "--artifacts", str(artifacts), "--no-db"]
    )
    assert result.exit_code == 2
    assert "interactions.csv:3 [item_id]: unknown item id" in result.output
    assert tree_digest(artifacts) == before
    # no temporaries left behind (the writer lock file stays, empty of any holder)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".a.lock", "a", "bad", "good"]


def test_bad_config_value_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["build-graph", "--data", str(contract(tmp_path / "d")), "--split", "random", "--no-db"],
    )
    assert result.exit_code == 1
    assert "split.method: 'random' is not one of" in result.output


def test_cypher_param_must_be_key_value() -> None:
    result = runner.invoke(app, ["cypher", "run", "RETURN 1", "-p", "novalue"])
    assert result.exit_code != 0
    assert "key=value" in result.output


def test_cypher_list_names_every_library_query() -> None:
    result = runner.invoke(app, ["cypher", "list", "-f", "json"])
    assert result.exit_code == 0, result.output
    names = {row["name"] for row in json.loads(result.output)}
    assert {"analyst/top_items_per_genre", "support/why_recommended"} <= names


def test_cypher_run_missing_parameter_is_caught_before_the_database(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["cypher", "run", "similar_users"], env={"KGREC_HOME": str(tmp_path)}
    )
    assert result.exit_code == 1
    assert "needs parameter(s) user" in result.output
    assert not (tmp_path / "falkordb").exists()  # nothing was started


def test_cypher_run_library_query_on_the_demo_graph(falkordb_home: Path) -> None:
    env = {"KGREC_HOME": str(falkordb_home)}
    built = runner.invoke(app, ["build-graph", "--artifacts", str(falkordb_home / "a")], env=env)
    assert built.exit_code == 0, built.output
    result = runner.invoke(
        app,
        ["cypher", "run", "top_items_per_genre", "-p", "genre=genre:drama", "-p", "limit=2"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    rows = runner.invoke(
        app,
        ["cypher", "run", "top_items_per_genre", "-p", "genre=genre:drama", "-f", "csv"],
        env=env,
    ).output.splitlines()
    assert rows[0].startswith("genre,rank,item")
    syntax = runner.invoke(app, ["cypher", "run", "MATCH (n RETURN n"], env=env)
    assert syntax.exit_code == 3
    assert "rejected the query" in syntax.output


def test_system_errors_are_one_line_naming_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the artifact folder's parent should be\n")
    result = runner.invoke(
        app,
        [
            "build-graph",
            "--data",
            str(contract(tmp_path / "d")),
            "--artifacts",
            str(blocker / "a"),
            "--no-db",
        ],
    )
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"error: {blocker}: ")
    assert lines[0].endswith("fix that and run the command again")
