"""The cost curve of one dataset size: build-graph, the Neo4j export, embed, and serving.

Each stage runs the real CLI in a subprocess with a fresh ``KGREC_HOME`` (so the database
server and the text cache start empty) and reports wall time and peak memory (the
command's peak RSS; for build-graph also the database server's). Serving latency is
measured in-process on an embeddings-only bundle (no scorer: ``recommend`` ranks by the dot
product, the cost of the GNN term) with the dataset's users, items and seen lists and random
64-d embeddings (exact scoring costs the same whatever the values; a trained model is not
needed for it): p50 / p99 of one warm ``recommend`` (one thread) and batch users/s. The
served hybrid also reads the item-item teacher's sparse matrices, whose cost depends on their
density, which only a trained model has: ``benchmarks/serving.py`` measures that on a
checkpoint. Training is not measured here: ``benchmarks/devices.py`` times the GNN's steps
and whole training runs, ``benchmarks/quality.py`` reports each variant's training seconds.

Usage::

    python benchmarks/synthetic.py /tmp/syn1m --interactions 1000000 --users 10000 --items 5000
    python benchmarks/cost_curve.py /tmp/syn1m --stages build,export,embed,serve
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402
from build_graph import server_peak_rss_mb  # noqa: E402

STAGES = ("build", "export", "embed", "serve")


def run(args: list[str], env: dict[str, str]) -> tuple[str, float, float]:
    """Run ``python -m kgrec ARGS``; returns (stdout, wall seconds, its peak RSS MiB) and
    adds its CPU seconds (user + system) to :data:`CPU`."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "kgrec", *args], env=env, stdout=out, stderr=err
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            sys.exit(
                f"kgrec {' '.join(args[:2])} failed ({proc.returncode}):\n{err.read()[-2000:]}"
            )
        CPU.append(usage.ru_utime + usage.ru_stime)
        return out.read(), wall, usage.ru_maxrss / 1024


CPU: list[float] = []


