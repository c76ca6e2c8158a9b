"""The training loop on a tiny planted dataset: learning, reproducibility, KD, resume, GPU."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from kgrec.config import ModelConfig, TrainConfig
from kgrec.data.hetero import GraphArtifact
from kgrec.data.mapping import IdMap
from kgrec.train.sampler import NegativeSampler
from kgrec.train.teacher import EmbeddingTeacher, TextTeacher
from kgrec.train.trainer import LOG_FILE, train

NUM_USERS, NUM_ITEMS, NUM_GENRES = 24, 30, 3


def planted_artifact() -> GraphArtifact:
    """Three taste groups: users of group g interact only with items of genre g."""
    gen = torch.Generator().manual_seed(1)
    item_genre = torch.arange(NUM_ITEMS) % NUM_GENRES
    splits: dict[str, list[tuple[int, int]]] = {"train": [], "val": [], "test": []}
    for u in range(NUM_USERS):
        own = torch.nonzero(item_genre == u % NUM_GENRES).flatten()
        picks = own[torch.randperm(own.numel(), generator=gen)[:7]].tolist()
        splits["train"] += [(u, i) for i in picks[:5]]
        splits["val"].append((u, picks[5]))
        splits["test"].append((u, picks[6]))
    split_edge_index = {s: torch.tensor(p).t().contiguous() for s, p in splits.items()}
    genre = torch.stack([torch.arange(NUM_ITEMS), item_genre])
    return GraphArtifact(
        num_nodes={"user": NUM_USERS, "item": NUM_ITEMS, "genre": NUM_GENRES},
        kg_edge_index={("item", "has_genre", "genre"): genre},
        split_edge_index=split_edge_index,
        split_edge_time={s: torch.full((e.size(1),), -1) for s, e in split_edge_index.items()},
        split_edge_rating={
            s: torch.full((e.size(1),), float("nan")) for s, e in split_edge_index.items()
        },
        id_map=IdMap.from_ids(
            {
                "user": [f"u{i}" for i in range(NUM_USERS)],
                "item": [f"i{i}" for i in range(NUM_ITEMS)],
                "genre": [f"g{i}" for i in range(NUM_GENRES)],
            }
        ),
    )


def text_features(artifact: GraphArtifact, dim: int = 16) -> dict[str, Tensor]:
    """Item text close to its genre's text (a hashing-encoder-like fake)."""
    gen = torch.Generator().manual_seed(2)
    genre_text = F.normalize(torch.randn(NUM_GENRES, dim, generator=gen), dim=-1)
    item_genre = torch.arange(NUM_ITEMS) % NUM_GENRES
    item_text = F.normalize(
        genre_text[item_genre] + 0.3 * torch.randn(NUM_ITEMS, dim, generator=gen), dim=-1
    )
    return {"item": item_text, "genre": genre_text}


def recall_at_10(artifact: GraphArtifact) -> Callable[[Callable[[Tensor], Tensor]], dict]:
    """A private stand-in for kgrec.eval.metrics (LOO: one val item per user): recall@10 and
    the ndcg@20 the trainer monitors."""
    val = artifact.split_edge_index["val"]
    train_ei = artifact.split_edge_index["train"]

    def evaluate(score_fn: Callable[[Tensor], Tensor]) -> Mapping[str, float]:
        scores = score_fn(val[0]).float().cpu().clone()
        rows = torch.full((NUM_USERS,), -1)
        rows[val[0]] = torch.arange(val.size(1))
        keep = rows[train_ei[0]] >= 0
        scores[rows[train_ei[0, keep]], train_ei[1, keep]] = float("-inf")
        top = scores.topk(20, dim=1).indices  # [B, 20]
        hit = (top == val[1].unsqueeze(1)).float()  # one held-out item: NDCG = 1 / log2(1 + rank)
        discount = 1.0 / torch.log2(torch.arange(2, 22).float())
        return {
            "ndcg@20": float((hit * discount).sum(1).mean()),
            "recall@10": float(hit[:, :10].sum(1).mean()),
        }

    return evaluate


FAST = TrainConfig(
    device="cpu",
    epochs=6,
    batch_size=32,
    lr=0.02,
    kd_teacher="none",
    kd_weight=0.0,
    kd_candidates=8,
    patience=100,
)
SMALL = ModelConfig(embedding_dim=8, num_layers=2, dropout=0.0)


@pytest.mark.parametrize("use_kg", [True, False])
@pytest.mark.parametrize("use_text", [True, False])
def test_loss_decreases_and_logs(tmp_path: Path, use_kg: bool, use_text: bool) -> None:
    artifact = planted_artifact()
    model_config = replace(SMALL, use_kg=use_kg, use_text=use_text)
    result = train(
        artifact,
        text_features(artifact),
        model_config,
        FAST,
        eval_fn=recall_at_10(artifact),
        out=tmp_path,
    )
    losses = [h["loss"] for h in result.history]
    assert len(losses) == FAST.epochs
    assert losses[-1] < losses[0]
    assert result.checkpoint.exists()
    assert 0 <= result.best_epoch < FAST.epochs
    lines = [json.loads(x) for x in (tmp_path / LOG_FILE).read_text().splitlines()]
    assert [x["epoch"] for x in lines] == list(range(FAST.epochs))
    assert {"bpr", "l2", "kd", "seconds", "peak_memory_mb", "val"} <= set(lines[0])


def test_learns_planted_structure(tmp_path: Path) -> None:
    artifact = planted_artifact()
    config = replace(FAST, epochs=25)
    result = train(artifact, {}, SMALL, config, eval_fn=recall_at_10(artifact), out=tmp_path)
    # 10 own-genre unseen items of 25 candidates: random recall@10 is 0.4
    assert result.best_metrics["recall@10"] >= 0.8


