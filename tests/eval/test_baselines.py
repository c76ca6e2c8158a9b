"""Baselines: what each one learns from the training split, and that structure beats popularity."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from kgrec.config import SplitConfig
from kgrec.data.contract import read_folder
from kgrec.data.hetero import GraphArtifact, build_graph_artifact, build_id_map
from kgrec.data.mapping import IdMap
from kgrec.data.split import split_interactions
from kgrec.data.validate import validate
from kgrec.errors import KgrecError
from kgrec.eval.baselines import (
    EASE,
    ItemKNN,
    LightGCN,
    MostPopular,
    Random,
    cosine_similarity,
    fit_baseline,
)
from kgrec.eval.metrics import ScoreFn, evaluate_ranking

DEMO = Path(__file__).resolve().parents[2] / "data" / "demo"


def make_artifact(
    num_users: int, num_items: int, splits: dict[str, list[tuple[int, int]]]
) -> GraphArtifact:
    """A GraphArtifact with only users, items and the given interaction splits."""
    edges = {
        name: torch.tensor(splits.get(name, []), dtype=torch.long).reshape(-1, 2).t().contiguous()
        for name in ("train", "val", "test")
    }
    return GraphArtifact(
        num_nodes={"user": num_users, "item": num_items},
        kg_edge_index={},
        split_edge_index=edges,
        split_edge_time={k: torch.full((v.size(1),), -1) for k, v in edges.items()},
        split_edge_rating={k: torch.full((v.size(1),), math.nan) for k, v in edges.items()},
        id_map=IdMap.from_ids(
            {
                "user": [f"u{u}" for u in range(num_users)],
                "item": [f"i{i}" for i in range(num_items)],
            }
        ),
    )


@pytest.fixture(scope="module")
def clustered() -> GraphArtifact:
    """Two taste clusters (items 0-19 and 20-39) of unequal size: popularity favours the big one.

    Each user has 10 items of their own cluster: 8 train, 1 val, 1 test.
    """
    g = torch.Generator().manual_seed(0)
    splits: dict[str, list[tuple[int, int]]] = {"train": [], "val": [], "test": []}
    for user in range(60):
        offset = 0 if user < 15 else 20
        items = (torch.randperm(20, generator=g)[:10] + offset).tolist()
        splits["train"] += [(user, i) for i in items[:8]]
        splits["val"].append((user, items[8]))
        splits["test"].append((user, items[9]))
    return make_artifact(60, 40, splits)


@pytest.fixture(scope="module")
def demo() -> GraphArtifact:
    dataset = validate(read_folder(DEMO))
    split = split_interactions(dataset.interactions, SplitConfig())
    return build_graph_artifact(dataset, split, build_id_map(dataset))


def ndcg(baseline: ScoreFn, artifact: GraphArtifact, split: str = "test") -> float:
    return evaluate_ranking(baseline, artifact, split, ks=(10,)).values["ndcg@10"]


def test_popularity_counts_training_interactions_only() -> None:
    artifact = make_artifact(
        3, 4, {"train": [(0, 2), (1, 2), (2, 2), (0, 1), (1, 1), (0, 3)], "test": [(2, 0)] * 1}
    )
    model = MostPopular(artifact)
    scores = model.score(torch.tensor([0, 2]))
    assert scores.shape == (2, 4)
    assert scores[0].tolist() == [0.0, 2.0, 3.0, 1.0] and torch.equal(scores[0], scores[1])
    assert scores[0].argsort(descending=True).tolist() == [2, 1, 3, 0]


def test_ease_has_zero_diagonal_and_beats_popularity(clustered: GraphArtifact) -> None:
    model = EASE(clustered, l2=10.0)
    assert model.weights.shape == (40, 40)
    assert torch.count_nonzero(model.weights.diagonal()) == 0
    # cross-cluster weights are small: the taste structure is learnt
    within = model.weights[:20, :20].abs().mean()
    across = model.weights[:20, 20:].abs().mean()
    assert within > 5 * across
    assert ndcg(model, clustered) > ndcg(MostPopular(clustered), clustered) + 0.05


def test_ease_refuses_large_catalogues(clustered: GraphArtifact) -> None:
    with pytest.raises(KgrecError, match="limit"):
        EASE(clustered, max_items=10)
    with pytest.raises(KgrecError, match="positive"):
        EASE(clustered, l2=0.0)


def test_itemknn_similarity_is_symmetric_and_pruned(clustered: GraphArtifact) -> None:
    model = ItemKNN(clustered, k=5, shrink=0.0)
    sim = model.similarity
    assert torch.allclose(sim, sim.t())
    assert torch.count_nonzero(sim.diagonal()) == 0
    assert float(sim.max()) <= 1.0 + 1e-6 and float(sim.min()) >= 0.0
    assert (torch.count_nonzero(model.weights, dim=0) <= 5).all()
    full = ItemKNN(clustered, k=None, shrink=0.0)
    assert torch.equal(full.weights, full.similarity)
    assert ndcg(model, clustered) > ndcg(MostPopular(clustered), clustered) + 0.05


def test_cosine_shrink_damps_similarity() -> None:
    gram = torch.tensor([[4.0, 2.0], [2.0, 1.0]])
    assert cosine_similarity(gram)[0, 1] == pytest.approx(1.0)
    assert cosine_similarity(gram, shrink=2.0)[0, 1] == pytest.approx(0.5)


def test_baselines_ignore_held_out_interactions(clustered: GraphArtifact) -> None:
    edges = dict(clustered.split_edge_index)
    edges["val"] = edges["val"][:, :5]
    edges["test"] = torch.tensor([[0], [39]])
    other = GraphArtifact(
        num_nodes=clustered.num_nodes,
        kg_edge_index={},
        split_edge_index=edges,
        split_edge_time=clustered.split_edge_time,
        split_edge_rating=clustered.split_edge_rating,
        id_map=clustered.id_map,
    )
    users = torch.arange(60)
    for name in ("popular", "ease", "itemknn"):
        assert torch.equal(
            fit_baseline(name, clustered).score(users), fit_baseline(name, other).score(users)
        ), name


def test_lightgcn_learns_and_stops_on_validation(clustered: GraphArtifact) -> None:
    model = LightGCN(
        clustered,
        embedding_dim=16,
        num_layers=2,
        lr=0.05,
        epochs=30,
        batch_size=128,
        patience=5,
        device="cpu",
    )
    losses = [r["loss"] for r in model.history]
    assert losses[-1] < losses[0]
    assert 0 <= model.best_epoch < len(model.history)
    best = max(r["val"]["ndcg@20"] for r in model.history)
    assert model.history[model.best_epoch]["val"]["ndcg@20"] == best
    assert evaluate_ranking(model, clustered, "val").values["ndcg@20"] == pytest.approx(best)
    assert ndcg(model, clustered) > ndcg(Random(clustered, seed=0), clustered) + 0.1


def test_fit_baseline_names_and_errors(clustered: GraphArtifact) -> None:
    assert fit_baseline("EASE", clustered, l2=50.0).name == "ease"
    assert isinstance(fit_baseline("popular", clustered), MostPopular)
    with pytest.raises(KgrecError, match="unknown baseline"):
        fit_baseline("svd", clustered)
    with pytest.raises(KgrecError, match="ease"):
        fit_baseline("ease", clustered, lambda_=3)


def test_demo_figures(demo: GraphArtifact) -> None:
    """Popularity reproduces the reference figures; item-item CF is far above it."""
    popular = evaluate_ranking(MostPopular(demo), demo, "test", ks=(10,)).values
    assert popular["hit@10"] == pytest.approx(0.115, abs=0.005)
    assert popular["ndcg@10"] == pytest.approx(0.069, abs=0.005)
    for name in ("ease", "itemknn"):
        values = evaluate_ranking(fit_baseline(name, demo), demo, "test", ks=(10,)).values
        assert values["ndcg@10"] > 2 * popular["ndcg@10"], name
