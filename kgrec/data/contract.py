"""The dataset contract: the tables every dataset becomes before anything else happens.

A dataset is a folder holding, as CSV or Parquet (``<name>.csv`` or ``<name>.parquet``):

==============  ========  ==================================================================
table           needed    columns
==============  ========  ==================================================================
interactions    yes       ``user_id``, ``item_id``, optional ``rating`` (float),
                          optional ``timestamp`` (integer seconds)
items           yes       ``item_id`` plus any text columns (``title``, ``description``, ...)
users           no        ``user_id`` plus attribute columns (``age``, ``occupation``, ...)
triples         no        ``head``, ``relation``, ``tail``, optional ``head_type``,
                          ``tail_type``; optional ``user_id``, ``timestamp``: who stated
                          the fact and when (a tag a user applied)
entities        no        ``entity_id``, ``type``, optional ``name``, ``description``
==============  ========  ==================================================================

Ids are strings. A triple's ``head``/``tail`` names a user, an item or an entity; its type
comes from ``head_type``/``tail_type`` when given (``user``, ``item`` or an entity type), else
from the ``entities`` table, else from the items or users table. A triple never links a user
and an item: that is an interaction, and belongs in ``interactions`` (where the split sees
it). A fact stated by a user after their training cut-off is left out of the graph
(:func:`kgrec.data.split.facts_known_in_training`). Reading a folder only parses files;
:mod:`kgrec.data.validate` checks the contract and reports file, line and field.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kgrec.errors import Problem, ValidationError
from kgrec.naming import ITEM as ITEM
from kgrec.naming import USER as USER

MISSING_STRINGS = frozenset({"", "nan", "NaN", "None", "<NA>", "NaT", "null"})
"""String values that mean "missing" (``astype(str)`` turns ``None``/NaN into these)."""
TABLE_NAMES = ("interactions", "items", "users", "triples", "entities")
REQUIRED_TABLES = ("interactions", "items")
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "interactions": ("user_id", "item_id"),
    "items": ("item_id",),
    "users": ("user_id",),
    "triples": ("head", "relation", "tail"),
    "entities": ("entity_id", "type"),
}
ID_COLUMNS: dict[str, tuple[str, ...]] = {
    "interactions": ("user_id", "item_id"),
    "items": ("item_id",),
    "users": ("user_id",),
    "triples": ("head", "relation", "tail", "head_type", "tail_type", "user_id"),
    "entities": ("entity_id", "type"),
}
"""Node types every dataset has."""


@dataclass(frozen=True)
class Table:
    """One contract table and where its rows came from.

    Attributes:
        name: Contract name (``interactions``, ``items``, ...).
        frame: The rows; id columns hold ``str``.
        path: The file the rows were read from (a raw file for adapters).
        lines: 1-based source line of each row, ``[len(frame)]``; ``None`` means a CSV with
            a header, so row ``i`` is on line ``i + 2``.
        sources: For a table gathered from several files: those files, and ``source_of``
            ``[len(frame)]`` the index of each row's file in ``sources``.
    """

    name: str
    frame: pd.DataFrame
    path: Path
    lines: np.ndarray | None = None
    sources: tuple[Path, ...] = ()
    source_of: np.ndarray | None = None

    def path_of(self, row: int) -> Path:
        """The file positional row ``row`` came from."""
        if self.source_of is not None:
            return self.sources[int(self.source_of[row])]
        return self.path

    def line_of(self, row: int) -> int:
        """Source line (1-based) of positional row ``row``."""
        if self.lines is not None:
            return int(self.lines[row])
        return row + 2

    def __len__(self) -> int:
        return len(self.frame)


@dataclass(frozen=True)
class DatasetTables:
    """A dataset in contract form, before validation."""

    interactions: Table
    items: Table
    users: Table | None = None
    triples: Table | None = None
    entities: Table | None = None
    name: str = "dataset"
    notes: tuple[str, ...] = ()
    """What the reader changed on the way in (e.g. KG triples dropped), for the report."""

    def tables(self) -> Iterator[Table]:
        """The tables present, in contract order."""
        for name in TABLE_NAMES:
            table = getattr(self, name)
            if table is not None:
                yield table


def find_table_file(folder: Path, name: str) -> Path | None:
    """``folder/<name>.csv`` or ``.parquet`` (or ``.csv.gz``), whichever exists."""
    for suffix in (".csv", ".parquet", ".csv.gz", ".tsv"):
        path = folder / f"{name}{suffix}"
        if path.exists():
            return path
    return None


def read_table(path: Path, name: str) -> Table:
    """Read one contract table; undecodable bytes and unparsable files become problems."""
    if path.stat().st_size == 0:
        raise ValidationError([Problem(path, None, None, "file is empty")])
    if path.suffix == ".parquet":
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several types
            raise ValidationError(
                [Problem(path, None, None, f"not a Parquet file: {exc}")]
            ) from exc
        id_columns = [c for c in ID_COLUMNS[name] if c in frame.columns]
        for column in id_columns:
            frame[column] = frame[column].map(_id_to_str)
        return Table(name, frame, path, lines=np.arange(len(frame)) + 1)
    _check_utf8(path)
    sep = "\t" if path.suffix == ".tsv" else ","
    try:
        frame = pd.read_csv(
            path,
            sep=sep,
            dtype={c: str for c in (*ID_COLUMNS[name], "rating", "timestamp")},
            keep_default_na=False,
            skip_blank_lines=True,
        )
    except pd.errors.EmptyDataError as exc:
        raise ValidationError([Problem(path, None, None, "file is empty")]) from exc
    except pd.errors.ParserError as exc:
        raise ValidationError([Problem(path, _parser_line(exc), None, str(exc))]) from exc
    if not isinstance(frame.index, pd.RangeIndex):  # pandas took a column as the index
        raise ValidationError([_extra_fields(path, sep)])
    frame.columns = [str(c).strip() for c in frame.columns]
    return Table(name, frame, path)


def read_folder(folder: Path | str, name: str | None = None) -> DatasetTables:
    """Read a contract folder into :class:`DatasetTables` (no validation beyond parsing)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValidationError([Problem(folder, None, None, "dataset folder does not exist")])
    tables: dict[str, Table] = {}
    problems = []
    for table_name in TABLE_NAMES:
        path = find_table_file(folder, table_name)
        if path is None:
            if table_name in REQUIRED_TABLES:
                problems.append(
                    Problem(folder / f"{table_name}.csv", None, None, "required table is missing")
                )
            continue
        try:
            tables[table_name] = read_table(path, table_name)
        except ValidationError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ValidationError(problems)
    return DatasetTables(name=name or folder.name, **tables)  # type: ignore[arg-type]


