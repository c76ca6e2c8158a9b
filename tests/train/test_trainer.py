"""The training recipe on a tiny planted dataset: it learns, it is reproducible, it refits."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from kgrec.config import Config, TeacherConfig, load_config, set_key
from kgrec.data.hetero import GraphArtifact
from kgrec.data.history import History
from kgrec.data.mapping import IdMap
from kgrec.errors import KgrecError
from kgrec.eval.metrics import evaluate_ranking
from kgrec.nn import item_item
from kgrec.nn.loss import softmax_loss
from kgrec.train import gnn
from kgrec.train.checkpoint import load_checkpoint
from kgrec.train.gnn import (
    GNNTrainer,
    build_model,
    candidates,
    full_step_bytes,
    use_sampling,
)
from kgrec.train.resume import RESUME_FILE
from kgrec.train.trainer import LOG_FILE, train

NUM_USERS, NUM_ITEMS, NUM_GENRES, LENGTH = 30, 24, 3, 8
CPU = torch.device("cpu")


def planted_artifact() -> GraphArtifact:
    """Three taste groups walking their genre's items in a fixed order (a next-item signal)."""
    gen = torch.Generator().manual_seed(1)
    item_genre = torch.arange(NUM_ITEMS) % NUM_GENRES
    rows: dict[str, list[tuple[int, int, int]]] = {"train": [], "val": [], "test": []}
    for u in range(NUM_USERS):
        own = torch.nonzero(item_genre == u % NUM_GENRES).flatten()  # 8 items, fixed order
        start = int(torch.randint(0, own.numel(), (1,), generator=gen))
        walk = [int(own[(start + k) % own.numel()]) for k in range(LENGTH)]
        for t, item in enumerate(walk):
            split = "test" if t == LENGTH - 1 else "val" if t == LENGTH - 2 else "train"
            rows[split].append((u, item, 1000 + t))
    split_edge_index = {s: torch.tensor([(u, i) for u, i, _ in r]).t() for s, r in rows.items()}
    return GraphArtifact(
        num_nodes={"user": NUM_USERS, "item": NUM_ITEMS, "genre": NUM_GENRES},
        kg_edge_index={
            ("item", "has_genre", "genre"): torch.stack([torch.arange(NUM_ITEMS), item_genre])
        },
        split_edge_index=split_edge_index,
        split_edge_time={s: torch.tensor([t for _, _, t in r]) for s, r in rows.items()},
        split_edge_rating={s: torch.full((len(r),), float("nan")) for s, r in rows.items()},
        id_map=IdMap.from_ids(
            {
                "user": [f"u{i}" for i in range(NUM_USERS)],
                "item": [f"i{i}" for i in range(NUM_ITEMS)],
                "genre": [f"g{i}" for i in range(NUM_GENRES)],
            }
        ),
    )


def text_features() -> dict[str, Tensor]:
    """Item text close to its genre's text (a hashing-encoder-like fake)."""
    gen = torch.Generator().manual_seed(2)
    genre = F.normalize(torch.randn(NUM_GENRES, 16, generator=gen), dim=-1)
    item = genre[torch.arange(NUM_ITEMS) % NUM_GENRES] + 0.1 * torch.randn(
        NUM_ITEMS, 16, generator=gen
    )
    return {"item": item, "genre": genre}


def small_config(**train: object) -> Config:
    config = load_config(None)
    config = replace(
        config,
        model=replace(config.model, embedding_dim=16, min_relation_edges=1),
        teacher=TeacherConfig(
            components=("ease", "transition", "entity", "text"),
            decays=(0.8, 1.0),
            ease_l2=(10.0, 100.0),
            transition_l2=(1.0, 10.0),
            weight_grid=(0.0, 0.5, 1.0),
        ),
        train=replace(
            config.train,
            **{"device": "cpu", "epochs": 6, "eval_every": 2, "batch_size": 16, **train},  # type: ignore[arg-type]
        ),
    )
    return config


def validator(artifact: GraphArtifact):  # type: ignore[no-untyped-def]
    return lambda score_fn: evaluate_ranking(score_fn, artifact, "val").values


