"""Retiring items: never recommended again, history kept (``kgrec items retire``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from kgrec.data.added_items import load_added
from kgrec.data.layout import ID_MAP_FILE
from kgrec.data.lifecycle import (
    audit,
    load_retired,
    now,
    save_retired,
)
from kgrec.data.mapping import IdMap
from kgrec.errors import KgrecError
from kgrec.manifest import verify_artifact
from kgrec.store.base import GraphPayload, GraphStore, NodeSet
from kgrec.store.queries import load_query


def shown_ids(ids: Sequence[str]) -> str:
    more = f" and {len(ids) - 10} more" if len(ids) > 10 else ""
    return ", ".join(repr(i) for i in ids[:10]) + more


# ---------------------------------------------------------------------------- retire items


@dataclass(frozen=True)
class RetireResult:
    """What one retire or unretire call did.

    Attributes:
        changed: Items retired (or unretired) now.
        unchanged: Items that already were (or were not).
        retired: Every retired item afterwards.
        graph_items: ``:Item`` nodes updated in the graph database (``None``: not written).
    """

    changed: list[str]
    unchanged: list[str]
    retired: list[str]
    graph_items: int | None


def catalogue(artifacts_dir: Path) -> set[str]:
    """Every item id of the artifact: the dataset's and those of ``kgrec add-items``."""
    if not (artifacts_dir / ID_MAP_FILE).exists():
        raise KgrecError(f"no graph artifact in {artifacts_dir}: run `kgrec build-graph` first")
    verify_artifact(artifacts_dir)
    items = {str(i) for i in IdMap.load(artifacts_dir / ID_MAP_FILE).ids["item"]}
    added = load_added(artifacts_dir)
    return items | set(added.item_ids if added is not None else [])


def retire_items(
    artifacts_dir: Path | str,
    item_ids: Sequence[str],
    store: GraphStore | None = None,
    *,
    undo: bool = False,
) -> RetireResult:
    """Retire ``item_ids`` (``undo``: unretire them); see the module docstring.

    Raises:
        KgrecError: An id the catalogue does not have (unretire: that is not retired
            either); nothing is written then.
    """
    folder = Path(artifacts_dir)
    ids = list(dict.fromkeys(str(i).strip() for i in item_ids))
    if not ids or any(not i for i in ids):
        raise KgrecError("give one or more item ids")
    retired = load_retired(folder)
    known = catalogue(folder)
    unknown = [i for i in ids if i not in known and not (undo and i in retired)]
    if unknown:
        raise KgrecError(f"unknown item id(s) {shown_ids(unknown)}: not in {folder}")
    changed = [i for i in ids if (i in retired) == undo]
    unchanged = [i for i in ids if i not in changed]
    updated = dict(retired)
    for item in changed:
        if undo:
            updated.pop(item)
        else:
            updated[item] = {"at": now()}
    query = "lifecycle/unretire_items" if undo else "lifecycle/retire_items"
    graph_items = None
    if store is not None:  # idempotent: a failure below leaves it to a re-run to finish
        rows = store.query(load_query(query), {"ids": ids}, write=True).rows
        graph_items = int(rows[0][0]) if rows else 0
    if changed:
        save_retired(folder, updated)
        audit(folder, {"action": "unretire" if undo else "retire", "items": changed})
    return RetireResult(changed, unchanged, sorted(updated), graph_items)


def with_retired(payload: GraphPayload, artifacts_dir: Path | str) -> GraphPayload:
    """``payload`` with ``retired: true`` on the ``:Item`` nodes of retired items (for a
    rebuild of the graph database)."""
    retired = set(load_retired(artifacts_dir))
    if not retired:
        return payload
    nodes = []
    for node_set in payload.nodes:
        if node_set.label == "Item":
            frame = node_set.frame.copy()
            marked = frame["id"].astype(str).isin(retired)
            flags = [True if m else None for m in marked.tolist()]  # only retired items get it
            frame["retired"] = pd.Series(flags, index=frame.index, dtype=object)
            node_set = NodeSet(node_set.label, frame)
        nodes.append(node_set)
    return GraphPayload(nodes=tuple(nodes), relationships=payload.relationships)
