"""Benchmark durability: served records written while the graph is rebuilt, then ``kill -9``
of the database server.

Builds a dataset into a fresh ``KGREC_HOME``, starts ``--workers`` recorder processes that
record served lists (``--k`` items each, the path of ``kgrec recommend --record``) as fast as
they can, and rebuilds the graph in a loop until at least ``--requests`` lists were
acknowledged and ``--rebuilds`` rebuilds finished. Then it checks every acknowledged request
against the database (lost, duplicated, partial), kills the server with ``kill -9``,
restarts it and checks again.

Usage::

    python benchmarks/durability.py --requests 1000
    python benchmarks/durability.py --requests 1000 --appendonly off   # what the log buys

Prints Markdown rows for ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "datasets"


def items_of(n: int, k: int, items: list[str]) -> list[str]:
    """The ``n``-th request's served items."""
    return [items[(n * 7 + j * 13) % len(items)] for j in range(k)]


def recorder(
    config_path: str, worker: int, k: int, users: list[str], items: list[str], out: str
) -> None:
    """Record lists until ``<out>.stop`` exists; one line per acknowledged request."""
    from kgrec.config import load_config
    from kgrec.errors import KgrecError
    from kgrec.serve.recommend import Recommendation
    from kgrec.serve.record import record_served
    from kgrec.store.factory import open_store

    config = load_config(config_path)
    store = open_store(config.store, config.state_path)
    n = 0
    with open(out, "w", encoding="utf-8") as log:
        while not Path(out + ".stop").exists():
            recs = [
                Recommendation(i, i, 1.0 / r, r)
                for r, i in enumerate(items_of(n, k, items), start=1)
            ]
            request_id = f"w{worker}-{n}"
            clock = time.perf_counter()
            try:
                record_served(store, users[n % len(users)], recs, "bench", None, request_id)
            except KgrecError as exc:  # not acknowledged: the client would retry
                log.write(f"# {request_id} failed: {exc}\n")
            else:
                log.write(f"{request_id} {n} {time.perf_counter() - clock:.6f}\n")
            log.flush()
            n += 1
    store.close()


def check(config: object, acked: dict[str, int], k: int, items: list[str]) -> dict[str, int]:
    """Lost, duplicated and partial requests among ``acked`` (request id -> n)."""
    from kgrec.store.factory import open_store

    store = open_store(config.store, config.state_path)  # type: ignore[attr-defined]
    try:
        rows = store.query("MATCH (:User)-[r:RECOMMENDED]->(i:Item) RETURN r.request_id, i.id").rows
    finally:
        store.close()
    found: dict[str, list[str]] = {}
    for request_id, item in rows:
        found.setdefault(str(request_id), []).append(str(item))
    lost = sum(1 for r in acked if r not in found)
    dup = sum(1 for r in acked if r in found and len(found[r]) > k)
    partial = sum(
        1
        for r, n in acked.items()
        if r in found and len(found[r]) <= k and sorted(found[r]) != sorted(items_of(n, k, items))
    )
    return {"lost": lost, "duplicated": dup, "partial": partial, "recorded": len(found)}


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=["demo", "ml-100k"], default="demo")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rebuilds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--appendonly", choices=["on", "off"], default="on")
    opts = parser.parse_args()

    import pandas as pd
    import yaml

    from kgrec.build import build_graph
    from kgrec.config import load_config
    from kgrec.store.server import FalkorDBServer

    tmp = Path(tempfile.mkdtemp(prefix="kgrec-durability-"))
    home = tmp / "home"
    data: dict[str, object] = {"artifacts": str(tmp / "art"), "state_dir": str(home)}
    if opts.dataset == "ml-100k":
        base = yaml.safe_load((REPO / "configs" / "ml-100k.yaml").read_text())
        data["dataset"] = {
            **base["dataset"],
            "path": str(SHARED / "ml-100k"),
            "kg_path": str(SHARED / "ml-100k-kg"),
        }
    else:
        data["dataset"] = {"path": str(REPO / "data" / "demo")}
    config_path = tmp / "config.yaml"
    config_path.write_text(yaml.safe_dump(data))
    config = load_config(config_path)
    server = FalkorDBServer(home, appendonly=opts.appendonly == "on")
    server.start()
    try:
        clock = time.perf_counter()
        build_graph(config)
        first_build = time.perf_counter() - clock
        tables = config.artifacts_dir / "tables"
        users = pd.read_parquet(tables / "users.parquet")["user_id"].astype(str).tolist()
        if not users:
            users = pd.read_parquet(tables / "interactions.parquet")["user_id"].astype(str)
            users = sorted(set(users))
        items = pd.read_parquet(tables / "items.parquet")["item_id"].astype(str).tolist()

        ctx = multiprocessing.get_context("spawn")
        logs = [tmp / f"worker-{w}.log" for w in range(opts.workers)]
        workers = [
            ctx.Process(
                target=recorder,
                args=(str(config_path), w, opts.k, users, items, str(log)),
            )
            for w, log in enumerate(logs)
        ]
        for worker in workers:
            worker.start()
        rebuilds: list[float] = []
        started = time.perf_counter()

        def acked_count() -> int:
            return sum(
                1
                for log in logs
                if log.exists()
                for line in log.read_text().splitlines()
                if line and not line.startswith("#")
            )

        while len(rebuilds) < opts.rebuilds or acked_count() < opts.requests:
            clock = time.perf_counter()
            build_graph(config)
            rebuilds.append(time.perf_counter() - clock)
        for log in logs:
            Path(str(log) + ".stop").touch()
        for worker in workers:
            worker.join(300)
        elapsed = time.perf_counter() - started

        acked: dict[str, int] = {}
        latencies: list[float] = []
        failed = 0
        for log in logs:
            for line in log.read_text().splitlines():
                if line.startswith("#"):
                    failed += 1
                    continue
                request_id, n, seconds = line.split()
                acked[request_id] = int(n)
                latencies.append(float(seconds))
        during = check(config, acked, opts.k, items)

        info = server.status()
        assert info is not None
        os.kill(info.pid, signal.SIGKILL)
        while (
            Path(f"/proc/{info.pid}").exists()
            and "Z"
            not in (Path(f"/proc/{info.pid}/stat").read_text().rsplit(")", 1)[1].split()[:1])
        ):
            time.sleep(0.02)
        FalkorDBServer(home, appendonly=opts.appendonly == "on").start()
        after = check(config, acked, opts.k, items)
    finally:
        FalkorDBServer(home).stop()
        shutil.rmtree(tmp, ignore_errors=True)

    latencies.sort()
    p99 = latencies[int(0.99 * (len(latencies) - 1))]
    print(
        "| data | append-only log | workers | acknowledged requests | rebuilds | "
        "requests/s | record p50 ms | p99 ms | max ms | lost | duplicated | partial | "
        "lost after kill -9 |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {opts.dataset} (k={opts.k}) | {opts.appendonly} | {opts.workers} | {len(acked):,} | "
        f"{len(rebuilds)} (mean {statistics.mean(rebuilds):.1f} s) | "
        f"{len(acked) / elapsed:.0f} | {1000 * statistics.median(latencies):.1f} | "
        f"{1000 * p99:.1f} | {1000 * latencies[-1]:.0f} | {during['lost']} | "
        f"{during['duplicated']} | {during['partial']} | {after['lost']} |"
    )
    print(
        f"\nfirst build {first_build:.1f} s; {failed} requests refused (not acknowledged); "
        f"hardware: {platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