def test_trains_a_hybrid_that_beats_popularity_and_refits(tmp_path: Path) -> None:
    artifact = planted_artifact()
    config = small_config(keep_unused_gnn=True)  # the GNN is refitted even at alpha 0
    result = train(artifact, text_features(), config, validate=validator(artifact), out=tmp_path)
    assert result.checkpoint.exists()
    assert set(result.validation) >= {"teacher", "gnn", "hybrid", "served"}
    hybrid, meta = load_checkpoint(result.checkpoint)
    assert meta.kind in {"hybrid", "teacher"}  # alpha may be 0 when the GNN does not help
    full = History.from_artifact(artifact, ("train", "val"))  # refit: val is history now
    test = evaluate_ranking(hybrid.score_fn(full), artifact, "test").values["ndcg@20"]
    popular = torch.bincount(full.item, minlength=NUM_ITEMS).float()
    pop = evaluate_ranking(lambda u: popular.expand(u.numel(), -1), artifact, "test").values
    assert test > pop["ndcg@20"] + 0.1
    lines = (tmp_path / LOG_FILE).read_text().splitlines()
    stages = [json.loads(line)["stage"] for line in lines]
    assert "validation" in stages and "refit" in stages


@pytest.mark.parametrize("keep", [False, True])
def test_a_gnn_the_blend_leaves_out_is_not_refitted(tmp_path: Path, keep: bool) -> None:
    """alpha 0 on validation: the teacher is served; the GNN is refitted only when kept."""
    artifact = planted_artifact()
    config = small_config(blend_grid=(0.0,), keep_unused_gnn=keep)
    result = train(artifact, text_features(), config, validate=validator(artifact), out=tmp_path)
    hybrid, meta = load_checkpoint(result.checkpoint)
    assert result.alpha == 0 and meta.kind == result.kind == "teacher"
    assert result.validation["served"] == result.validation["teacher"]
    assert (hybrid.model is not None) == keep
    stages = [json.loads(line)["stage"] for line in (tmp_path / LOG_FILE).read_text().splitlines()]
    assert "validation" in stages and ("refit" in stages) == keep
    full = History.from_artifact(artifact, ("train", "val"))  # the teacher is refitted either way
    assert hybrid.teacher is not None
    refitted = hybrid.teacher.score(full.select(torch.arange(NUM_USERS)))
    tuned = result.teacher.score(full.select(torch.arange(NUM_USERS)))
    assert not torch.allclose(refitted, tuned)


@pytest.mark.parametrize("serve", ["gnn", "teacher"])
def test_serve_variants(tmp_path: Path, serve: str) -> None:
    artifact = planted_artifact()
    config = small_config(serve=serve)
    result = train(artifact, text_features(), config, validate=validator(artifact), out=tmp_path)
    hybrid, meta = load_checkpoint(result.checkpoint)
    assert meta.kind == serve
    assert (hybrid.model is None) == (serve == "teacher")
    assert (hybrid.teacher is None) == (serve == "gnn")