def write_folder(tables: DatasetTables, folder: Path | str, fmt: str = "csv") -> list[Path]:
    """Write ``tables`` as a contract folder; returns the files written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for table in tables.tables():
        path = folder / f"{table.name}.{fmt}"
        if fmt == "parquet":
            table.frame.to_parquet(path, index=False)
        else:
            table.frame.to_csv(path, index=False)
        written.append(path)
    return written


def _id_to_str(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


def _check_utf8(path: Path) -> None:
    data = path.read_bytes() if not path.name.endswith(".gz") else b""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ValidationError(
            [
                Problem(
                    path,
                    line,
                    None,
                    f"byte 0x{data[exc.start]:02x} at column {column} is not valid UTF-8 "
                    "(re-save the file as UTF-8)",
                )
            ]
        ) from exc


def _extra_fields(path: Path, sep: str) -> Problem:
    """The first line with more fields than the header (pandas would shift every column)."""
    with path.open(encoding="utf-8", newline="") as stream:
        rows = csv.reader(stream, delimiter=sep)
        header = next(rows, [])
        for row in rows:
            if len(row) > len(header):
                line = rows.line_num
                return Problem(
                    path,
                    line,
                    None,
                    f"{len(row)} fields but the header has {len(header)} "
                    "(an unquoted separator inside a value?)",
                )
    return Problem(path, 2, None, f"more fields than the header's {len(header)}")


def _parser_line(exc: Exception) -> int | None:
    match = re.search(r"line (\d+)", str(exc))
    return int(match.group(1)) if match else None
