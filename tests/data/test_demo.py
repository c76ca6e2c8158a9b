"""The shipped demo dataset: reproducible, valid, and carrying a taste signal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kgrec.config import SplitConfig
from kgrec.data.contract import read_folder
from kgrec.data.demo import generate_demo, write_demo
from kgrec.data.split import split_interactions
from kgrec.data.validate import Dataset, validate

SHIPPED = Path(__file__).resolve().parents[2] / "data" / "demo"


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return validate(read_folder(SHIPPED))


def test_shipped_files_equal_a_fresh_generation(tmp_path: Path) -> None:
    written = write_demo(tmp_path, seed=0)
    assert sorted(p.name for p in written) == sorted(p.name for p in SHIPPED.glob("*.csv"))
    for path in written:
        assert path.read_bytes() == (SHIPPED / path.name).read_bytes(), path.name


def test_seed_changes_the_data() -> None:
    a = generate_demo(seed=1, n_users=40, n_items=60)
    b = generate_demo(seed=2, n_users=40, n_items=60)
    assert not a.interactions.frame.equals(b.interactions.frame)


def test_sizes_and_types(dataset: Dataset) -> None:
    assert 300 <= len(dataset.users) <= 500
    assert 300 <= len(dataset.items) <= 500
    assert 15_000 <= len(dataset.interactions) <= 30_000
    assert set(dataset.entity_types) == {"actor", "country", "director", "genre"}
    assert set(dataset.triples["relation"]) == {
        "has_genre",
        "directed_by",
        "starring",
        "produced_in",
    }
    assert dataset.items["description"].str.len().min() > 40


def test_kg_signal_beats_popularity(dataset: Dataset) -> None:
    """An attribute-overlap scorer finds each user's latest item far more often."""
    inter = dataset.interactions.assign(
        split=split_interactions(dataset.interactions, SplitConfig()).to_numpy()
    )
    index = {item: k for k, item in enumerate(dataset.items["item_id"])}
    inter["i"] = inter["item_id"].map(index)
    attrs = {a: k for k, a in enumerate(sorted(set(dataset.triples["tail"])))}
    features = np.zeros((len(index), len(attrs)))
    features[
        dataset.triples["head"].map(index).to_numpy(), dataset.triples["tail"].map(attrs).to_numpy()
    ] = 1.0
    features /= np.sqrt(features.sum(axis=1, keepdims=True))
    train = inter[inter["split"] == "train"]
    popularity = np.bincount(train["i"], minlength=len(index)).astype(float)
    seen = inter[inter["split"] != "test"].groupby("user_id")["i"].apply(list)
    target = inter[inter["split"] == "test"].set_index("user_id")["i"]
    hits = {"kg": 0, "popular": 0}
    for user, history in train.groupby("user_id")["i"]:
        if user not in target.index:
            continue
        for name, scores in {
            "kg": features @ features[history.to_numpy()].sum(axis=0),
            "popular": popularity.copy(),
        }.items():
            scores[seen[user]] = -np.inf
            hits[name] += int(target[user] in np.argsort(-scores)[:10])
    users = len(target)
    assert hits["popular"] / users > 0.05  # better than random (10/400 = 0.025)
    assert hits["kg"] > 2 * hits["popular"]
