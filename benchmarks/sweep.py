"""Hyper-parameter sweep for kgrec, selected on validation, reported on test.

Trains kgrec once per point of a grid of config overrides and per seed, with the same protocol
as ``benchmarks/quality.py`` (:mod:`kgrec.eval.protocol`: ``train()`` selects on validation and
refits on training + validation; the refitted model is tested once), and prints the whole table:
every point's validation NDCG@20 (what the selection sees) next to its test NDCG@20 / Recall@20
(reported, never used to choose). The point with the best mean validation NDCG@20 over seeds is
marked; test figures of the other points are shown only to see how well validation predicts
test, not to pick from.

Usage::

    python benchmarks/sweep.py -c configs/ml-100k.yaml --protocol loo \\
        --features-from /work/main/artifacts/ml-100k \\
        --grid train.kd_weight=0.5,1,2 model.embedding_dim=64,128 --seeds 0,1
    python benchmarks/sweep.py -c configs/demo.yaml --protocol ratio \\
        --grid train.cl_weight=0,0.1 --set train.epochs=5        # a smoke run
    python benchmarks/sweep.py -c configs/lastfm.yaml --protocol ratio --device cuda --jobs 4 \\
        --grid model.use_kg=true,false
    python benchmarks/sweep.py -c configs/lastfm.yaml --protocol ratio --set train.refit=false \\
        --points base model.temperature=0.05 train.kd_weight=0.5,train.lr=0.001

Values are parsed as YAML scalars (``true``, ``0.5``, ``text``; ``--set`` also takes lists,
``train.blend_grid=[0,5,50]``). ``--points`` adds single points (one-at-a-time changes; ``base`` =
no change) after the grid's product. Points run in one process (``--jobs 1``) tune the teacher
once when their teacher settings agree. The artifact is built (and its text features computed
or copied, ``--features-from``) as in ``benchmarks/quality.py``. ``--jobs`` > 1 trains points in
parallel worker processes (they share the device). Writes every run as
JSON (``--out``, default ``<artifacts>/sweep.json``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing as mp
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml


@dataclass(frozen=True)
class Task:
    """One grid point and seed; everything a worker needs to rebuild the config."""

    config: str
    protocol: str
    artifacts: str | None
    base: dict[str, Any]
    point: dict[str, Any]
    seed: int
    name: str


def parse_grid(items: list[str], what: str = "--grid") -> dict[str, list[Any]]:
    """``["a.b=1,2", "c.d=true"]`` -> ``{"a.b": [1, 2], "c.d": [True]}`` (YAML scalars)."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key.strip() or not values:
            raise SystemExit(f"error: {what} expects key=v1,v2,... got {item!r}")
        grid[key.strip()] = [yaml.safe_load(v) for v in values.split(",")]
    return grid


def parse_points(items: list[str]) -> list[dict[str, Any]]:
    """``["a.b=1,c.d=x", "a.b=2"]`` -> ``[{"a.b": 1, "c.d": "x"}, {"a.b": 2}]``: each item one
    point (one value per key), for one-at-a-time changes that a product grid cannot express;
    ``base`` is the point with no change."""
    points = []
    for item in items:
        point: dict[str, Any] = {}
        for part in item.split(",") if item != "base" else []:
            key, sep, value = part.partition("=")
            if not sep or not key.strip() or not value:
                raise SystemExit(f"error: --points expects key=value,key=value ... got {item!r}")
            point[key.strip()] = yaml.safe_load(value)
        points.append(point)
    return points