def test_an_undistilled_gnn_builds_no_teacher(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """serve gnn + kd_weight 0 never fits an item x item matrix (what bounds the catalogue)."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a dense item-item matrix was fitted")

    for name in ("ease", "transition", "rp3beta", "itemknn", "entity_similarity", "gram"):
        monkeypatch.setattr(item_item, name, refuse)
    artifact = planted_artifact()
    config = small_config(serve="gnn", kd_weight=0.0)
    result = train(artifact, text_features(), config, validate=validator(artifact), out=tmp_path)
    assert result.teacher.components == []
    assert set(result.validation) == {"gnn", "served"}
    assert result.validation["served"] == result.validation["gnn"] > 0
    hybrid, meta = load_checkpoint(result.checkpoint)
    assert meta.kind == "gnn" and hybrid.teacher is None
    full = History.from_artifact(artifact, ("train", "val"))
    test = evaluate_ranking(hybrid.score_fn(full), artifact, "test").values["ndcg@20"]
    popular = torch.bincount(full.item, minlength=NUM_ITEMS).float()
    pop = evaluate_ranking(lambda u: popular.expand(u.numel(), -1), artifact, "test").values
    assert test > pop["ndcg@20"]


@pytest.mark.parametrize("item_sampling", ["full", "sampled"])
def test_gnn_learns_the_next_item(item_sampling: str) -> None:
    """Full steps, and sampled steps (4 negatives), which still rank the whole catalogue."""
    artifact = planted_artifact()
    config = set_key(
        set_key(small_config(epochs=30, kd_weight=0.0, num_negatives=4), "model.use_kg", False),
        "model.use_text",
        False,
    )
    config = set_key(config, "train.item_sampling", item_sampling)
    model = build_model(artifact, None, config)  # ids only: it starts knowing nothing
    history = History.from_artifact(artifact)
    trainer = GNNTrainer(model, history, None, None, config.train, CPU)
    assert trainer.sampled == (item_sampling == "sampled")
    before = evaluate_ranking(trainer.score_fn(), artifact, "val").values["ndcg@20"]
    losses = [trainer.train_epoch()["rank"] for _ in range(30)]
    after = evaluate_ranking(trainer.score_fn(), artifact, "val").values["ndcg@20"]
    assert losses[-1] < losses[0]
    assert after > before + 0.2


def test_seeded_runs_are_identical(tmp_path: Path) -> None:
    artifact = planted_artifact()
    runs = [
        train(
            artifact,
            None,
            small_config(serve="gnn"),
            validate=validator(artifact),
            out=tmp_path / str(k),
        )
        for k in range(2)
    ]
    assert runs[0].validation == runs[1].validation
    a, _ = load_checkpoint(runs[0].checkpoint)
    b, _ = load_checkpoint(runs[1].checkpoint)
    assert a.model is not None and b.model is not None
    for (name, x), (_, y) in zip(
        a.model.state_dict().items(), b.model.state_dict().items(), strict=True
    ):
        assert torch.equal(x, y), name


class Interrupt(Exception):
    pass


@pytest.mark.parametrize(
    ("stop_at", "item_sampling"),
    [(("validation", 3), "full"), (("refit", 1), "full"), (("validation", 3), "sampled")],
)
def test_an_interrupted_run_resumes_to_the_same_model(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    stop_at: tuple[str, int],
    item_sampling: str,
) -> None:
    """A run killed after some epochs and resumed from last.pt ends with the very model an
    uninterrupted run gives (teacher reused, parameters, optimiser and cut sampler restored;
    sampled steps: both optimisers and the negatives' draws)."""
    artifact = planted_artifact()
    config = small_config(  # the GNN is refitted and kept even if validation blends it at 0
        epochs=6, eval_every=1, patience=10, num_negatives=5, keep_unused_gnn=True
    )
    config = set_key(config, "train.item_sampling", item_sampling)
    whole = train(artifact, None, config, validate=validator(artifact), out=tmp_path / "whole")

    stage, epoch = stop_at
    original = GNNTrainer.train_epoch
    calls = {"validation": 0, "refit": 0}

    def flaky(self: GNNTrainer, number: int = 0) -> dict[str, float]:
        now = "refit" if self.history.num_interactions > (LENGTH - 2) * NUM_USERS else "validation"
        calls[now] += 1
        if now == stage and calls[now] > epoch:
            raise Interrupt
        return original(self, number)

    monkeypatch.setattr(GNNTrainer, "train_epoch", flaky)
    with pytest.raises(Interrupt):
        train(artifact, None, config, validate=validator(artifact), out=tmp_path / "cut")
    monkeypatch.setattr(GNNTrainer, "train_epoch", original)
    assert not (tmp_path / "cut" / "model.pt").exists()  # nothing half-written is served
    resumed = train(
        artifact,
        None,
        config,
        validate=validator(artifact),
        out=tmp_path / "cut",
        resume=tmp_path / "cut" / RESUME_FILE,
    )
    assert resumed.validation == whole.validation
    assert resumed.best_epoch == whole.best_epoch
    a, _ = load_checkpoint(whole.checkpoint)
    b, _ = load_checkpoint(resumed.checkpoint)
    assert a.model is not None and b.model is not None
    for (name, x), (_, y) in zip(
        a.model.state_dict().items(), b.model.state_dict().items(), strict=True
    ):
        torch.testing.assert_close(x, y, msg=name)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_trains_on_gpu(tmp_path: Path) -> None:
    artifact = planted_artifact()
    config = set_key(small_config(), "train.device", "cuda")
    result = train(artifact, text_features(), config, validate=validator(artifact), out=tmp_path)
    hybrid, _ = load_checkpoint(result.checkpoint)
    full = History.from_artifact(artifact, ("train", "val"))
    assert evaluate_ranking(hybrid.score_fn(full), artifact, "test").values["ndcg@20"] > 0.3


def test_sampled_candidates_hold_the_cut_renumbered() -> None:
    history = History.from_artifact(planted_artifact())
    cut = history.cut(torch.arange(NUM_USERS), torch.Generator().manual_seed(0), num_targets=2)
    items, local = candidates(cut, torch.tensor([0, 5, 5, 23]))
    assert torch.equal(items, torch.unique(items))  # sorted, distinct
    wanted = set(cut.prefix.item.tolist()) | set(cut.target_item.tolist()) | {0, 5, 23}
    assert set(items.tolist()) == wanted
    full = cut.prefix.dense(NUM_ITEMS, 0.9)
    assert torch.equal(local.prefix.dense(items.numel(), 0.9), full[:, items])
    assert torch.equal(local.targets(items.numel()), cut.targets(NUM_ITEMS)[:, items])
    assert full[:, items].sum() == full.sum()  # no history item is left out


def test_a_step_sampling_the_whole_catalogue_is_the_full_step() -> None:
    artifact = planted_artifact()
    config = small_config()
    history = History.from_artifact(artifact)
    cut = history.cut(torch.arange(NUM_USERS), torch.Generator().manual_seed(3), 3)
    rows, target = cut.prefix.dense(NUM_ITEMS, 0.9), cut.targets(NUM_ITEMS)
    logits = {}
    for mode in ("full", "sampled"):
        torch.manual_seed(0)
        model = build_model(artifact, text_features(), config)
        train_config = replace(set_key(config, "train.item_sampling", mode).train, num_negatives=1)
        trainer = GNNTrainer(
            model, history, None, text_features(), train_config, torch.device("cpu")
        )
        assert trainer.sampled == (mode == "sampled")
        every = torch.arange(NUM_ITEMS) if mode == "sampled" else None  # the same softmax
        (logits[mode],) = trainer.objective(rows, trainer.x_dict, None, every)
    assert torch.allclose(logits["full"], logits["sampled"], atol=1e-5)
    loss = softmax_loss(logits["sampled"], target)
    assert torch.allclose(softmax_loss(logits["full"], target), loss, atol=1e-6)


def test_a_distilled_hybrid_trains_on_sampled_steps(tmp_path: Path) -> None:
    artifact = planted_artifact()
    config = small_config(item_sampling="sampled", num_negatives=6)
    result = train(artifact, text_features(), config, validate=validator(artifact), out=tmp_path)
    history = History.from_artifact(artifact)
    popular = torch.bincount(history.item, minlength=NUM_ITEMS).float()
    pop = evaluate_ranking(lambda u: popular.expand(u.numel(), -1), artifact, "val").values
    assert result.validation["gnn"] > pop["ndcg@20"] + 0.1
    lines = [json.loads(line) for line in (tmp_path / LOG_FILE).read_text().splitlines()]
    assert lines and all(line["kd"] > 0 and line["rank"] > 0 for line in lines)
    assert all(0 < line["candidates"] <= NUM_ITEMS for line in lines)  # logged: |C| a step


def test_auto_samples_only_when_a_full_step_would_not_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    artifact = planted_artifact()
    config = small_config()
    model = build_model(artifact, text_features(), config)
    need = full_step_bytes(16, NUM_ITEMS, 16, 16, int(model.graph.item.numel()))
    assert need == full_step_bytes(
        config.train.batch_size, NUM_ITEMS, 16, 16, int(model.graph.item.numel())
    )
    cpu = torch.device("cpu")
    for free, mode, expected in [
        (4 * need, "auto", False),
        (need, "auto", True),  # needs more than half of what is free
        (need, "full", False),
        (4 * need, "sampled", True),
    ]:
        monkeypatch.setattr(gnn, "available_bytes", lambda device, free=free: free)
        train_config = set_key(config, "train.item_sampling", mode).train
        assert use_sampling(train_config, model, text_features(), cpu) == expected, (free, mode)
    # a real machine has room for this tiny catalogue
    monkeypatch.undo()
    assert not use_sampling(config.train, model, text_features(), cpu)


def test_item_sampling_must_be_a_known_mode() -> None:
    with pytest.raises(KgrecError, match=r"train\.item_sampling.*auto.*full.*sampled"):
        set_key(load_config(None), "train.item_sampling", "some")


def test_sampled_steps_refuse_weight_decay_they_cannot_apply() -> None:
    artifact = planted_artifact()
    config = small_config(item_sampling="sampled", weight_decay=0.01)
    model = build_model(artifact, None, config)
    with pytest.raises(KgrecError, match=r"train\.weight_decay needs full steps"):
        GNNTrainer(model, History.from_artifact(artifact), None, None, config.train, CPU)


def test_free_memory_respects_a_container_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = gnn.available_bytes(CPU)
    (tmp_path / "memory.max").write_text("3000000000\n")
    (tmp_path / "memory.current").write_text("1000000000\n")
    monkeypatch.setattr(gnn, "CGROUP", tmp_path)
    assert gnn.available_bytes(CPU) == min(host, 2_000_000_000)
    (tmp_path / "memory.max").write_text("max\n")  # no limit: the host's available memory
    assert gnn.available_bytes(CPU) > 0.5 * host
