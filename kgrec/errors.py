"""Errors kgrec reports to people: each says what is wrong and where."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class KgrecError(Exception):
    """An error with a message meant for the user; the CLI prints it and exits non-zero."""

    exit_code = 1


@dataclass(frozen=True)
class Problem:
    """One problem in an input file: which file, which line (1-based), which field, and what."""

    file: Path | str
    line: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = str(self.file)
        if self.line is not None:
            where += f":{self.line}"
        if self.field:
            where += f" [{self.field}]"
        return f"{where}: {self.message}"


class ValidationError(KgrecError):
    """The input dataset breaks the contract. Holds every problem found (capped)."""

    exit_code = 2

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        head = "\n".join(f"  - {p}" for p in problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(f"invalid dataset ({len(problems)} problem(s)):\n{head}{more}")


class StoreError(KgrecError):
    """The graph database could not be reached, started, or written."""

    exit_code = 3
