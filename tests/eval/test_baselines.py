"""Baselines: tuning picks the validation-best point, the refit reads training + validation."""

from __future__ import annotations

import math

import pytest
import torch

from kgrec.data.hetero import GraphArtifact
from kgrec.data.history import History
from kgrec.data.mapping import IdMap
from kgrec.errors import KgrecError
from kgrec.eval import baselines
from kgrec.eval.baselines import (
    BASELINES,
    GRIDS,
    ItemItemScorer,
    Popular,
    fit_baseline,
    grid_points,
    tune_baseline,
)
from kgrec.eval.lightgcn import LightGCNScorer, normalized_adjacency, propagate
from kgrec.eval.metrics import evaluate_ranking
from kgrec.eval.sasrec import SASRecScorer
from kgrec.nn import item_item

Pairs = list[tuple[int, int, int]]  # (user, item, time)


def make_artifact(num_users: int, num_items: int, splits: dict[str, Pairs]) -> GraphArtifact:
    """Users and items only, with the given timed interaction splits."""
    edges, times = {}, {}
    for name in ("train", "val", "test"):
        rows = torch.tensor(splits.get(name, []), dtype=torch.long).reshape(-1, 3)
        edges[name], times[name] = rows[:, :2].t().contiguous(), rows[:, 2].contiguous()
    return GraphArtifact(
        num_nodes={"user": num_users, "item": num_items},
        kg_edge_index={},
        split_edge_index=edges,
        split_edge_time=times,
        split_edge_rating={k: torch.full((v.size(1),), math.nan) for k, v in edges.items()},
        id_map=IdMap.from_ids(
            {
                "user": [f"u{u}" for u in range(num_users)],
                "item": [f"i{i}" for i in range(num_items)],
            }
        ),
    )


CLUSTERS, CLUSTER_SIZE = 4, 10


@pytest.fixture(scope="module")
def drifting() -> GraphArtifact:
    """Tastes drift: each user's 4 oldest items come from one cluster, the 2 latest from another.

    Validation and test items come from the new cluster. With binary history rows the old
    cluster (4 items) outweighs the new one (2 items) and the validation item ranks behind the
    old cluster's unseen items; with recency weights ``0.5 ** age`` the new cluster leads. So a
    recency-aware baseline must choose ``decay = 0.5`` over ``1.0`` on validation.
    """
    g = torch.Generator().manual_seed(0)
    splits: dict[str, Pairs] = {"train": [], "val": [], "test": []}
    user = 0
    for old in range(CLUSTERS):
        for new in range(CLUSTERS):
            if old == new:
                continue
            for _ in range(3):
                a = (torch.randperm(CLUSTER_SIZE, generator=g)[:4] + old * CLUSTER_SIZE).tolist()
                b = (torch.randperm(CLUSTER_SIZE, generator=g)[:4] + new * CLUSTER_SIZE).tolist()
                sequence = a + b  # time order: 4 old, then 2 new in train, 1 val, 1 test
                splits["train"] += [(user, item, t) for t, item in enumerate(sequence[:6])]
                splits["val"].append((user, sequence[6], 6))
                splits["test"].append((user, sequence[7], 7))
                user += 1
    return make_artifact(user, CLUSTERS * CLUSTER_SIZE, splits)


def val_ndcg(model: baselines.Baseline, history: History, artifact: GraphArtifact) -> float:
    return evaluate_ranking(model.score_fn(history), artifact, "val", ks=(20,)).values["ndcg@20"]


def test_tuning_picks_the_validation_best_point(drifting: GraphArtifact) -> None:
    grid = {"l2": (1.0, 30.0), "decay": (1.0, 0.5)}
    tuned = tune_baseline("recency_ease", drifting, grid=grid, refit=False)
    assert tuned.params["decay"] == 0.5  # the planted answer
    assert [t.params for t in tuned.trials] == grid_points(grid)
    # every trial's figure is the real validation NDCG@20 of that point, and the best is chosen
    train = History.from_artifact(drifting, ("train",))
    for trial in tuned.trials:
        model = ItemItemScorer(item_item.ease(train, trial.params["l2"]), trial.params["decay"])
        assert trial.validation == pytest.approx(val_ndcg(model, train, drifting))
    assert tuned.validation == max(t.validation for t in tuned.trials)
    best = max(tuned.trials, key=lambda t: t.validation)
    assert tuned.params == best.params
    assert tuned.validation > 1.2 * next(
        t.validation for t in tuned.trials if t.params == {"l2": best.params["l2"], "decay": 1.0}
    )


@pytest.mark.parametrize("name", ["recency_itemknn", "recency_rp3beta"])
def test_recency_variants_prefer_recent_items_on_drifting_tastes(
    name: str, drifting: GraphArtifact
) -> None:
    grid = {k: (v[0],) for k, v in GRIDS[name].items() if k != "decay"} | {"decay": (1.0, 0.5)}
    assert tune_baseline(name, drifting, grid=grid, refit=False).params["decay"] == 0.5


