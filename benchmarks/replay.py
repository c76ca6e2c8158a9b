"""Replay benchmark: a stale model, fold-in (``kgrec add-interactions``) and retraining.

On a time-ordered dataset (ml-100k), a global cut-off (the timestamp at ``--quantile`` of all
interactions) splits the past from the stream. kgrec is trained with ``train()`` on everything
before it (each user's latest interaction before the cut-off is validation, refit on all).
Then the interactions after it are streamed day by day (UTC calendar days). On each day ``d``,
for the users active that day who had a history before it, NDCG@20 of day ``d``'s items
(full ranking over all items, everything the user did before day ``d`` masked;
:func:`kgrec.eval.metrics.evaluate_edges`) is computed for

- ``stale``: the cut-off model reading each user's history up to the cut-off;
- ``fold-in``: the same model reading the history up to day ``d - 1``, folded in day by day
  with :func:`kgrec.serve.live.fold_in` (the code path of ``kgrec add-interactions``);
- ``retrain``: a model retrained on everything before day ``d`` every ``--retrain-every``
  days (the same recipe); between retrains it serves with fold-in of the days since.

It reports per-day and mean NDCG@20, a paired bootstrap interval of fold-in - stale over the
(user, day) pairs of users known at the cut-off, NDCG@20 of users new since the cut-off
(fold-in and retrain only: the stale model has no history for them), the fold-in cost per
interaction and per user, and each training's seconds. Usage::

    python benchmarks/replay.py -c configs/ml-100k.yaml --retrain-every 12 --out replay.json
    python benchmarks/replay.py -c configs/demo.yaml --quick --max-days 4 --retrain-every 2
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from kgrec.build import read_dataset
from kgrec.config import Config, load_config, set_key
from kgrec.data.hetero import GraphArtifact, build_graph_artifact, build_id_map
from kgrec.data.history import History
from kgrec.data.split import split_interactions
from kgrec.data.validate import Dataset, validate
from kgrec.eval.metrics import evaluate_edges
from kgrec.eval.protocol import validator
from kgrec.eval.stats import paired_bootstrap
from kgrec.naming import ITEM, USER
from kgrec.serve.export import scorer_of
from kgrec.serve.live import Histories, fold_in
from kgrec.serve.scorer import HybridScorer
from kgrec.train.checkpoint import read_serving
from kgrec.train.trainer import train

DAY = 86_400
K = 20
QUICK = {  # a smaller recipe for every model alike (2 shared CPU cores)
    "model.use_text": False,
    "teacher.components": ["ease", "transition", "rp3beta", "entity"],
    "teacher.decays": [0.8, 0.9],
    "teacher.ease_l2": [200.0, 800.0],
    "teacher.transition_l2": [1000.0],
    "teacher.rp3_alpha": [0.5],
    "teacher.rp3_beta": [0.5],
    "teacher.weight_grid": [0.0, 0.5, 1.0],
    "train.epochs": 10,
    "train.eval_every": 5,
    "train.blend_grid": [0.0, 0.5, 1.0],
    "train.device": "cpu",
}


def before(dataset: Dataset, until: int, config: Config) -> GraphArtifact:
    """The artifact of ``dataset``'s interactions before ``until`` (all users and items kept,
    so every artifact shares one id map); each user's latest is validation, no test."""
    inter = dataset.interactions[dataset.interactions["timestamp"] < until].reset_index(drop=True)
    part = Dataset(dataset.name, inter, dataset.items, dataset.users, dataset.entities,
                   dataset.triples)  # fmt: skip
    labels = split_interactions(inter, set_key(config, "split.method", "temporal_loo").split)
    labels = labels.map({"test": "val", "val": "train", "train": "train"})
    return build_graph_artifact(part, labels, build_id_map(dataset))


def train_until(
    dataset: Dataset, until: int, config: Config, out: Path
) -> tuple[HybridScorer, float]:
    """Train kgrec on everything before ``until``; ``(served scorer, seconds)``."""
    artifact = before(dataset, until, config)
    clock = time.perf_counter()
    result = train(artifact, None, config, validate=validator(artifact), out=out)
    return scorer_of(read_serving(result.checkpoint)), time.perf_counter() - clock


