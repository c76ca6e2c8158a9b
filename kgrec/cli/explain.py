"""``kgrec explain``: why a user was shown an item, from the model or from the record."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from kgrec.cli.apps import app
from kgrec.cli.common import (
    ArtifactsOption,
    CheckpointOption,
    ConfigOption,
    check_format,
    friendly_errors,
    open_graph_store,
)
from kgrec.cli.serve import open_served_bundle, serve_config
from kgrec.config import Config
from kgrec.errors import KgrecError
from kgrec.serve.graph_path import GraphPath
from kgrec.serve.paths import Explainer
from kgrec.serve.record import served


@app.command("explain")
@friendly_errors
def explain_command(
    user: str = typer.Option(..., "--user", "-u", help="External user id."),
    item: str = typer.Option(..., "--item", "-i", help="External item id."),
    fmt: str = typer.Option("table", "--format", "-f", help="table or json."),
    limit: int = typer.Option(3, "--limit", "-n", help="Paths to show.", min=1),
    served_only: bool = typer.Option(
        False, "--served", help="Answer from the recorded RECOMMENDED relationships."
    ),
    staff: bool = typer.Option(
        False,
        "--staff",
        help="Every contribution, also of items the user rated below their average, with "
        "the graph path of each (default: the reasons a customer may read).",
    ),
    checkpoint: Path | None = CheckpointOption,
    artifacts: Path | None = ArtifactsOption,
    config_path: Path | None = ConfigOption,
) -> None:
    """Explain why an item suits a user: the items of their past that carry the score.

    kgrec's score is exactly a sum of one contribution per item the user interacted with,
    so the answer is those items, largest contribution first, with their share of the score;
    each comes with a path of at most 3 hops in the graph the model used (user -> rated item
    -> shared director/actor/genre -> item, a knowledge-graph link, or "people who liked it
    also liked ..."; no other user is ever named). Only edge types the model read are cited
    (a model trained with --no-kg and no KG teacher member gets no attribute paths).
    By default the reasons are those a customer may read: only items the user liked (rated
    at or above their own average), named entities preferred. --staff shows every
    contribution, liked or not, with its path (node and relationship ids).
    --served instead reads what was recorded when the item was served (kgrec recommend
    --record): when, at which rank, by which model, and the reasons stored then.

    Examples:

      kgrec explain --user u0001 --item i0103

      kgrec explain --user u0001 --item i0103 --format json

      kgrec explain --user u0001 --item i0103 --staff --limit 10

      kgrec explain --user u0001 --item i0103 --served
    """
    check_format(fmt, ("table", "json"))
    config = serve_config(config_path, artifacts)
    if served_only:
        _explain_served(config, user, item, fmt, limit, staff)
        return
    bundle = open_served_bundle(config, checkpoint)
    paths = Explainer(bundle).explain(user, item, limit=limit, staff=staff)
    if fmt == "json":
        out = {
            "user_id": user,
            "item_id": item,
            "model_id": bundle.model_id,
            "paths": [p.to_dict() for p in paths],
        }
        typer.echo(json.dumps(out, ensure_ascii=False))
        return
    if not paths:
        liked = "" if staff else " through an item they liked (--staff shows every one)"
        typer.echo(
            f"no path of at most 3 hops in the model's graph links user {user} to {item}{liked}"
        )
        return
    typer.echo(f"why {item} for {user} (model {bundle.model_id}), strongest reasons first:")
    for n, p in enumerate(paths, start=1):
        typer.echo(f"{n}. {p.sentence}  ({p.share:.0%} of the score, {p.contribution:+.3f})")
        if staff:
            typer.echo(f"   {' '.join(_hop(p, k) for k in range(p.hops))}")


def _explain_served(
    config: Config, user: str, item: str, fmt: str, limit: int, staff: bool
) -> None:
    store = open_graph_store(config)
    try:
        records = served(store, user, item)
    finally:
        store.close()
    if not records:
        raise KgrecError(
            f"item {item!r} was never recorded as served to user {user!r} "
            "(record lists with kgrec recommend --record)"
        )
    if fmt == "json":
        rows = [r.to_dict() for r in records]
        typer.echo(json.dumps({"user_id": user, "item_id": item, "served": rows}))
        return
    for r in records:
        typer.echo(
            f"served {r.at} by model {r.model_id} at rank {r.rank} "
            f"(score {r.score:.4f}, request {r.request_id})"
        )
        for recorded in r.paths[:limit]:
            typer.echo(f"  - {recorded.sentence}  ({recorded.share:.0%} of the score)")
            if staff:
                typer.echo(f"    {' '.join(_hop(recorded, k) for k in range(recorded.hops))}")


def _hop(path: GraphPath, k: int) -> str:
    edge = path.edges[k]
    src, dst = path.nodes[edge.source], path.nodes[edge.target]
    return f"({_node(src.type, src.id)})-[:{edge.type}]->({_node(dst.type, dst.id)})"


def _node(node_type: str, node_id: str) -> str:
    """``type:id``, without repeating a type the id already starts with."""
    return node_id if node_id.startswith(f"{node_type}:") else f"{node_type}:{node_id}"
