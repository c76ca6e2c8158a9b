"""Training speed on each device: the same model, data and seed on CPU and GPU.

For a dataset config this tunes the item-item teacher once (closed form, on the CPU; every
device shares it), then on each ``--devices`` entry:

1. **GNN steps**: builds the configured :class:`~kgrec.nn.model.KGRec` and times
   ``--steps`` calls of :meth:`kgrec.train.gnn.GNNTrainer.step` (one temporal cut per user of
   a ``train.batch_size`` batch: softmax over the catalogue, plus the distillation term with
   the teacher's scores when ``train.kd_weight > 0``) after ``--warmup`` untimed ones; it
   reports the median milliseconds per step, users per second and peak memory.
2. **Whole training** (``--epochs N``, skipped with 0): runs :func:`kgrec.train.trainer.train`
   (GNN distilled from the shared teacher, blend, refit, as configured) for exactly ``N``
   epochs with early stopping off, then tests the served model once. It reports seconds per
   GNN epoch (epochs without a validation run; the median), seconds per epoch with one, total
   seconds and the test metrics, so one can check that a GPU gives the same model quality,
   only sooner.

Usage::

    python benchmarks/devices.py -c configs/ml-100k.yaml --artifacts artifacts/ml-100k \\
        --devices cpu,cuda --steps 50 --epochs 10
    python benchmarks/devices.py -c configs/demo.yaml --devices cpu --steps 5 --epochs 0
    python benchmarks/devices.py -c syn.yaml --steps 20 --epochs 0 --set train.serve=gnn \
        train.kd_weight=0 train.item_sampling=sampled   # a large catalogue, no teacher
    python benchmarks/devices.py -c configs/ml-100k.yaml --steps 30 --epochs 0 \
        --teacher /tmp/run/teacher.pt      # the teacher of `kgrec train --out /tmp/run`

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

from kgrec.allocator import keep_freed_memory
from kgrec.config import Config, load_config, parse_overrides, set_key
from kgrec.data.hetero import GraphArtifact, load_artifact
from kgrec.data.history import History
from kgrec.eval.metrics import evaluate_ranking
from kgrec.eval.protocol import validator
from kgrec.files import load_torch
from kgrec.nn.ensemble import Ensemble
from kgrec.text.features import features_path, load_features
from kgrec.train.checkpoint import load_checkpoint
from kgrec.train.gnn import GNNTrainer, build_model, teacher_side
from kgrec.train.loop import MONITOR
from kgrec.train.teacher import tune_teacher
from kgrec.train.trainer import needs_teacher, peak_memory_mb, train


def device_name(device: str) -> str:
    """Human name of ``device`` (the GPU model, or the CPU and its threads)."""
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"


def time_steps(
    artifact: GraphArtifact,
    x_dict: dict[str, torch.Tensor],
    config: Config,
    teacher: Ensemble,
    device: str,
    steps: int,
    warmup: int,
) -> dict[str, Any]:
    """Median milliseconds of :meth:`GNNTrainer.step` on ``device``, and its peak memory."""
    torch.manual_seed(config.train.seed)
    dev = torch.device(device)
    history = History.from_artifact(artifact, ("train",))
    kd = teacher if config.train.kd_weight > 0 else None
    model = build_model(artifact, x_dict, config)
    trainer = GNNTrainer(model, history, kd, x_dict, config.train, dev)
    size = config.train.batch_size
    order = trainer.users[torch.randperm(trainer.users.numel(), generator=trainer.generator)]
    batches = [order[s : s + size] for s in range(0, order.numel(), size)] or [order]

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    for k in range(warmup):
        trainer.step(batches[k % len(batches)])
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    times, users, loss = [], 0, float("nan")
    for k in range(warmup, warmup + steps):
        batch = batches[k % len(batches)]
        sync()
        start = time.perf_counter()
        loss = trainer.step(batch)["loss"]
        sync()
        times.append(time.perf_counter() - start)
        users += batch.numel()
    return {
        "ms_per_step": statistics.median(times) * 1e3,
        "users_per_s": users / sum(times),
        "step_peak_memory_mb": peak_memory_mb(dev),
        "batch_size": size,
        "kd": kd is not None,
        "step_loss": loss,
    }


def train_once(
    artifact: GraphArtifact,
    x_dict: dict[str, torch.Tensor],
    config: Config,
    teacher: Ensemble,
    device: str,
) -> dict[str, Any]:
    """Train for exactly ``train.epochs`` epochs on ``device``; timings and test metrics."""
    out = config.artifacts_dir / "benchmark" / f"devices-{device.replace(':', '')}"
    clock = time.perf_counter()
    result = train(
        artifact,
        x_dict,
        config,
        validate=validator(artifact, config.eval.batch_size),
        out=out,
        tuned_teacher=teacher,
    )
    seconds = time.perf_counter() - clock
    history = result.history
    plain = [r["seconds"] for r in history if "val" not in r]
    with_eval = [r["seconds"] for r in history if "val" in r]
    hybrid, _ = load_checkpoint(result.checkpoint)
    served = hybrid.score_fn(History.from_artifact(artifact, ("train", "val")))
    test = evaluate_ranking(served, artifact, split="test", ks=(20,)).values
    return {
        "serves": result.kind,
        "epochs": len(history),
        "best_epoch": result.best_epoch,
        "s_per_epoch": statistics.median(plain) if plain else None,
        "s_per_epoch_with_validation": statistics.median(with_eval) if with_eval else None,
        "total_seconds": seconds,
        "val_ndcg@20": result.best_metrics.get(MONITOR),
        "test_ndcg@20": float(test["ndcg@20"]),
        "test_recall@20": float(test["recall@20"]),
        "final_loss": history[-1]["loss"] if history else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--config", required=True)
    parser.add_argument("--artifacts", default=None)
    parser.add_argument("--devices", default="cpu", help="comma-separated: cpu, cuda, cuda:1")
    parser.add_argument("--steps", type=int, default=50, help="timed GNN steps per device")
    parser.add_argument("--warmup", type=int, default=5, help="untimed GNN steps first")
    parser.add_argument("--epochs", type=int, default=10, help="whole training (0: skip)")
    parser.add_argument("--out", default=None, help="JSON results (default: print only)")
    parser.add_argument(
        "--teacher",
        default=None,
        help="teacher.pt of an earlier `kgrec train --out DIR` on this artifact and config "
        "(skips the tuning; lets two code versions be timed on the same teacher)",
    )
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        help="config key=value, e.g. train.item_sampling=sampled model.use_text=false",
    )
    args = parser.parse_args()
    keep_freed_memory()  # as train() does, so steps are timed under training's allocator

    overrides: dict[str, Any] = parse_overrides(args.set)
    if args.artifacts:
        overrides["artifacts"] = args.artifacts
    base = load_config(args.config, overrides)
    artifact = load_artifact(base.artifacts_dir)
    has_text = features_path(base.artifacts_dir).exists()  # `kgrec embed` was run
    x_dict = load_features(base.artifacts_dir)[0] if has_text else {}
    clock = time.perf_counter()
    history = History.from_artifact(artifact, ("train",))
    validate = validator(artifact, base.eval.batch_size)
    if not needs_teacher(base):  # GNN alone, not distilled: no item x item teacher
        teacher = Ensemble([], [])
    elif args.teacher:
        teacher = Ensemble.from_state(load_torch(Path(args.teacher), "kgrec train --out DIR"))
    else:
        teacher = tune_teacher(
            history,
            teacher_side(artifact, x_dict, base),
            base.teacher,
            lambda fn: float(validate(fn)[MONITOR]),
        )
    teacher_seconds = time.perf_counter() - clock
    print(json.dumps({"teacher": teacher.describe(), "seconds": teacher_seconds}, default=str))

    rows = []
    for device in [d.strip() for d in args.devices.split(",") if d.strip()]:
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise SystemExit(f"{device}: CUDA is not available on this machine")
        config = set_key(base, "train.device", device)
        # the GNN is refitted even where the blend leaves it out: every device does the same work
        config = set_key(config, "train.keep_unused_gnn", True)
        if args.epochs > 0:  # 0 skips the whole-training run (and is no valid train.epochs)
            config = set_key(config, "train.epochs", args.epochs)
            config = set_key(config, "train.patience", args.epochs + 1)  # no early stop
        row: dict[str, Any] = {"device": device, "hardware": device_name(device)}
        row |= time_steps(artifact, x_dict, config, teacher, device, args.steps, args.warmup)
        if args.epochs > 0:
            row |= train_once(artifact, x_dict, config, teacher, device)
        rows.append(row)
        print(json.dumps(row), flush=True)

    print(
        f"\n{args.config}, batch {base.train.batch_size} users, {args.steps} timed steps, "
        f"{args.epochs} epochs (early stopping off), teacher "
        + (f"from {args.teacher}" if args.teacher else f"tuned once in {teacher_seconds:.1f} s")
        + f" on the CPU, torch {torch.__version__}\n"
    )
    print(
        "| device | ms/step | users/s | step peak MiB | s/epoch | s/epoch with validation | "
        "serves | val NDCG@20 | test NDCG@20 | test Recall@20 |"
    )
    print("|---|---:|---:|---:|---:|---:|---|---:|---:|---:|")

    def cell(r: dict[str, Any], key: str, spec: str) -> str:
        return format(r[key], spec) if r.get(key) is not None else "-"

    for r in rows:
        print(
            f"| {r['hardware']} | {cell(r, 'ms_per_step', '.1f')} | "
            f"{cell(r, 'users_per_s', ',.0f')} | {cell(r, 'step_peak_memory_mb', '.0f')} | "
            f"{cell(r, 's_per_epoch', '.2f')} | {cell(r, 's_per_epoch_with_validation', '.2f')} "
            f"| {r.get('serves', '-')} | {cell(r, 'val_ndcg@20', '.4f')} | "
            f"{cell(r, 'test_ndcg@20', '.4f')} | {cell(r, 'test_recall@20', '.4f')} |"
        )
    if args.out:
        Path(args.out).write_text(json.dumps({"rows": rows}, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
