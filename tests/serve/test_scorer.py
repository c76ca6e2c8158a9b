"""The numpy scorer equals the trained hybrid, and its contributions add up to the score."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from kgrec.data.history import History
from kgrec.serve import scorer as scorer_module
from kgrec.serve.export import scorer_of
from kgrec.serve.scorer import HybridScorer, load_scorer, save_scorer
from kgrec.train.checkpoint import load_checkpoint, read_serving
from kgrec.train.trainer import train
from tests.train.test_trainer import planted_artifact, small_config, text_features, validator


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    artifact = planted_artifact()
    out = tmp_path_factory.mktemp("run")
    config = small_config(blend_grid=(0.5,))  # a hybrid with both parts
    return train(
        artifact, text_features(), config, validate=validator(artifact), out=out
    ).checkpoint


def _history(user: int) -> tuple[History, np.ndarray, np.ndarray]:
    history = History.from_artifact(planted_artifact(), ("train", "val"))
    lo, hi = int(history.ptr[user]), int(history.ptr[user + 1])
    return history, history.item[lo:hi].numpy(), history.age[lo:hi].numpy()


def test_scorer_equals_the_hybrid(trained: Path, tmp_path: Path) -> None:
    hybrid, meta = load_checkpoint(trained)
    assert meta.kind == "hybrid"
    scorer = scorer_of(read_serving(trained))
    assert scorer.gnn is not None and scorer.teacher
    save_scorer(scorer, tmp_path / "scorer")
    loaded = load_scorer(tmp_path / "scorer")
    for user in (0, 7, 13):
        history, items, ages = _history(user)
        expected = hybrid.score_fn(history)(torch.tensor([user]))[0].double().numpy()
        for s in (scorer, loaded):
            np.testing.assert_allclose(s.score(items, ages), expected, rtol=1e-4, atol=1e-4)


def test_contributions_add_up_to_the_score(trained: Path) -> None:
    scorer = scorer_of(read_serving(trained))
    _, items, ages = _history(4)
    scores = scorer.score(items, ages)
    for target in np.argsort(-scores)[:5].tolist():
        split = scorer.contributions(items, ages, target)
        assert split.score == pytest.approx(scores[target], abs=1e-9)
        assert split.constant + split.per_item.sum() == pytest.approx(scores[target], abs=1e-9)
        parts = sum(split.by_part.values())
        np.testing.assert_allclose(parts, split.per_item, atol=1e-12)
        assert set(split.by_part) == {p.name for p in scorer.teacher} | {"gnn"}


def test_dense_and_sparse_members_score_and_share_out_alike(
    trained: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dense = scorer_of(read_serving(trained))
    assert all(part._dense is not None for part in dense.teacher)  # built now, while allowed
    monkeypatch.setattr(scorer_module, "DENSE_ITEMS", 0)  # every member stays sparse
    sparse = scorer_of(read_serving(trained))
    _, items, ages = _history(5)
    targets = np.array([0, 3, 11, 10**6])  # 10**6: an item added after training
    for a, b in zip(dense.teacher, sparse.teacher, strict=True):
        assert b._dense is None
        np.testing.assert_allclose(a.raw(items, ages), b.raw(items, ages), atol=1e-6)
        np.testing.assert_allclose(
            a.pairwise_many(items, ages, targets, 40),
            b.pairwise_many(items, ages, targets, 40),
            atol=1e-6,
        )
    np.testing.assert_allclose(dense.score(items, ages), sparse.score(items, ages), atol=1e-6)


def test_deleting_the_top_contributor_costs_most(trained: Path) -> None:
    """Removing the history item with the largest contribution lowers the target's score by
    about that contribution (exactly, up to the change of the per-user standardisation)."""
    scorer = scorer_of(read_serving(trained))
    _, items, ages = _history(9)
    target = int(
        np.argmax(
            np.where(
                np.isin(np.arange(scorer.num_items), items), -np.inf, scorer.score(items, ages)
            )
        )
    )
    split = scorer.contributions(items, ages, target)
    drops = []
    for k in range(items.size):
        keep = np.arange(items.size) != k
        drops.append(split.score - scorer.score(items[keep], ages[keep])[target])
    assert int(np.argmax(drops)) == int(np.argmax(split.per_item))


def test_empty_history_scores_zero() -> None:
    scorer = HybridScorer((), None, 3, 3)
    assert scorer.score(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)).tolist() == [
        0,
        0,
        0,
    ]


def test_splitting_a_ranked_list_reuses_its_statistics_and_splits_alike(trained: Path) -> None:
    _, items, ages = _history(6)
    fresh = scorer_of(read_serving(trained))
    cold = fresh.contributions_many(items, ages, np.array([1, 2, 3]))
    assert not fresh._stats_seen  # splitting alone remembers nothing
    scores = fresh.score(items, ages)
    assert len(fresh._stats_seen) == 1
    warm = fresh.contributions_many(items, ages, np.array([1, 2, 3]))
    np.testing.assert_array_equal(warm, cold)
    for k, target in enumerate((1, 2, 3)):
        split = fresh.contributions(items, ages, target)
        np.testing.assert_allclose(warm[:, k], split.per_item, atol=1e-12)
        assert split.score == pytest.approx(scores[target], abs=1e-9)
    other_items, other_ages = _history(9)[1:]  # another history: its own statistics
    expected = scorer_of(read_serving(trained)).contributions_many(
        other_items, other_ages, np.array([1])
    )
    np.testing.assert_array_equal(
        fresh.contributions_many(other_items, other_ages, np.array([1])), expected
    )
