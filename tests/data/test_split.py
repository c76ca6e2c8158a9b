"""Splits: per-user temporal order, sizes, and no leakage into the training graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kgrec.build import build_graph
from kgrec.config import SplitConfig, load_config
from kgrec.data.contract import read_folder
from kgrec.data.split import facts_known_in_training, split_interactions
from kgrec.data.validate import validate
from kgrec.errors import KgrecError
from kgrec.text.features import node_texts
from tests.conftest import REPO


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


# ---------------------------------------------------------------- facts dated after the cut-off

LEAK_FILES = {
    # u1's latest interaction (i4, t=10) is test, the one before (i3, t=3) validation: u1's
    # training cut-off is t=3. u2 has too few interactions to hold any out.
    "interactions.csv": "user_id,item_id,timestamp\n"
    "u1,i1,1\nu1,i2,2\nu1,i3,3\nu1,i4,10\nu2,i1,1\nu2,i2,2\n",
    "items.csv": "item_id,title\ni1,Heat\ni2,Alien\ni3,Brazil\ni4,Fargo\n",
    "triples.csv": "head,relation,tail,user_id,timestamp\n"
    "i1,has_tag,tag:a,u1,2\n"  # before u1's cut-off: kept
    "i4,has_tag,tag:b,u1,10\n"  # u1 tagging their test item: the leak
    "i3,has_tag,tag:c,u1,3\n"  # at the cut-off (the validation interaction): out
    "i2,has_tag,tag:b,u2,50\n"  # u2 holds nothing out: kept
    "i3,has_tag,tag:a,u1,9\n"  # out, though tag:a stays through i1
    "i1,has_genre,genre:x,,\n",  # no provenance: kept
    "entities.csv": "entity_id,type,name\n"
    "tag:a,tag,alpha\ntag:b,tag,bravo\ntag:c,tag,charlie\ngenre:x,genre,Drama\n",
}


def test_facts_stated_after_the_authors_cut_off_stay_out(tmp_path: Path) -> None:
    for name, text in LEAK_FILES.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    dataset = validate(read_folder(tmp_path))
    split = split_interactions(dataset.interactions, SplitConfig(method="temporal_loo"))
    kept = facts_known_in_training(dataset, split)
    facts = sorted(zip(kept.triples["head"], kept.triples["tail"], strict=True))
    assert facts == [("i1", "genre:x"), ("i1", "tag:a"), ("i2", "tag:b")]
    assert list(kept.triples.columns) == ["head", "relation", "tail", "head_type", "tail_type"]
    assert "tag:c" not in set(kept.entities["entity_id"])  # only left-out facts named it
    assert {"tag:a", "tag:b", "genre:x"} <= set(kept.entities["entity_id"])
    assert "3 fact statement(s)" in kept.notes[-1]


def test_the_build_keeps_them_out_of_graph_texts_and_tables(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for name, text in LEAK_FILES.items():
        (data / name).write_text(text, encoding="utf-8")
    config = load_config(
        None,
        {"dataset.path": str(data), "artifacts": str(tmp_path / "art"), "store.enabled": False},
    )
    report = build_graph(config)
    assert report.input_counts["triples"] == report.graph_counts["triples"] == 3
    stored = pd.read_parquet(tmp_path / "art" / "tables" / "triples.parquet")
    assert ("i4", "tag:b") not in set(zip(stored["head"], stored["tail"], strict=True))
    texts = dict(zip(["i1", "i2", "i3", "i4"], node_texts(tmp_path / "art")["item"], strict=True))
    assert "bravo" in texts["i2"] and "bravo" not in texts["i4"]  # the test item's tag
    assert "alpha" in texts["i1"] and "alpha" not in texts["i3"]


def test_without_provenance_nothing_is_dropped() -> None:
    dataset = validate(read_folder(REPO / "data" / "demo"))
    split = split_interactions(dataset.interactions, SplitConfig())
    kept = facts_known_in_training(dataset, split)
    assert len(kept.triples) == len(dataset.triples)
    assert len(kept.entities) == len(dataset.entities) and kept.notes == dataset.notes
