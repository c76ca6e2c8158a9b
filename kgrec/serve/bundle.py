"""The serving bundle: a checkpoint's embeddings and the seen items, as plain ``.npy`` + JSON.

``export_bundle(checkpoint, artifacts_dir)`` writes ``<checkpoint dir>/serving/``:

=======================  ==================================================================
file                     content
=======================  ==================================================================
``user_embedding.npy``   float32 ``[num_users, d]`` (the checkpoint's serving embeddings)
``item_embedding.npy``   float32 ``[num_items, d]``
``seen_indptr.npy``      int64 ``[num_users + 1]``: CSR row pointers of the items each user
                         interacted with (all splits of the artifact: train, val and test)
``seen_indices.npy``     int64 ``[nnz]``: item indices, sorted within each row
``users.json``           external user ids in index order
``items.json``           ``{"ids": [...], "titles": [...]}`` in index order
``meta.json``            ``model_id`` (sha256 of the checkpoint's bytes, 16 hex digits),
                         ``created`` (ISO-8601 UTC), sizes, the checkpoint's and
                         artifact's file stamps used to tell when the bundle is stale, and
                         ``files``: the sha256 and size of every other file
=======================  ==================================================================

:func:`load_bundle` uses only numpy and json (arrays are memory-mapped), so serving starts
without torch or pandas; it verifies every file against ``meta.json`` (a damaged file is a
:class:`~kgrec.files.DamagedFileError`). :func:`open_bundle` re-exports first when the
bundle is missing, stale or damaged (that path imports torch).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from kgrec.errors import KgrecError
from kgrec.files import (
    DamagedFileError,
    checksums,
    remove_stale,
    staging_dir,
    swap_dir,
    verify_checksums,
)
from kgrec.serve.new_items import added_stamp, place_added

FORMAT = 1
SERVING_DIR = "serving"
ARRAYS = ("user_embedding", "item_embedding", "seen_indptr", "seen_indices")
DATA_FILES = (*(f"{name}.npy" for name in ARRAYS), "users.json", "items.json")
FILES = (*DATA_FILES, "meta.json")
MODEL_ID_LENGTH = 16


@dataclass(frozen=True)
class Bundle:
    """A loaded serving bundle (arrays are read-only memory maps).

    Attributes:
        user_embedding: ``[num_users, d]`` float32.
        item_embedding: ``[num_items, d]`` float32.
        seen_indptr: ``[num_users + 1]`` CSR row pointers into ``seen_indices``.
        seen_indices: ``[nnz]`` item indices each user has interacted with (any split).
        user_ids: External user ids, ``user_ids[index]``.
        item_ids: External item ids, ``item_ids[index]``.
        titles: Item titles (the id when an item has none), ``titles[index]``.
        meta: The contents of ``meta.json`` (``model_id``, ``created``, ...).
        path: The bundle folder.
    """

    user_embedding: np.ndarray
    item_embedding: np.ndarray
    seen_indptr: np.ndarray
    seen_indices: np.ndarray
    user_ids: list[str]
    item_ids: list[str]
    titles: list[str]
    meta: dict[str, Any]
    path: Path
    _user_index: dict[str, int] = field(default_factory=dict, repr=False, compare=False)
    _item_index: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    @property
    def model_id(self) -> str:
        return str(self.meta["model_id"])

    @property
    def num_users(self) -> int:
        return int(self.user_embedding.shape[0])

    @property
    def num_items(self) -> int:
        return int(self.item_embedding.shape[0])

    def user_index(self, user_id: str) -> int | None:
        """Index of an external user id, ``None`` when unknown."""
        if not self._user_index and self.user_ids:
            self._user_index.update((u, k) for k, u in enumerate(self.user_ids))
        return self._user_index.get(user_id)

    def item_index(self, item_id: str) -> int | None:
        """Index of an external item id, ``None`` when unknown."""
        if not self._item_index and self.item_ids:
            self._item_index.update((i, k) for k, i in enumerate(self.item_ids))
        return self._item_index.get(item_id)

    def seen(self, user: int) -> np.ndarray:
        """Item indices ``[n]`` user ``user`` (an index) has interacted with."""
        return np.asarray(self.seen_indices[self.seen_indptr[user] : self.seen_indptr[user + 1]])


def serving_dir(checkpoint: Path | str) -> Path:
    """Where the bundle of ``checkpoint`` lives: ``<checkpoint dir>/serving``."""
    return Path(checkpoint).parent / SERVING_DIR


def model_id_of(checkpoint: Path | str) -> str:
    """sha256 of the checkpoint file's bytes, truncated to 16 hex digits."""
    digest = hashlib.sha256()
    with Path(checkpoint).open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:MODEL_ID_LENGTH]


