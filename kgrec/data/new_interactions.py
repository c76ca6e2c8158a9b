"""Reading a file of new interactions (``kgrec add-interactions``) and checking it.

A new-interactions file is a contract ``interactions`` table (``user_id``, ``item_id``,
optional ``rating`` and ``timestamp``) as CSV, TSV, Parquet or JSON lines. It is checked by
the very checks of ``build-graph`` (:mod:`kgrec.data.validate`): every problem is reported
with its file, line and field. Items must be known (the catalogue, or ``kgrec add-items``);
users may be new. A ``(user, item)`` pair the artifact already has (in its data or added
before) is skipped, so adding the same file twice changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kgrec.data.added_interactions import AddedInteractions
from kgrec.data.contract import Table, read_table
from kgrec.data.layout import ID_MAP_FILE, TABLES_DIR
from kgrec.data.mapping import IdMap
from kgrec.data.validate import _check_columns, _check_interactions, _Collector
from kgrec.errors import KgrecError, Problem, ValidationError
from kgrec.naming import ITEM, USER

JSON_SUFFIXES = (".jsonl", ".ndjson", ".json")


@dataclass(frozen=True)
class NewInteractions:
    """A checked new-interactions file.

    Attributes:
        rows: The new rows (``user_id``, ``item_id``, ``rating``, ``timestamp``) in the order
            they join the histories: by timestamp when every row has one, else file order.
        read: Rows in the file.
        skipped: Rows whose ``(user, item)`` pair the artifact already had.
        new_users: Users neither the dataset nor an earlier add had, in order of appearance.
        notes: What the checks changed (repeated pairs merged).
    """

    rows: pd.DataFrame
    read: int
    skipped: int
    new_users: list[str]
    notes: list[str]


def read_interactions_file(path: Path, name: str | None = None) -> Table:
    """An ``interactions`` table from CSV, TSV, Parquet or JSON lines; ``name`` replaces
    the path in messages (``<stdin>``)."""
    if not path.is_file():
        raise KgrecError(f"no such interactions file: {path}")
    shown = Path(name) if name else path
    if path.suffix in JSON_SUFFIXES:
        try:
            frame = pd.read_json(path, lines=True, dtype=False)
        except ValueError as exc:
            raise ValidationError([Problem(shown, None, None, f"not JSON lines: {exc}")]) from exc
        frame = frame.astype({c: str for c in ("user_id", "item_id") if c in frame.columns})
        return Table("interactions", frame, shown, lines=np.arange(len(frame)) + 1)
    try:
        table = read_table(path, "interactions")
    except ValidationError as exc:
        if name is None:
            raise
        problems = [Problem(shown, p.line, p.field, p.message) for p in exc.problems]
        raise ValidationError(problems) from None
    return Table("interactions", table.frame, shown, table.lines)


def read_new_interactions(
    table: Table, artifacts_dir: Path, previous: AddedInteractions, added_items: list[str]
) -> NewInteractions:
    """Check ``table`` against the artifact (its id maps and interactions), the
    ``previous`` additions and the items of ``kgrec add-items`` (``added_items``).

    Raises:
        ValidationError: a missing column, an empty id, a rating or timestamp that is not a
            number, an unknown item (file, line and field named); nothing is written.
    """
    id_map = IdMap.load(artifacts_dir / ID_MAP_FILE)
    items = pd.DataFrame({"item_id": [*map(str, id_map.ids[ITEM]), *added_items]})
    found = _Collector()
    _check_columns(table, found)
    if found.problems:
        raise ValidationError(found.problems)
    frame, notes = _check_interactions(table, items, None, found)
    if found.problems:
        raise ValidationError(found.problems)
    read = len(table.frame)
    if (frame["timestamp"] >= 0).all():
        frame = frame.sort_values("timestamp", kind="stable")
    known = pd.read_parquet(
        artifacts_dir / TABLES_DIR / "interactions.parquet", columns=["user_id", "item_id"]
    )
    pairs = set(zip(known["user_id"].astype(str), known["item_id"].astype(str), strict=True))
    pairs |= previous.pairs()
    fresh = [p not in pairs for p in zip(frame["user_id"], frame["item_id"], strict=True)]
    rows = frame.loc[fresh, ["user_id", "item_id", "rating", "timestamp"]].reset_index(drop=True)
    users = {*map(str, id_map.ids[USER]), *previous.user_ids}
    new_users = [u for u in pd.unique(rows["user_id"]) if u not in users]
    return NewInteractions(rows, read, len(frame) - len(rows), new_users, notes)
