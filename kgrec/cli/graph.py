"""Commands that build and query the graph: ``build-graph``, ``db``, ``cypher``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from kgrec.cli.apps import app, cypher_app, db_app
from kgrec.cli.common import ConfigOption, friendly_errors, load_cli_config, print_result


@app.command("build-graph")
@friendly_errors
def build_graph_command(
    config_path: Path | None = ConfigOption,
    data: Path | None = typer.Option(
        None, "--data", help="Dataset folder (overrides dataset.path)."
    ),
    adapter: str | None = typer.Option(
        None,
        "--adapter",
        help="Input format: contract, ml-100k, ml-latest-small, ml-1m or kgat.",
    ),
    kg: Path | None = typer.Option(None, "--kg", help="Extra KG folder (e.g. ml-100k-kg)."),
    artifacts: Path | None = typer.Option(None, "--artifacts", help="Artifact folder to write."),
    split: str | None = typer.Option(
        None, "--split", help="temporal_loo, temporal_ratio or given."
    ),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Rows per database batch."),
    no_db: bool = typer.Option(
        False, "--no-db", help="Write the artifacts only, skip the database."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
    wait: bool = typer.Option(
        False, "--wait", help="Queue behind another build of the same folder or graph."
    ),
) -> None:
    """Validate a dataset, then load it into the graph database and a PyG HeteroData.

    Reads the dataset (a contract folder or a public format through an adapter), checks it
    (errors name file, line and field; nothing is written when it fails), splits the
    interactions, writes the artifacts (graph.pt, id_maps.parquet, tables/) and loads the
    graph database. Re-running gives the same graph.

    One build at a time per artifact folder and per database graph: a second one fails at
    once naming the first (pid, command, since), or waits for it with --wait. The database
    and the artifacts are swapped together; a build killed at any point is finished or
    rolled back by the next kgrec command. Served records written during a rebuild are kept.

    Examples:

      kgrec build-graph

      kgrec build-graph --adapter ml-100k --data ../shared/datasets/ml-100k
      --kg ../shared/datasets/ml-100k-kg --artifacts artifacts/ml-100k

      kgrec build-graph -c configs/ml-latest-small.yaml --no-db --json

      kgrec build-graph --wait   # after the build that is running now
    """
    from kgrec.locks import writer_locks
    from kgrec.progress import Reporter, RichReporter

    overrides: dict[str, Any] = {
        "dataset.path": str(data) if data else None,
        "dataset.adapter": adapter,
        "dataset.kg_path": str(kg) if kg else None,
        "artifacts": str(artifacts) if artifacts else None,
        "split.method": split,
        "store.batch_size": batch_size,
        "store.enabled": False if no_db else None,
    }
    config = load_cli_config(config_path, overrides)
    reporter = Reporter() if as_json else RichReporter()
    with writer_locks(  # taken before the heavy imports, so a second build fails at once
        config.artifacts_dir,
        config.state_path if config.store.enabled else None,
        config.store.graph,
        wait=wait,
        on_wait=lambda holder: typer.secho(
            f"note: waiting for {holder or 'another process'} to finish", err=True
        ),
    ):
        from kgrec.build import build_graph

        report = build_graph(config, reporter, wait=wait)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2, default=str))
        return
    _print_build_report(report)


def _print_build_report(report: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"{report.dataset}: loaded", show_lines=False)
    table.add_column("what")
    table.add_column("input", justify="right")
    table.add_column("graph artifact", justify="right")
    for key, value in report.input_counts.items():
        table.add_row(key, f"{value:,}", f"{report.graph_counts.get(key, 0):,}")
    console.print(table)
    if report.store_counts is not None:
        db = Table(title=f"graph database ({report.store})")
        db.add_column("label / relationship type")
        db.add_column("expected", justify="right")
        db.add_column("in database", justify="right")
        expected = report.expected_store_counts
        for label, n in sorted(expected.nodes.items()):
            db.add_row(f":{label}", f"{n:,}", f"{report.store_counts.nodes.get(label, 0):,}")
        for rel, n in sorted(expected.relationships.items()):
            got = report.store_counts.relationships.get(rel, 0)
            db.add_row(f"[:{rel}]", f"{n:,}", f"{got:,}")
        console.print(db)
    total = sum(report.seconds.values())
    console.print(f"artifacts: {report.artifacts}   time: {total:.1f} s")


# ----------------------------------------------------------------------------- db


def _server(config_path: Path | None) -> Any:
    from kgrec.store.server import FalkorDBServer

    config = load_cli_config(config_path, {}, recover=False)
    return FalkorDBServer(config.state_path, port=config.store.port)


@db_app.command("start")
@friendly_errors
def db_start(config_path: Path | None = ConfigOption) -> None:
    """Start the embedded FalkorDB server (127.0.0.1, password in the state folder).

    Examples:

      kgrec db start

      KGREC_HOME=/tmp/kg kgrec db start
    """
    info = _server(config_path).start()
    typer.echo(_describe_server(info))


@db_app.command("stop")
@friendly_errors
def db_stop(config_path: Path | None = ConfigOption) -> None:
    """Stop the embedded server, saving the graph to disk first.

    Examples:

      kgrec db stop
    """
    stopped = _server(config_path).stop()
    typer.echo("stopped" if stopped else "not running")


@db_app.command("status")
@friendly_errors
def db_status(
    config_path: Path | None = ConfigOption,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Say whether the embedded server runs, where, and how to connect to it.

    Exit code 0 when running, 1 when not.

    Examples:

      kgrec db status

      kgrec db status --json
    """
    info = _server(config_path).status()
    if as_json:
        typer.echo(json.dumps(_server_dict(info)))
    else:
        typer.echo(_describe_server(info) if info else "not running (start it: kgrec db start)")
    if info is None:
        raise typer.Exit(1)


