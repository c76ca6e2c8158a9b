"""``kgrec add-interactions``: new behaviour served at once, without retraining.

This stage checks a file of interactions with ``build-graph``'s checks
(:mod:`kgrec.data.new_interactions`), writes them (and their new users) into the graph
database with idempotent upserts, then keeps them in the artifact
(:mod:`kgrec.data.added_interactions`). The command then folds them into the live serving
bundle (:mod:`kgrec.serve.live`); every later export replays them.

Order of the writes: the database first (idempotent), the artifact folder second (one atomic
swap), the bundle last (one atomic swap). A failure before the folder is swapped leaves the
folder as it was, and running the same file again re-applies the upserts without duplicates;
a failure after it leaves a bundle that is stale by its stamp, so the next ``recommend``
re-exports it with every added interaction.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kgrec.data.added_interactions import (
    AddedInteractions,
    load_added_interactions,
    save_added_interactions,
)
from kgrec.data.added_items import load_added
from kgrec.data.contract import Table
from kgrec.data.new_interactions import read_new_interactions
from kgrec.errors import KgrecError
from kgrec.progress import Reporter
from kgrec.store.added_interactions import added_interactions_graph
from kgrec.store.base import GraphStore
from kgrec.store.payload import upsert_payload
from kgrec.store.queries import load_query


@dataclass(frozen=True)
class InteractionsResult:
    """What one ``add-interactions`` call did.

    Attributes:
        file: The file read.
        rows: Rows in the file.
        added: New interactions kept (``rows`` less repeats and pairs already known).
        skipped: Rows whose ``(user, item)`` pair the artifact already had.
        users: Users touched.
        new_users: Users the artifact did not have before.
        total: Interactions added to the artifact so far.
        database: Whether the graph database was written.
        seconds: Wall-clock seconds of the stage.
        notes: What the checks changed.
        fresh: This call's interactions (user ids, item ids, in history order).
    """

    file: str
    rows: int
    added: int
    skipped: int
    users: int
    new_users: int
    total: int
    database: bool
    seconds: float
    notes: list[str] = field(default_factory=list)
    fresh: AddedInteractions = field(default_factory=AddedInteractions, repr=False)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        del out["fresh"]
        return out


def add_interactions(
    table: Table,
    artifacts_dir: Path | str,
    store: GraphStore | None = None,
    reporter: Reporter | None = None,
    batch_size: int = 5000,
) -> InteractionsResult:
    """Check, write and keep new interactions (see the module docstring).

    Args:
        table: The ``interactions`` table read from the file
            (:func:`kgrec.data.new_interactions.read_interactions_file`).
        store: The graph database to write to (``None``: the artifact only).

    Raises:
        ValidationError: A problem in the file (file, line and field named); nothing is
            written.
        KgrecError: No artifact, or a graph database without the dataset.
    """
    clock = time.perf_counter()
    reporter = reporter or Reporter()
    artifacts_dir = Path(artifacts_dir)
    if not (artifacts_dir / "id_maps.parquet").exists():
        raise KgrecError(f"no graph artifact in {artifacts_dir}: run kgrec build-graph first")
    previous = load_added_interactions(artifacts_dir)
    added_items = load_added(artifacts_dir)
    with reporter.stage("Checking interactions"):
        found = read_new_interactions(
            table, artifacts_dir, previous, added_items.item_ids if added_items else []
        )
    rows = found.rows
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    source = {"file": str(table.path), "rows": len(rows), "added": now}
    fresh = AddedInteractions().extend(
        rows["user_id"].tolist(),
        rows["item_id"].tolist(),
        [None if r != r else float(r) for r in rows["rating"].tolist()],
        rows["timestamp"].tolist(),
        source,
    )
    if len(rows):
        if store is not None:
            _write_database(store, fresh, found.new_users, reporter, batch_size)
        everything = previous.extend(
            fresh.user_ids, fresh.item_ids, fresh.ratings, fresh.timestamps, source
        )
        save_added_interactions(artifacts_dir, everything)
    return InteractionsResult(
        file=str(table.path),
        rows=found.read,
        added=len(rows),
        skipped=found.skipped,
        users=int(rows["user_id"].nunique()),
        new_users=len(found.new_users),
        total=len(previous) + len(rows),
        database=store is not None and bool(len(rows)),
        seconds=time.perf_counter() - clock,
        notes=found.notes,
        fresh=fresh,
    )


def _write_database(
    store: GraphStore,
    fresh: AddedInteractions,
    new_users: list[str],
    reporter: Reporter,
    batch_size: int,
) -> None:
    """Upsert the new users and interactions, ``batch_size`` rows at a time, with progress."""
    rows = store.query(load_query("serve/count_items")).rows
    if not rows or not int(rows[0][0]):
        raise KgrecError(
            "the graph database has no items: run kgrec build-graph for this dataset first, "
            "or pass --no-db"
        )
    with reporter.stage("Writing the graph database", total=len(fresh)) as advance:
        upsert_payload(store, added_interactions_graph(AddedInteractions(), new_users))
        for start in range(0, len(fresh), batch_size):
            part = fresh.select(range(start, min(start + batch_size, len(fresh))))
            upsert_payload(store, added_interactions_graph(part, ()), batch_size)
            advance(len(part))
