"""Checkpoints: safe loading (weights_only), identical scores, teacher from a checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from kgrec.errors import KgrecError
from kgrec.nn.model import KGRec
from kgrec.train.checkpoint import (
    check_resume_config,
    checkpoint_metrics,
    load_checkpoint,
    promote,
    save_checkpoint,
)
from kgrec.train.teacher import CheckpointTeacher

NUM_NODES = {"user": 4, "item": 6, "genre": 2}
EDGES = {
    ("user", "interacts", "item"): torch.tensor([[0, 1, 2, 3, 3], [0, 1, 2, 3, 5]]),
    ("item", "has_genre", "genre"): torch.tensor([[0, 1, 2, 3, 4, 5], [0, 0, 1, 1, 0, 1]]),
    ("genre", "rev_has_genre", "item"): torch.tensor([[0, 0, 1, 1, 0, 1], [0, 1, 2, 3, 4, 5]]),
}


@pytest.mark.parametrize("use_text", [True, False])
def test_round_trip_identical_scores(tmp_path: Path, use_text: bool) -> None:
    torch.manual_seed(0)
    x_dict = {"item": torch.randn(6, 5)} if use_text else None
    model = KGRec(NUM_NODES, EDGES.keys(), embedding_dim=8, text_dim=5 if use_text else None)
    model.get_embedding(EDGES, x_dict)
    path = save_checkpoint(
        tmp_path / "model.pt",
        model,
        model.model_args,
        config={"train": {"lr": 0.01, "ks": (10, 20)}},
        metrics={"ndcg@20": 0.5},
        extra={"epoch": 3},
    )
    payload = torch.load(path, weights_only=True)  # plain types and tensors only
    assert payload["user_embedding"].shape == (4, 8)
    assert payload["item_embedding"].shape == (6, 8)
    assert set(payload["versions"]) == {"torch", "torch_geometric", "kgrec"}
    assert payload["num_nodes"] == NUM_NODES

    loaded, meta = load_checkpoint(path)
    users = torch.arange(4)
    assert torch.equal(loaded.score(users), model.score(users))
    assert meta.metrics == {"ndcg@20": 0.5} and meta.extra == {"epoch": 3}
    # Recomputed from the graph, the loaded weights also give the same embeddings.
    again = loaded.get_embedding(EDGES, x_dict)
    assert torch.allclose(again["item"], model.get_embedding()["item"], atol=1e-6)
    assert not list(tmp_path.glob(".*tmp*"))  # atomic write left no temp file


def test_checkpoint_teacher(tmp_path: Path) -> None:
    model = KGRec(NUM_NODES, EDGES.keys(), embedding_dim=8)
    emb = model.get_embedding(EDGES)
    path = save_checkpoint(tmp_path / "t.pt", model, model.model_args, {}, {})
    teacher = CheckpointTeacher(path, EDGES[("user", "interacts", "item")], top_k=2)
    items = torch.tensor([[0, 1, 2], [3, 4, 5]])
    users = torch.tensor([1, 2])
    expected = (emb["user"][users].unsqueeze(1) * emb["item"][items]).sum(-1)
    assert torch.allclose(teacher.score(users, items), expected)
    top = teacher.candidates(users)
    assert top is not None and top.shape == (2, 2)


def test_missing_or_bad_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(KgrecError, match="no checkpoint"):
        load_checkpoint(tmp_path / "absent.pt")
    bad = tmp_path / "bad.pt"
    torch.save({"format": 99}, bad)
    with pytest.raises(KgrecError, match="not a kgrec checkpoint"):
        load_checkpoint(bad)


def _checkpoint(path: Path, ndcg: float) -> Path:
    model = KGRec(NUM_NODES, EDGES.keys(), embedding_dim=8)
    model.get_embedding(EDGES)
    return save_checkpoint(path, model, model.model_args, {}, {"ndcg@20": ndcg})


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
    weights = torch.load(out / "model.pt", weights_only=True)["user_embedding"].numpy().tobytes()
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
