"""Quality benchmark: tuned baselines and kgrec variants, one protocol, one evaluator, tested once.

For a dataset config and a protocol (``--protocol loo|ratio|given``, see
:mod:`kgrec.eval.protocol`) this

1. builds the artifact if needed (``artifacts/<dataset>-<protocol>``, no database) and its text
   features (``--features-from`` copies them from another artifact folder of the same dataset,
   e.g. ``/work/main/artifacts/ml-100k``: node ids do not depend on the split);
2. tunes every baseline on validation (grids in ``kgrec/eval/baselines.py``), refits the chosen
   point on training + validation and tests it once; LightGCN once per seed, its grid searched
   on the first seed only (later seeds train the chosen point, early-stopped on their own
   validation run: :func:`chosen_grid`);
3. trains every kgrec variant (:data:`VARIANTS`) per seed with ``train()`` (which selects on
   validation and refits) and tests it once;
4. reports, per model: test NDCG@20 / Recall@20 / Coverage@20 (mean ± sample std over seeds), the
   NDCG@20 of cold users (≤ ``--cold`` training interactions), the validation NDCG@20 behind its
   selection, train seconds, the ratio to the best tuned baseline (best by *test* mean among
   baselines: the conservative choice) and a paired bootstrap 95% interval of (model - best
   baseline) NDCG@20 over test users (per-user NDCG averaged over seeds).

Usage (artifacts folders are relative to the working directory)::

    python benchmarks/quality.py -c configs/ml-100k.yaml --protocol ratio --seeds 0,1,2 \\
        --features-from /work/main/artifacts/ml-100k --out results/ml-100k-ratio.json
    python benchmarks/quality.py -c configs/lastfm.yaml --protocol ratio --device cuda
    python benchmarks/quality.py -c configs/kgat.yaml --protocol given --device cuda \\
        --grid lightgcn.epochs=100 --baselines popular,ease,itemknn,rp3beta,lightgcn
    python benchmarks/quality.py -c configs/demo.yaml --protocol loo --seeds 0,1 --quick
    python benchmarks/quality.py -c configs/demo.yaml --protocol loo --variants kgrec \\
        --baselines popular,ease --set train.epochs=2      # a smaller smoke run
    python benchmarks/quality.py -c configs/ml-100k.yaml --protocol loo --variants "" \\
        --features-from /work/main/artifacts/ml-100k       # baselines only

Prints Markdown (paste into docs/benchmarks.md) and writes every figure as JSON (``--out``),
with the per-user NDCG@20 of every model beside it (``.npz``) to recompute any interval.

Every finished unit of work (one tuned baseline and seed, one variant and seed) is also saved
as soon as it ends, in ``<out>.runs/`` (written whole, then renamed). A run that was killed, or
that a longer run extends (more seeds, more baselines), goes on with ``--resume``: units already
there are read back instead of recomputed, provided they were made with the same data, split,
grid and config (otherwise the run stops and names the file)::

    python benchmarks/quality.py -c configs/lastfm.yaml --protocol ratio --seeds 0 --out r.json
    python benchmarks/quality.py -c configs/lastfm.yaml --protocol ratio --seeds 0,1,2 \
        --out r.json --resume                          # seed 0 is read back, 1 and 2 train
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from collections.abc import Callable
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from kgrec.build import load_artifact
from kgrec.config import Config, load_config, parse_overrides, set_key
from kgrec.errors import KgrecError
from kgrec.eval.baselines import BASELINES, GRIDS, tune_baseline
from kgrec.eval.protocol import (
    PROTOCOLS,
    ModelRun,
    cold_users,
    dataset_name,
    evaluate_once,
    prepare,
    protocol_config,
    train_and_test,
)
from kgrec.eval.stats import mean_over_seeds, mean_std, paired_bootstrap
from kgrec.progress import RichReporter
from kgrec.text.features import features_path, load_features

Override = Any | Callable[[Config], Any]
VARIANTS: dict[str, dict[str, Override]] = {
    "kgrec": {},
    "gnn": {"train.serve": "gnn"},
    "teacher": {"train.serve": "teacher"},
    "no_kd": {"train.kd_weight": 0.0},
    "no_text": {  # no text anywhere: neither the GNN's input nor the teacher's text member
        "model.use_text": False,
        "teacher.components": lambda c: tuple(x for x in c.teacher.components if x != "text"),
    },
    "no_kg": {  # no knowledge graph anywhere: neither the GNN nor the teacher's entity member
        "model.use_kg": False,
        "teacher.components": lambda c: tuple(x for x in c.teacher.components if x != "entity"),
    },
    "cl": {"train.cl_weight": 0.1},
    # sampled softmax (what catalogues too large for a full step train on): the step's items
    # plus 256 shared negatives, a fraction of the catalogue on MovieLens and Last.fm
    "sampled": {"train.item_sampling": "sampled", "train.num_negatives": 256},
}
"""kgrec variants: config overrides (a callable computes the value from the base config)."""

QUICK_GRIDS: dict[str, dict[str, tuple[Any, ...]]] = {
    "ease": {"l2": (100.0, 400.0, 1600.0)},
    "recency_ease": {"l2": (100.0, 400.0, 1600.0), "decay": (0.8, 0.95, 1.0)},
    "itemknn": {"k": (20, 100), "shrink": (10.0,)},
    "recency_itemknn": {"k": (20, 100), "shrink": (10.0,), "decay": (0.9, 1.0)},
    "rp3beta": {"alpha": (0.5, 0.9), "beta": (0.3,)},
    "recency_rp3beta": {"alpha": (0.5, 0.9), "beta": (0.3,), "decay": (0.9, 1.0)},
    "lightgcn": {"embedding_dim": (64,), "lr": (5e-3,), "epochs": (20,), "eval_every": (2,)},
    "sasrec": {"dropout": (0.2,), "max_len": (50,), "epochs": (4,), "eval_every": (2,)},
}
"""``--quick``: smaller baseline grids (replacing those keys of :data:`GRIDS`), for smoke runs."""

QUICK_SET = {"train.epochs": 5}
"""``--quick``: kgrec config overrides (``--set`` still wins)."""

SEEDED = frozenset({"lightgcn", "sasrec"})
"""Baselines trained once per seed (the others are deterministic)."""

STOPPED = frozenset({"epochs"})
"""Grid keys a fit chooses itself (early stopping): their upper bound stays the grid's."""

