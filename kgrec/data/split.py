"""Train / validation / test splits of the interactions.

Methods (``SplitConfig.method``):

- ``temporal_loo``: per user, the latest interaction is test and the one before it is
  validation (users with fewer than ``min_train + 2`` interactions stay in train only).
- ``temporal_ratio``: per user, the latest ``test_ratio`` of interactions are test and the
  ``val_ratio`` before them validation, keeping at least ``min_train`` in train.
- ``given``: the ``split`` column of the interactions (e.g. KGAT's train.txt / test.txt);
  when no row is ``val``, the latest ``val_ratio`` of each user's train rows become validation.

Time is the ``timestamp`` column; rows without one keep their file order, shuffled per user
with ``seed`` when no row of the dataset has a timestamp.

:func:`facts_known_in_training` then keeps the knowledge graph on the training side of the
split: a fact a user stated (a tag) after their training cut-off is left out.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from kgrec.config import SplitConfig
from kgrec.data.validate import Dataset
from kgrec.errors import KgrecError

SPLITS = ("train", "val", "test")
PROVENANCE = ("user_id", "timestamp")
"""Optional triple columns: who stated the fact and when."""
FACT = ["head", "relation", "tail", "head_type", "tail_type"]


def split_interactions(interactions: pd.DataFrame, config: SplitConfig) -> pd.Series:
    """Label each interaction ``train``, ``val`` or ``test``; returns a Series aligned to rows."""
    frame = _time_ordered(interactions, config.seed)
    if config.method == "temporal_loo":
        labels = _leave_one_out(frame, config.min_train)
    elif config.method == "temporal_ratio":
        labels = _ratio(frame, config.val_ratio, config.test_ratio, config.min_train)
    elif config.method == "given":
        if "split" not in interactions.columns:
            raise KgrecError(
                "split method 'given' needs a 'split' column in interactions "
                "(train/val/test); use temporal_loo or temporal_ratio instead"
            )
        given = frame["split"].astype(str)
        labels = given.copy()
        if not (given == "val").any() and config.val_ratio > 0:
            train = frame[given == "train"]
            carved = _ratio(train, 0.0, config.val_ratio, config.min_train)
            labels.loc[carved.index[carved == "test"]] = "val"
    else:  # pragma: no cover - guarded by the config Literal
        raise KgrecError(f"unknown split method {config.method!r}")
    return labels.reindex(interactions.index)


def _time_ordered(interactions: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Rows sorted by (user, time, position); untimed datasets get a seeded shuffle."""
    frame = interactions.copy()
    frame["_pos"] = np.arange(len(frame))
    if (frame["timestamp"] < 0).all():
        rng = np.random.default_rng(seed)
        frame["_pos"] = rng.permutation(len(frame))
    return frame.sort_values(["user_id", "timestamp", "_pos"], kind="stable")


def _rank_from_end(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """For time-ordered rows: position from the user's latest (0 = latest) and user size."""
    size = frame.groupby("user_id", sort=False)["user_id"].transform("size").to_numpy()
    order = frame.groupby("user_id", sort=False).cumcount().to_numpy()
    return size - 1 - order, size


def _leave_one_out(frame: pd.DataFrame, min_train: int) -> pd.Series:
    from_end, size = _rank_from_end(frame)
    labels = np.full(len(frame), "train", dtype=object)
    eligible = size >= min_train + 2
    labels[eligible & (from_end == 0)] = "test"
    labels[eligible & (from_end == 1)] = "val"
    return pd.Series(labels, index=frame.index)


def _ratio(frame: pd.DataFrame, val_ratio: float, test_ratio: float, min_train: int) -> pd.Series:
    from_end, size = _rank_from_end(frame)
    n_test = np.floor(size * test_ratio).astype(np.int64)
    n_val = np.floor(size * val_ratio).astype(np.int64)
    # keep at least min_train rows in train; take from val first, then test
    excess = np.maximum(n_test + n_val + min_train - size, 0)
    cut_val = np.minimum(excess, n_val)
    n_val -= cut_val
    n_test = np.maximum(n_test - (excess - cut_val), 0)
    labels = np.full(len(frame), "train", dtype=object)
    labels[from_end < n_test] = "test"
    labels[(from_end >= n_test) & (from_end < n_test + n_val)] = "val"
    return pd.Series(labels, index=frame.index)


def facts_known_in_training(dataset: Dataset, split: pd.Series) -> Dataset:
    """``dataset`` without the facts its users stated after their training cut-off.

    A triple with provenance (``user_id``, ``timestamp``; e.g. a tag the user applied) comes
    from that user's timeline. The temporal splits hold out each user's latest interactions
    and ask the model to predict them from the user's history before them, so a fact the same
    user stated at or after their first held-out interaction would carry the held-out period
    into training (a tag applied while rating the test movie names that very movie): it is
    left out, from the graph, the item texts and the database alike.

    The cut-off is per user because the split is per user: every user's training history,
    whenever it happened, already shapes the graph (leave-one-out as in the literature), so a
    fact from another user's training period is as legitimate as their interactions. A global
    boundary (the earliest held-out time of any user) would instead drop every tag of
    ml-latest-small, whose held-out ratings start in 1996 and tags in 2006.

    Facts without a user or a timestamp, and facts of users with nothing held out, are kept.
    The kept statements of a fact collapse into one triple (provenance columns dropped);
    entities that only left-out facts mentioned are removed. ``split`` is aligned with
    ``dataset.interactions``.
    """
    triples = dataset.triples
    if not set(PROVENANCE) <= set(triples.columns):
        return replace(dataset, triples=triples.drop(columns=list(PROVENANCE), errors="ignore"))
    inter = dataset.interactions
    held = split.to_numpy() != "train"
    first_held = inter.loc[held].groupby("user_id")["timestamp"].min()
    cutoff = triples["user_id"].map(first_held)
    dated = (triples["timestamp"] >= 0) & cutoff.notna()
    late = dated & (triples["timestamp"] >= cutoff.fillna(np.inf))
    kept = triples.loc[~late, FACT].drop_duplicates().reset_index(drop=True)
    if not late.any():
        return replace(dataset, triples=kept)
    mentioned = set(triples.loc[late, "head"]) | set(triples.loc[late, "tail"])
    still = set(kept["head"]) | set(kept["tail"])
    orphans = dataset.entities["entity_id"].isin(mentioned - still)
    facts = triples.loc[late, FACT].drop_duplicates()
    lost = len(facts.merge(kept, how="inner", on=FACT)) if len(kept) else 0
    note = (
        f"{int(late.sum())} fact statement(s) made by a user after their training cut-off "
        f"left out ({len(facts) - lost} fact(s) no earlier statement keeps, "
        f"{int(orphans.sum())} entities only they mentioned)"
    )
    return replace(
        dataset,
        triples=kept,
        entities=dataset.entities.loc[~orphans].reset_index(drop=True),
        notes=[*dataset.notes, note],
    )
