"""Quality benchmark: kgrec, its ablations and three baselines on one split, one evaluator.

For a dataset config (``configs/ml-100k.yaml``, ``configs/ml-latest-small.yaml``, ...) this
builds the artifact if needed (no database), computes the text features if needed, then
trains and evaluates on the **test** split with full ranking (seen items masked):

- baselines: most popular, ItemKNN, EASE, LightGCN (PyG), fitted on the training split;
- kgrec as configured, and ablations: without KD, without text features (random init),
  without the KG edges;
- a cold-user slice: users with at most ``--cold`` training interactions.

Usage::

    python benchmarks/quality.py -c configs/ml-100k.yaml --artifacts artifacts/ml-100k
    python benchmarks/quality.py -c configs/ml-latest-small.yaml --variants kgrec,no_kd
    python benchmarks/quality.py -c configs/ml-100k.yaml --device cuda --seeds 0,1,2

Prints a Markdown table (paste into docs/benchmarks.md) and writes all figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import torch

from kgrec.build import build_graph, load_artifact
from kgrec.config import Config, load_config, set_key
from kgrec.eval.baselines import fit_baseline
from kgrec.eval.metrics import evaluate_ranking
from kgrec.eval.report import evaluate_score_fn
from kgrec.progress import RichReporter
from kgrec.text.features import compute_features, features_path, load_features
from kgrec.train.checkpoint import load_checkpoint
from kgrec.train.trainer import train

VARIANTS: dict[str, dict[str, Any]] = {
    "kgrec": {},
    "no_kd": {"train.kd_teacher": "none"},
    "no_text": {"model.use_text": False},
    "no_kg": {"model.use_kg": False},
}
BASELINES = ("popular", "itemknn", "ease", "lightgcn")
SEEDED_BASELINES = ("lightgcn",)


def hardware() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"{platform.machine()} CPU, {torch.get_num_threads()} threads"


def prepare(config: Config) -> None:
    """Build the artifact (no database) and the text features unless they exist."""
    folder = config.artifacts_dir
    if not (folder / "graph.pt").exists():
        build_graph(set_key(config, "store.enabled", False), RichReporter())
    if not features_path(folder).exists():
        compute_features(folder, config.features, config.state_path / "text-cache", RichReporter())


def cold_users(config: Config, max_train: int) -> torch.Tensor:
    """Test users with at most ``max_train`` training interactions ``[n]``."""
    artifact = load_artifact(config.artifacts_dir)
    degree = torch.bincount(
        artifact.split_edge_index["train"][0], minlength=artifact.num_nodes["user"]
    )
    test_users = artifact.split_edge_index["test"][0].unique()
    return test_users[degree[test_users] <= max_train]


def _group(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Rows by model name, in first-seen order (one row per seed)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["model"], []).append(row)
    return groups


def _mean_std(values: list[float]) -> str:
    """``0.0897`` for one value, ``0.0897 ± 0.0012`` (sample std) for several."""
    mean = sum(values) / len(values)
    if len(values) == 1:
        return f"{mean:.4f}"
    std = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
    return f"{mean:.4f} ± {std:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--config", required=True)
    parser.add_argument("--artifacts", default=None)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--baselines", default=",".join(BASELINES))
    parser.add_argument("--cold", type=int, default=20, help="cold users: ≤ this many train rows")
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--seeds",
        default="0",
        help="comma-separated seeds for the seeded models (LightGCN, kgrec variants); the "
        "table shows the mean and, with several seeds, the standard deviation",
    )
    parser.add_argument(
        "--out", default=None, help="JSON results (default: <artifacts>/quality.json)"
    )
    args = parser.parse_args()

    overrides: dict[str, Any] = {"train.device": args.device}
    if args.artifacts:
        overrides["artifacts"] = args.artifacts
    config = load_config(args.config, overrides)
    prepare(config)
    artifact = load_artifact(config.artifacts_dir)
    x_dict, _ = load_features(config.artifacts_dir)
    cold = cold_users(config, args.cold)
    rows: list[dict[str, Any]] = []

    def add(name: str, score_fn: Any, seconds: float, extra: dict[str, Any]) -> None:
        row = evaluate_score_fn(name, score_fn, artifact, "test", config.eval, extra=extra)
        row["train_seconds"] = round(seconds, 1)
        cold_metrics = evaluate_ranking(score_fn, artifact, split="test", users=cold).values
        row["cold"] = {"users": len(cold), "ndcg@20": cold_metrics["ndcg@20"]}
        rows.append(row)
        m = row["metrics"]
        print(
            f"{name} (seed {extra.get('seed')}): recall@20 {m['recall@20']:.4f} "
            f"ndcg@20 {m['ndcg@20']:.4f} "
            f"coverage@20 {m['coverage@20']:.4f} cold ndcg@20 {cold_metrics['ndcg@20']:.4f} "
            f"({seconds:.0f} s)",
            flush=True,
        )

    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    for name in [b for b in args.baselines.split(",") if b]:
        for seed in seeds if name in SEEDED_BASELINES else [None]:
            clock = time.perf_counter()
            params: dict[str, Any] = {"device": args.device} if name == "lightgcn" else {}
            if seed is not None:
                params["seed"] = seed
            baseline = fit_baseline(name, artifact, **params)
            add(name, baseline.score, time.perf_counter() - clock, {"seed": seed})

    for name in [v for v in args.variants.split(",") if v]:
        for seed in seeds:
            variant = set_key(config, "train.seed", seed)
            for key, value in VARIANTS[name].items():
                variant = set_key(variant, key, value)
            out = config.artifacts_dir / "benchmark" / (name if seed == 0 else f"{name}-seed{seed}")
            clock = time.perf_counter()
            result = train(artifact, x_dict, variant.model, variant.train, out=out)
            seconds = time.perf_counter() - clock
            model, _ = load_checkpoint(result.checkpoint)
            extra = {
                "seed": seed,
                "epochs": len(result.history),
                "s_per_epoch": seconds / max(len(result.history), 1),
                "val_ndcg@20": result.best_metrics.get("ndcg@20"),
            }
            add(name, model.score, seconds, extra)

    dataset = config.dataset.name or Path(config.dataset.path).name
    print(
        f"\n{dataset}, split {config.split.method} (test), full ranking, seen items masked; "
        f"hardware: {hardware()}; seed {config.train.seed}\n"
    )
    print(
        "| model | Recall@20 | NDCG@20 | Coverage@20 | NDCG@20 cold users "
        f"(≤{args.cold} train, n={len(cold)}) | train s | s/epoch |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, group in _group(rows).items():
        cells = [
            _mean_std([r["metrics"][key] for r in group])
            for key in ("recall@20", "ndcg@20", "coverage@20")
        ]
        cells.append(_mean_std([r["cold"]["ndcg@20"] for r in group]))
        seconds = sum(r["train_seconds"] for r in group) / len(group)
        per_epoch = [r["s_per_epoch"] for r in group if "s_per_epoch" in r]
        epoch_cell = f"{sum(per_epoch) / len(per_epoch):.2f}" if per_epoch else "-"
        print(f"| {name} | {' | '.join(cells)} | {seconds:.1f} | {epoch_cell} |")
    target = Path(args.out) if args.out else config.artifacts_dir / "quality.json"
    target.write_text(
        json.dumps(
            {"dataset": dataset, "hardware": hardware(), "seeds": seeds, "rows": rows}, indent=2
        )
        + "\n"
    )
    print(f"\nwrote {target}")


if __name__ == "__main__":
    main()
