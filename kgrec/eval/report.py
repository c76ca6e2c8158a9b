"""Evaluate a trained checkpoint and baselines with one protocol, as rows for a table.

Every model is scored by the same :func:`~kgrec.eval.metrics.evaluate_ranking` (full ranking,
training — and for ``test`` validation — positives masked) and the same seeded OGB sampled
negatives (:func:`~kgrec.eval.sampled.evaluate_sampled`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kgrec.config import EvalConfig
from kgrec.data.hetero import GraphArtifact
from kgrec.data.history import History
from kgrec.eval.baselines import fit_baseline
from kgrec.eval.metrics import evaluate_ranking
from kgrec.eval.sampled import evaluate_sampled
from kgrec.nn.scoring import ScoreFn
from kgrec.train.checkpoint import load_checkpoint


def evaluate_score_fn(
    name: str,
    score_fn: ScoreFn,
    artifact: GraphArtifact,
    split: str,
    config: EvalConfig,
    *,
    device: str = "cpu",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One row: ``{"model", "split", "metrics": {...}, "seconds", **extra}``."""
    clock = time.perf_counter()
    ranking = evaluate_ranking(
        score_fn, artifact, split=split, ks=config.ks, batch_size=config.batch_size, device=device
    )
    metrics = dict(ranking.values)
    sampled = evaluate_sampled(
        score_fn,
        artifact,
        split=split,
        num_negatives=config.num_negatives,
        seed=config.seed,
        batch_size=config.batch_size,
        device=device,
    )
    metrics.update({k: float(v) for k, v in sampled.items() if k != "num_pairs"})
    return {
        "model": name,
        "split": split,
        "num_users": ranking.num_users,
        "metrics": metrics,
        "eval_seconds": round(time.perf_counter() - clock, 3),
        **(extra or {}),
    }


def evaluate_models(
    artifact: GraphArtifact,
    checkpoint: Path | None,
    *,
    split: str = "test",
    baselines: Sequence[str] = (),
    eval_config: EvalConfig | None = None,
    baseline_params: dict[str, dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Rows for the checkpoint (when given) and each named baseline, in that order.

    Every model scores from the history a user has at evaluation time: training for ``val``,
    training + validation for ``test`` (the served model was refitted on both). Baselines are
    fitted with their default parameters on the same history (``kgrec evaluate`` does not
    tune them: ``benchmarks/quality.py`` does, on validation).
    """
    config = eval_config or EvalConfig()
    splits = ("train",) if split == "val" else ("train", "val")
    history = History.from_artifact(artifact, splits)
    rows = []
    if checkpoint is not None:
        hybrid, meta = load_checkpoint(checkpoint)
        extra: dict[str, Any] = {
            "checkpoint": str(checkpoint),
            "kind": meta.kind,
            "alpha": hybrid.alpha,
            "validation": meta.metrics,
        }
        if split == "val" and meta.extra.get("refit"):
            extra["note"] = (
                "this model was refitted on training + validation: its validation figures "
                "are optimistic (those recorded before the refit are under 'validation')"
            )
        rows.append(
            evaluate_score_fn(
                "kgrec", hybrid.score_fn(history), artifact, split, config, extra=extra
            )
        )
    for name in baselines:
        clock = time.perf_counter()
        params = (baseline_params or {}).get(name, {})
        baseline = fit_baseline(name, artifact, split, **params)
        fit_seconds = round(time.perf_counter() - clock, 2)
        rows.append(
            evaluate_score_fn(
                name,
                baseline.score_fn(),
                artifact,
                split,
                config,
                extra={"fit_seconds": fit_seconds},
            )
        )
    return rows
