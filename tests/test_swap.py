"""The build journal: a half-done artifact swap is finished, an unreadable journal named."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kgrec.errors import KgrecError
from kgrec.swap import journal_path, new_journal, recover, recover_interrupted, write_journal


def folder(path: Path, content: str) -> Path:
    path.mkdir(parents=True)
    (path / "graph.pt").write_text(content)
    return path


@pytest.mark.parametrize("killed", ["before the renames", "between the renames", "after them"])
def test_a_killed_artifact_swap_is_finished(tmp_path: Path, killed: str) -> None:
    target = tmp_path / "art"
    staging, old = tmp_path / ".art.tmp-4194002", tmp_path / ".art.old-4194002"
    folder(target, "old")
    folder(staging, "new")
    write_journal(new_journal(target, staging, old))  # no database: --no-db
    if killed != "before the renames":
        os.replace(target, old)
    if killed == "after them":
        os.replace(staging, target)
    notes = recover_interrupted(target, None)
    assert "finished swapping" in notes[0]
    assert (target / "graph.pt").read_text() == "new"
    assert not staging.exists() and not old.exists() and not journal_path(target).exists()


def test_an_unreadable_journal_is_named(tmp_path: Path) -> None:
    target = folder(tmp_path / "art", "old")
    journal_path(target).write_text("{not json")
    with pytest.raises(KgrecError, match=r"\.art\.journal\.json .* is unreadable"):
        recover(target, None)


def test_no_journal_costs_nothing(tmp_path: Path) -> None:
    assert recover_interrupted(tmp_path / "art", None) == []
    assert list(tmp_path.iterdir()) == []
