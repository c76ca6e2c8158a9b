"""Validation: contract tables in, a clean :class:`Dataset` out, or every problem with its place.

Nothing is written anywhere while validating, so a dataset that fails leaves the database
and the artifacts untouched. Checks: required columns (with a "did you mean" hint), empty
tables, empty and duplicate ids, numeric ``rating``/``timestamp``, interactions and triples
that point at unknown ids, self-loops, triples whose declared types disagree with the
entities table, and triples between a user and an item (interactions in disguise, which
would bypass the split).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from kgrec.data.contract import ITEM, REQUIRED_COLUMNS, USER, DatasetTables, Table
from kgrec.errors import Problem, ValidationError
from kgrec.naming import relation_name  # node types take the same snake form

MAX_PROBLEMS_PER_CHECK = 10
ENTITY = "entity"
"""Node type of triple endpoints that have no type anywhere."""
_TYPE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Dataset:
    """A validated dataset; every id referenced exists and every endpoint has a node type.

    Attributes:
        interactions: ``user_id``, ``item_id``, ``rating`` (float, may be NaN),
            ``timestamp`` (int64, ``-1`` when unknown) and, when given, ``split``.
        items: ``item_id`` plus text/attribute columns.
        users: ``user_id`` plus attribute columns (every interacting user is present).
        entities: ``entity_id``, ``type``, ``name`` (every non-user/item triple endpoint).
        triples: ``head``, ``relation``, ``tail``, ``head_type``, ``tail_type``; with
            provenance (``user_id``, ``timestamp`` (int64, ``-1`` unknown)) when the input
            had it, one row per statement (the same fact may be stated by several users).
        notes: What validation changed (merged duplicates), for the build report.
    """

    name: str
    interactions: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame
    entities: pd.DataFrame
    triples: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    @property
    def entity_types(self) -> list[str]:
        """Entity node types, sorted."""
        return sorted(self.entities["type"].unique().tolist())

    @property
    def node_types(self) -> list[str]:
        """``user``, ``item``, then the entity types."""
        return [USER, ITEM, *self.entity_types]


class _Collector:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def rows(self, table: Table, mask: np.ndarray, column: str | None, message: str) -> None:
        """Add one problem per offending row (capped), with its source line."""
        positions = np.flatnonzero(mask)
        for pos in positions[:MAX_PROBLEMS_PER_CHECK]:
            line = table.line_of(int(pos))
            self.problems.append(Problem(table.path_of(int(pos)), line, column, message))
        if len(positions) > MAX_PROBLEMS_PER_CHECK:
            self.problems.append(
                Problem(
                    table.path,
                    None,
                    column,
                    f"... {len(positions) - MAX_PROBLEMS_PER_CHECK} more rows like that",
                )
            )

    def add(self, table: Table, column: str | None, message: str) -> None:
        self.problems.append(Problem(table.path, None, column, message))


def validate(tables: DatasetTables) -> Dataset:
    """Check ``tables`` against the contract; raise :class:`ValidationError` listing problems."""
    found = _Collector()
    for table in tables.tables():
        _check_columns(table, found)
    if found.problems:
        raise ValidationError(found.problems)

    items = _check_ids(tables.items, "item_id", found)
    users_table = tables.users
    users = _check_ids(users_table, "user_id", found) if users_table is not None else None
    entities = (
        _check_ids(tables.entities, "entity_id", found) if tables.entities is not None else None
    )
    interactions, notes = _check_interactions(tables.interactions, items, users, found)
    notes = [*tables.notes, *notes]
    entity_types: pd.Series | None = None
    if entities is not None and tables.entities is not None:
        entity_types = _check_entity_types(tables.entities, entities, found)
    triples = pd.DataFrame(columns=["head", "relation", "tail", "head_type", "tail_type"])
    if tables.triples is not None:
        triples, triple_notes = _check_triples(tables.triples, items, users, entity_types, found)
        notes += triple_notes
    if found.problems:
        raise ValidationError(found.problems)

    if users is None:
        users = pd.DataFrame({"user_id": pd.unique(interactions["user_id"])})
        strangers = _implicit_ids(triples, USER, users["user_id"])
        if len(strangers) and tables.triples is not None:
            raise ValidationError(
                [
                    Problem(
                        tables.triples.path,
                        None,
                        "head_type",
                        f"{len(strangers)} triple endpoint(s) typed 'user' never interact and "
                        f"there is no users table, e.g. {strangers[0]!r}",
                    )
                ]
            )
    entities_out = _entity_table(entities, triples)
    return Dataset(
        name=tables.name,
        interactions=interactions,
        items=items.reset_index(drop=True),
        users=users.reset_index(drop=True),
        entities=entities_out,
        triples=triples,
        notes=notes,
    )


def _check_columns(table: Table, found: _Collector) -> None:
    if len(table.frame) == 0:
        found.add(table, None, "table has a header but no rows")
        return
    columns = list(table.frame.columns)
    for column in REQUIRED_COLUMNS[table.name]:
        if column not in columns:
            hint = difflib.get_close_matches(column, columns, n=1, cutoff=0.6)
            suggestion = f" (found {hint[0]!r}: misnamed?)" if hint else ""
            found.problems.append(
                Problem(
                    table.path,
                    1,
                    column,
                    f"required column {column!r} is missing{suggestion}; "
                    f"columns are {', '.join(map(repr, columns))}",
                )
            )


def _check_ids(table: Table, column: str, found: _Collector) -> pd.DataFrame:
    frame = table.frame.copy()
    ids = frame[column].astype(str).str.strip()
    frame[column] = ids
    found.rows(table, (ids == "").to_numpy(), column, "empty id")
    dup = ids.duplicated(keep="first").to_numpy()
    if dup.any():
        first_line: dict[str, int] = {}
        for pos in np.flatnonzero(~dup):
            first_line.setdefault(ids.iat[int(pos)], table.line_of(int(pos)))
        for pos in np.flatnonzero(dup)[:MAX_PROBLEMS_PER_CHECK]:
            value = ids.iat[pos]
            found.problems.append(
                Problem(
                    table.path_of(int(pos)),
                    table.line_of(int(pos)),
                    column,
                    f"duplicate id {value!r} (first on line {first_line.get(value)})",
                )
            )
        if dup.sum() > MAX_PROBLEMS_PER_CHECK:
            found.add(
                table, column, f"... {int(dup.sum()) - MAX_PROBLEMS_PER_CHECK} more duplicates"
            )
    return frame


def _numeric(table: Table, column: str, found: _Collector, integer: bool) -> pd.Series:
    raw = table.frame[column]
    values = pd.to_numeric(raw, errors="coerce")
    blank = raw.isna() | (raw.astype(str).str.strip() == "")
    bad = values.isna() & ~blank
    if integer:
        bad |= values.notna() & (values != np.floor(values.fillna(0)))
    kind = "an integer (seconds since the epoch)" if integer else "a number"
    for pos in np.flatnonzero(bad.to_numpy())[:MAX_PROBLEMS_PER_CHECK]:
        found.problems.append(
            Problem(
                table.path_of(int(pos)),
                table.line_of(int(pos)),
                column,
                f"{str(raw.iat[pos])!r} is not {kind}",
            )
        )
    return values


def _check_interactions(
    table: Table,
    items: pd.DataFrame,
    users: pd.DataFrame | None,
    found: _Collector,
) -> tuple[pd.DataFrame, list[str]]:
    frame = table.frame
    out = pd.DataFrame(
        {
            "user_id": frame["user_id"].astype(str).str.strip(),
            "item_id": frame["item_id"].astype(str).str.strip(),
        }
    )
    for column in ("user_id", "item_id"):
        found.rows(table, (out[column] == "").to_numpy(), column, "empty id")
    if "rating" in frame.columns:
        out["rating"] = _numeric(table, "rating", found, integer=False).astype("float64")
    else:
        out["rating"] = np.nan
    if "timestamp" in frame.columns:
        ts = _numeric(table, "timestamp", found, integer=True)
        out["timestamp"] = ts.fillna(-1).astype("int64")
    else:
        out["timestamp"] = np.int64(-1)
    if "split" in frame.columns:
        split = frame["split"].astype(str).str.strip().str.lower()
        bad = ~split.isin(["train", "val", "test"])
        found.rows(table, bad.to_numpy(), "split", "split must be one of train, val, test")
        out["split"] = split
    known_items = items["item_id"].to_numpy()
    unknown = ~out["item_id"].isin(known_items) & (out["item_id"] != "")
    found.rows(table, unknown.to_numpy(), "item_id", "unknown item id (not in items table)")
    if users is not None:
        unknown_users = ~out["user_id"].isin(users["user_id"].to_numpy()) & (out["user_id"] != "")
        found.rows(
            table, unknown_users.to_numpy(), "user_id", "unknown user id (not in users table)"
        )
    notes = []
    dup = out.duplicated(["user_id", "item_id"], keep="last")
    if dup.any():
        notes.append(
            f"{int(dup.sum())} repeated (user, item) interactions merged, keeping the latest"
        )
        out = out.sort_values("timestamp", kind="stable")
        out = out.drop_duplicates(["user_id", "item_id"], keep="last").sort_index()
    return out.reset_index(drop=True), notes


def _check_entity_types(table: Table, entities: pd.DataFrame, found: _Collector) -> pd.Series:
    types = entities["type"].astype(str).map(relation_name)
    entities["type"] = types
    bad = ~types.map(lambda t: bool(_TYPE_NAME.match(t)))
    found.rows(table, bad.to_numpy(), "type", "entity type must start with a letter")
    reserved = types.isin([USER, ITEM])
    found.rows(
        table,
        reserved.to_numpy(),
        "type",
        "types 'user' and 'item' are reserved: put those rows in users/items",
    )
    series = pd.Series(types.to_numpy(), index=entities["entity_id"].to_numpy())
    # duplicate ids are reported by _check_ids; keep the first so lookups stay well defined
    return series[~series.index.duplicated(keep="first")]


def _check_triples(
    table: Table,
    items: pd.DataFrame,
    users: pd.DataFrame | None,
    entity_types: pd.Series | None,
    found: _Collector,
) -> tuple[pd.DataFrame, list[str]]:
    frame = table.frame
    out = pd.DataFrame({c: frame[c].astype(str).str.strip() for c in ("head", "relation", "tail")})
    for column in ("head", "relation", "tail"):
        found.rows(table, (out[column] == "").to_numpy(), column, "empty value")
    provenance = {}
    if "user_id" in frame.columns:
        provenance["user_id"] = frame["user_id"].fillna("").astype(str).str.strip()
    if "timestamp" in frame.columns:
        stamps = _numeric(table, "timestamp", found, integer=True)
        provenance["timestamp"] = stamps.fillna(-1).astype("int64")
    bad_rel = out["relation"].map(relation_name) == ""
    found.rows(table, bad_rel.to_numpy(), "relation", "relation name has no letters or digits")
    item_ids = pd.Index(items["item_id"])
    user_ids = pd.Index(users["user_id"]) if users is not None else None
    for end in ("head", "tail"):
        ids = out[end]
        declared_col = f"{end}_type"
        if declared_col in frame.columns:
            declared = frame[declared_col].astype(str).str.strip().map(relation_name)
        else:
            declared = pd.Series("", index=frame.index)
        inferred = pd.Series("", index=frame.index, dtype=object)
        if entity_types is not None:
            inferred = ids.map(entity_types).fillna("")
        in_items = ids.isin(item_ids)
        inferred = inferred.where(inferred != "", np.where(in_items, ITEM, ""))
        if user_ids is not None:
            inferred = inferred.where(inferred != "", np.where(ids.isin(user_ids), USER, ""))
        resolved = declared.where(declared != "", inferred)
        # declared types must agree with where the id lives
        is_item = resolved == ITEM
        message = "declared type 'item' but the id is not in the items table"
        found.rows(table, (is_item & ~in_items).to_numpy(), end, message)
        if user_ids is not None:
            message = "declared type 'user' but the id is not in the users table"
            found.rows(table, ((resolved == USER) & ~ids.isin(user_ids)).to_numpy(), end, message)
        if entity_types is not None:
            mismatch = (
                (declared != "")
                & ~declared.isin([ITEM, USER])
                & (inferred != "")
                & (declared != inferred)
            )
            for pos in np.flatnonzero(mismatch.to_numpy())[:MAX_PROBLEMS_PER_CHECK]:
                found.problems.append(
                    Problem(
                        table.path_of(int(pos)),
                        table.line_of(int(pos)),
                        declared_col,
                        f"declared type {declared.iat[pos]!r} but {ids.iat[pos]!r} has type "
                        f"{inferred.iat[pos]!r}",
                    )
                )
            message = "unknown id (not in entities, items or users)"
            found.rows(table, (resolved == "").to_numpy(), end, message)
            unknown_entity = (declared != "") & ~declared.isin([ITEM, USER]) & (inferred == "")
            message = "unknown entity id (not in the entities table)"
            found.rows(table, unknown_entity.to_numpy(), end, message)
        else:
            resolved = resolved.where(resolved != "", ENTITY)
        out[declared_col] = resolved
    loops = (out["head"] == out["tail"]) & (out["head_type"] == out["tail_type"])
    found.rows(table, loops.to_numpy(), "tail", "self-loop: head and tail are the same node")
    ends = {USER, ITEM}
    user_item = (out["head_type"] != out["tail_type"]) & out["head_type"].isin(ends)
    user_item &= out["tail_type"].isin(ends)
    found.rows(
        table,
        user_item.to_numpy(),
        "tail_type" if "tail_type" in frame.columns else "tail",
        "a triple between a user and an item is an interaction: put it in interactions "
        "(there the train/validation/test split applies)",
    )
    for column, values in provenance.items():
        out[column] = values.to_numpy()
    notes = []
    dup = out.duplicated(keep="first")
    if dup.any():
        notes.append(f"{int(dup.sum())} duplicate triples dropped")
        out = out[~dup]
    return out.reset_index(drop=True), notes


def _implicit_ids(triples: pd.DataFrame, node_type: str, known: pd.Series) -> np.ndarray:
    ids = pd.concat(
        [
            triples.loc[triples["head_type"] == node_type, "head"],
            triples.loc[triples["tail_type"] == node_type, "tail"],
        ]
    )
    return np.setdiff1d(ids.unique(), known.to_numpy())


def _entity_table(entities: pd.DataFrame | None, triples: pd.DataFrame) -> pd.DataFrame:
    """Entities table plus implicit (untyped) triple endpoints; ``name`` always present."""
    frames = []
    if entities is not None:
        frame = entities.copy()
        if "name" not in frame.columns:
            frame["name"] = ""
        frame["name"] = frame["name"].fillna("").astype(str)
        frames.append(frame)
    implicit = []
    for end in ("head", "tail"):
        part = triples.loc[triples[f"{end}_type"] == ENTITY, [end]].rename(
            columns={end: "entity_id"}
        )
        implicit.append(part)
    if implicit:
        ids = pd.concat(implicit)["entity_id"].drop_duplicates()
        if entities is not None:
            ids = ids[~ids.isin(entities["entity_id"])]
        if len(ids):
            frames.append(pd.DataFrame({"entity_id": ids, "type": ENTITY, "name": ids}))
    if not frames:
        return pd.DataFrame({"entity_id": [], "type": [], "name": []}, dtype=str)
    return pd.concat(frames, ignore_index=True)