def test_seeded_runs_identical(tmp_path: Path) -> None:
    artifact = planted_artifact()
    config = replace(FAST, epochs=3, kd_teacher="text", kd_weight=0.5, kg_weight=0.1)
    runs = [
        train(
            artifact,
            text_features(artifact),
            replace(SMALL, dropout=0.1),
            config,
            eval_fn=recall_at_10(artifact),
            out=tmp_path / str(k),
        )
        for k in range(2)
    ]
    strip = [
        [{k: v for k, v in h.items() if k not in ("seconds", "peak_memory_mb")} for h in r.history]
        for r in runs
    ]
    assert strip[0] == strip[1]
    assert strip[0][0]["kd"] > 0 and strip[0][0]["kg"] > 0
    other = train(
        artifact,
        text_features(artifact),
        replace(SMALL, dropout=0.1),
        replace(config, seed=1),
        eval_fn=recall_at_10(artifact),
        out=tmp_path / "other",
    )
    assert other.history[0]["loss"] != runs[0].history[0]["loss"]


def test_resume_continues(tmp_path: Path) -> None:
    artifact = planted_artifact()
    x_dict = text_features(artifact)
    evaluate = recall_at_10(artifact)
    config = replace(FAST, epochs=4, kd_teacher="text", kd_weight=0.5)
    full = train(artifact, x_dict, SMALL, config, eval_fn=evaluate, out=tmp_path / "full")
    train(
        artifact, x_dict, SMALL, replace(config, epochs=2), eval_fn=evaluate, out=tmp_path / "cut"
    )
    resumed = train(
        artifact,
        x_dict,
        SMALL,
        config,
        eval_fn=evaluate,
        out=tmp_path / "cut",
        resume=tmp_path / "cut",
    )
    assert [h["epoch"] for h in resumed.history] == [0, 1, 2, 3]
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in full.history]
    log = (tmp_path / "cut" / LOG_FILE).read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in log] == [0, 1, 2, 3]


def test_early_stopping(tmp_path: Path) -> None:
    artifact = planted_artifact()
    result = train(
        artifact,
        {},
        SMALL,
        replace(FAST, epochs=50, patience=2),
        eval_fn=lambda score_fn: {"ndcg@20": 0.5},
        out=tmp_path,
    )
    assert result.stopped_early and len(result.history) == 3 and result.best_epoch == 0


def test_negative_sampler_avoids_positives() -> None:
    artifact = planted_artifact()
    train_ei = artifact.split_edge_index["train"]
    sampler = NegativeSampler(train_ei, NUM_ITEMS)
    gen = torch.Generator().manual_seed(0)
    users = train_ei[0].repeat(20)
    neg = sampler.sample(users, 3, gen)
    assert neg.shape == (users.numel(), 3)
    assert not sampler.is_positive(users, neg).any()
    assert sampler.is_positive(train_ei[0], train_ei[1]).all()
    batches = list(sampler.batches(7, gen))
    assert sum(b.size(1) for b in batches) == train_ei.size(1)


def test_text_teacher_precomputes() -> None:
    artifact = planted_artifact()
    train_ei = artifact.split_edge_index["train"]
    teacher = TextTeacher(text_features(artifact)["item"], train_ei, NUM_USERS, top_k=3)
    top = teacher.candidates(torch.arange(NUM_USERS))
    assert top is not None and top.shape == (NUM_USERS, 3)
    sampler = NegativeSampler(train_ei, NUM_ITEMS)
    assert not sampler.is_positive(torch.arange(NUM_USERS), top).any()  # unseen items only
    # the teacher's top items mostly share the user's genre (random: 1/3)
    same = (top % NUM_GENRES) == (torch.arange(NUM_USERS) % NUM_GENRES).unsqueeze(1)
    assert same.float().mean() > 0.75
    scores = teacher.score(torch.tensor([0, 1]), top[:2])
    assert scores.shape == (2, 3)
    assert torch.allclose(scores.mean(1), torch.zeros(2), atol=1e-5)  # standardised rows
    plain = EmbeddingTeacher(torch.randn(4, 3), torch.randn(6, 3))
    assert plain.candidates(torch.arange(4)) is None


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_trains_on_gpu_with_bf16(tmp_path: Path) -> None:
    artifact = planted_artifact()
    config = replace(FAST, device="cuda", epochs=3, amp=True, kd_teacher="text", kd_weight=0.5)
    result = train(
        artifact,
        text_features(artifact),
        SMALL,
        config,
        eval_fn=recall_at_10(artifact),
        out=tmp_path,
    )
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert result.history[-1]["peak_memory_mb"] > 0


def test_ease_teacher_matches_the_ease_baseline_and_skips_seen_items() -> None:
    from kgrec.eval.baselines import EASE
    from kgrec.train.teacher import EASETeacher

    artifact = planted_artifact()
    teacher = EASETeacher(artifact, top_k=2, standardize=False)
    users = torch.arange(artifact.num_nodes["user"])
    items = torch.arange(artifact.num_nodes["item"]).expand(len(users), -1)
    expected = EASE(artifact).score(users)
    assert torch.allclose(teacher.score(users, items), expected, atol=1e-5)
    train = artifact.split_edge_index["train"]
    candidates = teacher.candidates(users)
    assert candidates is not None
    seen = set(zip(train[0].tolist(), train[1].tolist(), strict=True))
    for user, row in enumerate(candidates.tolist()):
        assert not any((user, item) in seen for item in row)
