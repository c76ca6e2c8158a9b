"""Explanation faithfulness: does deleting the top path cost the model more than a random one?

For ``--pairs`` users drawn at random (seeded), the top-1 served item is explained; its top
path is deleted (its history item leaves the user's history) and the score recomputed by the
checkpoint's own torch scorer (:mod:`kgrec.eval.faithfulness`); so are ``--random`` paths of
the same length between the same user and item through other history items. Reports:

- the share of pairs whose top path lowers the score more than the random paths (mean);
- the mean score drops (top, random) and the base score;
- the share of served items with at least one path (the top-1 pairs, and every item of the
  sampled users' top-10 lists);
- the same, per kind of top path.

One command, on the trained model of a config (re-exports the bundle when stale)::

    python benchmarks/faithfulness.py -c configs/ml-100k.yaml
    python benchmarks/faithfulness.py --artifacts artifacts/demo --pairs 100 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import track

from kgrec.config import load_config
from kgrec.eval.faithfulness import Faithfulness, ScoreOracle, deletion_test
from kgrec.serve.export import open_bundle
from kgrec.serve.paths import KINDS, Explainer
from kgrec.serve.recommend import Recommender


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--config", default=None, help="config (default: the demo)")
    parser.add_argument("--artifacts", default=None, help="overrides the config's folder")
    parser.add_argument("--checkpoint", default=None, help="default: <artifacts>/model/model.pt")
    parser.add_argument("--pairs", type=int, default=200, help="served (user, top item) pairs")
    parser.add_argument("--random", type=int, default=5, help="random paths per pair")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()

    config = load_config(args.config, {"artifacts": args.artifacts})
    artifacts = config.artifacts_dir
    checkpoint = Path(args.checkpoint or artifacts / "model" / "model.pt")
    clock = time.perf_counter()
    bundle = open_bundle(checkpoint, artifacts)
    explainer = Explainer(bundle)
    recommender = Recommender(bundle)
    oracle = ScoreOracle(checkpoint, artifacts)
    rng = np.random.default_rng(args.seed)
    active = np.flatnonzero(explainer.graph.user_items.degree() > 0)
    users = rng.choice(active, size=min(args.pairs, active.size), replace=False)

    results: list[Faithfulness] = []
    kinds: list[str] = []
    no_path = no_alternative = 0
    top10_items = top10_explained = 0
    for user in track(users.tolist(), "pairs", console=Console(stderr=True)):
        user_id = bundle.user_ids[user]
        served = recommender.recommend(user_id, k=10)
        for rec in served:
            top10_items += 1
            top10_explained += len(explainer.candidates(user_id, rec.item_id)) > 0
        found = explainer.candidates(user_id, served[0].item_id)
        if not len(found):
            no_path += 1
            continue
        top = int(found.ranked()[0])
        randoms = explainer.same_length_paths(found, top, args.random, seed=args.seed + user)
        if not randoms:
            no_alternative += 1
            continue
        kinds.append(KINDS[int(found.kind[top])])
        results.append(
            deletion_test(
                oracle,
                found.user,
                found.item,
                explainer.path(found, top).artifact_edges(),
                [explainer.path(found, k).artifact_edges() for k in randoms],
            )
        )
    summary = _summary(results, kinds)
    summary.update(
        {
            "artifacts": str(artifacts),
            "model_id": bundle.model_id,
            "edge_types": len(bundle.meta.edge_types),
            "pairs": int(users.size),
            "pairs_with_a_path": int(users.size - no_path),
            "served_top1_with_a_path": (users.size - no_path) / max(users.size, 1),
            "served_top10_with_a_path": top10_explained / max(top10_items, 1),
            "pairs_without_a_same_length_alternative": no_alternative,
            "random_paths_per_pair": args.random,
            "seed": args.seed,
            "seconds": round(time.perf_counter() - clock, 1),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
        }
    )
    text = json.dumps(summary, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")


def _summary(results: list[Faithfulness], kinds: list[str]) -> dict[str, Any]:
    """Share of pairs where the top path beats random ones, mean drops, per kind."""

    def part(rows: list[Faithfulness]) -> dict[str, float]:
        if not rows:
            return {"compared": 0}
        return {
            "compared": len(rows),
            "top_beats_random": float(np.mean([r.top_beats_random for r in rows])),
            "top_drop_mean": float(np.mean([r.top_drop for r in rows])),
            "random_drop_mean": float(np.mean([r.random_drop for r in rows])),
            "base_score_mean": float(np.mean([r.base_score for r in rows])),
        }

    out: dict[str, Any] = part(results)
    out["by_kind"] = {
        kind: part([r for r, k in zip(results, kinds, strict=True) if k == kind])
        for kind in sorted(Counter(kinds))
    }
    return out


if __name__ == "__main__":
    main()