def histories(dataset: Dataset, until: int, id_map: Any) -> Histories:
    """Every user's history before ``until`` (the layout of the serving bundle)."""
    inter = dataset.interactions[dataset.interactions["timestamp"] < until]
    users = id_map.index(USER, inter["user_id"])
    items = id_map.index(ITEM, inter["item_id"])
    edges = torch.from_numpy(np.stack([users, items]))
    num_users, num_items = id_map.num_nodes(USER), id_map.num_nodes(ITEM)
    h = History.from_edges(edges, torch.from_numpy(inter["timestamp"].to_numpy()), num_users,
                           num_items)  # fmt: skip
    keys = np.unique(users * num_items + items)
    seen_ptr = np.zeros(num_users + 1, dtype=np.int64)
    seen_ptr[1:] = np.cumsum(np.bincount(keys // num_items, minlength=num_users))
    return Histories([str(u) for u in id_map.ids[USER]], h.ptr.numpy(), h.item.numpy(),
                     h.age.numpy(), seen_ptr, keys % num_items,
                     np.zeros((num_users, 0), dtype=np.float32))  # fmt: skip


def ndcg(scorer: HybridScorer, h: Histories, day: pd.DataFrame, users: np.ndarray,
         mask: Histories, num_items: int) -> np.ndarray:  # fmt: skip
    """Per-user NDCG@20 ``[len(users)]`` (sorted users) of day ``day``'s pairs."""

    def score_fn(batch: torch.Tensor) -> torch.Tensor:
        rows = []
        for u in batch.tolist():
            lo, hi = int(h.history_indptr[u]), int(h.history_indptr[u + 1])
            rows.append(scorer.score(h.history_items[lo:hi], h.history_ages[lo:hi]))
        return torch.from_numpy(np.stack(rows)).float()

    target = torch.from_numpy(np.stack([day["u"].to_numpy(), day["i"].to_numpy()]))
    seen_rows = np.repeat(np.arange(mask.num_users), np.diff(mask.seen_indptr))
    exclude = torch.from_numpy(np.stack([seen_rows, mask.seen_indices]))
    result = evaluate_edges(score_fn, target, mask.num_users, num_items, exclude=exclude,
                            ks=(K,), users=torch.from_numpy(users), keep_per_user=True)  # fmt: skip
    per_user = result.per_user or {}
    assert torch.equal(per_user["user"], torch.from_numpy(np.sort(users)))
    return per_user[f"ndcg@{K}"].numpy()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--config", default="configs/ml-100k.yaml")
    parser.add_argument("--quantile", type=float, default=0.9)
    parser.add_argument("--retrain-every", type=int, default=7)
    parser.add_argument("--max-days", type=int, default=None)
    parser.add_argument("--full-recipe", action="store_true", help="the config's own grids")
    parser.add_argument("--quick", action="store_true", help="demo smoke run (2 epochs)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--work", type=Path, default=Path("artifacts/replay"))
    args = parser.parse_args(argv)

    config = load_config(Path(args.config))
    if not args.full_recipe:
        for key, value in QUICK.items():
            config = set_key(config, key, value)
    if args.quick:
        config = set_key(config, "train.epochs", 2)
    dataset = validate(read_dataset(config))
    inter = dataset.interactions
    cut = int(np.quantile(inter["timestamp"], args.quantile))
    id_map = build_id_map(dataset)
    num_items = id_map.num_nodes(ITEM)
    stream = inter[inter["timestamp"] >= cut].copy()
    stream["u"] = id_map.index(USER, stream["user_id"])
    stream["i"] = id_map.index(ITEM, stream["item_id"])
    stream["day"] = (stream["timestamp"] - cut) // DAY
    stream = stream.sort_values("timestamp", kind="stable")
    days = sorted(stream["day"].unique().tolist())[: args.max_days]
    print(f"cut-off {pd.Timestamp(cut, unit='s')}: {len(inter) - len(stream)} before, "
          f"{len(stream)} after over {len(days)} days with activity", file=sys.stderr)  # fmt: skip

    stale_scorer, stale_seconds = train_until(dataset, cut, config, args.work / "stale")
    trainings = [
        {
            "day": 0,
            "seconds": round(stale_seconds, 1),
            "interactions": int((inter["timestamp"] < cut).sum()),
        }
    ]
    stale = histories(dataset, cut, id_map)
    folded, retrain_h = stale, stale
    retrain_scorer, last_retrain = stale_scorer, 0
    known = np.flatnonzero(np.diff(stale.history_indptr) > 0)
    rows, fold_ms, fold_rows, fold_users = [], 0.0, 0, 0
    per_pair: dict[str, list[np.ndarray]] = {"stale": [], "fold": [], "retrain": []}
    new_pairs: dict[str, list[np.ndarray]] = {"fold": [], "retrain": []}
    previous = None
    for d in days:
        if previous is not None:  # fold day d-1 in, as add-interactions does
            prev = stream[stream["day"] == previous]
            ids = [folded.user_ids[u] for u in prev["u"].tolist()]
            clock = time.perf_counter()
            folded = fold_in(folded, ids, prev["i"].to_numpy(), stale_scorer).histories
            fold_ms += (time.perf_counter() - clock) * 1000
            fold_rows += len(prev)
            fold_users += int(prev["u"].nunique())
            retrain_h = fold_in(retrain_h, ids, prev["i"].to_numpy(), retrain_scorer).histories
        retrained = d - last_retrain >= args.retrain_every
        if retrained:
            day_start = cut + d * DAY
            out = args.work / f"retrain-day{d}"
            retrain_scorer, seconds = train_until(dataset, day_start, config, out)
            retrain_h, last_retrain = histories(dataset, day_start, id_map), d
            count = int((inter["timestamp"] < day_start).sum())
            trainings.append({"day": d, "seconds": round(seconds, 1), "interactions": count})
        today = stream[stream["day"] == d]
        active = np.unique(today["u"].to_numpy())
        has_history = active[np.diff(folded.history_indptr)[active] > 0]
        old = np.intersect1d(has_history, known)
        new = np.setdiff1d(has_history, known)
        row: dict[str, Any] = {"day": d, "users": len(old), "new_users": len(new),
                               "interactions": len(today), "retrained": retrained}  # fmt: skip
        if old.size:
            scores = {
                "stale": ndcg(stale_scorer, stale, today, old, folded, num_items),
                "fold": ndcg(stale_scorer, folded, today, old, folded, num_items),
                "retrain": ndcg(retrain_scorer, retrain_h, today, old, folded, num_items),
            }
            for name, values in scores.items():
                per_pair[name].append(values)
                row[name] = float(values.mean())
        if new.size:
            for name, (s, h) in {"fold": (stale_scorer, folded),
                                 "retrain": (retrain_scorer, retrain_h)}.items():  # fmt: skip
                values = ndcg(s, h, today, new, folded, num_items)
                new_pairs[name].append(values)
                row[f"new_{name}"] = float(values.mean())
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
        previous = d

    pairs = {k: np.concatenate(v) for k, v in per_pair.items()}
    news = {k: np.concatenate(v) if v else np.zeros(0) for k, v in new_pairs.items()}
    summary = {
        "config": args.config,
        "recipe": "config" if args.full_recipe else QUICK,
        "cut_off": str(pd.Timestamp(cut, unit="s")),
        "quantile": args.quantile,
        "days": len(days),
        "retrain_every": args.retrain_every,
        "mean_ndcg@20": {k: float(v.mean()) for k, v in pairs.items()},
        "user_days": int(pairs["fold"].size),
        "fold_minus_stale": str(paired_bootstrap(pairs["fold"], pairs["stale"])),
        "retrain_minus_fold": str(paired_bootstrap(pairs["retrain"], pairs["fold"])),
        "new_users_ndcg@20": {k: float(v.mean()) if v.size else None for k, v in news.items()},
        "new_user_days": int(news["fold"].size),
        "fold_in_ms_per_interaction": fold_ms / max(fold_rows, 1),
        "fold_in_ms_per_user": fold_ms / max(fold_users, 1),
        "fold_in_interactions": fold_rows,
        "trainings": trainings,
        "per_day": rows,
        "hardware": f"{platform.machine()}, {torch.get_num_threads()} threads",
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "per_day"}, indent=1))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
