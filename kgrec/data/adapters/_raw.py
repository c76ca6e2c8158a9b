"""Reading raw delimited files while keeping each row's source file and line."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from kgrec.data.contract import Table
from kgrec.errors import Problem, ValidationError

MAX_PROBLEMS = 10
"""Problems reported per file before the rest are summarised."""


def require(folder: Path, *names: str) -> list[Path]:
    """Paths of ``names`` in ``folder``; a clear error naming every missing one."""
    if not folder.is_dir():
        raise ValidationError([Problem(folder, None, None, "dataset folder does not exist")])
    missing = [folder / n for n in names if not (folder / n).is_file()]
    if missing:
        raise ValidationError([Problem(p, None, None, "required file is missing") for p in missing])
    return [folder / n for n in names]


def read_text(path: Path, encoding: str) -> str:
    """The whole file decoded; undecodable bytes become a problem naming their line."""
    data = path.read_bytes()
    if not data.strip():
        raise ValidationError([Problem(path, None, None, "file is empty")])
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ValidationError(
            [Problem(path, line, None, f"byte 0x{data[exc.start]:02x} is not valid {encoding}")]
        ) from exc


def split_lines(text: str) -> list[str]:
    """Lines split on ``\\n`` only (``\\r\\n`` too), unlike ``str.splitlines``, which also
    breaks on characters such as U+0085 that Latin-1 text may legitimately hold."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def too_many_problems(path: Path, problems: list[Problem], total: int) -> ValidationError:
    """``problems`` (already capped) plus a summary of the ``total - len(problems)`` others."""
    if total > len(problems):
        problems = [*problems, Problem(path, None, None, f"... {total - len(problems)} more")]
    return ValidationError(problems)


def read_delimited(
    path: Path,
    columns: list[str],
    sep: str,
    *,
    encoding: str = "utf-8",
    header: bool = False,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows of a delimited file as strings, and their 1-based source lines ``[n]``.

    ``sep`` may be multi-character (``::``); ``","`` means real CSV (double-quoted fields).
    Blank lines are skipped. Every row must have exactly ``len(columns)`` fields; those that
    do not are problems naming their line.
    """
    lines = split_lines(read_text(path, encoding))
    start = 1 if header else 0
    body = pd.Series(lines[start:], dtype=object)
    nonblank = body.str.strip() != ""
    source_lines = np.flatnonzero(nonblank.to_numpy()) + start + 1
    body = body[nonblank]
    if body.empty:
        raise ValidationError([Problem(path, None, None, "file has no rows")])
    counts = body.str.count(re.escape(sep)).to_numpy() + 1
    if sep == ",":  # quoted fields may hold commas: count those lines properly
        quoted = body.str.contains('"', regex=False).to_numpy()
        counts[quoted] = [len(next(csv.reader([line]))) for line in body[quoted]]
    bad = np.flatnonzero(counts != len(columns))
    if len(bad):
        problems = [
            Problem(
                path,
                int(source_lines[i]),
                None,
                f"expected {len(columns)} fields ({', '.join(columns)}) separated by "
                f"{sep!r}, found {int(counts[i])}",
            )
            for i in bad[:MAX_PROBLEMS]
        ]
        raise too_many_problems(path, problems, len(bad))
    text = "\n".join(body)
    if len(sep) > 1:
        text = text.replace(sep, "\x1f")
        sep = "\x1f"
    frame = pd.read_csv(
        io.StringIO(text),
        sep=sep,
        header=None,
        names=columns,
        dtype=str,
        keep_default_na=False,
        quoting=csv.QUOTE_MINIMAL if sep == "," else csv.QUOTE_NONE,
        engine="c",
    )
    if len(frame) != len(source_lines):  # a quoted field spanning lines
        raise ValidationError(
            [Problem(path, None, None, "quoted fields spanning several lines are not supported")]
        )
    return frame, source_lines


def member(values: pd.Series | np.ndarray, pool: object) -> np.ndarray:
    """``values.isin(pool)`` as a bool array, hashing as Python objects: pandas' Arrow-backed
    ``isin`` is ~20x slower for the pools of a few 10k ids met here."""
    wanted = np.asarray(list(pool) if isinstance(pool, set) else pool, dtype=object)
    return pd.Series(np.asarray(values, dtype=object), dtype=object).isin(wanted).to_numpy()


def raw_table(name: str, frame: pd.DataFrame, path: Path, lines: np.ndarray) -> Table:
    """A contract table read from one raw file (rows keep their raw lines)."""
    return Table(name, frame.reset_index(drop=True), path, lines=np.asarray(lines, np.int64))


def concat_tables(name: str, tables: list[Table]) -> Table:
    """One table gathered from several tables; every row keeps its own file and line."""
    tables = [t for t in tables if len(t)] or tables[:1]
    paths: list[Path] = []
    for table in tables:
        paths.extend(p for p in (table.sources or (table.path,)) if p not in paths)
    lines, source_of = [], []
    for table in tables:
        n = len(table)
        lines.append(table.lines if table.lines is not None else np.arange(n) + 2)
        if table.source_of is not None:
            remap = np.asarray([paths.index(p) for p in table.sources])
            source_of.append(remap[np.asarray(table.source_of)])
        else:
            source_of.append(np.full(n, paths.index(table.path)))
    frame = pd.concat([t.frame for t in tables], ignore_index=True)
    return Table(
        name,
        frame,
        paths[0],
        lines=np.concatenate(lines).astype(np.int64),
        sources=tuple(paths),
        source_of=np.concatenate(source_of).astype(np.int64),
    )


def first_seen(
    name: str, ids: pd.Series, frame: pd.DataFrame, path: Path, lines: np.ndarray
) -> Table:
    """Rows of ``frame`` (aligned with ``ids``), one per distinct id, at the line it first
    appears on; used for entities derived from values in a raw file."""
    keep = ~ids.duplicated().to_numpy()
    return raw_table(name, frame[keep], path, np.asarray(lines)[keep])
