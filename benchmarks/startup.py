"""Start-up benchmark: wall time of ``kgrec cypher run`` on a trivial query from process start.

The embedded server is started first (its start-up is not what is measured); then each
command runs ``--runs`` times in a fresh process and the median, minimum and maximum wall
times and the median CPU time are reported, beside the interpreter's own floor (``python -c
pass``), the 1-minute load average and the modules the command imported (pandas, numpy and
torch must not be among them). Uses hyperfine when it is on PATH, else a subprocess loop.

Usage::

    python benchmarks/startup.py -c configs/ml-100k.yaml --runs 5
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

QUERY = "MATCH (u:User) RETURN count(u) AS users"
HEAVY = ("pandas", "numpy", "torch", "pyarrow")


def timed(command: list[str], runs: int) -> tuple[list[float], list[float]]:
    """Wall seconds and CPU seconds (user + system) of ``runs`` executions of ``command``,
    after one warm-up run. CPU time moves less than wall time on a machine shared with
    other jobs."""
    if shutil.which("hyperfine"):
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            subprocess.run(
                ["hyperfine", "--warmup", "1", "--runs", str(runs), "--export-json", out.name,
                 "--", " ".join(shlex.quote(c) for c in command)],
                check=True, capture_output=True,
            )  # fmt: skip
            result = json.loads(Path(out.name).read_text())["results"][0]
            cpu = [u + s for u, s in zip(result["user"], result["system"], strict=True)]
            return list(result["times"]), cpu
    subprocess.run(command, check=True, capture_output=True)
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return walls, cpus


def imported(config: str | None) -> list[str]:
    """Heavy modules loaded by one in-process ``cypher run``."""
    flag = f"'-c', {config!r}, " if config else ""
    code = (
        "import sys\nfrom kgrec.cli import app\ntry:\n"
        f"    app(['cypher', 'run', {flag}{QUERY!r}, '-f', 'csv'])\n"
        "except SystemExit:\n    pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1].replace("'", '"'))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--config", default=None)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    from kgrec.cli import app

    try:  # start the embedded server (and check the graph answers) before timing anything
        app(["cypher", "run", *(["-c", args.config] if args.config else []), QUERY])
    except SystemExit as exc:
        if exc.code:
            raise
    kgrec = [sys.executable, "-m", "kgrec"]
    cypher = [*kgrec, "cypher", "run", *(["-c", args.config] if args.config else []), QUERY]
    results: dict[str, object] = {
        "runs": args.runs,
        "tool": "hyperfine" if shutil.which("hyperfine") else "subprocess loop",
        "cpus": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    for name, command in (
        ("python -c pass", [sys.executable, "-c", "pass"]),
        ("kgrec --help", [*kgrec, "--help"]),
        ("kgrec cypher run (csv)", [*cypher, "-f", "csv"]),
        ("kgrec cypher run (table)", cypher),
    ):
        walls, cpus = timed(command, args.runs)
        results[name] = {
            "median_s": round(statistics.median(walls), 3),
            "min_s": round(min(walls), 3),
            "max_s": round(max(walls), 3),
            "median_cpu_s": round(statistics.median(cpus), 3),
        }
    results["heavy modules imported by cypher run"] = imported(args.config)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
