"""Interactions added after training (``kgrec add-interactions``), kept in the artifact.

They live in ``<artifacts>/added_interactions/``, so they outlive any checkpoint: every
bundle export replays them onto the users' histories (:func:`kgrec.serve.live.fold_in`), and
``build-graph`` carries them over a rebuild unless the new data has them::

    interactions.json  {"user_id": [...], "item_id": [...], "rating": [float|null],
                        "timestamp": [int, -1 = unknown], "batch": [int]}  in the order added
    meta.json          {"format": 1, "count": n, "batches": [{"file", "rows", "added"}]}

A user's added interactions follow their interactions of the dataset, in the order added
(the order of a file is its timestamps', then its lines'). The folder is replaced
atomically (staging folder + rename), so a failed add leaves it as it was. Reading and
writing use numpy and json only (the serving path checks its stamp).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kgrec.errors import KgrecError
from kgrec.files import staging_dir, swap_dir

ADDED_INTERACTIONS_DIR = "added_interactions"
FORMAT = 1
ADDED_SPLIT = "added"
"""The ``split`` property of an added interaction in the graph database."""


@dataclass(frozen=True)
class AddedInteractions:
    """Interactions added to an artifact after training, in the order added.

    Attributes:
        user_ids, item_ids: External ids ``[n]``.
        ratings: Ratings ``[n]`` (``None`` when not given).
        timestamps: Integer seconds ``[n]`` (``-1`` when not given).
        batches: The add (index into ``sources``) each row came with ``[n]``.
        sources: One record per add: ``{"file", "rows", "added"}``.
    """

    user_ids: tuple[str, ...] = ()
    item_ids: tuple[str, ...] = ()
    ratings: tuple[float | None, ...] = ()
    timestamps: tuple[int, ...] = ()
    batches: tuple[int, ...] = ()
    sources: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    def __len__(self) -> int:
        return len(self.user_ids)

    def pairs(self) -> set[tuple[str, str]]:
        """The ``(user_id, item_id)`` pairs held."""
        return set(zip(self.user_ids, self.item_ids, strict=True))

    def select(self, keep: Sequence[int]) -> AddedInteractions:
        """The rows at positions ``keep`` (every source record kept)."""
        rows = list(keep)
        return AddedInteractions(
            tuple(self.user_ids[k] for k in rows),
            tuple(self.item_ids[k] for k in rows),
            tuple(self.ratings[k] for k in rows),
            tuple(self.timestamps[k] for k in rows),
            tuple(self.batches[k] for k in rows),
            self.sources,
        )

    def extend(
        self,
        user_ids: Sequence[str],
        item_ids: Sequence[str],
        ratings: Sequence[float | None],
        timestamps: Sequence[int],
        source: dict[str, Any],
    ) -> AddedInteractions:
        """These interactions plus one more add of the given rows (its ``source`` record)."""
        batch = len(self.sources)
        return AddedInteractions(
            self.user_ids + tuple(user_ids),
            self.item_ids + tuple(item_ids),
            self.ratings + tuple(ratings),
            self.timestamps + tuple(int(t) for t in timestamps),
            self.batches + (batch,) * len(user_ids),
            (*self.sources, source),
        )


def added_interactions_dir(artifacts_dir: Path | str) -> Path:
    """``<artifacts>/added_interactions``."""
    return Path(artifacts_dir) / ADDED_INTERACTIONS_DIR


def interactions_stamp(artifacts_dir: Path | str) -> list[int]:
    """``[mtime_ns, size]`` of ``added_interactions/meta.json`` (``[0, 0]``: none added)."""
    try:
        st = (added_interactions_dir(artifacts_dir) / "meta.json").stat()
    except FileNotFoundError:
        return [0, 0]
    return [st.st_mtime_ns, st.st_size]


def load_added_interactions(artifacts_dir: Path | str) -> AddedInteractions:
    """The added interactions of an artifact folder (empty when there are none)."""
    folder = added_interactions_dir(artifacts_dir)
    if not (folder / "meta.json").exists():
        return AddedInteractions()
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        rows = json.loads((folder / "interactions.json").read_text(encoding="utf-8"))
        columns = [rows[c] for c in ("user_id", "item_id", "rating", "timestamp", "batch")]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise KgrecError(f"{folder}: unreadable added interactions ({exc})") from exc
    if meta.get("format") != FORMAT or len({len(c) for c in columns}) != 1:
        raise KgrecError(f"{folder}: inconsistent added interactions (format or lengths)")
    users, items, ratings, stamps, batches = columns
    return AddedInteractions(
        tuple(str(u) for u in users),
        tuple(str(i) for i in items),
        tuple(None if r is None else float(r) for r in ratings),
        tuple(int(t) for t in stamps),
        tuple(int(b) for b in batches),
        tuple(meta.get("batches", [])),
    )


def save_added_interactions(artifacts_dir: Path | str, added: AddedInteractions) -> None:
    """Replace ``<artifacts>/added_interactions`` atomically with ``added`` (all so far)."""
    write_added_interactions(added_interactions_dir(artifacts_dir), added)


def write_added_interactions(target: Path, added: AddedInteractions) -> None:
    """Write ``added`` as the folder ``target`` (replaced atomically)."""
    staging = staging_dir(target)
    try:
        rows = {
            "user_id": list(added.user_ids),
            "item_id": list(added.item_ids),
            "rating": list(added.ratings),
            "timestamp": list(added.timestamps),
            "batch": list(added.batches),
        }
        (staging / "interactions.json").write_text(json.dumps(rows), encoding="utf-8")
        meta = {"format": FORMAT, "count": len(added), "batches": list(added.sources)}
        (staging / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
        swap_dir(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def carry_over_interactions(
    target: Path, staging: Path, pairs: set[tuple[str, str]], items: set[str]
) -> list[str]:
    """Keep the added interactions of ``target`` in a rebuilt artifact ``staging``, except
    those the new data has (``pairs``: its ``(user_id, item_id)``) and those whose item it
    lacks (``items``: its items and the added ones); returns notes for the build report."""
    added = load_added_interactions(target)
    if not len(added):
        return []
    keep = [
        k
        for k, pair in enumerate(zip(added.user_ids, added.item_ids, strict=True))
        if pair not in pairs and pair[1] in items
    ]
    notes = []
    if keep:
        write_added_interactions(added_interactions_dir(staging), added.select(keep))
        notes.append(f"kept {len(keep)} interaction(s) of kgrec add-interactions")
    if len(keep) < len(added):
        notes.append(
            f"dropped {len(added) - len(keep)} added interaction(s): the new data has them, "
            "or no longer has their item"
        )
    return notes
