"""The journal of ``build-graph``'s swap: the database graph and the artifact folder change
together, or a later command finishes or rolls back what a killed build left half done.

A build fills a staging artifact folder and a staging database graph, then writes the
journal (``<parent>/.<name>.journal.json``, fsynced) and swaps: first the database (an atomic
rename of the staging graph), then the artifact folder (two renames). The journal is removed
once both are done. A later command that finds a journal (and holds the artifact lock, so
the build that wrote it is gone) recovers before doing anything else:

- the staging graph still exists: the database swap never happened, so the build is rolled
  back (staging graph and staging folder deleted: database and artifacts as before it);
- otherwise the database holds the new graph, so the artifact swap is finished (the staging
  folder is complete: the journal is written only after it is).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from kgrec.config import StoreConfig
from kgrec.errors import KgrecError
from kgrec.files import remove_stale, write_private
from kgrec.locks import artifact_lock

JOURNAL_SUFFIX = ".journal.json"


@dataclass(frozen=True)
class SwapJournal:
    """What a build is about to swap.

    Attributes:
        target: The artifact folder.
        staging: Its complete replacement.
        old: Where the previous folder is parked between the two renames.
        graph: The live database graph (``None``: no database swap).
        staging_graph: Its replacement, renamed onto ``graph`` by the database swap.
        state_dir: kgrec's state folder of the embedded database.
        db_done: The database swap has happened.
        pid, started: The build that wrote the journal.
    """

    target: str
    staging: str
    old: str
    graph: str | None = None
    staging_graph: str | None = None
    state_dir: str | None = None
    db_done: bool = False
    pid: int = 0
    started: str = ""


def journal_path(target: Path | str) -> Path:
    """``<parent>/.<name>.journal.json`` of artifact folder ``target``."""
    folder = Path(target).absolute()
    return folder.parent / f".{folder.name}{JOURNAL_SUFFIX}"


def new_journal(target: Path, staging: Path, old: Path, **database: object) -> SwapJournal:
    """A journal for this process's swap of ``target`` (``database``: graph fields)."""
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
    return SwapJournal(
        target=str(target.absolute()),
        staging=str(staging.absolute()),
        old=str(old.absolute()),
        pid=os.getpid(),
        started=started,
        **database,  # type: ignore[arg-type]
    )


def write_journal(journal: SwapJournal) -> None:
    """Write (or update) the journal, fsynced, mode 0600."""
    text = json.dumps(asdict(journal), indent=2) + "\n"
    write_private(journal_path(journal.target), text, private_parent=False)


def read_journal(target: Path | str) -> SwapJournal | None:
    """The journal of ``target``, or ``None``; an unreadable one is an error naming it."""
    path = journal_path(target)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return SwapJournal(**data)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as exc:
        raise KgrecError(
            f"{path} (the journal of an interrupted build-graph) is unreadable ({exc}): remove "
            f"it and run kgrec build-graph --artifacts {Path(target)} again"
        ) from exc


def clear_journal(target: Path | str) -> None:
    journal_path(target).unlink(missing_ok=True)


def swap_artifacts(journal: SwapJournal, between: Callable[[], None] | None = None) -> None:
    """Move the staging folder onto the target (idempotent: also finishes a half-done swap).

    ``between`` runs between the two renames (a fault-injection point).
    """
    staging, target, old = Path(journal.staging), Path(journal.target), Path(journal.old)
    if staging.exists():
        if target.exists():
            os.replace(target, old)
        if between is not None:
            between()
        os.replace(staging, target)
    elif not target.exists() and old.exists():
        os.replace(old, target)  # nothing to swap in: keep the previous folder
    shutil.rmtree(old, ignore_errors=True)


def recover(target: Path, store_config: StoreConfig | None) -> list[str]:
    """Finish or roll back the swap a killed build left behind; returns notes.

    The caller holds the artifact lock of ``target``.
    """
    journal = read_journal(target)
    if journal is None:
        return []
    who = f"build-graph (pid {journal.pid}, started {journal.started})"
    if journal.staging_graph and not journal.db_done:
        staged = _staging_graph_exists(journal, store_config)
        if staged:
            shutil.rmtree(journal.staging, ignore_errors=True)
            clear_journal(target)
            return [
                f"an interrupted {who} had not swapped the database yet: rolled it back "
                f"(graph {journal.graph!r} and {target} are as they were before it)"
            ]
    swap_artifacts(journal)
    clear_journal(target)
    return [f"an interrupted {who} had swapped the database: finished swapping {target}"]


def _staging_graph_exists(journal: SwapJournal, store_config: StoreConfig | None) -> bool:
    """Whether the journal's staging graph is still there (dropped when it is)."""
    from kgrec.store.factory import open_store

    config = replace(store_config or StoreConfig(), graph=journal.graph or "kgrec", enabled=True)
    store = open_store(config, Path(journal.state_dir or "."))
    try:
        exists = bool(store.has_graph(journal.staging_graph))  # type: ignore[attr-defined]
        if exists:
            store.drop_graph(journal.staging_graph)  # type: ignore[attr-defined]
        return exists
    finally:
        store.close()


def journaled(folder: Path) -> set[str]:
    """Names in ``folder`` that a journal still needs (staging and parked folders)."""
    keep: set[str] = set()
    for path in folder.glob(f".*{JOURNAL_SUFFIX}"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            keep.update(Path(data[k]).name for k in ("staging", "old"))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return keep


def tidy(target: Path) -> list[str]:
    """Remove temporaries of killed runs beside ``target`` (not those a journal needs)."""
    folder = Path(target).absolute().parent
    removed = remove_stale(folder, keep=journaled(folder))
    return [f"removed {name} left behind by a killed run" for name in removed]


def recover_interrupted(artifacts_dir: Path, store_config: StoreConfig | None) -> list[str]:
    """For commands that read an artifact folder: recover a killed build's swap first.

    Costs one ``stat`` when there is nothing to do. Waits for the artifact lock: a build
    that is swapping right now finishes in milliseconds.
    """
    if not journal_path(artifacts_dir).exists():
        return []
    lock = artifact_lock(artifacts_dir)
    lock.acquire(wait=True)
    try:
        return recover(Path(artifacts_dir), store_config) + tidy(Path(artifacts_dir))
    finally:
        lock.release()
