"""Export a graph payload as the CSV files of Neo4j's ``neo4j-admin database import``.

For a team moving to a Neo4j cluster: the offline importer writes tens of millions of
relationships in minutes, where transactional ``MERGE`` batches take hours. Layout (the
header rules of Neo4j 5's import tool, "CSV file header format"):

- one node file per label, ``nodes_<Label>.csv``, header
  ``id:ID(<Label>),:LABEL,<name>:<type>,...``: the node id is kept as the ``id`` property
  and lives in the ID space of its label (ids need only be unique within a label, as in
  kgrec's graph); ``:LABEL`` holds the label;
- one relationship file per type and pair of labels,
  ``relationships_<TYPE>_<Source>_<Target>.csv``, header
  ``:START_ID(<Source>),:END_ID(<Target>),:TYPE,<name>:<type>,...``;
- property types as stored in kgrec's graph (:mod:`kgrec.store.rows`): ``long`` for
  integers, ``double`` for floats (Neo4j's ``int``/``float`` are 32-bit), ``boolean``,
  ``string``; a missing value is an empty field (no property), like kgrec's graph;
- comma-separated, UTF-8, fields quoted with ``"`` only when needed (a quote inside is
  doubled); ``--multiline-fields=true`` is added to the command when a value holds a line
  break.

``import.txt`` in the folder holds the command (:attr:`Neo4jImport.command`) and
``constraints.cypher`` the uniqueness constraints kgrec's Neo4j backend creates, to run once
the database is started (the importer creates no indexes or constraints).
"""

from __future__ import annotations

import csv
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from kgrec.errors import KgrecError
from kgrec.store.rows import TEXT_COLUMNS, typed_values

if TYPE_CHECKING:
    from kgrec.store.base import GraphPayload, NodeSet, RelationshipSet

CHUNK_ROWS = 1_000_000
"""Rows converted and written at a time (bounds the memory of a 10M-row export)."""
PROPERTY_TYPES = frozenset({"long", "double", "boolean", "string"})


@dataclass(frozen=True)
class ExportedFile:
    """One CSV file: what it holds and how many rows."""

    path: str
    kind: str  # "nodes" | "relationships"
    name: str  # label or relationship type
    header: list[str]
    rows: int


@dataclass(frozen=True)
class Neo4jImport:
    """What :func:`write_neo4j_import` wrote, and how to import it."""

    folder: str
    database: str
    files: list[ExportedFile] = field(default_factory=list)
    multiline: bool = False

    @property
    def command(self) -> str:
        """The ``neo4j-admin database import full`` command for these files."""
        parts = ["neo4j-admin", "database", "import", "full", self.database]
        for exported in self.files:
            flag = "--nodes" if exported.kind == "nodes" else "--relationships"
            parts.append(f"{flag}={exported.path}")
        if self.multiline:
            parts.append("--multiline-fields=true")
        return " ".join(shlex.quote(p) for p in parts)

    @property
    def constraints(self) -> list[str]:
        """``CREATE CONSTRAINT`` statements for every label's ``id``."""
        labels = sorted({f.name for f in self.files if f.kind == "nodes"})
        return [
            f"CREATE CONSTRAINT kgrec_{label.lower()}_id IF NOT EXISTS "
            f"FOR (n:{label}) REQUIRE n.id IS UNIQUE;"
            for label in labels
        ]


def write_neo4j_import(
    payload: GraphPayload, folder: Path | str, *, database: str = "neo4j"
) -> Neo4jImport:
    """Write ``payload`` as import CSVs into ``folder`` (created; must hold no CSV files).

    Raises:
        KgrecError: When ``folder`` already holds CSV files (an older export would be
            imported alongside).
    """
    folder = Path(folder)
    if folder.exists() and any(folder.glob("*.csv")):
        raise KgrecError(f"{folder} already holds CSV files: export into an empty folder")
    folder.mkdir(parents=True, exist_ok=True)
    files: list[ExportedFile] = []
    multiline = False
    for label, sets in _by_label(payload.nodes).items():
        exported, lines = _write_nodes(folder / f"nodes_{label}.csv", label, sets)
        files.append(exported)
        multiline |= lines
    for rel_set in payload.relationships:
        name = f"relationships_{rel_set.type}_{rel_set.source_label}_{rel_set.target_label}.csv"
        path = folder / name
        if any(f.path == str(path) for f in files):  # same type and labels twice: append
            raise KgrecError(f"two relationship sets would share {name}")
        exported, lines = _write_relationships(path, rel_set)
        files.append(exported)
        multiline |= lines
    result = Neo4jImport(str(folder), database, files, multiline)
    (folder / "import.txt").write_text(result.command + "\n", encoding="utf-8")
    (folder / "constraints.cypher").write_text("\n".join(result.constraints) + "\n", "utf-8")
    return result


