"""Benchmark ``kgrec build-graph``: wall time, peak memory and database load rate.

Runs the real CLI in a subprocess (fresh ``KGREC_HOME``), twice, so the second run shows the
re-run cost and that counts do not change. Datasets:

- ``ml-100k``: MovieLens 100K + the Freebase KG from ``../shared/datasets`` (read in place).
- ``synthetic``: a contract folder from ``benchmarks/synthetic.py`` (default 1,000,000
  interactions, 10,000 users, 5,000 items), written once to a temp folder, or an existing
  one given with ``--data``.

Usage::

    python benchmarks/build_graph.py --dataset ml-100k
    python benchmarks/build_graph.py --dataset synthetic --interactions 1000000
    python benchmarks/synthetic.py /tmp/syn10m --interactions 10000000 --users 100000 \
        --items 20000 && python benchmarks/build_graph.py --data /tmp/syn10m --runs 1

The kgrec under test is the one ``python -m kgrec`` imports (set ``PYTHONPATH`` to compare
another checkout).
    python benchmarks/build_graph.py --dataset synthetic --runs 3 --appendonly both

``--appendonly both`` alternates runs with the server's append-only log on (kgrec's default)
and off (a server pre-started with ``FalkorDBServer(appendonly=False)``), each run in a fresh
``KGREC_HOME``, to measure what durability costs; ``on``/``off`` run only one kind.

Prints one Markdown table row per run; paste them into ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from synthetic import generate

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "datasets"


def server_peak_rss_mb(env: dict[str, str]) -> float | None:
    """Peak resident memory (VmHWM) of the embedded database server, if running."""
    out = subprocess.run(
        [sys.executable, "-m", "kgrec", "db", "status", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        pid = json.loads(out.stdout)["pid"]
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (KeyError, ValueError, OSError):
        return None
    return None


def server_cpu_s(home: Path) -> float:
    """CPU seconds the embedded server (and its reaped children: log rewrites) has used."""
    try:
        pid = json.loads((home / "falkordb" / "server.json").read_text())["pid"]
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, ValueError, KeyError):
        return float("nan")
    ticks = sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def wait_for_log_rewrite(home: Path, timeout: float = 600) -> None:
    """Wait until the server is done rewriting its append-only log (a part of the cost)."""
    import redis

    from kgrec.store.server import FalkorDBServer

    server = FalkorDBServer(home)
    info = server.status()
    if info is None:
        return
    client = redis.Redis(host=info.host, port=info.port, password=server.password())
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            state = client.info("persistence")
            if not state.get("aof_rewrite_in_progress") and not state.get("aof_rewrite_scheduled"):
                return
            time.sleep(0.2)
    finally:
        client.close()


def folder_mib(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def cpu_children_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_build(args: list[str], env: dict[str, str]) -> tuple[dict, float, float]:
    """Run ``kgrec build-graph --json``; returns (report, wall seconds, peak RSS MiB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "kgrec", "build-graph", "--json", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"build-graph failed ({proc.returncode}):\n{proc.stderr}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return json.loads(proc.stdout), wall, max(peak, before) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=["ml-100k", "synthetic"], default="ml-100k")
    parser.add_argument("--data", type=Path, help="an existing contract folder (synthetic)")
    parser.add_argument("--interactions", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--items", type=int, default=5_000)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--appendonly", choices=["on", "off", "both"], default="on")
    opts = parser.parse_args()
    kinds = ["on", "off"] if opts.appendonly == "both" else [opts.appendonly]

    with tempfile.TemporaryDirectory(prefix="kgrec-bench-") as tmp:
        tmp_path = Path(tmp)
        env = {**os.environ, "KGREC_HOME": str(tmp_path / "home")}
        homes: list[Path] = []
        if opts.dataset == "ml-100k" and opts.data is None:
            if not (SHARED / "ml-100k").exists():
                sys.exit(f"{SHARED / 'ml-100k'} not found")
            args = ["-c", str(REPO / "configs" / "ml-100k.yaml")]
            args += ["--data", str(SHARED / "ml-100k"), "--kg", str(SHARED / "ml-100k-kg")]
            label = "ml-100k + KG"
        elif opts.data is not None:
            args = ["--data", str(opts.data)]
            label = f"synthetic {opts.data.name}"
        else:
            t0 = time.perf_counter()
            made = generate(
                tmp_path / "synthetic",
                interactions=opts.interactions,
                users=opts.users,
                items=opts.items,
                seed=opts.seed,
            )
            print(f"generated synthetic data in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
            args = ["--data", made.folder]
            label = f"synthetic {opts.interactions:,} interactions"
        args += ["--artifacts", str(tmp_path / "artifacts")]
        if opts.batch_size:
            args += ["--batch-size", str(opts.batch_size)]
        try:
            print(
                "| data | run | append-only log | wall s | peak RSS kgrec MiB | "
                "peak RSS server MiB | DB rows | DB s | DB rows/s | counts match | "
                "CPU s kgrec | CPU s server | log MiB |"
            )
            print("|---|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|")
            for run, kind in ((r, k) for r in range(1, opts.runs + 1) for k in kinds):
                if len(kinds) > 1:  # a fresh server per run, so runs compare
                    home = tmp_path / f"home-{run}-{kind}"
                    homes.append(home)
                    env = {**os.environ, "KGREC_HOME": str(home)}
                    shutil.rmtree(tmp_path / "artifacts", ignore_errors=True)
                if kind == "off":
                    from kgrec.store.server import FalkorDBServer

                    FalkorDBServer(env["KGREC_HOME"], appendonly=False).start()
                cpu_before = cpu_children_s()
                report, wall, rss = run_build(args, env)
                cpu_kgrec = cpu_children_s() - cpu_before
                home = Path(env["KGREC_HOME"])
                wait_for_log_rewrite(home)
                cpu_server = server_cpu_s(home)
                log_dir = home / "falkordb" / "data" / "appendonlydir"
                log_mib = folder_mib(log_dir) if log_dir.exists() else 0.0
                expected = report["expected_store_counts"]
                got = report["store_counts"]
                rows = sum(expected["nodes"].values()) + sum(expected["relationships"].values())
                db_s = report["seconds"].get("store", float("nan"))
                server_rss = server_peak_rss_mb(env)
                match = expected == got and report["input_counts"] == report["graph_counts"]
                print(
                    f"| {label} | {run} | {kind} | {wall:.1f} | {rss:.0f} | "
                    f"{server_rss or float('nan'):.0f} | {rows:,} | {db_s:.1f} | "
                    f"{rows / db_s:,.0f} | {'yes' if match else 'NO'} | "
                    f"{cpu_kgrec:.1f} | {cpu_server:.1f} | {log_mib:.0f} |",
                    flush=True,
                )
                print(json.dumps(report["seconds"]), file=sys.stderr, flush=True)
                if len(kinds) > 1:
                    stop = [sys.executable, "-m", "kgrec", "db", "stop"]
                    subprocess.run(stop, env=env, check=False, capture_output=True)
        finally:
            for home in [*homes, tmp_path / "home"]:
                stop_env = {**os.environ, "KGREC_HOME": str(home)}
                stop = [sys.executable, "-m", "kgrec", "db", "stop"]
                subprocess.run(stop, env=stop_env, check=False, capture_output=True)
    print(f"\nhardware: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
