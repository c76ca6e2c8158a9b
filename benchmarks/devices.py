"""Training speed on each device: the same model, data, seed and number of epochs on CPU and GPU.

For a dataset config this trains kgrec (as configured, KD teacher included) for a fixed
number of epochs with early stopping off, on each ``--devices`` entry, then evaluates the
best validation checkpoint on the test split. It reports seconds per training epoch (epochs
without a validation run; the median), seconds per validation run, peak memory and the test
metrics, so one can check that a GPU gives the same model quality, only sooner.

Usage::

    python benchmarks/devices.py -c configs/ml-100k.yaml --artifacts artifacts/ml-100k \\
        --devices cpu --epochs 10
    python benchmarks/devices.py -c configs/ml-100k.yaml --devices cuda --epochs 10

The artifact and the text features must exist (``kgrec build-graph --no-db`` and ``kgrec
embed``, or ``benchmarks/quality.py`` which makes them). Prints a Markdown table and writes
the figures as JSON (``--out``).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from kgrec.config import load_config, set_key
from kgrec.data.hetero import load_artifact
from kgrec.eval.metrics import evaluate_ranking
from kgrec.text.features import load_features
from kgrec.train.checkpoint import load_checkpoint
from kgrec.train.trainer import train


def device_name(device: str) -> str:
    """Human name of ``device`` (the GPU model, or the CPU and its threads)."""
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"


def run(config_path: str, overrides: dict[str, Any], device: str, epochs: int) -> dict[str, Any]:
    """Train for exactly ``epochs`` epochs on ``device``; timings and test metrics."""
    config = load_config(config_path, overrides)
    config = set_key(config, "train.device", device)
    config = set_key(config, "train.epochs", epochs)
    config = set_key(config, "train.patience", epochs + 1)  # no early stop
    artifact = load_artifact(config.artifacts_dir)
    x_dict, _ = load_features(config.artifacts_dir)
    out = config.artifacts_dir / "benchmark" / f"devices-{device.replace(':', '')}"
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    clock = time.perf_counter()
    result = train(artifact, x_dict, config.model, config.train, out=out)
    seconds = time.perf_counter() - clock
    history = result.history
    plain = [r["seconds"] for r in history if "val" not in r]
    with_eval = [r["seconds"] for r in history if "val" in r]
    per_epoch = statistics.median(plain) if plain else None
    per_eval_epoch = statistics.median(with_eval) if with_eval else None
    model, _ = load_checkpoint(result.checkpoint)
    test = evaluate_ranking(model.score, artifact, split="test").values
    return {
        "device": device,
        "hardware": device_name(device),
        "epochs": len(history),
        "best_epoch": result.best_epoch,
        "s_per_epoch": per_epoch,
        "s_per_epoch_with_validation": per_eval_epoch,
        "total_seconds": seconds,
        "peak_memory_mb": max(r["peak_memory_mb"] for r in history),
        "val_ndcg@20": result.best_metrics.get("ndcg@20"),
        "test_ndcg@20": float(test["ndcg@20"]),
        "test_recall@20": float(test["recall@20"]),
        "final_loss": history[-1]["loss"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--config", required=True)
    parser.add_argument("--artifacts", default=None)
    parser.add_argument("--devices", default="cpu", help="comma-separated: cpu, cuda, cuda:1")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", default=None, help="JSON results (default: print only)")
    args = parser.parse_args()

    overrides: dict[str, Any] = {}
    if args.artifacts:
        overrides["artifacts"] = args.artifacts
    rows = []
    for device in [d.strip() for d in args.devices.split(",") if d.strip()]:
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise SystemExit(f"{device}: CUDA is not available on this machine")
        row = run(args.config, overrides, device, args.epochs)
        rows.append(row)
        print(json.dumps(row), flush=True)

    print(f"\n{args.config}, {args.epochs} epochs, early stopping off, torch {torch.__version__}\n")
    print(
        "| device | s/epoch | s/epoch with validation | peak MiB | best epoch | "
        "val NDCG@20 | test NDCG@20 | test Recall@20 | final loss |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        cells = [
            f"{r[key]:.2f}" if r[key] is not None else "-"
            for key in ("s_per_epoch", "s_per_epoch_with_validation")
        ]
        print(
            f"| {r['hardware']} | {cells[0]} | {cells[1]} | "
            f"{r['peak_memory_mb']:.0f} | {r['best_epoch']} | {r['val_ndcg@20']:.4f} | "
            f"{r['test_ndcg@20']:.4f} | {r['test_recall@20']:.4f} | {r['final_loss']:.4f} |"
        )
    if args.out:
        Path(args.out).write_text(json.dumps({"rows": rows}, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