def _server_dict(info: Any) -> dict[str, Any]:
    if info is None:
        return {"running": False}
    return {
        "running": True,
        "host": info.host,
        "port": info.port,
        "pid": info.pid,
        "password_file": str(info.password_file),
        "data_dir": str(info.data_dir),
    }


def _describe_server(info: Any) -> str:
    return (
        f"FalkorDB running on {info.host}:{info.port} (pid {info.pid})\n"
        f"data: {info.data_dir}\n"
        f'connect: REDISCLI_AUTH="$(cat {info.password_file})" redis-cli -p {info.port} '
        "GRAPH.RO_QUERY kgrec 'MATCH (n) RETURN count(n)'\n"
        "or: kgrec cypher run 'MATCH (n) RETURN labels(n) AS label, count(n) AS n'"
    )


# ----------------------------------------------------------------------------- cypher


@cypher_app.command("list")
@friendly_errors
def cypher_list(
    fmt: str = typer.Option("table", "--format", "-f", help="table, json or csv."),
) -> None:
    """List the query library in cypher/analyst and cypher/support, with parameters.

    Examples:

      kgrec cypher list

      kgrec cypher list -f json
    """
    from kgrec.store.base import QueryResult
    from kgrec.store.library import list_queries

    queries = list_queries()
    if fmt == "table":
        rows = [
            [q.qualified_name, ", ".join(p.name for p in q.params) or "-", q.example]
            for q in queries
        ]
        print_result(QueryResult(["name", "params", "example"], rows), fmt)
        return
    rows = [
        [q.qualified_name, q.purpose, ", ".join(p.signature() for p in q.params), q.example]
        for q in queries
    ]
    print_result(QueryResult(["name", "purpose", "params", "example"], rows), fmt)


@cypher_app.command("run")
@friendly_errors
def cypher_run(
    query: str = typer.Argument(
        ..., help="A library query name (kgrec cypher list), a .cypher file, or Cypher text."
    ),
    param: list[str] = typer.Option(
        [], "--param", "-p", help="Query parameter key=value (repeatable); values parse as JSON."
    ),
    fmt: str = typer.Option("table", "--format", "-f", help="table, json or csv."),
    write: bool = typer.Option(False, "--write", help="Allow the query to modify the graph."),
    timeout: float | None = typer.Option(
        None,
        "--timeout",
        help="Seconds a read may run before the server aborts it "
        "(default: store.query_timeout, 30).",
    ),
    config_path: Path | None = ConfigOption,
) -> None:
    """Run a Cypher query (read-only unless --write) and print its rows.

    Values are passed as parameters ($name in the query), never pasted into the text. Library
    queries check their parameters (missing, unknown, wrong type) before anything is sent.
    A read that runs longer than --timeout is aborted by the server itself, so a runaway
    query never keeps the database busy after its client gave up.

    Examples:

      kgrec cypher run top_items_per_genre -p genre=genre:drama -p limit=5

      kgrec cypher run support/why_recommended -p user=u0001 -p item=i0042 -f json

      kgrec cypher run 'MATCH (i:Item) RETURN i.id AS id, i.title AS title LIMIT 5'

      kgrec cypher run my_query.cypher -p user=u0001 -f csv

      kgrec cypher run paths_between -p a=u0001 -p b=i0042 --timeout 120
    """
    if fmt not in ("table", "json", "csv"):
        raise typer.BadParameter("choose table, json or csv", param_hint="--format")
    from kgrec.store.library import bind_params, resolve_query

    resolved = resolve_query(query)
    params = bind_params(resolved, _parse_params(param))
    config = load_cli_config(config_path, {"store.query_timeout": timeout})
    from kgrec.locks import graph_lock
    from kgrec.store.factory import open_store

    store = open_store(config.store, config.state_path)
    lock = graph_lock(config.state_path, config.store.graph) if write else None
    try:  # a write during a rebuild would be lost when the rebuilt graph is swapped in
        if lock is not None:
            lock.acquire(hint="run the query again when it is done")
        result = store.query(resolved.text, params, write=write, timeout=config.store.query_timeout)
    finally:
        if lock is not None:
            lock.release()
        store.close()
    print_result(result, fmt)


def _parse_params(pairs: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"expected key=value, got {pair!r}", param_hint="--param")
        try:
            params[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            params[key.strip()] = raw
    return params
