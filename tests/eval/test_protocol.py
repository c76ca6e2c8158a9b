"""The benchmark protocol: split mapping, artifact preparation, feature reuse, tested-once runs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from kgrec.build import load_artifact
from kgrec.config import Config, load_config
from kgrec.errors import KgrecError
from kgrec.eval import protocol
from kgrec.eval.protocol import (
    PROTOCOLS,
    cold_users,
    evaluate_once,
    prepare,
    protocol_config,
)
from kgrec.text.encoder import HashingEncoder
from kgrec.text.features import compute_features, features_path, load_features

DEMO = Path(__file__).resolve().parents[2] / "data" / "demo"


def tiny_dataset(folder: Path, users: int, offset: int = 0) -> Path:
    """The demo data restricted to ``users`` users (from the ``offset``-th): a fast build."""
    folder.mkdir(parents=True)
    interactions = pd.read_csv(DEMO / "interactions.csv")
    keep = sorted(interactions["user_id"].unique())[offset : offset + users]
    interactions[interactions["user_id"].isin(keep)].to_csv(
        folder / "interactions.csv", index=False
    )
    people = pd.read_csv(DEMO / "users.csv")
    people[people["user_id"].isin(keep)].to_csv(folder / "users.csv", index=False)
    for name in ("items", "triples", "entities"):
        (folder / f"{name}.csv").write_bytes((DEMO / f"{name}.csv").read_bytes())
    return folder


def config_for(data: Path, protocol_name: str, artifacts: Path) -> Config:
    config = load_config(None, {"dataset.path": str(data), "dataset.name": "tiny"})
    return protocol_config(config, protocol_name, artifacts)


@pytest.mark.parametrize(
    ("name", "method", "test_ratio", "val_ratio"),
    [
        ("loo", "temporal_loo", 0.1, 0.1),
        ("ratio", "temporal_ratio", 0.2, 0.1),
        ("given", "given", 0.1, 0.1),
    ],
)
def test_protocols_set_the_split(
    name: str, method: str, test_ratio: float, val_ratio: float
) -> None:
    config = protocol_config(load_config(None, {"dataset.name": "ml-100k"}), name)
    assert config.split.method == method
    assert (config.split.test_ratio, config.split.val_ratio) == (test_ratio, val_ratio)
    assert config.artifacts_dir == Path("artifacts") / f"ml-100k-{name}"
    assert not config.store.enabled  # benchmarks never touch the database


def test_unknown_protocol_is_an_error() -> None:
    with pytest.raises(KgrecError, match=r"unknown protocol 'kfold'.*loo, ratio, given"):
        protocol_config(Config(), "kfold")
    assert set(PROTOCOLS) == {"loo", "ratio", "given"}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_dataset(tmp_path_factory.mktemp("tiny") / "data", users=40)


def test_prepare_builds_each_protocols_split(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loo = config_for(data, "loo", tmp_path / "loo")
    ratio = config_for(data, "ratio", tmp_path / "ratio")
    computed: list[Path] = []

    def fake_features(folder: Path, *args: object) -> None:  # a hashing encoder, not the LM
        computed.append(Path(folder))
        compute_features(folder, loo.features, None, encoder=HashingEncoder(8))

    monkeypatch.setattr(protocol, "compute_features", fake_features)
    assert any("built" in n for n in prepare(loo))
    assert computed == [tmp_path / "loo"]
    assert prepare(loo) == []  # everything exists: nothing to do
    notes = prepare(ratio, features_from=tmp_path / "loo")
    assert any("reused the text features" in n for n in notes)
    assert computed == [tmp_path / "loo"]  # copied, not computed
    x_loo, _ = load_features(tmp_path / "loo")
    x_ratio, _ = load_features(tmp_path / "ratio")
    assert all(torch.equal(x_loo[t], x_ratio[t]) for t in x_loo)

    a, b = load_artifact(tmp_path / "loo"), load_artifact(tmp_path / "ratio")
    users = a.num_nodes["user"]
    assert a.split_edge_index["test"].size(1) == users  # one test item per user
    total = sum(int(e.size(1)) for e in b.split_edge_index.values())
    assert b.split_edge_index["test"].size(1) == pytest.approx(0.2 * total, rel=0.1)
    assert b.split_edge_index["val"].size(1) == pytest.approx(0.1 * total, rel=0.15)
    with pytest.raises(KgrecError, match="another split"):
        prepare(config_for(data, "ratio", tmp_path / "loo"))


def test_features_of_other_nodes_are_not_reused(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = config_for(tiny_dataset(tmp_path / "other", users=30, offset=40), "loo", tmp_path / "o")
    monkeypatch.setattr(protocol, "compute_features", lambda folder, *a, **k: None)
    prepare(other)  # builds; features "computed" by the stub (none written)
    compute_features(tmp_path / "o", other.features, None, encoder=HashingEncoder(8))
    target = config_for(data, "loo", tmp_path / "t")
    calls: list[Path] = []
    monkeypatch.setattr(protocol, "compute_features", lambda folder, *a, **k: calls.append(folder))
    notes = prepare(target, features_from=tmp_path / "o")
    assert any("did not reuse" in n and "stale" in n for n in notes)
    assert calls == [tmp_path / "t"]  # fell back to computing
    assert not features_path(tmp_path / "t").exists()  # the wrong copy was removed
    with pytest.raises(KgrecError, match=r"no features\.pt"):
        prepare(config_for(data, "ratio", tmp_path / "r"), features_from=tmp_path / "nothing")


def test_evaluate_once_keeps_per_user_ndcg_and_cold_slices(data: Path, tmp_path: Path) -> None:
    config = config_for(data, "loo", tmp_path / "loo")
    protocol.build_graph(config)
    artifact = load_artifact(tmp_path / "loo")
    test = artifact.split_edge_index["test"]
    num_items = artifact.num_nodes["item"]

    def oracle(users: torch.Tensor) -> torch.Tensor:  # test item first (even users), last (odd)
        scores = torch.zeros(users.numel(), num_items)
        for row, user in enumerate(users.tolist()):
            # even users: the test item first; odd ones: last (ties would rank it anywhere)
            scores[row, test[1][test[0] == user]] = 1.0 if user % 2 == 0 else -1.0
        return scores

    run = evaluate_once(
        "oracle", oracle, artifact, seed=None, validation=0.5, seconds=1.0, config=config
    )
    assert torch.equal(run.users, test[0].unique())
    torch.testing.assert_close(run.ndcg, (run.users % 2 == 0).double())
    assert run.metrics["ndcg@20"] == pytest.approx(float(run.ndcg.mean()))
    assert run.ndcg_of(torch.tensor([0, 2])) == pytest.approx(1.0)
    assert run.ndcg_of(torch.tensor([1])) == 0.0
    degree = torch.bincount(
        artifact.split_edge_index["train"][0], minlength=artifact.num_nodes["user"]
    )
    cold = cold_users(artifact, 100)
    assert torch.equal(cold, (degree <= 100).nonzero().squeeze(1))
    assert cold_users(artifact, 0).numel() == 0
