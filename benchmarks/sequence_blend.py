"""Does a sequential model add to kgrec's item-item teacher? ``teacher + w * z(SASRec)``.

A probe for issue 10's leave-one-out bar, before SASRec becomes a part of the served model:
on per-user temporal splits the order of a user's latest items carries signal that the
teacher's item-item members (recency-weighted rows, item-to-next-item transitions) read only
linearly. With the protocol of ``benchmarks/quality.py`` (:mod:`kgrec.eval.protocol`):

1. kgrec's teacher (:func:`kgrec.train.teacher.tune_teacher`, the config's ``teacher``
   section) and SASRec (:func:`kgrec.eval.baselines.tune_baseline`, early-stopped) are chosen
   on validation, each fitted on training alone;
2. the blend weight ``w`` of ``teacher + w * z(SASRec)`` (``z``: each user's scores
   standardised over the catalogue, as the served hybrid does with the GNN) is chosen on
   validation over ``--weights``; ``w = 0`` is the teacher alone;
3. both are refitted on training + validation (SASRec for its chosen epochs) and test is read
   once, for the teacher, SASRec, the blend and the tuned recency-EASE, with paired bootstrap
   intervals of each against recency-EASE.

Usage::

    python benchmarks/sequence_blend.py -c configs/ml-100k.yaml --protocol loo --seed 0 \\
        --out docs/results/ml-100k-loo-sequence-blend.json
    python benchmarks/sequence_blend.py -c configs/demo.yaml --protocol loo --quick  # smoke run
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from kgrec.config import load_config
from kgrec.data.hetero import load_artifact
from kgrec.data.history import History
from kgrec.eval.baselines import GRIDS, tune_baseline, validation_ndcg
from kgrec.eval.metrics import evaluate_ranking
from kgrec.eval.protocol import PROTOCOLS, prepare, protocol_config
from kgrec.eval.sasrec import fit_sasrec, sasrec_options
from kgrec.eval.stats import paired_bootstrap
from kgrec.nn.ensemble import Ensemble, standardize
from kgrec.nn.scoring import ScoreFn
from kgrec.progress import Reporter
from kgrec.text.features import load_features
from kgrec.train.gnn import teacher_side
from kgrec.train.loop import MONITOR
from kgrec.train.teacher import refit, tune_teacher

WEIGHTS = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0)
"""Blend weights ``w`` of SASRec tried on validation (``0``: the teacher alone)."""

QUICK_SASREC = {"max_len": (20,), "epochs": (4,), "eval_every": (2,), "embedding_dim": (16,)}
"""``--quick``: a small SASRec, for smoke runs."""


def blend(teacher: Ensemble, sequence: ScoreFn, history: History, weight: float) -> ScoreFn:
    """``users -> teacher(x_u) + weight * z(sequence(u))``, ``[B, num_items]``."""
    teach = teacher.score_fn(history)
    if weight == 0:
        return teach
    return lambda users: teach(users) + weight * standardize(sequence(users))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--config", required=True, help="kgrec YAML config")
    parser.add_argument("--protocol", default="loo", choices=sorted(PROTOCOLS))
    parser.add_argument("--artifacts", default=None, help="artifact folder (default as quality)")
    parser.add_argument("--seed", type=int, default=0, help="seeds SASRec")
    parser.add_argument(
        "--weights", default=",".join(f"{w:g}" for w in WEIGHTS), help="blend weights tried"
    )
    parser.add_argument("--dropout", default="0.2", help="SASRec dropouts tried (comma list)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="smoke run: a small SASRec")
    parser.add_argument("--out", default=None, help="write the report as JSON here")
    args = parser.parse_args(argv)

    clock = time.perf_counter()
    reporter = Reporter()
    config = protocol_config(load_config(args.config), args.protocol, args.artifacts)
    for note in prepare(config, reporter=reporter):
        reporter.note(note)
    artifact = load_artifact(config.artifacts_dir)
    x_dict = load_features(config.artifacts_dir)[0] if config.model.use_text else None
    train = History.from_artifact(artifact, ("train",))
    train_val = History.from_artifact(artifact, ("train", "val"))
    validate = validation_ndcg(artifact)
    side = teacher_side(artifact, x_dict, config)

    teacher = tune_teacher(train, side, config.teacher, validate, reporter)
    grid: dict[str, Any] = {k: v[:1] for k, v in GRIDS["sasrec"].items()}
    grid |= {"dropout": tuple(float(d) for d in args.dropout.split(","))}
    grid |= QUICK_SASREC if args.quick else {}
    sasrec = tune_baseline(
        "sasrec",
        artifact,
        grid=grid,
        refit=False,
        seed=args.seed,
        device=args.device,
        reporter=reporter,
    )
    sequence = sasrec.model.score_fn(train)
    weights = [float(w) for w in args.weights.split(",")]
    validation = {w: validate(blend(teacher, sequence, train, w)) for w in weights}
    chosen = max(weights, key=lambda w: (validation[w], -w))  # ties: the smaller weight
    reporter.note(
        "validation NDCG@20 by weight: "
        + ", ".join(f"{w:g}: {v:.4f}" for w, v in validation.items())
        + f" (chosen {chosen:g})"
    )

    # refit on training + validation, read test once
    teacher_test = refit(teacher, train_val, side, config.teacher.top_k)
    sasrec_test = fit_sasrec(  # for the epochs chosen on validation, no early stopping
        train_val,
        **sasrec_options(sasrec.params),
        seed=args.seed,
        device=args.device,
        reporter=reporter,
    )
    reference = tune_baseline("recency_ease", artifact, reporter=reporter)
    sequence_test = sasrec_test.score_fn(train_val)
    models: dict[str, tuple[ScoreFn, float]] = {
        "recency_ease": (reference.score_fn(), reference.validation),
        "sasrec": (sequence_test, sasrec.validation),
        "teacher": (teacher_test.score_fn(train_val), validation[0.0]),
        f"teacher + {chosen:g} z(sasrec)": (
            blend(teacher_test, sequence_test, train_val, chosen),
            validation[chosen],
        ),
    }
    per_user: dict[str, torch.Tensor] = {}
    rows: list[dict[str, Any]] = []
    for name, (score_fn, val) in models.items():
        result = evaluate_ranking(score_fn, artifact, "test", ks=(20,), keep_per_user=True)
        assert result.per_user is not None
        per_user[name] = result.per_user[MONITOR]
        rows.append({"model": name, "validation": val, **result.values})
    for row in rows:
        if row["model"] != "recency_ease":
            interval = paired_bootstrap(per_user[row["model"]], per_user["recency_ease"])
            row["vs_recency_ease"] = {
                "difference": interval.difference,
                "low": interval.low,
                "high": interval.high,
            }
    report = {
        "config": str(args.config),
        "protocol": args.protocol,
        "seed": args.seed,
        "teacher": {"members": teacher.describe(), "validation": dict(teacher.validation)},
        "sasrec": {
            "params": sasrec.params,
            "validation": sasrec.validation,
            "trials": [
                {"params": t.params, "validation": t.validation, "curve": t.curve}
                for t in sasrec.trials
            ],
        },
        "blend_validation": {f"{w:g}": v for w, v in validation.items()},
        "chosen_weight": chosen,
        "rows": rows,
        "seconds": time.perf_counter() - clock,
    }
    print("| model | val NDCG@20 | NDCG@20 | Recall@20 | Δ NDCG@20 vs recency_ease [95% CI] |")
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        delta = row.get("vs_recency_ease")
        shown = (
            f"{delta['difference']:+.4f} [{delta['low']:+.4f}, {delta['high']:+.4f}]"
            if delta
            else "-"
        )
        print(
            f"| {row['model']} | {row['validation']:.4f} | {row['ndcg@20']:.4f} "
            f"| {row['recall@20']:.4f} | {shown} |"
        )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2, default=float) + "\n", "utf-8")
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