def points_of(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The grid's product (in key order), then the ``--points``."""
    grid = parse_grid(args.grid)
    product = [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]
    extra = parse_points(getattr(args, "points", None) or [])
    return (product if grid or not extra else []) + extra


def tasks_of(args: argparse.Namespace, base: dict[str, Any]) -> list[Task]:
    """One :class:`Task` per point (:func:`points_of`) and seed."""
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    tasks = []
    for point in points_of(args):
        label = ",".join(f"{k.split('.')[-1]}={v}" for k, v in point.items()) or "base"
        for seed in seeds:
            name = f"{label},seed={seed}".replace("/", "_")
            tasks.append(Task(args.config, args.protocol, args.artifacts, base, point, seed, name))
    return tasks


def config_of(task: Task) -> Any:
    """The task's :class:`~kgrec.config.Config` (base overrides, protocol, point, seed)."""
    from kgrec.config import load_config, set_key
    from kgrec.eval.protocol import protocol_config

    config = load_config(task.config, task.base)
    config = protocol_config(config, task.protocol, task.artifacts)
    for key, value in task.point.items():
        config = set_key(config, key, value)
    return set_key(config, "train.seed", task.seed)


def run_task(task: Task, teachers: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train and test one grid point (in this process or a worker). ``teachers`` caches tuned
    teachers across the points of one process (points that differ only in GNN settings tune
    the teacher once; each is charged the tuning seconds, see ``train_and_test``)."""
    from kgrec.build import load_artifact
    from kgrec.errors import KgrecError
    from kgrec.eval.protocol import train_and_test
    from kgrec.progress import Reporter
    from kgrec.text.features import features_path, load_features

    try:
        config = config_of(task)
        folder = config.artifacts_dir
        artifact = load_artifact(folder)
        x_dict = load_features(folder)[0] if features_path(folder).exists() else None
        run = train_and_test(  # the served model first (its halves follow)
            task.name, artifact, x_dict, config, folder / "sweep" / task.name, Reporter(), teachers
        )[0]
    except KgrecError as exc:
        return {"name": task.name, "point": task.point, "seed": task.seed, "error": str(exc)}
    return {
        "name": task.name,
        "point": task.point,
        "seed": task.seed,
        "val_ndcg@20": run.validation,
        "test_ndcg@20": run.metrics["ndcg@20"],
        "test_recall@20": run.metrics["recall@20"],
        "seconds": run.seconds,
        "extra": {k: v for k, v in run.extra.items() if k != "checkpoint"},
    }


def table(runs: list[dict[str, Any]], keys: list[str]) -> list[str]:
    """Markdown rows, best mean validation NDCG@20 first; the first row is the selection."""
    points: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        if "error" not in run:
            label = json.dumps({k: run["point"][k] for k in keys if k in run["point"]})
            points.setdefault(label, []).append(run)
    rows = []
    for label, group in points.items():
        val = [r["val_ndcg@20"] for r in group]
        test = [r["test_ndcg@20"] for r in group]
        recall = [r["test_recall@20"] for r in group]
        rows.append((float(np.mean(val)), label, group, test, recall))
    rows.sort(key=lambda r: -r[0])

    def fig(values: list[float]) -> str:
        m = float(np.mean(values))
        return f"{m:.4f}" if len(values) < 2 else f"{m:.4f} ± {float(np.std(values, ddof=1)):.4f}"

    lines = [
        "| point | seeds | val NDCG@20 (selects) | test NDCG@20 | test Recall@20 | train s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for rank, (_, label, group, test, recall) in enumerate(rows):
        mark = " **(selected)**" if rank == 0 else ""
        seconds = float(np.mean([r["seconds"] for r in group]))
        val_text = fig([r["val_ndcg@20"] for r in group])
        lines.append(
            f"| `{label}`{mark} | {len(group)} | {val_text} | {fig(test)} | {fig(recall)} "
            f"| {seconds:.1f} |"
        )
    return lines


def main(argv: list[str] | None = None) -> None:
    from kgrec.config import parse_overrides
    from kgrec.errors import KgrecError
    from kgrec.eval.protocol import PROTOCOLS, prepare
    from kgrec.progress import RichReporter

    doc = __doc__ or ""
    parser = argparse.ArgumentParser(
        description=doc.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(doc.split("\n\n")[1:]),
    )
    parser.add_argument("-c", "--config", required=True, help="dataset config (configs/*.yaml)")
    parser.add_argument("--protocol", default="loo", choices=list(PROTOCOLS))
    parser.add_argument("--artifacts", default=None, help="default: artifacts/<dataset>-<protocol>")
    parser.add_argument("--features-from", default=None, help="artifact folder with features.pt")
    parser.add_argument("--grid", nargs="*", default=[], help="config key=v1,v2 ...")
    parser.add_argument(
        "--points", nargs="*", default=[], help="extra points, each key=value[,key=value]"
    )
    parser.add_argument("--set", nargs="*", default=[], help="config key=value for every point")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--jobs", type=int, default=1, help="parallel worker processes")
    parser.add_argument("--out", default=None, help="JSON (default: <artifacts>/sweep.json)")
    args = parser.parse_args(argv)

    try:
        base = {**parse_overrides(args.set), "train.device": args.device}
        tasks = tasks_of(args, base)
        config = config_of(tasks[0])  # bad keys fail here, before any training
        for task in tasks[1:]:
            config_of(task)
        features_from = Path(args.features_from) if args.features_from else None
        reporter = RichReporter()
        for note in prepare(config, features_from, reporter):
            reporter.note(note)
    except KgrecError as exc:
        raise SystemExit(f"error: {exc}") from None

    runs: list[dict[str, Any]] = []

    def log(run: dict[str, Any]) -> None:
        runs.append(run)
        print(json.dumps(run, default=float), file=sys.stderr, flush=True)

    if args.jobs <= 1:
        teachers: dict[str, Any] = {}
        for task in tasks:
            log(run_task(task, teachers))
    else:
        context = mp.get_context("spawn")  # CUDA needs fresh processes
        with context.Pool(args.jobs) as pool:
            for run in pool.imap_unordered(run_task, tasks):
                log(run)

    keys = list(dict.fromkeys(k for point in points_of(args) for k in point))
    print(
        f"\n{args.config}, protocol `{args.protocol}`: every point selected on validation "
        f"NDCG@20 (mean over seeds {args.seeds}); test shown, never used to choose.\n"
    )
    print("\n".join(table(runs, keys)))
    failed = [r for r in runs if "error" in r]
    for run in failed:
        print(f"failed: {run['name']}: {run['error']}", file=sys.stderr)
    target = Path(args.out) if args.out else config.artifacts_dir / "sweep.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(runs, indent=2, default=float) + "\n", encoding="utf-8")
    print(f"\nwrote {target}", file=sys.stderr)
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
