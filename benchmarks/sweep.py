"""Hyper-parameter sweep for kgrec, selected on validation, reported on test.

Trains one kgrec model per point of a grid of config overrides (and per seed), in parallel
worker processes that share the device, and prints every point's validation NDCG@20 (what
early stopping and the selection see) next to its test NDCG@20 (reported, never used to
choose). The best point by mean validation NDCG@20 is marked.

Usage::

    python benchmarks/sweep.py -c configs/ml-100k.yaml --device cuda --jobs 8 \\
        --grid train.kd_weight=0.5,1,2 model.embedding_dim=64,128 model.use_kg=true,false

Values are parsed as YAML scalars (``true``, ``0.5``, ``text``). Needs the artifact and the
text features (see ``benchmarks/quality.py``). Writes every run as JSON (``--out``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing as mp
import time
from pathlib import Path
from typing import Any

import yaml


def _worker(task: tuple[str, dict[str, Any], str]) -> dict[str, Any]:
    """Train and evaluate one grid point (runs in a child process)."""
    import torch

    from kgrec.build import load_artifact
    from kgrec.config import load_config, set_key
    from kgrec.eval.metrics import evaluate_ranking
    from kgrec.text.features import load_features
    from kgrec.train.checkpoint import load_checkpoint
    from kgrec.train.trainer import train

    config_path, overrides, name = task
    torch.set_num_threads(2)
    config = load_config(config_path)
    for key, value in overrides.items():
        config = set_key(config, key, value)
    artifact = load_artifact(config.artifacts_dir)
    x_dict, _ = load_features(config.artifacts_dir)
    clock = time.perf_counter()
    result = train(
        artifact, x_dict, config.model, config.train, out=config.artifacts_dir / "sweep" / name
    )
    model, _ = load_checkpoint(result.checkpoint)
    test = evaluate_ranking(model.score, artifact, split="test").values
    return {
        "name": name,
        "overrides": overrides,
        "val_ndcg@20": result.best_metrics.get("ndcg@20"),
        "test_ndcg@20": float(test["ndcg@20"]),
        "test_recall@20": float(test["recall@20"]),
        "epochs": len(result.history),
        "seconds": time.perf_counter() - clock,
    }


def parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """``["a.b=1,2", "c.d=true"]`` -> ``{"a.b": [1, 2], "c.d": [True]}``."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not values:
            raise SystemExit(f"--grid expects key=v1,v2,... got {item!r}")
        grid[key.strip()] = [yaml.safe_load(v) for v in values.split(",")]
    return grid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--config", required=True)
    parser.add_argument("--artifacts", default=None)
    parser.add_argument("--grid", nargs="+", default=[], help="key=v1,v2 ... (config keys)")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--jobs", type=int, default=1, help="parallel worker processes")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    grid = parse_grid(args.grid)
    base: dict[str, Any] = {"train.device": args.device}
    if args.artifacts:
        base["artifacts"] = args.artifacts
    tasks = []
    for point in itertools.product(*grid.values()):
        overrides = dict(zip(grid, point, strict=True))
        for seed in [int(s) for s in args.seeds.split(",")]:
            label = ",".join(f"{k.split('.')[-1]}={v}" for k, v in overrides.items())
            name = f"{label or 'base'},seed={seed}".replace("/", "_")
            tasks.append((args.config, {**base, **overrides, "train.seed": seed}, name))
    context = mp.get_context("spawn")  # CUDA needs fresh processes
    with context.Pool(max(args.jobs, 1)) as pool:
        runs = []
        for run in pool.imap_unordered(_worker, tasks):
            runs.append(run)
            print(json.dumps(run), flush=True)

    points: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        label = json.dumps({k: v for k, v in run["overrides"].items() if k in grid})
        points.setdefault(label, []).append(run)
    summary = sorted(
        (
            (
                sum(r["val_ndcg@20"] for r in group) / len(group),
                sum(r["test_ndcg@20"] for r in group) / len(group),
                label,
                len(group),
            )
            for label, group in points.items()
        ),
        reverse=True,
    )
    print(f"\n{args.config}: selected on validation NDCG@20 (mean over seeds {args.seeds})\n")
    print("| overrides | seeds | val NDCG@20 | test NDCG@20 |")
    print("|---|---:|---:|---:|")
    for rank, (val, test, label, n) in enumerate(summary):
        mark = " **(selected)**" if rank == 0 else ""
        print(f"| `{label}`{mark} | {n} | {val:.4f} | {test:.4f} |")
    if args.out:
        Path(args.out).write_text(json.dumps(runs, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