ADDED_KEYS: dict[str, dict[str, Any]] = {
    "train": {"item_sampling": "auto", "num_negatives": 4096},
}
"""Config keys added after some saved units, with the value that keeps the behaviour from before
them. A unit whose saved config lacks such a key reads back only while the run holds that value:
``train.item_sampling`` (issue 11) came after the Last.fm units, which took full steps, and
``auto`` takes full steps wherever one fits in half the free memory (Last.fm: 0.65 GiB)."""


def chosen_grid(grid: dict[str, tuple[Any, ...]], params: dict[str, Any]) -> dict[str, Any]:
    """The one-point grid of ``params`` (a seeded baseline's choice on its first seed), with the
    :data:`STOPPED` keys left at ``grid``'s values so that each seed early-stops on its own."""
    return {
        key: values if key in STOPPED or key not in params else (params[key],)
        for key, values in grid.items()
    }


def variant_config(config: Config, name: str, seed: int) -> Config:
    """``config`` with variant ``name``'s overrides and ``train.seed``."""
    if name not in VARIANTS:
        raise KgrecError(f"unknown variant {name!r} (known: {', '.join(VARIANTS)})")
    for key, value in VARIANTS[name].items():
        config = set_key(config, key, value(config) if callable(value) else value)
    return set_key(config, "train.seed", seed)