def _stamp(path: Path) -> list[int]:
    """``[mtime_ns, size]`` of a file (``[0, 0]`` when absent)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return [0, 0]
    return [st.st_mtime_ns, st.st_size]


def _artifact_file(artifacts_dir: Path) -> Path:
    return artifacts_dir / "graph.pt"


def is_fresh(folder: Path, checkpoint: Path, artifacts_dir: Path | None = None) -> bool:
    """Whether ``folder`` holds a complete bundle of this very checkpoint (and artifact).

    Only file stamps are compared (no hashing), so the check costs a few ``stat`` calls.
    """
    if not all((folder / name).exists() for name in FILES):
        return False
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if meta.get("format") != FORMAT or meta.get("checkpoint_stamp") != _stamp(checkpoint):
        return False
    if artifacts_dir is not None:
        return bool(
            meta.get("artifact_stamp") == _stamp(_artifact_file(artifacts_dir))
            and meta.get("added_stamp", [0, 0]) == added_stamp(artifacts_dir)
        )
    return True


def export_bundle(checkpoint: Path | str, artifacts_dir: Path | str) -> Path:
    """Write the serving bundle of ``checkpoint`` (see the module docstring); returns its folder.

    ``artifacts_dir`` is the ``build-graph`` artifact the model was trained on: it gives the
    id maps, item titles and every user's interactions (all splits), which are never
    recommended again. The folder is replaced atomically (staging folder, then renames).
    """
    import pandas as pd

    from kgrec.build import TABLES_DIR, load_artifact
    from kgrec.train.checkpoint import read_embeddings

    checkpoint, artifacts_dir = Path(checkpoint), Path(artifacts_dir)
    user_emb, item_emb = read_embeddings(checkpoint)
    artifact = load_artifact(artifacts_dir)
    num_users, num_items = artifact.num_nodes["user"], artifact.num_nodes["item"]
    if int(user_emb.size(0)) != num_users or int(item_emb.size(0)) != num_items:
        raise KgrecError(
            f"{checkpoint} has {user_emb.shape[0]} users and {item_emb.shape[0]} items but the "
            f"artifact in {artifacts_dir} has {num_users} and {num_items}: was the model trained "
            "on another dataset? (retrain with kgrec train, or pass --checkpoint)"
        )
    edges = np.concatenate([e.numpy() for e in artifact.split_edge_index.values()], axis=1).astype(
        np.int64
    )
    pairs = np.unique(edges[0] * num_items + edges[1])  # sorted, deduplicated
    rows, cols = pairs // num_items, pairs % num_items
    indptr = np.zeros(num_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=num_users), out=indptr[1:])

    item_ids = [str(x) for x in artifact.id_map.ids["item"]]
    titles = list(item_ids)
    items_table = artifacts_dir / TABLES_DIR / "items.parquet"
    if items_table.exists():
        frame = pd.read_parquet(items_table)
        if "title" in frame.columns:
            named = dict(zip(frame["item_id"].astype(str), frame["title"], strict=False))
            titles = [_title(named.get(i), i) for i in item_ids]

    item_emb_np = item_emb.float().numpy().astype(np.float32)
    added, placed = place_added(artifacts_dir, item_ids, item_emb_np)  # kgrec add-items
    added_ids = added.item_ids if added is not None else []
    if added is not None:
        item_emb_np = np.concatenate([item_emb_np, placed])
        item_ids = item_ids + added_ids
        titles = titles + [str(r["title"]) for r in added.records]

    target = serving_dir(checkpoint)
    remove_stale(target.parent)
    staging = staging_dir(target)
    try:
        np.save(staging / "user_embedding.npy", user_emb.float().numpy().astype(np.float32))
        np.save(staging / "item_embedding.npy", item_emb_np)
        np.save(staging / "seen_indptr.npy", indptr)
        np.save(staging / "seen_indices.npy", cols.astype(np.int64))
        _write_json(staging / "users.json", [str(x) for x in artifact.id_map.ids["user"]])
        _write_json(staging / "items.json", {"ids": item_ids, "titles": titles})
        meta = {
            "format": FORMAT,
            "model_id": model_id_of(checkpoint),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "checkpoint": str(checkpoint.resolve()),
            "checkpoint_stamp": _stamp(checkpoint),
            "artifacts": str(artifacts_dir.resolve()),
            "artifact_stamp": _stamp(_artifact_file(artifacts_dir)),
            "num_users": num_users,
            "num_items": len(item_ids),
            "num_trained_items": num_items,
            "num_added_items": len(added_ids),
            "added_stamp": added_stamp(artifacts_dir),
            "dim": int(user_emb.shape[1]),
            "num_seen": int(cols.size),
            "files": checksums(staging, list(DATA_FILES)),
        }
        _write_json(staging / "meta.json", meta)
        swap_dir(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _title(value: Any, fallback: str) -> str:
    if value is None or (isinstance(value, float) and value != value) or str(value) == "":
        return fallback
    return str(value)


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")


def _rebuild(folder: Path) -> str:
    return f"kgrec recommend (it re-exports {folder} from the checkpoint)"


def load_bundle(folder: Path | str) -> Bundle:
    """Read a bundle written by :func:`export_bundle` (numpy + json only, memory-mapped).

    Raises:
        DamagedFileError: a file does not match the sha256 in ``meta.json``.
    """
    folder = Path(folder)
    missing = [name for name in FILES if not (folder / name).exists()]
    if missing:
        raise KgrecError(f"{folder} is not a complete serving bundle (missing {missing})")
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DamagedFileError(folder / "meta.json", "not JSON", _rebuild(folder)) from exc
    if isinstance(meta, dict) and isinstance(meta.get("files"), dict):
        verify_checksums(folder, meta["files"], _rebuild(folder))
    try:
        arrays = {name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in ARRAYS}
        users = json.loads((folder / "users.json").read_text(encoding="utf-8"))
        items = json.loads((folder / "items.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DamagedFileError(folder, f"unreadable: {exc}", _rebuild(folder)) from exc
    bundle = Bundle(
        user_embedding=arrays["user_embedding"],
        item_embedding=arrays["item_embedding"],
        seen_indptr=arrays["seen_indptr"],
        seen_indices=arrays["seen_indices"],
        user_ids=[str(u) for u in users],
        item_ids=[str(i) for i in items["ids"]],
        titles=[str(t) for t in items["titles"]],
        meta=meta,
        path=folder,
    )
    if (
        bundle.user_embedding.shape[0] != len(bundle.user_ids)
        or bundle.item_embedding.shape[0] != len(bundle.item_ids)
        or bundle.seen_indptr.shape[0] != len(bundle.user_ids) + 1
    ):
        raise DamagedFileError(folder, "its arrays disagree in size", _rebuild(folder))
    return bundle


def open_bundle(
    checkpoint: Path | str,
    artifacts_dir: Path | str | None = None,
    notes: list[str] | None = None,
) -> Bundle:
    """The bundle of ``checkpoint``, exported first when missing, stale or damaged.

    Args:
        checkpoint: A ``model.pt`` written by ``kgrec train``.
        artifacts_dir: Its artifact folder; default: the one recorded in an existing bundle.
        notes: Receives a line when a damaged bundle was re-exported.
    """
    checkpoint = Path(checkpoint)
    folder = serving_dir(checkpoint)
    if not checkpoint.exists():
        raise KgrecError(f"no checkpoint at {checkpoint}: run `kgrec train` first")
    artifacts = Path(artifacts_dir) if artifacts_dir is not None else None
    if artifacts is None and (folder / "meta.json").exists():
        try:
            artifacts = Path(json.loads((folder / "meta.json").read_text("utf-8"))["artifacts"])
        except (OSError, ValueError, KeyError):
            artifacts = None
    if not is_fresh(folder, checkpoint, artifacts):
        if artifacts is None:
            raise KgrecError(f"no serving bundle for {checkpoint}: give the artifact folder")
        export_bundle(checkpoint, artifacts)
    try:
        return load_bundle(folder)
    except DamagedFileError as exc:
        if artifacts is None:
            raise
        if notes is not None:
            notes.append(f"{exc.path} was damaged: re-exported the bundle from {checkpoint}")
        export_bundle(checkpoint, artifacts)
        return load_bundle(folder)
