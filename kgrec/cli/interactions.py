"""``kgrec add-interactions``: new behaviour served at once, without retraining."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

import typer

from kgrec.cli.apps import app
from kgrec.cli.common import (
    ArtifactsOption,
    CheckpointOption,
    ConfigOption,
    friendly_errors,
    open_graph_store,
    print_table,
    reporter,
)
from kgrec.cli.serve import checkpoint_path, serve_config
from kgrec.data.added_interactions import interactions_stamp
from kgrec.files import DamagedFileError
from kgrec.serve.bundle import Bundle, fresh_bundle
from kgrec.serve.live import refresh_bundle


@app.command("add-interactions")
@friendly_errors
def add_interactions_command(
    source: str = typer.Argument(
        ...,
        metavar="FILE|-",
        help="New interactions (CSV, TSV, Parquet or JSON lines; - reads CSV or JSON lines "
        "from stdin): user_id, item_id, optional rating and timestamp (integer seconds).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    no_db: bool = typer.Option(
        False, "--no-db", help="Do not write the interactions into the graph database."
    ),
    wait: bool = typer.Option(
        False, "--wait", help="Queue behind a build-graph of the same folder or graph."
    ),
    checkpoint: Path | None = CheckpointOption,
    artifacts: Path | None = ArtifactsOption,
    config_path: Path | None = ConfigOption,
) -> None:
    """Add what users did since training; the next recommend reflects it, no retraining.

    The file is checked like build-graph's interactions (a problem names file, line and
    field, and nothing is written); items must be known (the catalogue or kgrec add-items),
    users may be new. Each user's new items join their history as the latest (by timestamp
    when every row has one, else in file order), so their recommendations move towards them
    at once: the served score is recomputed from the history through the trained model.
    New users get a history, hence recommendations. The interactions are written into the
    graph database as (:User)-[:INTERACTED {split: "added"}]->(:Item) (unless --no-db) and
    kept in <artifacts>/added_interactions/: every later model replays them, and a rebuild
    keeps those the new data does not have. A (user, item) pair already known is skipped,
    so adding the same file twice changes nothing. They are not trained on until a rebuild
    with them in the data and kgrec train.

    Examples:

      kgrec add-interactions today.csv

      tail -n 100 clicks.csv | kgrec add-interactions - --json

      kgrec add-interactions today.parquet --no-db

      kgrec recommend --user u0001        # already reflects today's interactions
    """
    # the stage reads tables (pandas) and writes the database
    from kgrec.add_interactions import add_interactions
    from kgrec.build import config_locks
    from kgrec.data.new_interactions import read_interactions_file

    clock = time.perf_counter()
    config = serve_config(config_path, artifacts)
    model = checkpoint_path(config, checkpoint)
    path, name = _input(source)
    try:
        table = read_interactions_file(path, name)
        store = open_graph_store(config) if config.store.enabled and not no_db else None
        rep = reporter(as_json)
        try:
            with config_locks(config, rep, wait=wait, database=store is not None):
                bundle = _fresh_bundle(model, config.artifacts_dir)
                result = add_interactions(
                    table, config.artifacts_dir, store, rep, config.store.batch_size
                )
                folded = None
                if bundle is not None and result.added:
                    with rep.stage("Refreshing the serving bundle"):
                        folded = refresh_bundle(
                            bundle,
                            result.fresh.user_ids,
                            result.fresh.item_ids,
                            interactions_stamp(config.artifacts_dir),
                        )
        finally:
            if store is not None:
                store.close()
    finally:
        if name is not None:
            with suppress(OSError):
                path.unlink()
    out: dict[str, Any] = result.to_dict()
    if folded is not None:
        out["bundle"] = "refreshed"
    elif model.exists() and result.added:
        out["bundle"] = "stale: re-exported by the next recommend"
    else:
        out["bundle"] = "unchanged" if model.exists() else "no trained model yet"
    out["model_id"] = bundle.model_id if bundle is not None else None
    out["seconds"] = round(time.perf_counter() - clock, 3)
    if as_json:
        typer.echo(json.dumps(out, ensure_ascii=False))
        return
    for note in out["notes"]:
        typer.secho(f"note: {note}", err=True)
    table_rows = [
        ("rows read", out["rows"]),
        ("interactions added", out["added"]),
        ("already known, skipped", out["skipped"]),
        ("users touched", out["users"]),
        ("new users", out["new_users"]),
        ("added so far", out["total"]),
        ("graph database", "written" if out["database"] else "not written"),
        ("serving bundle", out["bundle"]),
        ("seconds", f"{out['seconds']:.2f}"),
    ]
    print_table(("", ""), table_rows, f"add-interactions {out['file']}")


def _input(source: str) -> tuple[Path, str | None]:
    """``(path, None)`` for a file; for ``-``, stdin copied to a temporary file (CSV, or
    JSON lines when it starts with ``{``) and the name ``<stdin>``."""
    if source != "-":
        return Path(source), None
    data = sys.stdin.buffer.read()
    suffix = ".jsonl" if data.lstrip().startswith(b"{") else ".csv"
    with tempfile.NamedTemporaryFile("wb", suffix=suffix, delete=False) as stream:
        stream.write(data)
    return Path(stream.name), "<stdin>"


def _fresh_bundle(model: Path, artifacts_dir: Path) -> Bundle | None:
    """The model's serving bundle when it is fresh now (before anything is written), else
    ``None`` (the next ``recommend`` re-exports it, replaying every added interaction)."""
    if not model.exists():
        return None
    try:
        return fresh_bundle(model, artifacts_dir)
    except DamagedFileError:
        return None
