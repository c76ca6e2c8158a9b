"""Reading raw delimited files while keeping each row's source line."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from kgrec.data.contract import Table
from kgrec.errors import Problem, ValidationError


def require(folder: Path, *names: str) -> list[Path]:
    """Paths of ``names`` in ``folder``; a clear error naming every missing one."""
    if not folder.is_dir():
        raise ValidationError([Problem(folder, None, None, "dataset folder does not exist")])
    missing = [folder / n for n in names if not (folder / n).exists()]
    if missing:
        raise ValidationError([Problem(p, None, None, "required file is missing") for p in missing])
    return [folder / n for n in names]


def read_text(path: Path, encoding: str) -> str:
    """The whole file decoded; undecodable bytes become a problem with their line."""
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


def read_delimited(
    path: Path,
    columns: list[str],
    sep: str,
    *,
    encoding: str = "utf-8",
    header: bool = False,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows of a delimited file as strings and their 1-based source lines ``[n]``.

    ``sep`` may be multi-character (``::``); blank lines are skipped. A row with the wrong
    number of fields is a problem naming its line.
    """
    text = read_text(path, encoding)
    lines = text.splitlines()
    start = 1 if header else 0
    keep = [i for i in range(start, len(lines)) if lines[i].strip()]
    body = "\n".join(lines[i] for i in keep)
    if len(sep) > 1:
        body = body.replace(sep, "\x1f")
        sep = "\x1f"
    try:
        frame = pd.read_csv(
            io.StringIO(body),
            sep=sep,
            header=None,
            dtype=str,
            keep_default_na=False,
            quoting=3 if sep != "," else 0,  # QUOTE_NONE except for real CSV
            engine="c",
        )
    except pd.errors.ParserError as exc:
        raise ValidationError([Problem(path, None, None, f"cannot parse: {exc}")]) from exc
    except pd.errors.EmptyDataError as exc:
        raise ValidationError([Problem(path, None, None, "file is empty")]) from exc
    source_lines = np.asarray(keep, dtype=np.int64) + 1
    if frame.shape[1] < len(columns):
        raise ValidationError(
            [
                Problem(
                    path,
                    int(source_lines[0]),
                    None,
                    f"expected {len(columns)} fields ({', '.join(columns)}), "
                    f"found {frame.shape[1]}",
                )
            ]
        )
    frame = frame.iloc[:, : len(columns)]
    frame.columns = columns
    return frame, source_lines


def raw_table(name: str, frame: pd.DataFrame, path: Path, lines: np.ndarray) -> Table:
    """A contract table read from a raw file (rows keep their raw lines)."""
    return Table(name, frame.reset_index(drop=True), path, lines=np.asarray(lines))
