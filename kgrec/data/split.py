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
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kgrec.config import SplitConfig
from kgrec.errors import KgrecError

SPLITS = ("train", "val", "test")


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
