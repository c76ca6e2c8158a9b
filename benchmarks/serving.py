"""Serving benchmark: latency of ``kgrec recommend`` and ``explain``.

Needs a trained checkpoint in ``<artifacts>/model/model.pt`` (``kgrec train``). Measures:

- ``kgrec recommend --user U`` wall time from process start (subprocess, median of runs);
- in-process recommendation latency per user (p50/p99) and batch throughput (users/s);
- ``explain`` latency per (user, top item) pair (p50/p95).

Explanation faithfulness has its own script, ``benchmarks/faithfulness.py``.

Usage::

    python benchmarks/serving.py --artifacts artifacts/demo
    python benchmarks/serving.py -c configs/ml-100k.yaml --artifacts artifacts/ml-100k
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from kgrec.serve.export import open_bundle
from kgrec.serve.paths import Explainer
from kgrec.serve.recommend import Recommender


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--config", default=None)
    parser.add_argument("--artifacts", required=True)
    parser.add_argument("--users", type=int, default=200, help="users timed in-process")
    parser.add_argument("--runs", type=int, default=5, help="process-start runs")
    args = parser.parse_args()

    artifacts = Path(args.artifacts)
    checkpoint = artifacts / "model" / "model.pt"
    bundle = open_bundle(checkpoint, artifacts)
    recommender = Recommender(bundle)
    users = [bundle.user_ids[i] for i in range(min(args.users, bundle.num_users))]
    results: dict[str, object] = {"artifacts": str(artifacts), "items": bundle.num_items}

    cli = [str(Path(sys.executable).parent / "kgrec"), "recommend", "--artifacts", str(artifacts)]
    if args.config:
        cli += ["-c", args.config]
    walls = []
    for _ in range(args.runs):
        clock = time.perf_counter()
        subprocess.run([*cli, "--user", users[0], "-f", "json"], check=True, capture_output=True)
        walls.append(time.perf_counter() - clock)
    results["cli_one_user_s_median"] = statistics.median(walls)

    latencies = []
    for user in users:
        clock = time.perf_counter()
        recommender.recommend(user, k=10)
        latencies.append(time.perf_counter() - clock)
    results["recommend_ms_p50"] = percentile(latencies, 50) * 1e3
    results["recommend_ms_p99"] = percentile(latencies, 99) * 1e3
    all_users = list(bundle.user_ids)
    clock = time.perf_counter()
    served = sum(1 for _ in recommender.recommend_many(all_users, k=10))
    results["batch_users_per_s"] = served / (time.perf_counter() - clock)

    explainer = Explainer(bundle)
    explain_s = []
    for user in users:
        item = recommender.recommend(user, k=1)[0].item_id
        clock = time.perf_counter()
        explainer.explain(user, item)
        explain_s.append(time.perf_counter() - clock)
    results["explain_ms_p50"] = percentile(explain_s, 50) * 1e3
    results["explain_ms_p95"] = percentile(explain_s, 95) * 1e3
    results["cpu"] = f"{os.cpu_count()} cores"
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
