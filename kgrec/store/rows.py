"""Payload frames as the rows of the ``cypher/load/`` upserts, with typed property values.

The database keeps every value with the type it was written with, and Cypher compares a
string with a number as "not equal" without a word (``WHERE u.age < 18`` matches nobody when
ages are strings). So numbers are written as numbers: a property column whose values are
all canonical integers (``"42"``, ``"-7"``; not ``"007"``, which stays text, like a zip
code) becomes integers, one whose values are all decimal numbers (``"3.5"``) becomes floats,
and columns that are numeric already stay so. Text columns by name (``title``, ``name``,
``description``) always stay text, so a film called "1984" keeps a string title.

This module imports no pandas or numpy: the database commands use it on their start-up path.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from kgrec.store.queries import load_query

if TYPE_CHECKING:
    import pandas as pd

    from kgrec.store.base import NodeSet, RelationshipSet

TEXT_COLUMNS = frozenset({"title", "name", "description"})
"""Property columns that stay text even when every value looks like a number."""

_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]{0,17})")
_DECIMAL = re.compile(r"-?(?:0|[1-9][0-9]{0,17})(?:\.[0-9]+)?")


def relationship_query(name: str, rel_set: RelationshipSet) -> str:
    """``cypher/<name>.cypher`` with the labels and type of ``rel_set`` filled in."""
    return load_query(
        name, source=rel_set.source_label, target=rel_set.target_label, type=rel_set.type
    )


def node_batches(node_set: NodeSet, size: int) -> Iterator[list[dict[str, Any]]]:
    """Rows for ``load/upsert_nodes``: ``[{id, props}]``, ``size`` at a time (no ``None``
    property values; numbers typed as described in the module docs)."""
    frame = node_set.frame
    ids = frame["id"].astype(str).tolist()
    columns = property_columns(frame, ("id",))
    for start in range(0, len(ids), size):
        yield [
            {"id": ids[i], "props": _props(columns, i)}
            for i in range(start, min(start + size, len(ids)))
        ]


def relationship_batches(rel_set: RelationshipSet, size: int) -> Iterator[list[dict[str, Any]]]:
    """Rows for ``load/upsert_relationships``: ``[{source, target, props}]``, ``size`` at a
    time."""
    frame = rel_set.frame
    sources = frame["source"].astype(str).tolist()
    targets = frame["target"].astype(str).tolist()
    columns = property_columns(frame, ("source", "target"))
    for start in range(0, len(sources), size):
        yield [
            {"source": sources[i], "target": targets[i], "props": _props(columns, i)}
            for i in range(start, min(start + size, len(sources)))
        ]


def property_columns(frame: pd.DataFrame, skip: tuple[str, ...]) -> dict[str, list[Any]]:
    """Property columns of ``frame`` as lists of plain, typed Python values (``None`` for
    missing), every column but ``skip``."""
    out = {}
    for column in frame.columns:
        if column in skip:
            continue
        values = frame[column].astype(object).where(frame[column].notna(), None).tolist()
        native = [_native(v) for v in values]
        out[str(column)] = native if str(column) in TEXT_COLUMNS else typed_values(native)
    return out


def typed_values(values: list[Any]) -> list[Any]:
    """``values`` with numeric strings turned into numbers when *all* of them are numeric.

    >>> typed_values(["22", "48", None])
    [22, 48, None]
    >>> typed_values(["1.5", "2", None])
    [1.5, 2.0, None]
    >>> typed_values(["02134", "T8H1N"]), typed_values(["007", "12"])
    (['02134', 'T8H1N'], ['007', '12'])
    """
    texts = [v.strip() for v in values if isinstance(v, str)]
    if not texts or any(v is not None and not isinstance(v, str) for v in values):
        return values
    if all(_INTEGER.fullmatch(t) for t in texts):
        return [None if v is None else int(v) for v in values]
    if all(_DECIMAL.fullmatch(t) for t in texts):
        return [None if v is None else float(v) for v in values]
    return values


def _native(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _props(columns: dict[str, list[Any]], i: int) -> dict[str, Any]:
    return {k: v[i] for k, v in columns.items() if v[i] is not None}