def test_refit_learns_from_training_and_validation(drifting: GraphArtifact) -> None:
    full = History.from_artifact(drifting, ("train", "val"))
    tuned = tune_baseline("ease", drifting, grid={"l2": (1.0, 30.0)})
    assert tuned.history.num_interactions == full.num_interactions
    assert isinstance(tuned.model, ItemItemScorer)
    assert torch.allclose(tuned.model.weight, item_item.ease(full, tuned.params["l2"]))
    popular = tune_baseline("popular", drifting)
    assert isinstance(popular.model, Popular)
    counts = torch.bincount(full.item, minlength=drifting.num_nodes["item"]).float()
    assert torch.equal(popular.model.counts, counts)
    # test-time scores read the validation interactions (the user's latest item)
    users = torch.arange(drifting.num_nodes["user"])
    expected = full.rows(users) @ tuned.model.weight
    assert torch.allclose(tuned.score(users), expected)


@pytest.mark.parametrize("name", ["recency_ease", "recency_itemknn", "recency_rp3beta"])
def test_refit_keeps_the_chosen_decay(name: str, drifting: GraphArtifact) -> None:
    grid = {k: (v[0],) for k, v in GRIDS[name].items() if k != "decay"} | {"decay": (0.5,)}
    tuned = tune_baseline(name, drifting, grid=grid)
    assert isinstance(tuned.model, ItemItemScorer)
    assert tuned.model.decay == 0.5
    users = torch.arange(drifting.num_nodes["user"])
    full = History.from_artifact(drifting, ("train", "val"))
    assert torch.allclose(tuned.score(users), full.rows(users, 0.5) @ tuned.model.weight)
    plain = fit_baseline(name, drifting, **{**grid_point(grid), "decay": 1.0})
    assert not torch.allclose(tuned.score(users), plain.score(users))  # the decay is used


def grid_point(grid: dict[str, tuple[float, ...]]) -> dict[str, float]:
    return {k: v[0] for k, v in grid.items()}


def test_without_refit_the_training_fit_is_kept(drifting: GraphArtifact) -> None:
    tuned = tune_baseline("popular", drifting, refit=False)
    train = History.from_artifact(drifting, ("train",))
    assert tuned.history.num_interactions == train.num_interactions
    assert isinstance(tuned.model, Popular)
    assert int(tuned.model.counts.sum()) == train.num_interactions


def test_untimed_histories_try_only_decay_one(drifting: GraphArtifact) -> None:
    untimed = make_artifact(
        drifting.num_nodes["user"],
        drifting.num_nodes["item"],
        {
            s: [(int(u), int(i), -1) for u, i in drifting.split_edge_index[s].t()]
            for s in ("train", "val", "test")
        },
    )
    tuned = tune_baseline("recency_ease", untimed, grid={"l2": (10.0,), "decay": (0.5, 1.0)})
    assert [t.params["decay"] for t in tuned.trials] == [1.0]
    assert tuned.notes and "no timestamps" in tuned.notes[0]


def test_sparse_and_dense_scoring_agree(
    drifting: GraphArtifact, monkeypatch: pytest.MonkeyPatch
) -> None:
    history = History.from_artifact(drifting, ("train",))
    model = ItemItemScorer(item_item.ease(history, 10.0), 0.7)
    users = torch.arange(10)
    dense = model.score_fn(history)(users)
    monkeypatch.setattr(item_item, "DENSE_SCORING_ITEMS", 0)
    assert torch.allclose(model.score_fn(history)(users), dense, atol=1e-6)


def test_lightgcn_early_stops_on_validation_and_refits_for_its_epochs(
    drifting: GraphArtifact,
) -> None:
    grid = {k: (v[0],) for k, v in GRIDS["lightgcn"].items()}
    grid |= {"embedding_dim": (16,), "lr": (0.05,), "epochs": (12,), "eval_every": (1,)}
    grid |= {"patience": (3,), "batch_size": (64,)}
    tuned = tune_baseline("lightgcn", drifting, grid=grid, seed=1)
    epochs = int(tuned.params["epochs"])
    assert 1 <= epochs <= 12
    assert isinstance(tuned.model, LightGCNScorer)
    assert tuned.model.best_epoch == epochs - 1  # the refit ran exactly the chosen epochs
    (trial,) = tuned.trials
    assert [epoch for epoch, _ in trial.curve] == list(range(1, len(trial.curve) + 1))
    assert epochs <= len(trial.curve) <= 12  # evaluated every epoch up to the stop
    assert dict(trial.curve)[epochs] == pytest.approx(trial.validation)  # the best one is kept
    assert max(value for _, value in trial.curve) == pytest.approx(trial.validation)
    assert tuned.model.curve == ()  # the refit runs a fixed number of epochs, no validation
    assert tuned.model.num_interactions == tuned.history.num_interactions
    assert tuned.score(torch.arange(4)).shape == (4, drifting.num_nodes["item"])
    with pytest.raises(KgrecError, match="refit"):
        tuned.model.score_fn(History.from_artifact(drifting, ("train",)))
    popular = tune_baseline("popular", drifting, refit=False).validation
    assert tuned.validation > popular


