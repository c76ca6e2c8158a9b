"""The training run around ``train()``: where it trains, what it resumes, what it promotes.

``kgrec train`` trains into ``<out>/.training/`` (never where ``recommend`` reads), checks
that a resumed run keeps its settings, and at the end promotes the run under the artifact
folder's lock (see :func:`kgrec.train.checkpoint.promote`). A run whose artifacts were
rebuilt meanwhile is never promoted: it describes data that is gone.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kgrec.errors import KgrecError
from kgrec.files import remove_stale
from kgrec.locks import artifact_lock
from kgrec.train.checkpoint import (
    MODEL_FILE,
    RESUME_FILE,
    RUN_DIR,
    Promotion,
    check_resume_config,
    promote,
)
from kgrec.train.resume import load_resume_state, run_config

if TYPE_CHECKING:
    from kgrec.config import Config
    from kgrec.progress import Reporter


@dataclass(frozen=True)
class Run:
    """Where a run trains (``folder``) and the checkpoint it resumes (or ``None``)."""

    folder: Path
    resume_from: Path | None


def prepare_run(target: Path, config: Config, resume: bool, reporter: Reporter) -> Run:
    """The run folder ``<target>/.training``: emptied for a new run, checked for a resume."""
    folder = target / RUN_DIR
    remove_stale(target)
    if not resume:
        if (folder / RESUME_FILE).exists():
            reporter.note(
                f"started afresh: the interrupted run in {folder} was discarded "
                "(--resume continues such a run)"
            )
        shutil.rmtree(folder, ignore_errors=True)
        return Run(folder, None)
    source = next(
        (p for p in (folder / RESUME_FILE, target / RESUME_FILE) if p.exists()),
        None,
    )
    if source is None:
        raise KgrecError(f"nothing to resume in {target}: train without --resume first")
    saved = dict(load_resume_state(source).get("config") or {})
    current = run_config(config)  # model, teacher and train sections
    common = {k: v for k, v in current.items() if k in saved}
    check_resume_config({k: saved[k] for k in common}, common, where=source)
    if source.parent != folder:  # continue a finished run: a fresh run folder
        shutil.rmtree(folder, ignore_errors=True)
    return Run(folder, source)


def artifact_digest(artifacts_dir: Path) -> str | None:
    """The graph's sha256 recorded by ``build-graph`` (tells a rebuild apart)."""
    try:
        manifest = json.loads((artifacts_dir / "manifest.json").read_text(encoding="utf-8"))
        return str(manifest["files"]["graph.pt"]["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def finish_run(
    run: Run, target: Path, config: Config, trained_on: str | None, *, always: bool
) -> Promotion:
    """Promote the finished ``run`` into ``target`` (under the artifact lock)."""
    folder = run.folder
    if not (folder / MODEL_FILE).exists():
        if run.resume_from is not None:
            raise KgrecError(
                f"nothing was left to train: the run in {run.resume_from.parent} had already "
                f"run train.epochs ({config.train.epochs}) epochs; resume with a larger --epochs"
            )
        raise KgrecError(f"training evaluated no epoch, so it wrote no model into {folder}")
    lock = artifact_lock(config.artifacts_dir)
    lock.acquire(wait=True)
    try:
        if artifact_digest(config.artifacts_dir) != trained_on:
            raise KgrecError(
                f"{config.artifacts_dir} was rebuilt while this model trained, so it describes "
                f"data that is gone: not promoted (its files stay in {folder}); train again"
            )
        return promote(folder, target, always=always)
    finally:
        lock.release()
