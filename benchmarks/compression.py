"""Compression benchmark: distil a trained kgrec teacher into a student ≤ 1/4 its size.

Trains a student with ``model.embedding_dim = teacher_dim // ratio`` twice — with the teacher
checkpoint as distillation teacher and without distillation — and reports, with the teacher,
test NDCG@20 (full ranking), scoring throughput (users/s over the full catalogue, from the
stored serving embeddings) and checkpoint size.

Usage::

    python benchmarks/compression.py -c configs/ml-100k.yaml --artifacts artifacts/ml-100k \
        --teacher artifacts/ml-100k/model/model.pt --ratio 4
"""

from __future__ import annotations

import argparse
import json
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


def measure(name: str, checkpoint: Path, artifact: Any) -> dict[str, Any]:
    model, meta = load_checkpoint(checkpoint)
    ndcg = evaluate_ranking(model.score, artifact, split="test").values["ndcg@20"]
    users = torch.arange(artifact.num_nodes["user"])
    clock = time.perf_counter()
    for _ in range(5):
        for batch in users.split(1024):
            model.score(batch).topk(20, dim=1)
    throughput = 5 * len(users) / (time.perf_counter() - clock)
    return {
        "model": name,
        "embedding_dim": meta.model_args["embedding_dim"],
        "ndcg@20": ndcg,
        "users_per_s": throughput,
        "checkpoint_mb": checkpoint.stat().st_size / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--config", required=True)
    parser.add_argument("--artifacts", default=None)
    parser.add_argument("--teacher", required=True, help="teacher checkpoint (model.pt)")
    parser.add_argument("--ratio", type=int, default=4)
    args = parser.parse_args()

    config = load_config(args.config, {"artifacts": args.artifacts} if args.artifacts else {})
    artifact = load_artifact(config.artifacts_dir)
    x_dict, _ = load_features(config.artifacts_dir)
    teacher_path = Path(args.teacher)
    teacher, _ = load_checkpoint(teacher_path)
    dim = max(teacher.embedding_dim // args.ratio, 1)
    rows = [measure("teacher", teacher_path, artifact)]
    for name, kd in (("student (KD from teacher)", str(teacher_path)), ("student (no KD)", "none")):
        variant = set_key(set_key(config, "model.embedding_dim", dim), "train.kd_teacher", kd)
        out = config.artifacts_dir / "compression" / ("kd" if kd != "none" else "no_kd")
        result = train(artifact, x_dict, variant.model, variant.train, out=out)
        rows.append(measure(name, result.checkpoint, artifact))
    base = rows[0]["ndcg@20"]
    print(
        "| model | dim | NDCG@20 (test) | of teacher | users/s (full catalogue) | checkpoint MB |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['model']} | {row['embedding_dim']} | {row['ndcg@20']:.4f} | "
            f"{row['ndcg@20'] / base:.0%} | {row['users_per_s']:,.0f} | "
            f"{row['checkpoint_mb']:.1f} |"
        )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
