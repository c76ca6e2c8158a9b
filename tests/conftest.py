"""Shared test helpers: where the public datasets live, and skipping cleanly without them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATASETS = Path(os.environ.get("KGREC_DATASETS", REPO.parent / "shared" / "datasets"))
"""Real public datasets, read in place (never copied into the repository)."""


def shared_dataset(name: str) -> Path:
    """Path of ``SHARED_DATASETS/name``; skips the calling test when it is absent."""
    path = SHARED_DATASETS / name
    if not path.is_dir():
        pytest.skip(f"dataset {name!r} not found under {SHARED_DATASETS} (set KGREC_DATASETS)")
    return path


@pytest.fixture(scope="session")
def falkordb_home(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A kgrec state folder with a real embedded FalkorDB server running (stopped at the end).

    Tests that use it get a fresh graph name from :func:`graph_name` so they do not interfere.
    """
    from kgrec.store.server import FalkorDBServer

    home = tmp_path_factory.mktemp("kgrec-home")
    server = FalkorDBServer(home)
    server.start()
    yield home
    server.stop()


@pytest.fixture
def graph_name(request: pytest.FixtureRequest) -> str:
    """A graph name unique to the calling test."""
    import re

    return "t_" + re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)[:60]


@dataclass(frozen=True)
class TrainedModel:
    """A ``build-graph`` artifact folder (no database) and a checkpoint trained on it."""

    artifacts: Path
    checkpoint: Path


def train_demo_model(
    root: Path, model_config: Any = None, dataset: Path | None = None, epochs: int = 4
) -> TrainedModel:
    """Build the demo data (or ``dataset``, a contract folder) and train a tiny model on it
    (id embeddings, no distillation; every epoch is kept, ~1 s)."""
    from kgrec.build import build_graph
    from kgrec.config import ModelConfig, TrainConfig, load_config
    from kgrec.data.hetero import load_artifact
    from kgrec.train.trainer import train

    folder = root / "art"
    data = dataset or REPO / "data" / "demo"
    config = load_config(
        None, {"dataset.path": str(data), "artifacts": str(folder), "store.enabled": False}
    )
    build_graph(config)
    ticks = count()
    result = train(
        load_artifact(folder),
        {},
        model_config or ModelConfig(embedding_dim=16, num_layers=2, use_text=False, dropout=0.0),
        TrainConfig(
            device="cpu", epochs=epochs, batch_size=2048, lr=0.01, kd_teacher="none", kd_weight=0.0
        ),
        eval_fn=lambda _: {"ndcg@20": float(next(ticks))},  # keep the last epoch
        out=folder / "model",
    )
    return TrainedModel(folder, result.checkpoint)


@pytest.fixture(scope="session")
def demo_model(tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    """The demo data and a tiny model trained on it, shared by the serving and eval tests."""
    return train_demo_model(tmp_path_factory.mktemp("demo-model"))
