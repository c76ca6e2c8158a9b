"""Splits: per-user temporal order, sizes, and no leakage into the training graph."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kgrec.config import SplitConfig
from kgrec.data.split import split_interactions
from kgrec.errors import KgrecError


def interactions(n_users: int = 20, per_user: int = 10, timed: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for u in range(n_users):
        times = rng.permutation(per_user + u % 3) * 100 + u
        for k, t in enumerate(times):
            rows.append((f"u{u}", f"i{(u * 7 + k) % 50}", 4.0, int(t) if timed else -1))
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])


def test_leave_one_out_takes_each_users_latest() -> None:
    frame = interactions()
    labels = split_interactions(frame, SplitConfig(method="temporal_loo"))
    frame = frame.assign(split=labels)
    for _, group in frame.groupby("user_id"):
        ordered = group.sort_values("timestamp")
        assert ordered["split"].iloc[-1] == "test"
        assert ordered["split"].iloc[-2] == "val"
        assert (ordered["split"].iloc[:-2] == "train").all()


def test_leave_one_out_keeps_short_users_in_train() -> None:
    frame = pd.DataFrame(
        {
            "user_id": ["a", "a", "b"],
            "item_id": ["x", "y", "x"],
            "rating": 1.0,
            "timestamp": [1, 2, 3],
        }
    )
    labels = split_interactions(frame, SplitConfig(method="temporal_loo", min_train=1))
    assert labels.tolist() == ["train", "train", "train"]


@pytest.mark.parametrize(("val", "test"), [(0.1, 0.2), (0.0, 0.5), (0.3, 0.3)])
def test_ratio_split_is_temporal_and_sized(val: float, test: float) -> None:
    frame = interactions(per_user=20)
    labels = split_interactions(
        frame, SplitConfig(method="temporal_ratio", val_ratio=val, test_ratio=test)
    )
    frame = frame.assign(split=labels)
    for _, group in frame.groupby("user_id"):
        n = len(group)
        assert (group["split"] == "test").sum() == int(np.floor(n * test))
        assert (group["split"] == "val").sum() == int(np.floor(n * val))
        times = {s: group.loc[group["split"] == s, "timestamp"] for s in ("train", "val", "test")}
        if len(times["val"]):
            assert times["train"].max() < times["val"].min()
        if len(times["test"]):
            assert (
                max(times["train"].max(), times["val"].max() if len(times["val"]) else -1)
                < times["test"].min()
            )


def test_ratio_split_respects_min_train() -> None:
    frame = interactions(n_users=3, per_user=4)
    labels = split_interactions(
        frame, SplitConfig(method="temporal_ratio", val_ratio=0.5, test_ratio=0.5, min_train=2)
    )
    frame = frame.assign(split=labels)
    assert (frame.groupby("user_id")["split"].apply(lambda s: (s == "train").sum()) >= 2).all()


def test_given_split_carves_validation_from_train() -> None:
    frame = interactions(timed=False).assign(split="train")
    frame.loc[frame.groupby("user_id").head(2).index, "split"] = "test"
    labels = split_interactions(frame, SplitConfig(method="given", val_ratio=0.2, seed=3))
    assert (labels[frame["split"] == "test"] == "test").all()
    assert (labels == "val").sum() > 0
    assert set(labels) == {"train", "val", "test"}


def test_given_split_needs_a_split_column() -> None:
    with pytest.raises(KgrecError, match="split"):
        split_interactions(interactions(), SplitConfig(method="given"))


def test_untimed_split_is_seeded() -> None:
    frame = interactions(timed=False)
    a = split_interactions(frame, SplitConfig(method="temporal_loo", seed=1))
    b = split_interactions(frame, SplitConfig(method="temporal_loo", seed=1))
    c = split_interactions(frame, SplitConfig(method="temporal_loo", seed=2))
    assert a.tolist() == b.tolist()
    assert a.tolist() != c.tolist()
