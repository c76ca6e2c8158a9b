"""The notebooks run top to bottom on the demo data and draw their plots.

Each notebook is executed with nbclient in a kernel that runs this test's own interpreter (so
it imports the kgrec under test), from a temporary working directory, with its artifacts and
kgrec state (``KGREC_HOME``, the embedded database) in a temporary folder.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

REASON = "notebook tests need the dev extra: pip install -e '.[dev]'"
nbformat = pytest.importorskip("nbformat", reason=REASON)
nbclient = pytest.importorskip("nbclient", reason=REASON)
pytest.importorskip("ipykernel", reason=REASON)
pytest.importorskip("matplotlib", reason=REASON)

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
KERNEL = "kgrec-notebook-test"
CELL_TIMEOUT = 300
"""Seconds one cell may run (training on a busy CPU is the slowest)."""

PLOTS = {
    # training curves, kgrec vs baselines, the explanation paths as a graph
    "quickstart.ipynb": 3,
    # interactions per genre, popularity vs. recommendations, coverage per genre
    "analyst.ipynb": 3,
}


@pytest.fixture
def kernel_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernelspec for ``sys.executable``, found before any user or system ``python3``."""
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel = {"argv": argv, "display_name": "kgrec (tests)", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel), encoding="utf-8")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    # ipykernel draws inline (image/png outputs) only when no other backend is forced
    monkeypatch.delenv("MPLBACKEND", raising=False)
    # one torch thread: on a small CI runner shared with other jobs, spinning OpenMP threads
    # took 2-5 s per training epoch instead of 0.14 s (measured on 2 busy cores)
    if "OMP_NUM_THREADS" not in os.environ:
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return KERNEL


def _code_cells(book: Any) -> list[Any]:
    return [cell for cell in book.cells if cell.cell_type == "code"]


def _images(book: Any) -> int:
    return sum(
        "image/png" in output.get("data", {})
        for cell in _code_cells(book)
        for output in cell.get("outputs", [])
    )


@pytest.mark.parametrize("name", sorted(PLOTS))
def test_notebook_is_committed_without_outputs(name: str) -> None:
    book = nbformat.read(NOTEBOOKS / name, as_version=4)
    dirty = [
        i
        for i, cell in enumerate(book.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not dirty, f"{name}: cells {dirty} have outputs or execution counts: strip them"


@pytest.mark.parametrize("name", sorted(PLOTS))
def test_notebook_runs_and_plots(
    name: str, kernel_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kgrec.store.server import FalkorDBServer

    work, cwd = tmp_path / "work", tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.setenv("KGREC_NOTEBOOK_DIR", str(work))
    monkeypatch.setenv("KGREC_HOME", str(work / "home"))  # the notebooks set the same
    book = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(
        book,
        timeout=CELL_TIMEOUT,
        kernel_name=kernel_name,
        resources={"metadata": {"path": str(cwd)}},
    )
    try:
        client.execute()  # raises CellExecutionError (with the traceback) when a cell fails
    finally:
        FalkorDBServer(work / "home").stop()  # in case a cell failed before the notebook's own
    assert _images(book) == PLOTS[name], f"{name}: expected {PLOTS[name]} plots"
    last = _code_cells(book)[-1]
    assert "stopped" in "".join(o.get("text", "") for o in last.outputs)
    assert not any(cwd.iterdir()), "the notebook wrote into its working directory"
