"""``kgrec db``: start, stop and describe the embedded graph database, and show a graph's schema
(``db export`` is in :mod:`kgrec.cli.db_export`)."""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from kgrec.cli.apps import db_app
from kgrec.cli.common import ConfigOption, friendly_errors, load_cli_config
from kgrec.config import Config, config_file
from kgrec.store.factory import open_store
from kgrec.store.falkordb import FalkorDBStore
from kgrec.store.schema import GraphSchema, Property, read_schema
from kgrec.store.server import FalkorDBServer, ServerInfo

COUNT = "MATCH (n) RETURN count(n) AS nodes"


@dataclass(frozen=True)
class Connection:
    """How to reach one graph of a running embedded server, as commands that work."""

    graph: str
    graphs: list[str]
    kgrec: str
    python: str
    redis_cli: str | None


def _server(config_path: Path | None) -> tuple[FalkorDBServer, Config, Path | None]:

    config = load_cli_config(config_path, {}, recover=False)
    return (
        FalkorDBServer(config.state_path, port=config.store.port),
        config,
        config_file(config_path),
    )


@db_app.command("start")
@friendly_errors
def db_start(config_path: Path | None = ConfigOption) -> None:
    """Start the embedded FalkorDB server (127.0.0.1, password in the state folder).

    Examples:

      kgrec db start

      KGREC_HOME=/tmp/kg kgrec db start
    """
    server, config, path = _server(config_path)
    info = server.start()
    typer.echo(_describe(info, _connection(server, info, config, path)))


@db_app.command("stop")
@friendly_errors
def db_stop(config_path: Path | None = ConfigOption) -> None:
    """Stop the embedded server, saving the graph to disk first.

    Examples:

      kgrec db stop
    """
    stopped = _server(config_path)[0].stop()
    typer.echo("stopped" if stopped else "not running")


@db_app.command("status")
@friendly_errors
def db_status(
    config_path: Path | None = ConfigOption,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Say whether the embedded server runs, where, which graphs it holds, and how to
    connect to the config's graph (commands you can paste: kgrec, Python, redis-cli).

    Exit code 0 when running, 1 when not.

    Examples:

      kgrec db status

      kgrec db status -c configs/ml-100k.yaml --json
    """
    server, config, path = _server(config_path)
    info = server.status()
    if info is None:
        typer.echo(
            json.dumps({"running": False}) if as_json else "not running (start it: kgrec db start)"
        )
        raise typer.Exit(1)
    connection = _connection(server, info, config, path)
    if not as_json:
        typer.echo(_describe(info, connection))
        return
    typer.echo(
        json.dumps(
            {
                "running": True,
                "host": info.host,
                "port": info.port,
                "pid": info.pid,
                "password_file": str(info.password_file),
                "data_dir": str(info.data_dir),
                "graph": connection.graph,
                "graphs": connection.graphs,
                "connect": {
                    "kgrec": connection.kgrec,
                    "python": connection.python,
                    "redis_cli": connection.redis_cli,
                },
            }
        )
    )


def _connection(
    server: FalkorDBServer, info: ServerInfo, config: Config, path: Path | None
) -> Connection:
    store = FalkorDBStore(info.host, info.port, server.password(), graph=config.store.graph)
    try:
        graphs = store.graphs()
    finally:
        store.close()
    graph = config.store.graph
    config_flag = f" -c {shlex.quote(str(path))}" if path is not None else ""
    code = (
        "import falkordb, pathlib; "
        f"password = pathlib.Path({json.dumps(str(info.password_file))}).read_text().strip(); "
        f"db = falkordb.FalkorDB(host={json.dumps(info.host)}, port={info.port}, "
        "password=password); "
        f"print(db.select_graph({json.dumps(graph)}).ro_query({json.dumps(COUNT)}).result_set)"
    )
    redis_cli = None
    if shutil.which("redis-cli"):
        redis_cli = (
            f'REDISCLI_AUTH="$(cat {shlex.quote(str(info.password_file))})" redis-cli '
            f"-h {info.host} -p {info.port} GRAPH.RO_QUERY {shlex.quote(graph)} "
            f"{shlex.quote(COUNT)}"
        )
    return Connection(
        graph=graph,
        graphs=graphs,
        kgrec=f"kgrec cypher run{config_flag} {shlex.quote(COUNT)}",
        python=f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}",
        redis_cli=redis_cli,
    )


def _describe(info: ServerInfo, connection: Connection) -> str:
    loaded = connection.graph in connection.graphs
    others = [g for g in connection.graphs if g != connection.graph]
    state = "loaded" if loaded else "not loaded yet (kgrec build-graph)"
    lines = [
        f"FalkorDB running on {info.host}:{info.port} (pid {info.pid})",
        f"data: {info.data_dir}",
        f"graph: {connection.graph} ({state})"
        + (f"; other graphs: {', '.join(others)}" if others else ""),
        f"query it: {connection.kgrec}",
        f"from Python: {connection.python}",
    ]
    if connection.redis_cli:
        lines.append(f"redis-cli: {connection.redis_cli}")
    return "\n".join(lines)


@db_app.command("schema")
@friendly_errors
def db_schema(
    config_path: Path | None = ConfigOption,
    fmt: str = typer.Option("table", "--format", "-f", help="table or json."),
) -> None:
    """Show what the graph holds: node labels with counts, property names and types and the
    share of nodes with a human-readable name (a name or title that is not just the id);
    relationship types with the labels at both ends, counts and properties.

    Examples:

      kgrec db schema

      kgrec db schema -c configs/ml-100k.yaml -f json
    """
    if fmt not in ("table", "json"):
        raise typer.BadParameter("choose table or json", param_hint="--format")
    config = load_cli_config(config_path, {})
    store = open_store(config.store, config.state_path)
    try:
        store.query("RETURN 1")  # a missing graph is a clear error naming those that exist
        schema = read_schema(store)
    finally:
        store.close()
    if fmt == "json":
        typer.echo(json.dumps({"graph": config.store.graph, **schema.to_dict()}, indent=2))
        return
    _print_schema(config.store.graph, schema)


def _print_schema(graph: str, schema: GraphSchema) -> None:
    nodes = sum(n.nodes for n in schema.labels)
    rels = sum(r.relationships for r in schema.relationships)
    labels = Table(title=f"graph {graph}: {nodes:,} nodes, {rels:,} relationships")
    for column, justify in (("label", "left"), ("nodes", "right"), ("named", "right")):
        labels.add_column(column, justify=justify)  # type: ignore[arg-type]
    labels.add_column("properties (type, how many have it)")
    for label in schema.labels:
        named = f"{label.named:,} ({label.named_share:.0%})"
        labels.add_row(
            label.label, f"{label.nodes:,}", named, _properties(label.properties, label.nodes)
        )
    types = Table()
    types.add_column("relationship", overflow="fold")
    types.add_column("count", justify="right")
    types.add_column("properties")
    for rel in schema.relationships:
        types.add_row(rel.pattern, f"{rel.relationships:,}", _properties(rel.properties, None))
    console = Console()
    console.print(labels)
    console.print(types)


def _properties(properties: tuple[Property, ...], total: int | None) -> str:
    parts = []
    for prop in properties:
        text = f"{prop.name} {'|'.join(prop.types)}"
        if total is not None and prop.holders != total:
            text += f" ({prop.holders:,})"
        parts.append(text)
    return ", ".join(parts) or "-"
