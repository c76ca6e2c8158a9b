"""``kgrec add-items`` (items with only text and attributes, served without retraining) and
``kgrec items retire|unretire`` (items never recommended again, history kept)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from kgrec.cli.apps import app, items_app
from kgrec.cli.common import (
    ArtifactsOption,
    CheckpointOption,
    ConfigOption,
    check_format,
    friendly_errors,
    open_graph_store,
    print_table,
    reporter,
)
from kgrec.cli.serve import checkpoint_path, open_served_bundle, serve_config
from kgrec.config import Config
from kgrec.serve.recommend import Recommender


@app.command("add-items")
@friendly_errors
def add_items_command(
    items_file: Path = typer.Argument(
        ...,
        help="New items (CSV, TSV or Parquet): item_id plus text columns such as title, "
        "year, description, genres (Western|Drama).",
    ),
    triples: Path | None = typer.Option(
        None,
        "--triples",
        help="Optional KG links: head (a new item id), relation, tail (a known entity id).",
    ),
    fmt: str = typer.Option("table", "--format", "-f", help="table or json."),
    no_db: bool = typer.Option(
        False, "--no-db", help="Do not write the items into the graph database."
    ),
    wait: bool = typer.Option(
        False, "--wait", help="Queue behind a build-graph of the same folder or graph."
    ),
    checkpoint: Path | None = CheckpointOption,
    artifacts: Path | None = ArtifactsOption,
    config_path: Path | None = ConfigOption,
) -> None:
    """Add items that have only text and attributes; recommendable at once, no retraining.

    Each new item is embedded by the same text model as the catalogue and placed in the
    trained model's item space from its text neighbours and the items sharing its KG
    entities (a genres column is matched to genre entities by name; --triples adds others).
    The items are kept in <artifacts>/added_items/, so every later model (and bundle export)
    places them again, until a rebuild includes them as ordinary items. They are also written
    into the graph database as :Item nodes with their KG relationships (unless --no-db), so
    analysts' queries see them and served lists that contain them can be recorded. A file with any
    problem (duplicate or known id, unknown entity, no text) is rejected whole, with file,
    line and field; nothing is written.

    Examples:

      kgrec add-items new_items.csv

      kgrec add-items new_items.csv --triples new_links.csv --format json

      kgrec add-items new_items.csv --no-db

      kgrec recommend --seed-items i0001,i0042   # new items compete from now on
    """
    # the stage embeds text with the language model (torch) and reads tables (pandas)
    from kgrec.add_items import add_items

    check_format(fmt, ("table", "json"))
    config = serve_config(config_path, artifacts)
    model = checkpoint_path(config, checkpoint)
    store = open_graph_store(config) if config.store.enabled and not no_db else None
    # the locks live with build-graph, which takes the same ones
    from kgrec.build import config_locks

    try:
        with config_locks(config, reporter(False), wait=wait, database=store is not None):
            result = add_items(
                items_file, config.artifacts_dir, config.features, triples, store=store
            )
    finally:
        if store is not None:
            store.close()
    bundle = open_served_bundle(config, checkpoint) if model.exists() else None
    rows: list[dict[str, Any]] = []
    for item in result.added.items:
        row: dict[str, Any] = {
            "item_id": item.item_id,
            "title": item.title,
            "links": [link.entity_id for link in item.links],
        }
        if bundle is not None:  # where each item landed: its nearest trained items by cosine
            near = Recommender(bundle).similar_items(item.item_id, k=3)
            row["nearest"] = [r.title for r in near]
        rows.append(row)
    if fmt == "json":
        out = {
            "added": rows,
            "total_added": result.total,
            "model_id": bundle.model_id if bundle is not None else None,
        }
        typer.echo(json.dumps(out, ensure_ascii=False))
        return
    where = f"model {bundle.model_id}" if bundle is not None else "no trained model yet"
    table = [
        (
            row["item_id"],
            row["title"],
            ", ".join(row["links"]) or "-",
            "; ".join(row.get("nearest", [])) or "-",
        )
        for row in rows
    ]
    title = f"added {len(rows)} item(s); {result.total} added in all ({where})"
    print_table(("item", "title", "KG links", "placed next to"), table, title)


def _retire(
    ids: list[str], undo: bool, as_json: bool, no_db: bool, wait: bool, config: Config
) -> None:
    # the lifecycle stage reads the artifact's id maps (pandas) and the database client
    from kgrec.build import config_locks
    from kgrec.lifecycle import retire_items

    store = open_graph_store(config) if config.store.enabled and not no_db else None
    try:
        with config_locks(config, reporter(True), wait=wait, database=store is not None):
            result = retire_items(config.artifacts_dir, ids, store, undo=undo)
    finally:
        if store is not None:
            store.close()
    verb = "unretired" if undo else "retired"
    if as_json:
        out = {
            verb: result.changed,
            "unchanged": result.unchanged,
            "retired_now": result.retired,
            "graph_items": result.graph_items,
        }
        typer.echo(json.dumps(out, ensure_ascii=False))
        return
    typer.echo(f"{verb} {len(result.changed)} item(s): {', '.join(result.changed) or '-'}")
    if result.unchanged:
        was = "were not retired" if undo else "were already retired"
        typer.echo(f"{len(result.unchanged)} {was}: {', '.join(result.unchanged)}")
    where = (
        f"{result.graph_items} :Item node(s) updated in the graph database"
        if result.graph_items is not None
        else "graph database not written (--no-db or disabled)"
    )
    typer.echo(f"{len(result.retired)} item(s) retired in all; {where}")


_IDS = typer.Argument(..., help="Item ids (as in the dataset or kgrec add-items).")
_JSON = typer.Option(False, "--json", help="One JSON object on stdout.")
_NO_DB = typer.Option(False, "--no-db", help="Do not touch the graph database.")
_WAIT = typer.Option(False, "--wait", help="Queue behind another writer of the same folder.")


@items_app.command("retire")
@friendly_errors
def retire_command(
    item_ids: list[str] = _IDS,
    as_json: bool = _JSON,
    no_db: bool = _NO_DB,
    wait: bool = _WAIT,
    artifacts: Path | None = ArtifactsOption,
    config_path: Path | None = ConfigOption,
) -> None:
    """Retire items: never recommended again, to anyone, by any model; history kept.

    A retired item keeps its node, its interactions and every served record (support can
    still explain what was shown), and training still learns from it; serving leaves it out
    of every list, like an item the user has already seen, from the next request on (no
    re-export, no retraining). The list lives in <artifacts>/lifecycle/retired.json and
    survives build-graph and train; the :Item node gets retired: true (unless --no-db) and
    gets it again after a rebuild. Undo with kgrec items unretire. An unknown id is an
    error naming it, and nothing is written.

    Examples:

      kgrec items retire i0042

      kgrec items retire i0042 i0043 --json

      kgrec cypher run 'MATCH (i:Item) WHERE i.retired RETURN i.id, i.title'

      kgrec items unretire i0042
    """
    config = serve_config(config_path, artifacts)
    _retire(item_ids, False, as_json, no_db, wait, config)


@items_app.command("unretire")
@friendly_errors
def unretire_command(
    item_ids: list[str] = _IDS,
    as_json: bool = _JSON,
    no_db: bool = _NO_DB,
    wait: bool = _WAIT,
    artifacts: Path | None = ArtifactsOption,
    config_path: Path | None = ConfigOption,
) -> None:
    """Undo kgrec items retire: the items can be recommended again from the next request.

    Removes them from <artifacts>/lifecycle/retired.json and the retired property from
    their :Item nodes. An id that was not retired is reported and left alone.

    Examples:

      kgrec items unretire i0042

      kgrec items unretire i0042 i0043 --json
    """
    config = serve_config(config_path, artifacts)
    _retire(item_ids, True, as_json, no_db, wait, config)
