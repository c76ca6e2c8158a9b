"""The catalogue of items added after training (``kgrec add-items``), kept in the artifact.

It lives in ``<artifacts>/added_items/``, so it outlives any checkpoint: every bundle export
(a new model included) places the items again::

    items.json   [{"item_id", "title", "text", "links": [[relation, entity_type, entity_id]],
                   "source": "file:line", "added": ISO-8601}]
    text.npy     float32 [num_added, text_dim]: the items' text embeddings
    meta.json    {"format": 1, "model_id": text encoder id, "count": num_added}

The folder is replaced atomically (staging folder + rename), so a failed add leaves it as it
was. Reading and writing use numpy and json only (the serving path checks its stamp).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kgrec.errors import KgrecError
from kgrec.files import staging_dir, swap_dir

ADDED_DIR = "added_items"
FORMAT = 1


@dataclass(frozen=True)
class Link:
    """A knowledge-graph link of an added item: ``item -relation-> entity``."""

    relation: str
    entity_type: str
    entity_id: str


@dataclass(frozen=True)
class AddedItem:
    """One added item.

    Attributes:
        item_id: Its external id (new to the catalogue).
        title: Its title (the id when it has none).
        text: The text that was embedded (the catalogue's item template).
        links: Its links to entities of the graph.
        source: Where it was read, ``file:line``.
        added: When it was added (ISO-8601 UTC).
    """

    item_id: str
    title: str
    text: str
    links: tuple[Link, ...]
    source: str
    added: str

    def to_json(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "title": self.title,
            "text": self.text,
            "links": [[k.relation, k.entity_type, k.entity_id] for k in self.links],
            "source": self.source,
            "added": self.added,
        }

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> AddedItem:
        return cls(
            item_id=str(record["item_id"]),
            title=str(record.get("title", record["item_id"])),
            text=str(record.get("text", "")),
            links=tuple(Link(str(r), str(t), str(e)) for r, t, e in record.get("links", [])),
            source=str(record.get("source", "")),
            added=str(record.get("added", "")),
        )


@dataclass(frozen=True)
class AddedItems:
    """Items added to an artifact after training.

    Attributes:
        items: In the order added.
        text: ``[len(items), text_dim]`` float32 text embeddings, row ``k`` for ``items[k]``.
        text_model: Id of the text encoder that embedded them.
    """

    items: tuple[AddedItem, ...]
    text: np.ndarray
    text_model: str

    @property
    def item_ids(self) -> list[str]:
        return [item.item_id for item in self.items]

    def __len__(self) -> int:
        return len(self.items)

    def select(self, keep: Sequence[int]) -> AddedItems:
        """The items at positions ``keep`` (with their text rows)."""
        rows = list(keep)
        return AddedItems(tuple(self.items[k] for k in rows), self.text[rows], self.text_model)

    def __add__(self, other: AddedItems) -> AddedItems:
        return AddedItems(
            self.items + other.items, np.concatenate([self.text, other.text]), other.text_model
        )


def added_dir(artifacts_dir: Path | str) -> Path:
    """``<artifacts>/added_items``."""
    return Path(artifacts_dir) / ADDED_DIR


def added_stamp(artifacts_dir: Path | str) -> list[int]:
    """``[mtime_ns, size]`` of ``added_items/meta.json`` (``[0, 0]`` when nothing was added)."""
    try:
        st = (added_dir(artifacts_dir) / "meta.json").stat()
    except FileNotFoundError:
        return [0, 0]
    return [st.st_mtime_ns, st.st_size]


def load_added(artifacts_dir: Path | str) -> AddedItems | None:
    """The added items of an artifact folder, ``None`` when there are none."""
    folder = added_dir(artifacts_dir)
    if not (folder / "meta.json").exists():
        return None
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        records = json.loads((folder / "items.json").read_text(encoding="utf-8"))
        text = np.load(folder / "text.npy")
    except (OSError, ValueError) as exc:
        raise KgrecError(f"{folder}: unreadable added items ({exc})") from exc
    if meta.get("format") != FORMAT or len(records) != text.shape[0]:
        raise KgrecError(f"{folder}: inconsistent added items (remove the folder and add again)")
    items = tuple(AddedItem.from_json(r) for r in records)
    return AddedItems(items, text.astype(np.float32, copy=False), str(meta.get("model_id")))


def save_added(artifacts_dir: Path | str, added: AddedItems) -> None:
    """Replace ``<artifacts>/added_items`` atomically with ``added`` (all items so far)."""
    target = added_dir(artifacts_dir)
    staging = staging_dir(target)
    try:
        np.save(staging / "text.npy", added.text.astype(np.float32))
        records = [item.to_json() for item in added.items]
        (staging / "items.json").write_text(
            json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8"
        )
        meta = {"format": FORMAT, "model_id": added.text_model, "count": len(added)}
        (staging / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
        swap_dir(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