def reads_text(config: Config) -> bool:
    """Whether a kgrec run under ``config`` reads the text features (GNN input or teacher)."""
    return config.model.use_text or "text" in config.teacher.components


def parse_assignments(items: list[str], what: str) -> dict[str, list[Any]]:
    """``["a.b=1,2", "c=true"]`` -> ``{"a.b": [1, 2], "c": [True]}`` (YAML scalars)."""
    out: dict[str, list[Any]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key.strip() or not values:
            raise KgrecError(f"{what} expects key=value[,value...], got {item!r}")
        out[key.strip()] = [yaml.safe_load(v) for v in values.split(",")]
    return out


def baseline_grids(items: list[str], quick: bool = False) -> dict[str, dict[str, tuple[Any, ...]]]:
    """:data:`GRIDS` (with :data:`QUICK_GRIDS` when ``quick``) and ``--grid name.key=v1,v2``."""
    grids = {name: dict(grid) for name, grid in GRIDS.items()}
    if quick:
        for name, grid in QUICK_GRIDS.items():
            grids[name].update(grid)
    for dotted, values in parse_assignments(items, "--grid").items():
        name, _, key = dotted.partition(".")
        if name not in grids or key not in grids[name]:
            raise KgrecError(f"--grid {dotted}: no such baseline parameter")
        grids[name][key] = tuple(values)
    return grids


def unit_path(folder: Path, name: str, seed: int | None) -> Path:
    """Where the unit of model ``name`` and ``seed`` is saved (``None``: deterministic)."""
    return folder / f"{name.replace(':', '_')}-seed{'none' if seed is None else seed}.pt"


def canonical(spec: Any) -> str:
    """``spec`` as canonical JSON (sorted keys; tuples as lists; other objects as text)."""
    return json.dumps(spec, sort_keys=True, default=str)


def run_meta(run: ModelRun) -> dict[str, Any]:
    """``run``'s fields but its per-user tensors (``users``, ``ndcg``), for JSON."""
    return {f.name: getattr(run, f.name) for f in fields(run) if f.name not in ("users", "ndcg")}


def save_unit(path: Path, spec: Any, runs: list[ModelRun], info: Any = None) -> None:
    """Save ``runs`` (with what made them, ``spec``, and ``info``) to ``path``, whole or not at all.

    Tensors are stored as tensors and everything else as JSON text, so that the file loads
    with ``torch.load(weights_only=True)``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "spec": canonical(spec),
        "info": json.dumps(info, default=float),
        "runs": [
            {
                "meta": json.dumps(run_meta(r), default=float),
                "users": r.users,
                "ndcg": r.ndcg,
            }
            for r in runs
        ],
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def before_added(spec: Any, saved: Any) -> Any:
    """``spec`` as a unit saved before the :data:`ADDED_KEYS` that ``saved`` lacks would record
    it: each such key is dropped from ``spec["config"]`` while it holds the value that keeps the
    earlier behaviour (any other value still makes the unit another configuration)."""
    config, old = spec.get("config"), saved.get("config")
    if not isinstance(config, dict) or not isinstance(old, dict):
        return spec
    config = dict(config)
    for section, keys in ADDED_KEYS.items():
        values = dict(config.get(section, {}))
        for key, value in keys.items():
            if key not in old.get(section, {}) and values.get(key) == value:
                del values[key]
        config[section] = values
    return {**spec, "config": config}


def load_unit(path: Path, spec: Any) -> tuple[list[ModelRun], Any] | None:
    """The runs and info saved at ``path`` (``None`` when there is no file).

    Raises:
        KgrecError: the file was made with another ``spec`` (data, split, grid or config).
    """
    if not path.exists():
        return None
    payload = torch.load(path, weights_only=True)
    saved = payload["spec"]
    if saved != canonical(spec) and saved != canonical(before_added(spec, json.loads(saved))):
        raise KgrecError(
            f"{path}: saved by a run with other data, split, grid or config; "
            "delete it (or the folder) or run without --resume"
        )
    runs = [
        ModelRun(**json.loads(r["meta"]), users=r["users"], ndcg=r["ndcg"]) for r in payload["runs"]
    ]
    return runs, json.loads(payload["info"])


def hardware(device: str) -> str:
    if device != "cpu" and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"{platform.machine()} CPU, {torch.get_num_threads()} threads"


def summarize(
    runs: list[ModelRun], baselines: list[str], cold: torch.Tensor, resamples: int
) -> dict[str, Any]:
    """Per model: mean ± std over seeds, ratio and paired interval against the best baseline."""
    groups: dict[str, list[ModelRun]] = {}
    for run in runs:
        groups.setdefault(run.model, []).append(run)
    per_user = {m: mean_over_seeds([r.ndcg.numpy() for r in g]) for m, g in groups.items()}
    mean = {m: mean_std([r.metrics["ndcg@20"] for r in g]).mean for m, g in groups.items()}
    tested = [b for b in baselines if b in groups]
    best = max(tested, key=lambda b: mean[b]) if tested else None
    rows = []
    for model, group in groups.items():
        row: dict[str, Any] = {"model": model, "seeds": [r.seed for r in group]}
        for key in ("ndcg@20", "recall@20", "coverage@20"):
            row[key] = asdict(mean_std([r.metrics[key] for r in group]))
        row["cold_ndcg@20"] = asdict(mean_std([r.ndcg_of(cold) for r in group]))
        row["val_ndcg@20"] = asdict(mean_std([r.validation for r in group]))
        row["train_seconds"] = float(np.mean([r.seconds for r in group]))
        if best is not None and model != best:
            row["ratio_to_best_baseline"] = mean[model] / mean[best] if mean[best] else None
            ci = paired_bootstrap(per_user[model], per_user[best], resamples=resamples, seed=0)
            row["vs_best_baseline"] = asdict(ci)
        rows.append(row)
    return {"best_baseline": best, "rows": rows, "per_user": per_user}


def markdown(summary: dict[str, Any], header: str, cold: int, n_cold: int) -> str:
    def fig(d: dict[str, Any]) -> str:
        return f"{d['mean']:.4f}" if d["std"] is None else f"{d['mean']:.4f} ± {d['std']:.4f}"

    best = summary["best_baseline"]
    lines = [
        header,
        "",
        f"| model | val NDCG@20 | NDCG@20 | Recall@20 | Coverage@20 | NDCG@20 cold "
        f"(≤{cold}, n={n_cold}) | ratio to {best} | Δ NDCG@20 vs {best} [95% CI] | train s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in summary["rows"]:
        ci = row.get("vs_best_baseline")
        interval = (
            f"{ci['difference']:+.4f} [{ci['low']:+.4f}, {ci['high']:+.4f}]"
            + (" ✓" if ci["low"] > 0 else "")
            if ci
            else "-"
        )
        ratio = row.get("ratio_to_best_baseline")
        cells = [fig(row[k]) for k in ("val_ndcg@20", "ndcg@20", "recall@20", "coverage@20")]
        cells += [fig(row["cold_ndcg@20"]), f"{ratio:.3f}" if ratio else "-", interval]
        name = f"**{row['model']}**" if row["model"] == best else row["model"]
        lines.append(f"| {name} | {' | '.join(cells)} | {row['train_seconds']:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join((__doc__ or "").split("\n\n")[1:]),
    )
    parser.add_argument("-c", "--config", required=True, help="dataset config (configs/*.yaml)")
    parser.add_argument("--protocol", required=True, choices=list(PROTOCOLS))
    parser.add_argument("--artifacts", default=None, help="default: artifacts/<dataset>-<protocol>")
    parser.add_argument(
        "--features-from", default=None, help="artifact folder to copy features from"
    )
    parser.add_argument("--baselines", default=",".join(BASELINES))
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--seeds", default="0,1,2", help="seeds of LightGCN and kgrec variants")
    parser.add_argument(
        "--baseline-seeds", default=None, help="seeds of LightGCN (default: --seeds)"
    )
    parser.add_argument("--cold", type=int, default=20, help="cold users: ≤ this many train rows")
    parser.add_argument("--device", default="auto", help="where LightGCN and kgrec train")
    parser.add_argument("--grid", nargs="*", default=[], help="baseline grid: name.key=v1,v2")
    parser.add_argument("--set", nargs="*", default=[], help="config key=value for every variant")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: small baseline grids (QUICK_GRIDS) and train.epochs=5",
    )
    parser.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples")
    parser.add_argument("--out", default=None, help="JSON (default: <artifacts>/quality.json)")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="read back the units a run with the same --out finished (<out>.runs/)",
    )
    args = parser.parse_args(argv)

    reporter = RichReporter()
    overrides = parse_overrides(args.set)
    overrides = {**(QUICK_SET if args.quick else {}), **overrides}
    config = load_config(args.config, {**overrides, "train.device": args.device})
    config = protocol_config(config, args.protocol, args.artifacts)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    baseline_seeds = (
        [int(s) for s in args.baseline_seeds.split(",") if s.strip()]
        if args.baseline_seeds
        else seeds
    )
    baselines = [b for b in args.baselines.split(",") if b]
    variants = [v for v in args.variants.split(",") if v]
    variant_configs = [variant_config(config, v, 0) for v in variants]  # unknown names fail now
    text = any(reads_text(c) for c in variant_configs)  # encode text only if a variant reads it
    unknown = [b for b in baselines if b not in GRIDS]
    if unknown:
        raise KgrecError(f"unknown baseline {unknown[0]!r} (known: {', '.join(BASELINES)})")
    grids = baseline_grids(args.grid, args.quick)
    features_from = Path(args.features_from) if args.features_from else None
    for note in prepare(config, features_from, reporter, features=text):
        reporter.note(note)
    artifact = load_artifact(config.artifacts_dir)
    x_dict = (
        load_features(config.artifacts_dir)[0]
        if text and features_path(config.artifacts_dir).exists()
        else None
    )
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device
    device = "cpu" if device == "auto" else device

    runs: list[ModelRun] = []
    tuned_info: dict[str, Any] = {}

    def log(run: ModelRun) -> None:
        runs.append(run)
        print(
            f"{run.model} (seed {run.seed}): val ndcg@20 {run.validation:.4f}, test ndcg@20 "
            f"{run.metrics['ndcg@20']:.4f} recall@20 {run.metrics['recall@20']:.4f} "
            f"({run.seconds:.0f} s)",
            file=sys.stderr,
            flush=True,
        )

    target = Path(args.out) if args.out else config.artifacts_dir / "quality.json"
    units = target.with_suffix(".runs")
    counts = {s: int(e.size(1)) for s, e in artifact.split_edge_index.items()}
    fingerprint = {
        "dataset": dataset_name(config),
        "protocol": args.protocol,
        "split": asdict(config.split),
        "counts": counts,
        "cold": args.cold,
    }

    def resumed(path: Path, spec: Any) -> tuple[list[ModelRun], Any] | None:
        found = load_unit(path, spec) if args.resume else None
        if found is not None:
            reporter.note(f"read back {path} (--resume)")
        return found

    for name in baselines:
        chosen: dict[str, Any] | None = None  # a seeded baseline's choice on its first seed
        for seed in baseline_seeds if name in SEEDED else [None]:
            path = unit_path(units, name, seed)
            grid = grids[name] if chosen is None else chosen_grid(grids[name], chosen)
            spec = {**fingerprint, "baseline": name, "grid": grid, "seed": seed}
            found = resumed(path, spec)
            key = f"{name}" if seed is None else f"{name}/seed{seed}"
            if found is not None:
                tuned_info[key] = found[1]
                chosen = chosen if chosen is not None else dict(found[1]["params"])
                for run in found[0]:
                    log(run)
                continue
            tuned = tune_baseline(
                name, artifact, grid=grid, seed=seed or 0, device=device, reporter=reporter
            )
            chosen = chosen if chosen is not None else dict(tuned.params)
            info = {"params": tuned.params, "validation": tuned.validation, "notes": tuned.notes}
            info["trials"] = [asdict(t) for t in tuned.trials]
            tuned_info[key] = info
            run = evaluate_once(
                name,
                tuned.score_fn(),
                artifact,
                seed=seed,
                validation=tuned.validation,
                seconds=tuned.seconds,
                config=config,
                extra={"params": tuned.params},
            )
            save_unit(path, spec, [run], info)
            log(run)
            del tuned
    teachers: dict[str, Any] = {}  # tuned once per teacher config, shared by the seeds
    for name in variants:
        for seed in seeds:
            vconfig = variant_config(config, name, seed)
            path = unit_path(units, name, seed)
            settings = asdict(vconfig)
            settings["train"].pop("device", None)  # where it ran does not change what it is
            settings["features"].pop("device", None)
            settings["train"].pop("keep_unused_gnn", None)  # train_and_test always keeps it
            spec = {**fingerprint, "variant": name, "config": settings}
            found = resumed(path, spec)
            if found is None:
                out = config.artifacts_dir / "benchmark" / f"{name}-seed{seed}"
                done = train_and_test(name, artifact, x_dict, vconfig, out, reporter, teachers)
                save_unit(path, spec, done)
                found = (done, None)
            for run in found[0]:
                log(run)

    cold = cold_users(artifact, args.cold)
    test_users = artifact.split_edge_index["test"][0].unique()
    n_cold = int(torch.isin(test_users, cold).sum())
    summary = summarize(runs, baselines, cold, args.bootstrap)
    header = (
        f"**{dataset_name(config)}**, protocol `{args.protocol}` ({config.split.method}), "
        f"seeds {args.seeds}; {artifact.num_nodes['user']:,} users, "
        f"{artifact.num_nodes['item']:,} items; interactions train {counts['train']:,} / "
        f"val {counts['val']:,} / test {counts['test']:,}; {len(test_users):,} test users. "
        f"Full ranking, training and validation items masked; every choice on validation, "
        f"refit on training + validation, test read once. Hardware: {hardware(device)}."
    )
    print(markdown(summary, header, args.cold, n_cold))
    print("\n| baseline | chosen on validation | points tried |\n|---|---|---:|")
    for key, info in tuned_info.items():
        params = ", ".join(f"{k}={v:g}" for k, v in info["params"].items())
        print(f"| {key} | {params} | {len(info['trials'])} |")

    target.parent.mkdir(parents=True, exist_ok=True)
    per_user = summary.pop("per_user")
    report = {
        "dataset": dataset_name(config),
        "protocol": args.protocol,
        "split": asdict(config.split),
        "hardware": hardware(device),
        "seeds": seeds,
        "command": " ".join(["python", *sys.argv]),
        "counts": counts,
        "cold": {"max_train": args.cold, "test_users": n_cold},
        "summary": summary,
        "baselines": tuned_info,
        "runs": [run_meta(r) for r in runs],
    }
    target.write_text(json.dumps(report, indent=2, default=float) + "\n", encoding="utf-8")
    users = runs[0].users.numpy() if runs else np.empty(0)
    np.savez_compressed(target.with_suffix(".npz"), users=users, **per_user)
    print(f"\nwrote {target} and {target.with_suffix('.npz')}", file=sys.stderr)


if __name__ == "__main__":
    try:
        main()
    except KgrecError as exc:
        raise SystemExit(f"error: {exc}") from None
