"""``kgrec db export``: the graph as CSV files for Neo4j's offline importer.

Apart from the other ``db`` commands because it reads the artifacts (pandas, torch).
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd
import typer

from kgrec.build import TABLES_DIR, load_artifact
from kgrec.cli.apps import db_app
from kgrec.cli.common import ArtifactsOption, ConfigOption, friendly_errors, load_cli_config
from kgrec.data.added_items import load_added
from kgrec.data.validate import Dataset
from kgrec.store.added_items import added_graph
from kgrec.store.base import GraphPayload
from kgrec.store.neo4j_import import write_neo4j_import
from kgrec.store.payload import payload_from_dataset


@db_app.command("export")
@friendly_errors
def db_export(
    config_path: Path | None = ConfigOption,
    artifacts: Path | None = ArtifactsOption,
    neo4j_import: Path = typer.Option(
        ..., "--neo4j-import", help="Folder for the CSV files (created; must hold no CSVs)."
    ),
    database: str = typer.Option("neo4j", "--database", help="Neo4j database to import into."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable report."),
) -> None:
    """Export the graph as CSV files for Neo4j's offline importer (neo4j-admin database
    import): one file per label and per relationship type, typed headers, ids kept as the
    id property. Prints the import command and writes it to import.txt, with the
    uniqueness constraints to run afterwards in constraints.cypher.

    The graph is the one build-graph loads (from the artifact folder, plus the items of
    add-items); served recommendations recorded with --record are not included.

    Examples:

      kgrec db export --neo4j-import /tmp/neo4j-import

      kgrec db export -c configs/ml-100k.yaml --neo4j-import /tmp/ml100k --database movies
    """
    config = load_cli_config(config_path, {"artifacts": str(artifacts) if artifacts else None})
    payload = _artifact_payload(config.artifacts_dir)
    result = write_neo4j_import(payload, neo4j_import, database=database)
    if as_json:
        files = [asdict(f) for f in result.files]
        report = {"folder": result.folder, "command": result.command, "files": files}
        typer.echo(json.dumps({**report, "constraints": result.constraints}, indent=2))
        return
    for exported in result.files:
        typer.echo(f"{exported.rows:>12,}  {exported.kind:<13} {exported.name}  {exported.path}")
    typer.echo("\nImport (Neo4j 5, database stopped or absent; the command is also in import.txt):")
    typer.echo(f"  {result.command}")
    typer.echo(
        f"then, in cypher-shell: the constraints in {Path(result.folder) / 'constraints.cypher'}"
    )


def _artifact_payload(folder: Path) -> GraphPayload:
    """What build-graph loaded for the artifact ``folder``: its tables plus added items."""
    load_artifact(folder)  # a clear error when build-graph has not run
    tables = {
        name: pd.read_parquet(folder / TABLES_DIR / f"{name}.parquet")
        for name in ("interactions", "items", "users", "entities", "triples")
    }
    inter = tables["interactions"]
    dataset = Dataset(
        folder.name,
        inter.drop(columns=["split"]),
        tables["items"],
        tables["users"],
        tables["entities"],
        tables["triples"],
    )
    payload = payload_from_dataset(dataset, inter["split"])
    added = load_added(folder)
    if added is None:
        return payload
    extra = added_graph(
        added, set(dataset.items["item_id"].astype(str)), set(dataset.entities["entity_id"])
    )
    return replace(
        payload,
        nodes=payload.nodes + extra.nodes,
        relationships=payload.relationships + extra.relationships,
    )
