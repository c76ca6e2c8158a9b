"""Commands that build and query the graph: ``build-graph`` and ``cypher``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from kgrec.cli.apps import app, cypher_app
from kgrec.cli.common import (
    PARAM_HELP,
    ConfigOption,
    friendly_errors,
    load_cli_config,
    open_graph_store,
    parse_params,
    print_rows,
    print_table,
    reporter,
)
from kgrec.locks import graph_lock, writer_locks
from kgrec.store.guard import row_merge_risk
from kgrec.store.library import bind_params, list_queries, resolve_query


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
        help="Input format: contract, ml-100k, ml-latest-small, ml-1m, kgat or lastfm.",
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
    with writer_locks(  # taken before the heavy imports, so a second build fails at once
        config.artifacts_dir,
        config.state_path if config.store.enabled else None,
        config.store.graph,
        wait=wait,
        on_wait=lambda holder: typer.secho(
            f"note: waiting for {holder or 'another process'} to finish", err=True
        ),
    ):
        # the build stage imports pandas and torch (graph tensors)
        from kgrec.build import build_graph

        report = build_graph(config, reporter(as_json), wait=wait)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2, default=str))
        return
    _print_build_report(report)


def _print_build_report(report: Any) -> None:
    rows = [
        (key, f"{value:,}", f"{report.graph_counts.get(key, 0):,}")
        for key, value in report.input_counts.items()
    ]
    numbers = ("input", "graph artifact", "expected", "in database")
    print_table(("what", "input", "graph artifact"), rows, f"{report.dataset}: loaded", numbers)
    if report.store_counts is not None:
        expected = report.expected_store_counts
        rows = [
            (f":{label}", f"{n:,}", f"{report.store_counts.nodes.get(label, 0):,}")
            for label, n in sorted(expected.nodes.items())
        ]
        rows += [
            (f"[:{rel}]", f"{n:,}", f"{report.store_counts.relationships.get(rel, 0):,}")
            for rel, n in sorted(expected.relationships.items())
        ]
        columns = ("label / relationship type", "expected", "in database")
        print_table(columns, rows, f"graph database ({report.store})", numbers)
    total = sum(report.seconds.values())
    typer.echo(f"artifacts: {report.artifacts}   time: {total:.1f} s")


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
    queries = list_queries()
    if fmt == "table":
        rows = [
            [q.qualified_name, ", ".join(p.name for p in q.params) or "-", q.example]
            for q in queries
        ]
        print_rows(["name", "params", "example"], rows, fmt)
        return
    rows = [
        [q.qualified_name, q.purpose, ", ".join(p.signature() for p in q.params), q.example]
        for q in queries
    ]
    print_rows(["name", "purpose", "params", "example"], rows, fmt)


@cypher_app.command("run")
@friendly_errors
def cypher_run(
    query: str = typer.Argument(
        ..., help="A library query name (kgrec cypher list), a .cypher file, or Cypher text."
    ),
    param: list[str] = typer.Option([], "--param", "-p", help=PARAM_HELP),
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

    Values are passed as parameters ($name in the query), never pasted into the text: strings
    unless typed (-p limit:int=5). Library queries check their parameters (missing, unknown,
    wrong type) before anything is sent. On FalkorDB a query whose count(*) the engine gets
    wrong (a multi-hop pattern whose middle nothing uses) draws a one-line warning on stderr
    before it runs; see the README's count(*) caveat. A read that runs longer than --timeout
    is aborted by the server itself, so a runaway query never keeps the database busy after
    its client gave up.

    The examples use MovieLens 100K: export KGREC_CONFIG=configs/ml-100k.yaml and load it
    once with kgrec build-graph.

    Examples:

      kgrec cypher run top_items_per_genre -p genre=Drama -p limit=5

      kgrec cypher run similar_users -p user=196 -p limit=3 -f csv

      kgrec cypher run 'MATCH (u:User) WHERE u.age < $age RETURN count(u) AS n' -p age:int=18

      kgrec cypher run user_history -p user=196 -p limit=5 -f json

      kgrec cypher run cypher/analyst/interactions_per_genre.cypher -p split=all -f csv

      kgrec cypher run paths_between -p user=196 -p item=50 --timeout 120
    """
    if fmt not in ("table", "json", "csv"):
        raise typer.BadParameter("choose table, json or csv", param_hint="--format")
    resolved = resolve_query(query)
    params = bind_params(resolved, parse_params(param))
    config = load_cli_config(config_path, {"store.query_timeout": timeout})
    store = open_graph_store(config)
    lock = graph_lock(config.state_path, config.store.graph) if write else None
    try:  # a write during a rebuild would be lost when the rebuilt graph is swapped in
        if lock is not None:
            lock.acquire(hint="run the query again when it is done")
        risk = row_merge_risk(resolved.text) if store.name == "falkordb" else None
        if risk is not None:
            typer.echo(risk.message(), err=True)
        result = store.query(resolved.text, params, write=write, timeout=config.store.query_timeout)
    finally:
        if lock is not None:
            lock.release()
        store.close()
    print_rows(result.columns, result.rows, fmt)
