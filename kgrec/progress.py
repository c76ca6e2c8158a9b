"""Progress reporting that library code can call without knowing about the terminal.

Library functions take a :class:`Reporter`; the CLI passes :class:`RichReporter` (a progress
bar per stage, on stderr), tests and notebooks use the silent default.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)


def _ignore(n: int = 1) -> None:
    """Advance nothing."""


class Reporter:
    """Silent reporter: each stage is a context manager yielding an ``advance(n)`` callable."""

    @contextmanager
    def stage(self, description: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
        yield _ignore

    def note(self, message: str) -> None:
        """A line worth telling the user (a merged duplicate, a started server)."""


class RichReporter(Reporter):
    """One progress bar per stage, drawn on stderr with ``rich``."""

    def __init__(self, console: Any | None = None) -> None:
        self.console = console or Console(stderr=True)

    @contextmanager
    def stage(self, description: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
        columns: list[Any] = [SpinnerColumn(), TextColumn("{task.description:<28}")]
        if total is not None:
            columns += [BarColumn(), MofNCompleteColumn()]
        columns.append(TimeElapsedColumn())
        with Progress(*columns, console=self.console, transient=False) as bar:
            task = bar.add_task(description, total=total)
            yield lambda n: bar.advance(task, n)
            if total is None:
                bar.update(task, total=1, completed=1)
            else:
                bar.update(task, completed=total)

    def note(self, message: str) -> None:
        self.console.print(f"[dim]note:[/dim] {message}")
