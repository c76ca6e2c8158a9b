"""Folding new interactions into served histories, without retraining (numpy only).

The served score reads nothing of a user but their time-ordered history
(:mod:`kgrec.serve.scorer`), so new behaviour changes it at once: :func:`fold_in` appends
each user's new items to their history as the latest (age ``0``; the older items age by as
many steps, exactly as ``recommend --seed-items`` does), adds them to the items never
recommended again, recomputes the GNN's user vector ``norm(sum_h g ** a_h E_in[h])`` of the
users touched, and gives new users a history of their own. ``kgrec add-interactions``
folds a file into the live bundle (:func:`write_folded`); every export replays all added
interactions through the same function, so both give the same bundle.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from kgrec.files import checksums, staging_dir, swap_dir
from kgrec.serve.bundle import Bundle
from kgrec.serve.scorer import HybridScorer


@dataclass(frozen=True)
class Histories:
    """What folding changes in a bundle: users, their histories, seen items and vectors.

    Attributes:
        user_ids: External ids ``[U]``.
        history_indptr, history_items, history_ages: CSR ``[U + 1]``, ``[E]``, ``[E]``,
            oldest first (``0`` = latest).
        seen_indptr, seen_indices: CSR ``[U + 1]``, ``[nnz]`` (sorted within each row).
        user_embedding: ``[U, d]`` float32 (``d = 0`` without a GNN).
        history_liked: ``[E]`` bool aligned with ``history_items``: the items a customer-facing
            reason may cite (folded-in interactions count as liked); ``None`` = all.
    """

    user_ids: list[str]
    history_indptr: np.ndarray
    history_items: np.ndarray
    history_ages: np.ndarray
    seen_indptr: np.ndarray
    seen_indices: np.ndarray
    user_embedding: np.ndarray
    history_liked: np.ndarray | None = None

    @classmethod
    def of_bundle(cls, bundle: Bundle) -> Histories:
        return cls(
            list(bundle.user_ids),
            np.asarray(bundle.history_indptr, dtype=np.int64),
            np.asarray(bundle.history_items, dtype=np.int64),
            np.asarray(bundle.history_ages, dtype=np.int64),
            np.asarray(bundle.seen_indptr, dtype=np.int64),
            np.asarray(bundle.seen_indices, dtype=np.int64),
            np.asarray(bundle.user_embedding, dtype=np.float32),
            np.asarray(bundle.history_liked, dtype=bool),
        )

    def liked_or_all(self) -> np.ndarray:
        """``[E]`` bool: :attr:`history_liked`, or all true where it does not line up."""
        liked = self.history_liked
        if liked is None or liked.shape[0] != self.history_items.shape[0]:
            return np.ones(self.history_items.shape[0], dtype=bool)
        return np.asarray(liked, dtype=bool)

    @property
    def num_users(self) -> int:
        return len(self.user_ids)


@dataclass(frozen=True)
class Folded:
    """The result of :func:`fold_in`: the new histories, the users touched ``[n]``
    (indices) and how many of them are new."""

    histories: Histories
    users: np.ndarray
    new_users: int


def fold_in(
    histories: Histories,
    user_ids: Sequence[str],
    items: np.ndarray,
    scorer: HybridScorer | None,
    item_embedding: np.ndarray | None = None,
) -> Folded:
    """Append interactions (``user_ids [n]``, item indices ``items [n]``, in the order they
    happened) to ``histories``; see the module docstring.

    ``scorer`` recomputes the GNN's user vectors; a bundle without one (embeddings only)
    takes the mean of ``item_embedding`` over the history, as ``recommend`` does.
    """
    items = np.asarray(items, dtype=np.int64)
    index = {u: k for k, u in enumerate(histories.user_ids)}
    all_ids = list(histories.user_ids)
    for user_id in user_ids:
        if user_id not in index:
            index[user_id] = len(all_ids)
            all_ids.append(user_id)
    num_old, num_users = histories.num_users, len(all_ids)
    users = np.asarray([index[u] for u in user_ids], dtype=np.int64)

    old_len = np.zeros(num_users, dtype=np.int64)
    old_len[:num_old] = np.diff(histories.history_indptr)
    add_len = np.bincount(users, minlength=num_users).astype(np.int64)
    indptr = np.zeros(num_users + 1, dtype=np.int64)
    indptr[1:] = np.cumsum(old_len + add_len)
    out_items = np.empty(int(indptr[-1]), dtype=np.int64)
    out_ages = np.empty(int(indptr[-1]), dtype=np.int64)
    # old rows keep their order, each aged by the user's number of new items
    owner = np.repeat(np.arange(num_users), old_len)
    start = np.repeat(indptr[:-1], old_len)
    offset = np.arange(owner.size) - np.repeat(np.cumsum(old_len) - old_len, old_len)
    out_items[start + offset] = histories.history_items
    out_ages[start + offset] = histories.history_ages + add_len[owner]
    out_liked = np.ones(int(indptr[-1]), dtype=bool)
    out_liked[start + offset] = histories.liked_or_all()
    # new rows follow, in the order given: the last one is the latest (age 0)
    order = np.argsort(users, kind="stable")
    sorted_users = users[order]
    rank = np.arange(users.size) - np.searchsorted(sorted_users, sorted_users)
    position = indptr[sorted_users] + old_len[sorted_users] + rank
    out_items[position] = items[order]
    out_ages[position] = add_len[sorted_users] - 1 - rank

    seen_indptr, seen_indices = _seen(histories, num_users, users, items)
    touched = np.unique(users)
    vectors = np.zeros((num_users, histories.user_embedding.shape[1]), dtype=np.float32)
    vectors[:num_old] = histories.user_embedding
    for user in touched.tolist():
        lo, hi = int(indptr[user]), int(indptr[user + 1])
        vectors[user] = user_vector(
            out_items[lo:hi], out_ages[lo:hi], scorer, item_embedding, vectors.shape[1]
        )
    folded = Histories(
        all_ids, indptr, out_items, out_ages, seen_indptr, seen_indices, vectors, out_liked
    )
    return Folded(folded, touched, num_users - num_old)


def user_vector(
    items: np.ndarray,
    ages: np.ndarray,
    scorer: HybridScorer | None,
    item_embedding: np.ndarray | None,
    dim: int,
) -> np.ndarray:
    """The served user vector ``[dim]`` of a history (the approximate index's query)."""
    if not dim:
        return np.zeros(0, dtype=np.float32)
    if scorer is not None and scorer.gnn is not None:
        vector, norm = scorer.gnn.user_vector(items, ages)
        return (vector / norm).astype(np.float32)
    if item_embedding is None or not items.size:
        return np.zeros(dim, dtype=np.float32)
    return np.asarray(item_embedding[items], dtype=np.float32).mean(axis=0)


def _seen(
    histories: Histories, num_users: int, users: np.ndarray, items: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Seen CSR over ``num_users`` with the pairs ``(users, items)`` added (sorted, unique)."""
    old_rows = np.repeat(np.arange(histories.num_users), np.diff(histories.seen_indptr))
    rows = np.concatenate([old_rows, users])
    cols = np.concatenate([histories.seen_indices, items])
    width = int(cols.max()) + 1 if cols.size else 1
    keys = np.unique(rows * width + cols)
    rows, cols = keys // width, keys % width
    indptr = np.zeros(num_users + 1, dtype=np.int64)
    indptr[1:] = np.cumsum(np.bincount(rows, minlength=num_users))
    return indptr, cols.astype(np.int64)


FOLDED_FILES = {
    "history_indptr.npy": "history_indptr",
    "history_items.npy": "history_items",
    "history_ages.npy": "history_ages",
    "seen_indptr.npy": "seen_indptr",
    "seen_indices.npy": "seen_indices",
    "user_embedding.npy": "user_embedding",
    "history_liked.npy": "history_liked",
}


def write_folded(bundle: Bundle, histories: Histories, interactions_stamp: list[int]) -> Path:
    """Replace ``bundle``'s folder by a copy with ``histories`` (atomically: a staging
    folder, unchanged files hard-linked into it, then renames); ``meta.json`` gets the new
    checksums, counts and ``interactions_stamp``. Returns the folder."""
    folder = bundle.path
    staging = staging_dir(folder)
    try:
        changed = [*FOLDED_FILES, "users.json"]
        for path in sorted(folder.rglob("*")):
            name = str(path.relative_to(folder))
            if path.is_dir() or name in changed or name == "meta.json":
                continue
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, staging / name)
            except OSError:
                shutil.copy2(path, staging / name)
        for name, attribute in FOLDED_FILES.items():
            values = getattr(histories, attribute)
            np.save(staging / name, histories.liked_or_all() if values is None else values)
        (staging / "users.json").write_text(
            json.dumps(histories.user_ids, ensure_ascii=False), encoding="utf-8"
        )
        files = dict(bundle.meta.files)
        files.update(checksums(staging, changed))
        meta = replace(
            bundle.meta,
            num_users=histories.num_users,
            num_seen=int(histories.seen_indices.size),
            interactions_stamp=list(interactions_stamp),
            files=files,
        )
        (staging / "meta.json").write_text(json.dumps(meta.to_json()), encoding="utf-8")
        swap_dir(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def refresh_bundle(
    bundle: Bundle, user_ids: Sequence[str], item_ids: Sequence[str], stamp: list[int]
) -> Folded | None:
    """Fold interactions (external ids, in order) into ``bundle`` and write it
    (:func:`write_folded`); ``None`` when the bundle lacks one of the items (it is then
    stale by its stamp and re-exported with every added interaction on next use)."""
    items = [bundle.item_index(i) for i in item_ids]
    if any(k is None for k in items):
        return None
    scorer = bundle.scorer
    folded = fold_in(
        Histories.of_bundle(bundle),
        user_ids,
        np.asarray(items, dtype=np.int64),
        scorer,
        np.asarray(bundle.item_embedding, dtype=np.float32),
    )
    write_folded(bundle, folded.histories, stamp)
    return folded
