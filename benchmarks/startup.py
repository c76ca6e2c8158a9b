"""Start-up benchmark: wall time of ``kgrec recommend`` and ``kgrec cypher run`` from process start.

The embedded server is started first (its start-up is not what is measured); then each
command runs ``--runs`` times in a fresh process and the median, minimum and maximum wall
times and the median CPU time are reported, beside the interpreter's own floor (``python -c
pass``), the 1-minute load average and the modules the commands imported (pandas and torch
must not be among them). ``recommend`` is timed when ``--user`` is given, on the trained
model in the config's artifacts (a fresh serving bundle is written first). Uses hyperfine
when it is on PATH, else a subprocess loop.

``--count-imports`` prints instead how many imports sit inside functions in ``kgrec/``
(every ``import`` / ``from ... import`` nested in a ``def``), by file.

Usage::

    python benchmarks/startup.py -c configs/ml-100k.yaml --runs 5 --user 1
    python benchmarks/startup.py --count-imports
"""

from __future__ import annotations

import argparse
import ast
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
from collections import Counter
from pathlib import Path

QUERY = "MATCH (u:User) RETURN count(u) AS users"
HEAVY = ("pandas", "numpy", "torch", "pyarrow")
PACKAGE = Path(__file__).resolve().parents[1] / "kgrec"


def function_imports(package: Path = PACKAGE) -> Counter[str]:
    """Imports nested in a function (``def`` or ``async def``), by file under ``package``."""
    counts: Counter[str] = Counter()

    def visit(node: ast.AST, name: str, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if in_function and isinstance(child, ast.Import | ast.ImportFrom):
                counts[name] += 1
            is_def = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            visit(child, name, in_function or is_def)

    for path in sorted(package.rglob("*.py")):
        visit(ast.parse(path.read_text()), str(path.relative_to(package.parent)), False)
    return counts


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


def interleaved(
    command: list[str], runs: int, baseline: str
) -> tuple[tuple[list[float], list[float]], tuple[list[float], list[float]]]:
    """Like :func:`timed`, for this checkout and for the code in ``baseline`` (put first on
    ``PYTHONPATH``) alternately, so that both meet the same load on a shared machine."""
    env = {**os.environ, "PYTHONPATH": baseline}
    measured: list[tuple[list[float], list[float]]] = [([], []), ([], [])]
    for run in range(runs + 1):  # run 0 warms both up
        for which, run_env in ((0, env), (1, None)):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True, env=run_env)
            wall = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if run:
                measured[which][0].append(wall)
                cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
                measured[which][1].append(cpu)
    return measured[0], measured[1]


def summary(walls: list[float], cpus: list[float]) -> dict[str, float]:
    return {
        "median_s": round(statistics.median(walls), 3),
        "min_s": round(min(walls), 3),
        "max_s": round(max(walls), 3),
        "median_cpu_s": round(statistics.median(cpus), 3),
    }


def imported(args: list[str]) -> list[str]:
    """Heavy modules loaded by one in-process run of ``kgrec <args>``."""
    code = (
        "import sys\nfrom kgrec.cli import app\ntry:\n"
        f"    app({args!r})\n"
        "except SystemExit:\n    pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1].replace("'", '"'))


def print_function_imports() -> None:
    counts = function_imports()
    print(f"{sum(counts.values())} imports inside functions in kgrec/")
    for name, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        print(f"{count:4d}  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--config", default=None)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--user", default=None, help="time `kgrec recommend --user USER` too")
    parser.add_argument("--count-imports", action="store_true", help="count imports in functions")
    parser.add_argument(
        "--baseline",
        default=None,
        help="a checkout of other code (e.g. `git archive main`): its runs alternate with this "
        "checkout's (json/csv output only)",
    )
    args = parser.parse_args()
    if args.count_imports:
        print_function_imports()
        return

    from kgrec.cli import app

    config = ["-c", args.config] if args.config else []
    cypher = ["cypher", "run", *config, QUERY]
    recommend = ["recommend", *config, "--user", str(args.user)]
    for warm_up in (cypher, *([recommend] if args.user else [])):
        try:  # start the server and write the serving bundle before timing anything
            app([*warm_up, "-f", "csv"])
        except SystemExit as exc:
            if exc.code:
                raise
    kgrec = [sys.executable, "-m", "kgrec"]
    results: dict[str, object] = {
        "runs": args.runs,
        "tool": "hyperfine" if shutil.which("hyperfine") else "subprocess loop",
        "cpus": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "kgrec --help": [*kgrec, "--help"],
        "kgrec cypher run (csv)": [*kgrec, *cypher, "-f", "csv"],
        "kgrec cypher run (table)": [*kgrec, *cypher],
    }
    if args.user:
        commands["kgrec recommend (json)"] = [*kgrec, *recommend, "-f", "json"]
        commands["kgrec recommend (table)"] = [*kgrec, *recommend]
    for name, command in commands.items():
        if args.baseline is None:
            results[name] = summary(*timed(command, args.runs))
        elif "table" not in name:
            base, this = interleaved(command, args.runs, args.baseline)
            results[name] = {"baseline": summary(*base), "this checkout": summary(*this)}
    results["heavy modules imported by cypher run"] = imported([*cypher, "-f", "csv"])
    if args.user:
        results["heavy modules imported by recommend"] = imported([*recommend, "-f", "json"])
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
