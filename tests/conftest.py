"""Shared test helpers: where the public datasets live, and skipping cleanly without them."""

from __future__ import annotations

import os
from dataclasses import dataclass
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


SMALL_DEMO: dict[str, Any] = {
    "store.enabled": False,
    "model.embedding_dim": 16,
    "model.use_text": False,
    "model.min_relation_edges": 1,
    "teacher.components": ["ease", "entity"],
    "teacher.decays": [1.0],
    "teacher.ease_l2": [50.0],
    "teacher.weight_grid": [0.0, 0.5],
    "train.device": "cpu",
    "train.epochs": 4,
    "train.eval_every": 2,
    "train.batch_size": 64,
    "train.blend_grid": [1.0],
}
"""The dotted config keys of the test suite's small demo model (no paths)."""


def small_demo_config(
    artifacts: Path, data: Path, epochs: int = 4, overrides: dict[str, Any] | None = None
) -> Any:
    """The config of :func:`train_demo_model`: tiny teacher grids, a 16-d id-only GNN, the
    blend weight fixed at 1 (both parts serve), no database; ``overrides`` on top."""
    from kgrec.config import load_config

    return load_config(
        None,
        {
            "dataset.path": str(data),
            "artifacts": str(artifacts),
            **SMALL_DEMO,
            "train.epochs": epochs,
            **(overrides or {}),
        },
    )


def train_demo_model(
    root: Path,
    *,
    dataset: Path | None = None,
    epochs: int = 4,
    overrides: dict[str, Any] | None = None,
    x_dict: dict[str, Any] | None = None,
) -> TrainedModel:
    """Build the demo data (or ``dataset``, a contract folder) and train a small hybrid on it
    (teacher: EASE + shared KG entities on tiny grids; GNN: 16-d id embeddings, the blend
    weight fixed at 1 so both parts serve; a few seconds). ``overrides``: dotted config keys
    (``{"model.use_kg": False}``); ``x_dict``: text features for a text model."""
    from kgrec.build import build_graph
    from kgrec.data.hetero import load_artifact
    from kgrec.eval.metrics import evaluate_ranking
    from kgrec.train.trainer import train

    folder = root / "art"
    data = dataset or REPO / "data" / "demo"
    config = small_demo_config(folder, data, epochs, overrides)
    build_graph(config)
    artifact = load_artifact(folder)
    result = train(
        artifact,
        x_dict,
        config,
        validate=lambda fn: evaluate_ranking(fn, artifact, "val", ks=(20,)).values,
        out=folder / "model",
    )
    return TrainedModel(folder, result.checkpoint)


@pytest.fixture(scope="session")
def demo_model(tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    """The demo data and a tiny model trained on it, shared by the serving and eval tests."""
    return train_demo_model(tmp_path_factory.mktemp("demo-model"))
