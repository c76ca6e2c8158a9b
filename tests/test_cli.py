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
            ["db", "schema"],
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


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        (["user=196"], {"user": "196"}),
        (["genre=genre:drama", "limit:int=5"], {"genre": "genre:drama", "limit": 5}),
        (["x:float=0.5", "y:bool=TRUE", "z:str=007"], {"x": 0.5, "y": True, "z": "007"}),
        (['ids:json=["1", 2]', "since:json=null"], {"ids": ["1", 2], "since": None}),
        (["eq=a=b"], {"eq": "a=b"}),
    ],
)
def test_parameters_are_strings_unless_typed(pairs: list[str], expected: dict[str, object]) -> None:
    from kgrec.cli.common import parse_params

    assert parse_params(pairs) == expected


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ("limit:int=five", "'five' is not an int"),
        ("x:float=nan", "is not a float"),
        ("b:bool=yes", "is not a bool"),
        ("j:json=[1,", "is not a json"),
        ("limit:integer=5", "unknown type 'integer'"),
    ],
)
def test_ill_typed_parameters_are_refused_before_the_database(
    pair: str, message: str, tmp_path: Path
) -> None:
    result = runner.invoke(
        app, ["cypher", "run", "RETURN $x", "-p", pair], env={"KGREC_HOME": str(tmp_path)}
    )
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "falkordb").exists()


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
    typed = "RETURN $x AS x, typeOf($x) AS type"
    for pair, expected in (("x=0042", ["0042", "String"]), ("x:int=42", [42, "Integer"])):
        got = runner.invoke(app, ["cypher", "run", typed, "-p", pair, "-f", "json"], env=env)
        assert got.exit_code == 0, got.output
        assert list(json.loads(got.stdout)[0].values()) == expected


def test_cypher_run_warns_before_a_count_the_engine_gets_wrong(falkordb_home: Path) -> None:
    env = {"KGREC_HOME": str(falkordb_home)}
    built = runner.invoke(app, ["build-graph", "--artifacts", str(falkordb_home / "a")], env=env)
    assert built.exit_code == 0, built.output
    naive = "MATCH (u:User)-[:INTERACTED]->(:Item)-[:HAS_GENRE]->(g:Genre) RETURN count(*) AS n"
    careful = naive.replace("[:INTERACTED]", "[r:INTERACTED]").replace("count(*)", "count(r)")
    warned = runner.invoke(app, ["cypher", "run", naive, "-f", "json"], env=env)
    right = runner.invoke(app, ["cypher", "run", careful, "-f", "json"], env=env)
    assert warned.exit_code == right.exit_code == 0, warned.output + right.output
    assert warned.stderr.startswith("warning: FalkorDB 4.16") and warned.stderr.count("\n") == 1
    assert right.stderr == ""
    assert json.loads(warned.stdout)[0]["n"] < json.loads(right.stdout)[0]["n"]
    library = runner.invoke(app, ["cypher", "run", "interactions_per_genre"], env=env)
    assert library.exit_code == 0 and library.stderr == ""


def test_db_status_prints_connection_commands_that_work(falkordb_home: Path) -> None:
    import os
    import subprocess
    import sys

    env = {"KGREC_HOME": str(falkordb_home)}
    built = runner.invoke(app, ["build-graph", "--artifacts", str(falkordb_home / "a")], env=env)
    assert built.exit_code == 0, built.output
    status = runner.invoke(app, ["db", "status", "--json"], env=env)
    assert status.exit_code == 0, status.output
    info = json.loads(status.stdout)
    assert info["graph"] == "kgrec" and "kgrec" in info["graphs"]
    nodes = int(json.loads(runner.invoke(
        app, ["cypher", "run", "MATCH (n) RETURN count(n) AS n", "-f", "json"], env=env
    ).stdout)[0]["n"])  # fmt: skip
    shell_env = {**os.environ, **env}
    python = subprocess.run(
        info["connect"]["python"], shell=True, capture_output=True, text=True, env=shell_env
    )
    assert python.returncode == 0, python.stderr
    assert python.stdout.strip() == f"[[{nodes}]]"
    command = info["connect"]["kgrec"]
    assert command.startswith("kgrec cypher run -c configs/demo.yaml ")
    via_kgrec = subprocess.run(
        f"{sys.executable} -m {command} -f csv",
        shell=True, capture_output=True, text=True, env=shell_env,
    )  # fmt: skip
    assert via_kgrec.returncode == 0, via_kgrec.stderr
    assert via_kgrec.stdout.split() == ["nodes", str(nodes)]
    text = runner.invoke(app, ["db", "status"], env=env).output
    assert "graph: kgrec (loaded)" in text and info["connect"]["python"] in text


def test_db_schema_lists_labels_types_and_names(falkordb_home: Path) -> None:
    env = {"KGREC_HOME": str(falkordb_home)}
    built = runner.invoke(app, ["build-graph", "--artifacts", str(falkordb_home / "a")], env=env)
    assert built.exit_code == 0, built.output
    result = runner.invoke(app, ["db", "schema", "-f", "json"], env=env)
    assert result.exit_code == 0, result.output
    schema = json.loads(result.stdout)
    labels = {n["label"]: n for n in schema["labels"]}
    assert labels[":User"]["nodes"] == 400 and labels[":Item"]["named_share"] == 1.0
    age = next(p for p in labels[":User"]["properties"] if p["name"] == "age")
    assert age["types"] == ["integer"]
    patterns = {r["pattern"] for r in schema["relationships"]}
    assert "(:Item)-[:HAS_GENRE]->(:Genre)" in patterns
    table = runner.invoke(app, ["db", "schema"], env=env)
    assert table.exit_code == 0 and ":Genre" in table.output and "age integer" in table.output
    missing = runner.invoke(app, ["db", "schema"], env={**env, "KGREC_CONFIG": "/nonexistent"})
    assert missing.exit_code == 1 and "KGREC_CONFIG names no config file" in missing.output


def test_cypher_run_starts_without_pandas_or_torch(falkordb_home: Path) -> None:
    """The start-up path stays light (timings: benchmarks/startup.py, docs/benchmarks.md);
    numpy (serving's arrays, ~40 ms) may load, pandas and torch (seconds) must not."""
    import os
    import subprocess
    import sys

    env = {"KGREC_HOME": str(falkordb_home)}
    built = runner.invoke(app, ["build-graph", "--artifacts", str(falkordb_home / "a")], env=env)
    assert built.exit_code == 0, built.output
    code = (
        "import sys\n"
        "from kgrec.cli import app\n"
        "try:\n"
        "    app(['cypher', 'run', 'MATCH (u:User) RETURN count(u) AS n', '-f', 'csv'])\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "print(sorted(m for m in ('pandas', 'torch') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **env}
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:3] == ["n", "400", "[]"]


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