def test_sasrec_early_stops_on_validation_and_refits_for_its_epochs(
    drifting: GraphArtifact,
) -> None:
    grid = {k: (v[0],) for k, v in GRIDS["sasrec"].items()}
    grid |= {"embedding_dim": (16,), "max_len": (8,), "lr": (0.01,), "epochs": (40,)}
    grid |= {"eval_every": (2,), "patience": (4,), "dropout": (0.0,), "batch_size": (16,)}
    tuned = tune_baseline("sasrec", drifting, grid=grid, seed=1)
    epochs = int(tuned.params["epochs"])
    assert isinstance(tuned.model, SASRecScorer)
    assert tuned.model.best_epoch == epochs - 1  # the refit ran exactly the chosen epochs
    (trial,) = tuned.trials
    assert [epoch for epoch, _ in trial.curve] == list(range(2, 2 * len(trial.curve) + 1, 2))
    assert dict(trial.curve)[epochs] == pytest.approx(trial.validation)  # the best one is kept
    assert max(value for _, value in trial.curve) == pytest.approx(trial.validation)
    assert tuned.model.curve == ()
    # inductive: it scores any history, and a new latest item changes a user's scores
    train = History.from_artifact(drifting, ("train",))
    users = torch.arange(4)
    assert not torch.allclose(tuned.model.score_fn(train)(users), tuned.score(users))
    # users drift to a new cluster: the order tells it, so it beats popularity and plain EASE
    popular = tune_baseline("popular", drifting, refit=False).validation
    ease = tune_baseline("ease", drifting, grid={"l2": (1.0, 30.0)}, refit=False).validation
    assert tuned.validation > max(popular, ease)


def test_lightgcn_propagation_matches_pygs_model_and_its_gradient() -> None:
    from torch_geometric.nn.models import LightGCN
    from torch_geometric.utils import to_torch_csr_tensor

    generator = torch.Generator().manual_seed(0)
    users = torch.randint(30, (200,), generator=generator)
    items = torch.randint(20, (200,), generator=generator)
    pairs = torch.unique(torch.stack([users, items + 30]), dim=1)
    graph = torch.cat([pairs, pairs.flip(0)], 1)
    torch.manual_seed(0)
    model = LightGCN(50, 8, num_layers=3)
    weights = torch.randn(50, 8, generator=generator)

    ours = propagate(model, normalized_adjacency(graph, 50))
    (ours * weights).sum().backward()
    grad, model.embedding.weight.grad = model.embedding.weight.grad.clone(), None
    pyg = model.get_embedding(to_torch_csr_tensor(graph, size=(50, 50)))
    (pyg * weights).sum().backward()

    assert torch.allclose(ours, pyg, atol=1e-6)
    assert torch.allclose(grad, model.embedding.weight.grad, atol=1e-6)
    assert not torch.allclose(ours, model.embedding.weight * model.alpha[0])  # it propagated


def test_fit_baseline_uses_defaults_and_names_errors(drifting: GraphArtifact) -> None:
    fitted = fit_baseline("EASE", drifting, l2=50.0)
    assert fitted.name == "ease" and fitted.params == {"l2": 50.0}
    assert len(fitted.trials) == 1
    assert fit_baseline("itemknn", drifting, split="val").params == baselines.DEFAULTS["itemknn"]
    assert fit_baseline("popular", drifting, split="val").history.num_interactions == int(
        drifting.split_edge_index["train"].size(1)
    )
    with pytest.raises(KgrecError, match="unknown baseline 'svd'"):
        fit_baseline("svd", drifting)
    with pytest.raises(KgrecError, match=r"unknown parameter 'lambda_'.*known: l2"):
        fit_baseline("ease", drifting, lambda_=3)
    with pytest.raises(KgrecError, match="split"):
        fit_baseline("ease", drifting, split="train")


def test_grids_are_at_least_as_large_as_the_teachers() -> None:
    """A fair comparison: each baseline family searches no fewer points than kgrec's teacher."""
    from kgrec.config import TeacherConfig

    teacher = TeacherConfig()
    sizes = {name: len(grid_points(grid)) for name, grid in GRIDS.items()}
    assert sizes["recency_ease"] >= len(teacher.ease_l2) * len(teacher.decays)
    assert sizes["recency_rp3beta"] >= len(teacher.rp3_alpha) * len(teacher.rp3_beta) * len(
        teacher.decays
    )
    assert sizes["recency_itemknn"] >= len(teacher.knn_k) * len(teacher.knn_shrink) * len(
        teacher.decays
    )
    assert sizes["lightgcn"] == 4
    assert sizes["sasrec"] == 2
    assert set(BASELINES) == set(GRIDS) == set(baselines.DEFAULTS)
    for name, point in baselines.DEFAULTS.items():
        assert set(point) == set(GRIDS[name]), name
