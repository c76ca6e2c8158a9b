"""The benchmark protocol: a dataset under a split protocol, every model tested once.

Selection happens on validation only (history = training, targets = validation); the chosen
configuration is refitted on training + validation and evaluated once on test (history =
training + validation, their items masked), for baselines (:mod:`kgrec.eval.baselines`) and
kgrec (:func:`kgrec.train.trainer.train`) alike (Ferrari Dacrema et al., RecSys'19).

Protocols (:data:`PROTOCOLS`), as split-config overrides:

- ``loo``: temporal leave-one-out, each user's latest interaction is test, the one before
  validation;
- ``ratio``: temporal ratio, each user's latest 20% is test and the 10% before it validation
  (a seeded random 80/20 per user when the data has no timestamps, e.g. Last.fm);
- ``given``: the dataset's own train/test files (KGAT's Amazon-Book), validation carved from
  the latest ``val_ratio`` of each user's training rows.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from kgrec.build import build_graph
from kgrec.config import Config, set_key
from kgrec.data.hetero import GraphArtifact
from kgrec.data.history import History
from kgrec.errors import KgrecError
from kgrec.eval.metrics import ScoreFn, evaluate_ranking
from kgrec.nn.hybrid import Hybrid
from kgrec.progress import Reporter
from kgrec.text.features import compute_features, features_path, load_features
from kgrec.train.checkpoint import load_checkpoint
from kgrec.train.loop import MONITOR
from kgrec.train.trainer import train

PROTOCOLS: dict[str, dict[str, Any]] = {
    "loo": {"split.method": "temporal_loo"},
    "ratio": {"split.method": "temporal_ratio", "split.test_ratio": 0.2, "split.val_ratio": 0.1},
    "given": {"split.method": "given"},
}
"""Protocol name -> the split-config keys it sets."""

COLD_MAX_TRAIN = 20
"""Cold users have at most this many training interactions."""


def dataset_name(config: Config) -> str:
    """The dataset's report name: ``dataset.name``, else its folder's name."""
    return config.dataset.name or Path(config.dataset.path).name


def protocol_config(config: Config, protocol: str, artifacts: Path | str | None = None) -> Config:
    """``config`` under ``protocol``: its split, no database, artifacts in ``artifacts`` (default
    ``artifacts/<dataset>-<protocol>``, relative to the working directory)."""
    if protocol not in PROTOCOLS:
        raise KgrecError(f"unknown protocol {protocol!r} (known: {', '.join(PROTOCOLS)})")
    for key, value in PROTOCOLS[protocol].items():
        config = set_key(config, key, value)
    folder = (
        Path(artifacts) if artifacts else Path("artifacts") / f"{dataset_name(config)}-{protocol}"
    )
    config = set_key(config, "artifacts", str(folder))
    return set_key(config, "store.enabled", False)


def prepare(
    config: Config,
    features_from: Path | None = None,
    reporter: Reporter | None = None,
    *,
    features: bool = True,
) -> list[str]:
    """Build ``config``'s artifact (no database) and its text features unless they exist.

    An existing artifact must have been built with ``config``'s split. ``features_from`` names
    another artifact folder of the same dataset whose ``features.pt`` is copied instead of
    computing the features (the node ids do not depend on the split; they are checked, and a
    mismatch falls back to computing). ``features=False`` skips the features (the baselines
    do not read them). Returns notes on what was done.
    """
    reporter = reporter or Reporter()
    folder = config.artifacts_dir
    notes: list[str] = []
    if (folder / "graph.pt").exists():
        _check_split(folder, config)
    else:
        build_graph(config, reporter)
        notes.append(f"built {folder} ({config.split.method})")
    if not features or features_path(folder).exists():
        return notes
    if features_from is not None:
        source = features_path(features_from)
        if not source.exists():
            raise KgrecError(f"--features-from: no features.pt in {features_from}")
        shutil.copyfile(source, features_path(folder))
        try:
            load_features(folder)  # checks the node ids against the new id maps
        except KgrecError as exc:
            features_path(folder).unlink()
            notes.append(f"did not reuse {source}: {exc}")
        else:
            notes.append(f"reused the text features of {source} (same node ids)")
            return notes
    compute_features(folder, config.features, config.state_path / "text-cache", reporter)
    notes.append(f"computed the text features of {folder}")
    return notes


def _check_split(folder: Path, config: Config) -> None:
    manifest = folder / "manifest.json"
    if not manifest.exists():
        return
    built = json.loads(manifest.read_text("utf-8")).get("config", {}).get("split", {})
    wanted: dict[str, object] = {"method": config.split.method}
    if config.split.method != "temporal_loo":
        wanted |= {"val_ratio": config.split.val_ratio}
    if config.split.method == "temporal_ratio":
        wanted |= {"test_ratio": config.split.test_ratio}
    differs = {k: (built.get(k), v) for k, v in wanted.items() if built.get(k) != v}
    if differs:
        raise KgrecError(
            f"{folder} was built with another split ({differs}, built vs wanted): "
            "remove it or choose another --artifacts folder"
        )


def cold_users(artifact: GraphArtifact, max_train: int = COLD_MAX_TRAIN) -> Tensor:
    """Users with at most ``max_train`` training interactions ``[n]`` (all users, any split)."""
    degree = torch.bincount(
        artifact.split_edge_index["train"][0].long(), minlength=artifact.num_nodes["user"]
    )
    return (degree <= max_train).nonzero().squeeze(1)


@dataclass(frozen=True)
class ModelRun:
    """One model, one seed, tested once.

    Attributes:
        model: The model's name.
        seed: Its training seed (``None`` for deterministic models).
        metrics: Test metrics (``ndcg@20``, ``recall@20``, ``coverage@20``, ... at ``ks``).
        validation: The validation NDCG@20 its selection saw.
        seconds: Tuning / training seconds (refit included).
        users: The test users ``[U]`` (sorted).
        ndcg: Their NDCG@20 ``[U]``.
        extra: Anything else worth keeping (chosen parameters, best epoch, ...).
    """

    model: str
    seed: int | None
    metrics: dict[str, float]
    validation: float
    seconds: float
    users: Tensor
    ndcg: Tensor
    extra: dict[str, Any] = field(default_factory=dict)

    def ndcg_of(self, users: Tensor) -> float:
        """Mean NDCG@20 over those test users among ``users`` (0 when none)."""
        keep = torch.isin(self.users, users)
        return float(self.ndcg[keep].mean()) if bool(keep.any()) else 0.0


def evaluate_once(
    model: str,
    score_fn: ScoreFn,
    artifact: GraphArtifact,
    *,
    seed: int | None,
    validation: float,
    seconds: float,
    config: Config,
    extra: Mapping[str, Any] | None = None,
) -> ModelRun:
    """Full-ranking test metrics of ``score_fn`` (training and validation items masked)."""
    ks = tuple(sorted({*config.eval.ks, 20}))
    result = evaluate_ranking(
        score_fn, artifact, "test", ks=ks, batch_size=config.eval.batch_size, keep_per_user=True
    )
    per_user = result.per_user or {}
    users = per_user.get("user", torch.empty(0, dtype=torch.long))
    ndcg = per_user.get(MONITOR, torch.empty(0, dtype=torch.float64))
    return ModelRun(model, seed, result.values, validation, seconds, users, ndcg, dict(extra or {}))


def validator(
    artifact: GraphArtifact, batch_size: int = 1024
) -> Callable[[ScoreFn], dict[str, float]]:
    """Validation metrics (NDCG@20, Recall@20) of a score function over the training history."""
    return lambda score_fn: (
        evaluate_ranking(score_fn, artifact, "val", ks=(20,), batch_size=batch_size).values
    )


def train_and_test(
    name: str,
    artifact: GraphArtifact,
    x_dict: Mapping[str, Tensor] | None,
    config: Config,
    out: Path,
    reporter: Reporter | None = None,
    teachers: dict[str, tuple[Any, float]] | None = None,
) -> list[ModelRun]:
    """Train kgrec with ``config`` (selection on validation, refit), then test it once.

    A run that serves a hybrid also yields its two halves, tested once each from the same
    checkpoint: ``<name>:gnn`` (the GNN alone, no teacher term) and ``<name>:teacher`` (the
    item-item teacher alone). Nothing more is chosen for them. The GNN is kept (and refitted)
    even where the blend gives it no weight (``train.keep_unused_gnn``), so that it is always
    measured; what is served does not change.

    ``teachers`` caches tuned teachers by ``config.teacher`` across calls (runs that differ
    in their seed only): a run that reuses one is charged the tuning seconds it saved.
    """
    config = set_key(config, "train.keep_unused_gnn", True)
    key = repr(config.teacher)
    cached, tuning_seconds = (teachers or {}).get(key, (None, 0.0))
    result = train(
        artifact,
        x_dict,
        config,
        validate=validator(artifact, config.eval.batch_size),
        out=out,
        reporter=reporter,
        tuned_teacher=cached,
    )
    seconds = result.seconds + tuning_seconds
    if teachers is not None and cached is None and result.teacher.components:
        teachers[key] = (result.teacher, float(result.teacher_seconds))
    hybrid, _ = load_checkpoint(result.checkpoint)
    history = History.from_artifact(artifact, ("train", "val"))
    extra = {
        "validation": result.validation,
        "alpha": result.alpha,
        "best_epoch": result.best_epoch,
        "epochs": len(result.history),
        "checkpoint": str(result.checkpoint),
    }
    views = [(name, hybrid, result.validation.get("served", 0.0))]
    if hybrid.teacher is not None and hybrid.model is not None:
        views.append((f"{name}:gnn", Hybrid(None, hybrid.model, 1.0, hybrid.items), 0.0))
        views.append((f"{name}:teacher", Hybrid(hybrid.teacher, None, 0.0), 0.0))
    return [
        evaluate_once(
            view,
            scorer.score_fn(history),
            artifact,
            seed=config.train.seed,
            validation=validation or result.validation.get(view.split(":")[-1], 0.0),
            seconds=seconds,
            config=config,
            extra=extra,
        )
        for view, scorer, validation in views
    ]