def _by_label(node_sets: tuple[NodeSet, ...]) -> dict[str, list[NodeSet]]:
    out: dict[str, list[NodeSet]] = {}
    for node_set in node_sets:
        out.setdefault(node_set.label, []).append(node_set)
    return out


def _write_nodes(path: Path, label: str, sets: list[NodeSet]) -> tuple[ExportedFile, bool]:
    frame = pd.concat([s.frame for s in sets], ignore_index=True)
    frame = frame.assign(id=frame["id"].astype(str))
    if frame["id"].duplicated().any():
        dup = frame["id"][frame["id"].duplicated()].iloc[0]
        raise KgrecError(f"node id {dup!r} appears twice among the :{label} nodes")
    props = [c for c in frame.columns if c != "id"]
    typed = {c: _typed(frame[c], c) for c in props}
    header = [f"id:ID({label})", ":LABEL", *(f"{c}:{typed[c][1]}" for c in props)]
    out = pd.DataFrame({"id": frame["id"], "label": label})
    for column in props:
        out[column] = typed[column][0]
    lines = _write_csv(out, header, path)
    return ExportedFile(str(path), "nodes", label, header, len(out)), lines


def _write_relationships(path: Path, rel_set: RelationshipSet) -> tuple[ExportedFile, bool]:
    frame = rel_set.frame
    props = [c for c in frame.columns if c not in ("source", "target")]
    kinds = {c: _typed(frame[c], c)[1] for c in props}
    header = [
        f":START_ID({rel_set.source_label})",
        f":END_ID({rel_set.target_label})",
        ":TYPE",
        *(f"{c}:{kinds[c]}" for c in props),
    ]
    lines = False
    for start in range(0, max(len(frame), 1), CHUNK_ROWS):
        chunk = frame.iloc[start : start + CHUNK_ROWS]
        out = pd.DataFrame(
            {
                "source": chunk["source"].astype(str).to_numpy(),
                "target": chunk["target"].astype(str).to_numpy(),
                "type": rel_set.type,
            }
        )
        for column in props:
            out[column] = _typed(chunk[column], column, kinds[column])[0].array
        lines |= _write_csv(out, header if start == 0 else None, path)
    return ExportedFile(str(path), "relationships", rel_set.type, header, len(frame)), lines


def _typed(values: pd.Series, name: str, kind: str | None = None) -> tuple[pd.Series, str]:
    """``values`` ready for the CSV writer and their import type (see the module docs)."""
    dtype_kind = values.dtype.kind
    if dtype_kind == "b":
        return values.map({True: "true", False: "false"}), "boolean"
    if dtype_kind in "iu":
        return values, "long"
    if dtype_kind == "f":
        return values, "double"
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    plain = [u.item() if hasattr(u, "item") else u for u in uniques]
    typed = plain if name in TEXT_COLUMNS else typed_values(plain)
    found = kind or _kind_of(typed)
    text = [None if v is None else _text(v) if found == "string" else _cell(v) for v in typed]
    mapped = pd.Series([*text, None], dtype=object).take(codes).reset_index(drop=True)
    mapped.index = values.index
    return mapped, found


def _kind_of(values: list[object]) -> str:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return "boolean"
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "long"
    if present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return "double"
    return "string"


def _cell(value: object) -> object:
    return ("true" if value else "false") if isinstance(value, bool) else value


def _text(value: object) -> str:
    if isinstance(value, list | tuple):
        return ";".join(str(v) for v in value)
    return str(value)


def _write_csv(frame: pd.DataFrame, header: list[str] | None, path: Path) -> bool:
    """Append ``frame`` to ``path`` (with ``header`` first when given); returns whether a
    value holds a line break."""
    lines = False
    for column in frame.columns:
        if frame[column].dtype == object:
            text = frame[column].dropna().astype(str)
            lines |= bool(text.str.contains(r"[\r\n]", regex=True).any())
    frame.to_csv(
        path,
        mode="w" if header is not None else "a",
        header=header if header is not None else False,
        index=False,
        na_rep="",
        quoting=csv.QUOTE_MINIMAL,
        lineterminator="\n",
    )
    return lines
