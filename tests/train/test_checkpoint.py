"""Checkpoints: safe loading (weights_only), identical scores, teacher from a checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from kgrec.config import load_config
from kgrec.data.history import History
from kgrec.errors import KgrecError
from kgrec.nn.ensemble import Component, Ensemble
from kgrec.nn.hybrid import Hybrid
from kgrec.nn.item_item import ItemItem, ease
from kgrec.train.checkpoint import (
    check_resume_config,
    checkpoint_metrics,
    load_checkpoint,
    promote,
    read_serving,
    save_checkpoint,
)
from kgrec.train.gnn import build_model
from tests.train.test_trainer import planted_artifact, text_features


def _hybrid(use_text: bool = False, alpha: float = 0.5) -> Hybrid:
    torch.manual_seed(0)
    artifact = planted_artifact()
    config = load_config(None, {"model.embedding_dim": 8, "model.min_relation_edges": 1})
    x_dict = text_features() if use_text else None
    model = build_model(artifact, x_dict, config)
    history = History.from_artifact(artifact)
    teacher = Ensemble(
        [Component("ease", {"l2": 10.0}, ItemItem.from_dense(ease(history, 10.0), 0.8))], [1.0]
    )
    return Hybrid(teacher, model, alpha)


@pytest.mark.parametrize("use_text", [True, False])
def test_round_trip_identical_scores(tmp_path: Path, use_text: bool) -> None:
    hybrid = _hybrid(use_text)
    x_dict = text_features() if use_text else None
    path = save_checkpoint(
        tmp_path / "model.pt",
        hybrid,
        config={"train": {"lr": 0.01, "ks": (10, 20)}},
        metrics={"ndcg@20": 0.5},
        extra={"epoch": 3},
        x_dict=x_dict,
        edge_types=[("item", "has_genre", "genre")],
    )
    payload = torch.load(path, weights_only=True)  # plain types and tensors only
    assert payload["kind"] == "hybrid" and payload["alpha"] == 0.5
    assert set(payload["versions"]) == {"torch", "torch_geometric", "kgrec"}
    loaded, meta = load_checkpoint(path)
    history = History.from_artifact(planted_artifact(), ("train", "val"))
    users = torch.arange(history.num_users)
    expected = hybrid.score_fn(history, x_dict)(users)
    # the loaded scorer needs no text features: it carries its item embeddings
    torch.testing.assert_close(loaded.score_fn(history)(users), expected)
    assert meta.metrics == {"ndcg@20": 0.5} and meta.extra == {"epoch": 3}
    serving = read_serving(path)
    assert serving.edge_types == [("item", "has_genre", "genre")]
    assert serving.num_items == history.num_items
    assert not list(tmp_path.glob(".*tmp*"))  # atomic write left no temp file


def test_a_teacher_alone_round_trips(tmp_path: Path) -> None:
    hybrid = _hybrid()
    alone = Hybrid(hybrid.teacher, None, 0.0)
    path = save_checkpoint(tmp_path / "t.pt", alone, {}, {})
    loaded, meta = load_checkpoint(path)
    assert meta.kind == "teacher" and loaded.model is None
    history = History.from_artifact(planted_artifact())
    users = torch.arange(5)
    torch.testing.assert_close(loaded.score_fn(history)(users), alone.score_fn(history)(users))


def test_missing_or_bad_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(KgrecError, match="no checkpoint"):
        load_checkpoint(tmp_path / "absent.pt")
    bad = tmp_path / "bad.pt"
    torch.save({"format": 99}, bad)
    with pytest.raises(KgrecError, match="not a kgrec checkpoint"):
        load_checkpoint(bad)


def _checkpoint(path: Path, ndcg: float) -> Path:
    return save_checkpoint(path, _hybrid(), {}, {"ndcg@20": ndcg})


def _run(folder: Path, ndcg: float) -> Path:
    _checkpoint(folder / "model.pt", ndcg)
    (folder / "last.pt").write_bytes(b"resume state")
    (folder / "train_log.jsonl").write_text('{"epoch": 0}\n')
    return folder


def test_a_run_that_beats_the_served_model_replaces_it(tmp_path: Path) -> None:
    out = tmp_path / "model"
    first = promote(_run(out / ".training", 0.2), out)
    assert first.promoted and first.previous is None
    second = promote(_run(out / ".training", 0.3), out)
    assert second.promoted and (second.new, second.previous) == (0.3, 0.2)
    assert checkpoint_metrics(out / "model.pt") == {"ndcg@20": 0.3}
    assert (out / "last.pt").read_bytes() == b"resume state"
    assert not (out / ".training").exists()


def test_a_worse_run_is_kept_beside_the_served_model(tmp_path: Path) -> None:
    out = tmp_path / "model"
    promote(_run(out / ".training", 0.3), out)
    served = (out / "model.pt").read_bytes()
    worse = promote(_run(out / ".training", 0.1), out)
    assert not worse.promoted
    assert (out / "model.pt").read_bytes() == served
    assert worse.kept == out / "candidate" / "model.pt"
    assert checkpoint_metrics(out / "candidate" / "model.pt") == {"ndcg@20": 0.1}
    assert "does not beat the served model's 0.3000" in worse.reason
    forced = promote(_run(out / ".training", 0.2), out, always=True)
    assert forced.promoted and checkpoint_metrics(out / "model.pt") == {"ndcg@20": 0.2}


def test_a_damaged_served_model_is_replaced(tmp_path: Path) -> None:
    out = tmp_path / "model"
    promote(_run(out / ".training", 0.3), out)
    data = bytearray((out / "model.pt").read_bytes())
    serving = torch.load(out / "model.pt", weights_only=True)["serving"]
    weights = serving["item_input"].numpy().tobytes()
    data[bytes(data).find(weights) + 5] ^= 0xFF  # a weight changes, the size does not
    (out / "model.pt").write_bytes(bytes(data))
    with pytest.raises(KgrecError, match=r"model\.pt is damaged"):
        load_checkpoint(out / "model.pt")
    result = promote(_run(out / ".training", 0.1), out)
    assert result.promoted and "unusable" in result.reason


def test_resume_refuses_other_settings_and_allows_more_epochs() -> None:
    saved = {"model": {"embedding_dim": 64}, "train": {"lr": 0.005, "epochs": 10, "ks": (10,)}}
    check_resume_config(saved, {**saved, "train": {**saved["train"], "epochs": 50}})
    changed = {"model": {"embedding_dim": 32}, "train": {**saved["train"], "lr": 0.01}}
    with pytest.raises(KgrecError) as info:
        check_resume_config(saved, changed, where="out/last.pt")
    message = str(info.value)
    assert "cannot resume the run in out/last.pt" in message
    assert "model.embedding_dim 64 -> 32" in message and "train.lr 0.005 -> 0.01" in message
    assert "\n" not in message