def server_cpu_s(env: dict[str, str]) -> float:
    """CPU seconds the embedded server has used so far (0 when not running)."""
    out = subprocess.run(
        [sys.executable, "-m", "kgrec", "db", "status", "--json"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    try:
        pid = json.loads(out.stdout)["pid"]
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (KeyError, ValueError, OSError, IndexError):
        return 0.0


def serve_latency(artifacts: Path, users: int = 300, seed: int = 0) -> dict[str, float]:
    """One-user p50/p99 (ms) and batch users/s on the artifact's catalogue, random 64-d."""
    from kgrec.build import load_artifact
    from kgrec.serve.bundle import Bundle, BundleMeta
    from kgrec.serve.recommend import Recommender

    artifact = load_artifact(artifacts)
    n_users, n_items = artifact.num_nodes["user"], artifact.num_nodes["item"]
    edges = np.concatenate([e.numpy() for e in artifact.split_edge_index.values()], axis=1)
    pairs = np.unique(edges[0].astype(np.int64) * n_items + edges[1])
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(pairs // n_items, minlength=n_users), out=indptr[1:])
    rng = np.random.default_rng(seed)
    bundle = Bundle(
        user_embedding=rng.standard_normal((n_users, 64)).astype(np.float32),
        item_embedding=rng.standard_normal((n_items, 64)).astype(np.float32),
        seen_indptr=indptr,
        seen_indices=(pairs % n_items).astype(np.int64),
        user_ids=[str(u) for u in artifact.id_map.ids["user"]],
        item_ids=[str(i) for i in artifact.id_map.ids["item"]],
        titles=[str(i) for i in artifact.id_map.ids["item"]],
        meta=BundleMeta(
            model_id="random",
            created="",
            checkpoint="",
            checkpoint_stamp=[0, 0],
            artifacts=str(artifacts),
            artifact_stamp=[0, 0],
            added_stamp=[0, 0],
            num_users=n_users,
            num_items=n_items,
            num_trained_items=n_items,
            num_added_items=0,
            dim=64,
            num_seen=int(pairs.size),
            edge_types=[],
            kind="gnn",
        ),
        path=artifacts,
    )
    recommender = Recommender(bundle)
    sample = [bundle.user_ids[u] for u in rng.choice(n_users, min(users, n_users), False)]
    for user in sample[:20]:
        recommender.recommend(user, 20)
    times = []
    for user in sample:
        start = time.perf_counter()
        recommender.recommend(user, 20)
        times.append((time.perf_counter() - start) * 1e3)
    start = time.perf_counter()
    recommender.recommend_many(sample, 20)
    batch = len(sample) / (time.perf_counter() - start)
    return {
        "p50_ms": float(np.percentile(times, 50)),
        "p99_ms": float(np.percentile(times, 99)),
        "users_per_s": batch,
        "users": n_users,
        "items": n_items,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="a contract folder (benchmarks/synthetic.py)")
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument("--work", type=Path, default=None, help="keep artifacts here")
    opts = parser.parse_args()
    stages = opts.stages.split(",")

    with tempfile.TemporaryDirectory(prefix="kgrec-cost-") as tmp:
        work = opts.work or Path(tmp)
        artifacts = work / "artifacts"
        rows = []
        env = {**os.environ, "KGREC_HOME": str(Path(tmp) / "home")}
        try:
            if "build" in stages:
                load = os.getloadavg()[0]
                out, wall, peak = run(
                    [
                        "build-graph",
                        "--json",
                        "--data",
                        str(opts.data),
                        "--artifacts",
                        str(artifacts),
                    ],
                    env,
                )
                report = json.loads(out)
                expected = report["expected_store_counts"]
                db_rows = sum(expected["nodes"].values()) + sum(expected["relationships"].values())
                db_s = report["seconds"]["store"]
                server = server_peak_rss_mb(env) or 0
                server_cpu = server_cpu_s(env)
                seconds = {k: round(v, 1) for k, v in report["seconds"].items()}
                rate = f"{db_rows:,} rows in the database in {db_s:.1f} s ({db_rows / db_s:,.0f}/s)"
                match = expected == report["store_counts"]
                rows.append(
                    f"| build-graph | {wall:.1f} | {CPU[-1]:.1f} + server {server_cpu:.1f} | "
                    f"{peak:.0f}, server {server:.0f} | {rate}, "
                    f"counts match: {match}; stages {json.dumps(seconds)} | {load:.1f} |"
                )
            if "export" in stages:
                load = os.getloadavg()[0]
                target = work / "neo4j-import"
                _, wall, peak = run(
                    [
                        "db",
                        "export",
                        "--json",
                        "--artifacts",
                        str(artifacts),
                        "--neo4j-import",
                        str(target),
                    ],
                    env,
                )
                size = sum(p.stat().st_size for p in target.glob("*.csv")) / 2**20
                csv_size = f"{size:,.0f} MiB of CSV"
                rows.append(
                    f"| db export --neo4j-import | {wall:.1f} | {CPU[-1]:.1f} | {peak:.0f} | "
                    f"{csv_size} | {load:.1f} |"
                )
            if "embed" in stages:
                load = os.getloadavg()[0]
                out, wall, peak = run(["embed", "--json", "--artifacts", str(artifacts)], env)
                report = json.loads(out)
                nodes = sum(report["texts"].values())
                texty = sum(report["with_text"].values())
                what = f"{report['computed']:,} texts encoded ({texty:,} of {nodes:,} nodes)"
                rows.append(
                    f"| embed (cold cache) | {wall:.1f} | {CPU[-1]:.1f} | {peak:.0f} | {what}, "
                    f"{report['texts_per_second']} texts/s | {load:.1f} |"
                )
            if "serve" in stages:
                load = os.getloadavg()[0]
                s = serve_latency(artifacts)
                label = f"recommend (exact, {s['items']:,} items, {s['users']:,} users)"
                rows.append(
                    f"| {label} | - | - | - | one user p50 {s['p50_ms']:.2f} ms / p99 "
                    f"{s['p99_ms']:.2f} ms; batch {s['users_per_s']:,.0f} users/s | {load:.1f} |"
                )
        finally:
            subprocess.run(
                [sys.executable, "-m", "kgrec", "db", "stop"],
                env=env,
                check=False,
                capture_output=True,
            )
    print(f"| stage ({opts.data.name}) | wall s | CPU s | peak RSS MiB | result | load avg |")
    print("|---|---:|---:|---:|---|---:|")
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
