"""Full-ranking and sampled metrics: agreement with PyG and OGB, hand-computed cases, masking."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor
from torch_geometric.metrics import (
    LinkPredCoverage,
    LinkPredHitRatio,
    LinkPredMRR,
    LinkPredNDCG,
    LinkPredPrecision,
    LinkPredRecall,
)

from kgrec.data.hetero import GraphArtifact
from kgrec.data.mapping import IdMap
from kgrec.errors import KgrecError
from kgrec.eval.metrics import evaluate_edges, evaluate_ranking, pair_keys
from kgrec.eval.sampled import evaluate_sampled, ogb_metrics, sample_negatives, sampled_metrics


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


def random_pairs(num_users: int, num_items: int, n: int, generator: torch.Generator) -> Tensor:
    keys = torch.randint(num_users * num_items, (n,), generator=generator).unique()
    return torch.stack([keys // num_items, keys % num_items])


@pytest.fixture
def problem() -> tuple[Tensor, Tensor, Tensor]:
    """Random scores ``[60, 90]``, training pairs and disjoint held-out pairs."""
    g = torch.Generator().manual_seed(0)
    num_users, num_items = 60, 90
    train = random_pairs(num_users, num_items, 600, g)
    target = random_pairs(num_users, num_items, 300, g)
    target = target[:, ~torch.isin(pair_keys(target, num_items), pair_keys(train, num_items))]
    scores = torch.randn(num_users, num_items, generator=g)
    return scores, train, target


def test_agrees_with_pyg_link_pred_metrics(problem: tuple[Tensor, Tensor, Tensor]) -> None:
    scores, train, target = problem
    num_users, num_items = scores.shape
    ks = (1, 5, 10, 20, 50)
    ours = evaluate_edges(
        lambda u: scores[u], target, num_users, num_items, exclude=train, ks=ks, batch_size=7
    ).values

    masked = scores.clone()
    masked[train[0], train[1]] = -math.inf
    evaluated = target[0].unique()  # coverage counts the evaluated users' lists only
    ranking = masked[evaluated].argsort(dim=1, descending=True)
    target = torch.stack([torch.searchsorted(evaluated, target[0]), target[1]])
    for k in ks:
        pyg = {
            "recall": LinkPredRecall(k),
            "precision": LinkPredPrecision(k),
            "ndcg": LinkPredNDCG(k),
            "hit": LinkPredHitRatio(k),
            "mrr": LinkPredMRR(k),
            "coverage": LinkPredCoverage(k, num_items),
        }
        for name, metric in pyg.items():
            metric.update(ranking[:, :k], target)
            assert ours[f"{name}@{k}"] == pytest.approx(float(metric.compute()), abs=1e-6), (
                name,
                k,
            )
    full = LinkPredMRR(num_items)
    full.update(ranking, target)
    assert ours["mrr"] == pytest.approx(float(full.compute()), abs=1e-6)


def test_batch_size_and_device_string_do_not_change_results(
    problem: tuple[Tensor, Tensor, Tensor],
) -> None:
    scores, train, target = problem
    a = evaluate_edges(lambda u: scores[u], target, *scores.shape, exclude=train, batch_size=1)
    b = evaluate_edges(lambda u: scores[u], target, *scores.shape, exclude=train, device="cpu")
    assert a.values == pytest.approx(b.values, abs=1e-12)
    assert a.num_users == b.num_users == int(target[0].unique().numel())


def test_hand_computed_single_user() -> None:
    # Items 0..4 scored in descending order; item 0 is a training positive (masked), so the
    # ranking is 1, 2, 3, 4 and the relevant items {1, 3} sit at ranks 1 and 3.
    artifact = make_artifact(1, 5, {"train": [(0, 0)], "val": [(0, 1), (0, 3)]})
    scores = torch.tensor([[0.9, 0.8, 0.7, 0.6, 0.5]])
    result = evaluate_ranking(lambda u: scores[u], artifact, "val", ks=(1, 2, 3))
    v = result.values
    assert result.num_users == 1
    assert v["recall@1"] == 0.5 and v["recall@2"] == 0.5 and v["recall@3"] == 1.0
    assert v["precision@1"] == 1.0 and v["precision@2"] == 0.5
    assert v["precision@3"] == pytest.approx(2 / 3)
    assert v["hit@1"] == 1.0
    assert v["ndcg@1"] == 1.0
    assert v["ndcg@2"] == pytest.approx(1 / (1 + 1 / math.log2(3)))
    assert v["ndcg@3"] == pytest.approx((1 + 0.5) / (1 + 1 / math.log2(3)))
    assert v["mrr"] == 1.0 and v["mrr@1"] == 1.0
    assert v["coverage@1"] == pytest.approx(1 / 5) and v["coverage@3"] == pytest.approx(3 / 5)


def test_hand_computed_late_hit_and_ties() -> None:
    artifact = make_artifact(2, 5, {"train": [(0, 0)], "val": [(0, 4), (1, 2)]})
    scores = torch.tensor([[0.9, 0.8, 0.7, 0.6, 0.5], [1.0, 1.0, 1.0, 1.0, 1.0]])
    result = evaluate_ranking(lambda u: scores[u], artifact, "val", ks=(3,), keep_per_user=True)
    assert result.per_user is not None
    per_user = result.per_user
    assert per_user["user"].tolist() == [0, 1]
    # User 0: item 4 is 4th of the 4 unmasked items. User 1: tied with 4 others -> 1 + 4 / 2.
    assert per_user["rank"].tolist() == [4.0, 3.0]
    assert per_user["mrr"].tolist() == pytest.approx([0.25, 1 / 3])
    assert per_user["mrr@3"][0] == 0.0 and per_user["hit@3"][0] == 0.0
    assert result.values["mrr"] == pytest.approx((0.25 + 1 / 3) / 2)


def test_masked_items_are_never_ranked_or_counted() -> None:
    artifact = make_artifact(
        2, 6, {"train": [(0, 0), (0, 1), (1, 5)], "val": [(0, 2), (1, 0)], "test": [(0, 3)]}
    )
    g = torch.Generator().manual_seed(1)
    base = torch.rand(2, 6, generator=g)
    high, low = base.clone(), base.clone()
    high[0, :2], high[1, 5] = 100.0, 100.0  # training positives on top ...
    low[0, :2], low[1, 5] = -100.0, -100.0  # ... or at the bottom: the metrics cannot tell
    a = evaluate_ranking(lambda u: high[u], artifact, "val", ks=(1, 3), keep_per_user=True)
    b = evaluate_ranking(lambda u: low[u], artifact, "val", ks=(1, 3), keep_per_user=True)
    assert a.values == b.values
    assert a.per_user is not None and a.per_user["rank"][0] <= 4  # 4 unmasked items for user 0

    # For the test split the validation positive (0, 2) is masked as well.
    top_val = base.clone()
    top_val[0, 2], top_val[0, 3] = 50.0, 10.0
    test = evaluate_ranking(lambda u: top_val[u], artifact, "test", ks=(1,))
    assert test.num_users == 1
    assert test.values["mrr"] == 1.0 and test.values["hit@1"] == 1.0


def test_held_out_pair_that_is_also_a_training_pair_is_dropped() -> None:
    target = torch.tensor([[0, 1], [2, 3]])
    train = torch.tensor([[0], [2]])
    result = evaluate_edges(lambda u: torch.rand(u.numel(), 4), target, 2, 4, exclude=train)
    assert result.num_users == 1  # user 0's only relevant item is a training positive


def test_user_subset_matches_the_full_per_user_values(
    problem: tuple[Tensor, Tensor, Tensor],
) -> None:
    scores, train, target = problem
    full = evaluate_edges(
        lambda u: scores[u], target, *scores.shape, exclude=train, keep_per_user=True
    )
    subset = torch.tensor([3, 7, 11, 59, 1000])
    part = evaluate_edges(
        lambda u: scores[u], target, *scores.shape, exclude=train, users=subset, keep_per_user=True
    )
    assert full.per_user is not None and part.per_user is not None
    chosen = torch.isin(full.per_user["user"], subset)
    assert part.per_user["user"].tolist() == full.per_user["user"][chosen].tolist()
    assert part.num_users == int(chosen.sum())
    for key in ("ndcg@20", "recall@10", "mrr"):
        assert part.values[key] == pytest.approx(float(full.per_user[key][chosen].mean()))


def test_trainer_signature_and_errors() -> None:
    artifact = make_artifact(3, 4, {"train": [(0, 0)], "val": [(0, 1), (2, 3)]})
    values = evaluate_ranking(
        lambda u: torch.zeros(u.numel(), 4), artifact, split="val", device="cpu"
    ).values
    assert {"ndcg@20", "recall@20", "hit@20", "precision@20", "mrr", "coverage@20"} <= set(values)
    with pytest.raises(KgrecError, match="shape"):
        evaluate_ranking(lambda u: torch.zeros(u.numel(), 3), artifact)
    with pytest.raises(KgrecError, match="split"):
        evaluate_ranking(lambda u: torch.zeros(u.numel(), 4), artifact, split="train")
    empty = make_artifact(3, 4, {"train": [(0, 0)]})
    none = evaluate_ranking(lambda u: torch.zeros(u.numel(), 4), empty)
    assert none.num_users == 0 and none.values["ndcg@20"] == 0.0


def test_our_sampled_metrics_equal_ogb() -> None:
    g = torch.Generator().manual_seed(0)
    pos = torch.randint(0, 5, (200,), generator=g).float()  # small integers: many ties
    neg = torch.randint(0, 5, (200, 30), generator=g).float()
    ours = sampled_metrics(pos, neg)
    theirs = ogb_metrics(pos, neg)
    assert set(ours) == set(theirs) == {"ogb_mrr", "ogb_hits@1", "ogb_hits@3", "ogb_hits@10"}
    for key, value in theirs.items():
        assert ours[key] == pytest.approx(value, abs=1e-6), key


def test_negatives_are_unseen_and_seeded() -> None:
    g = torch.Generator().manual_seed(0)
    known = random_pairs(20, 12, 180, g)  # dense: many rejections
    known = known[:, known[0] > 0]
    known = torch.cat(
        [known, torch.stack([torch.zeros(11, dtype=torch.long), torch.arange(11)])], 1
    )
    users = torch.arange(20)
    a = sample_negatives(users, known, 12, 50, torch.Generator().manual_seed(3))
    b = sample_negatives(users, known, 12, 50, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == (20, 50)
    keys = users.unsqueeze(1) * 12 + a
    assert not torch.isin(keys, pair_keys(known, 12)).any()
    assert (a[0] == 11).all()  # user 0 has seen every item but 11


def test_evaluate_sampled_perfect_and_reversed_scorers() -> None:
    artifact = make_artifact(
        3, 30, {"train": [(0, 0), (1, 1), (2, 2)], "test": [(0, 5), (1, 6), (2, 7)]}
    )
    target = {0: 5, 1: 6, 2: 7}

    def perfect(users: Tensor) -> Tensor:
        out = torch.zeros(users.numel(), 30)
        out[torch.arange(users.numel()), torch.tensor([target[int(u)] for u in users])] = 1.0
        return out

    best = evaluate_sampled(perfect, artifact, "test", num_negatives=20, seed=0)
    assert best["ogb_mrr"] == 1.0 and best["ogb_hits@1"] == 1.0 and best["num_pairs"] == 3
    worst = evaluate_sampled(lambda u: -perfect(u), artifact, "test", num_negatives=20)
    assert worst["ogb_mrr"] == pytest.approx(1 / 21) and worst["ogb_hits@10"] == 0.0
