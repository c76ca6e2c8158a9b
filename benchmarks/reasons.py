"""Customer-facing reasons: what they cite, and what recording them costs.

For every user's top-``k`` (the trained model of a config), the reasons a customer may read
(:meth:`kgrec.serve.paths.Explainer.explain`, 3 per item) are checked against the dataset's
own tables, independently of the bundle's liked flags:

- **another user's id**: a reason whose sentence says ``user <id>`` or names any other
  user's id after the word "user", or whose path carries another user node with an id or an
  index (the customer's own id is allowed);
- **below average**: a reason citing a history item the user rated below their own mean
  rating (interactions table, every split);
- **names no entity**: an ``attribute`` reason whose shared entity is not shown by a
  readable name: its name is missing from the sentence (described by its relation only,
  "with the same award nomination") or is not in Latin script. ``linked`` and
  ``collaborative`` reasons name two items and never count.

The same counts for the staff view (every contribution, liked or not) show what the filter
removes. Then ``kgrec recommend --all --record -k 10`` (a subprocess, output to
``/dev/null``) is timed ``--runs`` times from process start; the median is reported.

    python benchmarks/reasons.py -c configs/ml-100k.yaml
    python benchmarks/reasons.py -c configs/demo.yaml --runs 1 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.progress import track

from kgrec.config import load_config
from kgrec.data.layout import TABLES_DIR
from kgrec.serve.export import open_bundle
from kgrec.serve.graph_path import GraphPath
from kgrec.serve.paths import Explainer
from kgrec.serve.reasons import is_latin
from kgrec.serve.recommend import Recommender

CHECKS = ("another user's id", "below average", "names no entity")
USER_WORD = re.compile(r"\busers?\s+#?(\S+)", re.IGNORECASE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--config", default=None, help="config (default: the demo)")
    parser.add_argument("-k", type=int, default=10, help="items per user")
    parser.add_argument("--limit", type=int, default=3, help="reasons per item")
    parser.add_argument("--runs", type=int, default=3, help="timed `recommend --all --record`")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()

    config = load_config(args.config)
    artifacts = config.artifacts_dir
    bundle = open_bundle(artifacts / "model" / "model.pt", artifacts)
    explainer, recommender = Explainer(bundle), Recommender(bundle)
    below = below_average(artifacts)
    users = list(bundle.user_ids)
    lists = recommender.recommend_many(users, args.k)
    out: dict[str, Any] = {"users": len(users), "k": args.k}
    for view, staff in (("customer", False), ("staff", True)):
        counts: Counter[str] = Counter()
        clock = time.perf_counter()
        for user, recs in track(list(zip(users, lists, strict=True)), f"{view} reasons"):
            found = explainer.explain_many(user, [r.item_id for r in recs], args.limit, staff)
            for paths in found:
                counts["items"] += 1
                counts["items without a reason"] += not paths
                for p in paths:
                    check(counts, p, user, below)
        seconds = time.perf_counter() - clock
        out[view] = summarise(counts, seconds, len(users))
    out["record"] = time_record(args.config, args.k, args.runs)
    out["machine"] = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"
    Console().print_json(json.dumps(out))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2), encoding="utf-8")


def below_average(artifacts: Path) -> set[tuple[str, str]]:
    """``(user, item)`` pairs rated below the user's own mean rating."""
    inter = pd.read_parquet(artifacts / TABLES_DIR / "interactions.parquet")
    inter = inter.assign(user_id=inter["user_id"].astype(str), item_id=inter["item_id"].astype(str))
    mean = inter.groupby("user_id")["rating"].transform("mean")
    low = inter[inter["rating"] < mean - 1e-9]
    return set(zip(low["user_id"], low["item_id"], strict=True))


def check(counts: Counter[str], p: GraphPath, user: str, below: set[tuple[str, str]]) -> None:
    """Count one reason into ``counts`` (module docstring)."""
    counts["reasons"] += 1
    counts[f"kind {p.kind}"] += 1
    others = [n for n in p.nodes[1:] if n.type == "user"]
    said = [m.group(1).strip("*.,:;()") for m in USER_WORD.finditer(p.sentence)]
    counts["another user's id"] += bool(
        any(n.id or n.index >= 0 for n in others) or any(w not in ("", user) for w in said)
    )
    counts["below average"] += (user, p.nodes[1].id) in below
    if p.kind == "attribute":
        name = p.nodes[2].name
        counts["names no entity"] += name not in p.sentence or not is_latin(name)


def summarise(counts: Counter[str], seconds: float, users: int) -> dict[str, Any]:
    reasons = max(counts["reasons"], 1)
    return {
        "reasons": counts["reasons"],
        "items": counts["items"],
        "share items without a reason": counts["items without a reason"] / counts["items"],
        **{f"share {n}": counts[n] / reasons for n in CHECKS},
        "kinds": {k[5:]: counts[k] / reasons for k in sorted(counts) if k.startswith("kind ")},
        "explain ms per user": 1000 * seconds / users,
    }


def time_record(config: str | None, k: int, runs: int) -> dict[str, Any]:
    """Wall seconds of ``kgrec recommend --all --record`` from process start (median)."""
    command = [sys.executable, "-m", "kgrec", "recommend", "--all", "--record", "-k", str(k)]
    command += ["-f", "csv"] + (["-c", config] if config else [])
    times, summary = [], ""
    for _ in range(runs):
        clock = time.perf_counter()
        done = subprocess.run(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True
        )
        times.append(time.perf_counter() - clock)
        summary = done.stderr.strip().splitlines()[-1]
    return {
        "command": " ".join(["kgrec", *command[3:]]),
        "seconds": times,
        "median seconds": statistics.median(times) if times else None,
        "last summary": summary,
    }


if __name__ == "__main__":
    main()
