"""FalkorDB's binary bulk loader (``GRAPH.BULK``) for a fresh graph.

``build-graph`` loads into an empty staging graph, so it needs no ``MERGE``: every node and
relationship of the payload is new. ``GRAPH.BULK`` takes them as binary tokens the server
unpacks without parsing Cypher, which is what makes it several times faster than batched
``UNWIND`` queries (``docs/benchmarks.md``). The format, as read by FalkorDB's
``src/bulk_insert/bulk_insert.c``::

    GRAPH.BULK <graph> [BEGIN] <nodes> <relationships> <node tokens> <relationship tokens>
               <token> ...

A token is a header (the label or relationship type, NUL-terminated; a little-endian
``uint32`` property count; the property names, each NUL-terminated) followed by records.
A node record is its property values in header order; a relationship record is the
``uint64`` ids of its source and target node, then its values. A value is a type byte and
its payload: ``0`` null (the property is left out), ``1`` bool (1 byte), ``2`` double
(8 bytes), ``3`` string (UTF-8, NUL-terminated), ``4`` long (8 bytes), ``5`` array (an
``int64`` length, then values). Nodes get ids ``0, 1, 2, ...`` in the order they are sent
(``BEGIN`` only creates a graph that does not exist yet), so relationships name their
endpoints by position; every node is sent before any relationship.

Values are typed as the ``UNWIND`` rows of :mod:`kgrec.store.rows` type them (numbers stay
numbers, ``title``/``name``/``description`` stay text), so both paths write the same graph.
Relationship records are packed with numpy (vectorised over rows), nodes value by value.
The server does not validate a token beyond its own asserts, so everything is checked here
before it is sent: endpoints that name no node, duplicate node ids or relationships, and
strings holding a NUL byte are :class:`~kgrec.errors.StoreError`.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import redis

from kgrec.errors import StoreError
from kgrec.store.rows import TEXT_COLUMNS, property_columns, typed_values

if TYPE_CHECKING:
    from kgrec.store.base import GraphPayload, NodeSet, Progress, RelationshipSet

NULL, BOOL, DOUBLE, STRING, LONG, ARRAY = 0, 1, 2, 3, 4, 5
NODES_PER_TOKEN = 100_000
RELATIONSHIPS_PER_TOKEN = 500_000
"""Rows per token (one ``GRAPH.BULK`` command each): tens of MB, far below Redis's 512 MB
argument limit, and small enough that the client packs the next token while the server
inserts this one."""
IN_FLIGHT = 2
"""Commands sent ahead while the next token is packed (the server runs them in order)."""


@dataclass(frozen=True)
class Token:
    """One ``GRAPH.BULK`` token: ``count`` nodes (``is_node``) or relationships."""

    data: bytes
    count: int
    is_node: bool


@dataclass(frozen=True)
class _Column:
    """A property column as per-row byte ranges of ``blob``: value ``i`` is
    ``blob[starts[i] : starts[i] + lengths[i]]`` (type byte included)."""

    name: str
    blob: np.ndarray  # uint8
    starts: np.ndarray  # int64 [n]
    lengths: np.ndarray  # int64 [n]


def bulk_load(
    connection: Any,
    graph: str,
    payload: GraphPayload,
    *,
    progress: Progress | None = None,
) -> None:
    """Create ``graph`` (which must not exist) holding exactly ``payload``.

    Args:
        connection: A ``redis.Redis`` client of the FalkorDB server.
        progress: Called with the number of nodes or relationships of each token sent.

    Raises:
        StoreError: Bad payload (see the module docstring) or a server error; the graph
            may then exist half-written (the caller drops its staging graph).
        redis.exceptions.ConnectionError: The server went away (the store turns it into its
            one-line message).
    """
    positions = node_positions(payload)
    with ThreadPoolExecutor(max_workers=1) as sender:
        pending: list[tuple[Future[Any], Token]] = []
        first = True
        try:
            for token in payload_tokens(payload, positions):
                args: list[Any] = ["BEGIN"] if first else []
                first = False
                nodes, rels = (token.count, 0) if token.is_node else (0, token.count)
                args += [nodes, rels, int(token.is_node), int(not token.is_node), token.data]
                pending.append(
                    (sender.submit(connection.execute_command, "GRAPH.BULK", graph, *args), token)
                )
                while len(pending) > IN_FLIGHT or (pending and pending[0][0].done()):
                    _finish(pending.pop(0), progress)
            while pending:
                _finish(pending.pop(0), progress)
        except redis.exceptions.ResponseError as exc:
            raise StoreError(f"FalkorDB rejected the bulk load: {exc}") from exc
        finally:
            for future, _ in pending:
                future.cancel()


def _finish(entry: tuple[Future[Any], Token], progress: Progress | None) -> None:
    future, token = entry
    future.result()
    if progress:
        progress(token.count)


def node_positions(payload: GraphPayload) -> dict[str, pd.Index]:
    """``{label: Index of node ids}``: node ``k`` of a label gets the database id
    ``label_offsets(...)[label] + k``.

    Raises:
        StoreError: When an id appears twice under one label.
    """
    by_label: dict[str, list[pd.Series]] = {}
    for node_set in payload.nodes:
        by_label.setdefault(node_set.label, []).append(node_set.frame["id"].astype(str))
    out = {}
    for label, parts in by_label.items():
        index = pd.Index(pd.concat(parts, ignore_index=True))
        if not index.is_unique:
            dup = index[index.duplicated()][0]
            raise StoreError(f"node id {dup!r} appears twice among the :{label} nodes")
        out[label] = index
    return out


def payload_tokens(payload: GraphPayload, positions: dict[str, pd.Index]) -> Iterator[Token]:
    """Every token of ``payload``: its nodes label by label (in :func:`node_positions`'
    order), then its relationships."""
    offsets = label_offsets(payload, positions)
    for sets in _sets_by_label(payload).values():
        for node_set in sets:
            yield from node_tokens(node_set)
    for rel_set in payload.relationships:
        source = _endpoint_ids(rel_set, "source", positions, offsets)
        target = _endpoint_ids(rel_set, "target", positions, offsets)
        _check_unique_pairs(rel_set, source, target)
        yield from relationship_tokens(rel_set, source, target)


def label_offsets(payload: GraphPayload, positions: dict[str, pd.Index]) -> dict[str, int]:
    """Global id of each label's first node (labels in the order their nodes are sent)."""
    offsets, total = {}, 0
    for label in _sets_by_label(payload):
        offsets[label] = total
        total += len(positions[label])
    return offsets


def _sets_by_label(payload: GraphPayload) -> dict[str, list[NodeSet]]:
    out: dict[str, list[NodeSet]] = {}
    for node_set in payload.nodes:
        out.setdefault(node_set.label, []).append(node_set)
    return out


def _endpoint_ids(
    rel_set: RelationshipSet, side: str, positions: dict[str, pd.Index], offsets: dict[str, int]
) -> np.ndarray:
    label = rel_set.source_label if side == "source" else rel_set.target_label
    ids = rel_set.frame[side].astype(str)
    index = positions.get(label)
    found = index.get_indexer(ids) if index is not None else np.full(len(ids), -1)
    if (found < 0).any():
        missing = ids.iloc[int(np.flatnonzero(found < 0)[0])]
        raise StoreError(
            f"{rel_set.type} relationship {side} {missing!r} is not among the :{label} nodes"
        )
    return (found + offsets[label]).astype(np.uint64)


def _check_unique_pairs(rel_set: RelationshipSet, source: np.ndarray, target: np.ndarray) -> None:
    """One relationship per ordered pair and type, as ``MERGE`` would keep."""
    if len(source) < 2:
        return
    if max(int(source.max()), int(target.max())) < 2**32:  # one sortable 64-bit key
        keys = np.sort((source << np.uint64(32)) | target)
        repeated = bool((keys[1:] == keys[:-1]).any())
    else:
        repeated = len(np.unique(np.stack([source, target], axis=1), axis=0)) != len(source)
    if repeated:
        raise StoreError(
            f"some {rel_set.type} relationships repeat the same source and target; "
            "the graph keeps one per pair"
        )


# ------------------------------------------------------------------------------- nodes


def node_tokens(node_set: NodeSet, size: int | None = None) -> Iterator[Token]:
    """Tokens of ``node_set``: ``id`` and every other property column, ``size`` nodes each
    (default :data:`NODES_PER_TOKEN`)."""
    size = size or NODES_PER_TOKEN
    frame = node_set.frame
    columns = {"id": frame["id"].astype(str).tolist(), **property_columns(frame, ("id",))}
    header = _header(node_set.label, list(columns))
    values = list(columns.values())
    for start in range(0, len(frame), size):
        stop = min(start + size, len(frame))
        body = b"".join(encode_value(column[i]) for i in range(start, stop) for column in values)
        yield Token(header + body, stop - start, True)


def encode_value(value: Any) -> bytes:
    """One value in the bulk format (see the module docstring)."""
    if value is None:
        return b"\x00"
    if isinstance(value, bool | np.bool_):
        return struct.pack("<B?", BOOL, bool(value))
    if isinstance(value, int | np.integer):
        if not -(2**63) <= int(value) < 2**63:
            raise StoreError(f"integer {value} does not fit the graph database's 64 bits")
        return struct.pack("<Bq", LONG, int(value))
    if isinstance(value, float | np.floating):
        return b"\x00" if math.isnan(value) else struct.pack("<Bd", DOUBLE, float(value))
    if isinstance(value, list | tuple | np.ndarray):
        return struct.pack("<Bq", ARRAY, len(value)) + b"".join(encode_value(v) for v in value)
    return _encode_string(str(value))


def _encode_string(text: str) -> bytes:
    data = text.encode("utf-8")
    if b"\x00" in data:
        raise StoreError(f"value {text[:40]!r} holds a NUL character, which the graph cannot store")
    return bytes([STRING]) + data + b"\x00"


def _header(name: str, properties: Sequence[str]) -> bytes:
    parts = [name.encode() + b"\x00", struct.pack("<I", len(properties))]
    parts += [p.encode() + b"\x00" for p in properties]
    return b"".join(parts)


# ------------------------------------------------------------------------ relationships


def relationship_tokens(
    rel_set: RelationshipSet,
    source: np.ndarray,
    target: np.ndarray,
    size: int | None = None,
) -> Iterator[Token]:
    """Tokens of ``rel_set`` with endpoint node ids ``source``/``target`` (``uint64 [n]``),
    ``size`` relationships each (default :data:`RELATIONSHIPS_PER_TOKEN`)."""
    size = size or RELATIONSHIPS_PER_TOKEN
    frame = rel_set.frame
    names = [str(c) for c in frame.columns if c not in ("source", "target")]
    header = _header(rel_set.type, names)
    for start in range(0, len(frame), size):
        stop = min(start + size, len(frame))
        chunk = frame.iloc[start:stop]
        columns = [_column(name, chunk[name]) for name in names]
        body = pack_records(source[start:stop], target[start:stop], columns)
        yield Token(header + body, stop - start, False)


def pack_records(source: np.ndarray, target: np.ndarray, columns: list[_Column]) -> bytes:
    """Relationship records: ``source``, ``target`` (``uint64``) then each column's value."""
    n = len(source)
    lengths = np.full(n, 16, dtype=np.int64)
    for column in columns:
        lengths += column.lengths
    row_start = np.zeros(n, dtype=np.int64)
    np.cumsum(lengths[:-1], out=row_start[1:])
    out = np.empty(int(lengths.sum()), dtype=np.uint8)
    ends = np.stack([source, target], axis=1).astype("<u8").view(np.uint8).reshape(n, 16)
    out[row_start[:, None] + np.arange(16)] = ends
    at = row_start + 16
    for column in columns:
        _scatter(out, at, column)
        at += column.lengths
    return out.tobytes()


def _scatter(out: np.ndarray, at: np.ndarray, column: _Column) -> None:
    """Copy value ``i`` of ``column`` to ``out[at[i]:]`` for every row ``i`` at once."""
    width = int(column.lengths[0]) if len(column.lengths) else 0
    if (column.lengths == width).all():  # fixed width: one 2-D gather
        span = np.arange(width)
        out[at[:, None] + span] = column.blob[column.starts[:, None] + span]
        return
    total = int(column.lengths.sum())
    first = np.zeros(len(at), dtype=np.int64)
    np.cumsum(column.lengths[:-1], out=first[1:])
    within = np.arange(total) - np.repeat(first, column.lengths)
    out[np.repeat(at, column.lengths) + within] = column.blob[
        np.repeat(column.starts, column.lengths) + within
    ]


def _column(name: str, values: pd.Series) -> _Column:
    """Encode one relationship property column (typed as :mod:`kgrec.store.rows` does)."""
    kind = values.dtype.kind
    if kind in "fiu" and not isinstance(values.dtype, pd.CategoricalDtype):
        missing = values.isna().to_numpy()
        if kind == "f":
            data = values.to_numpy(dtype=np.float64, na_value=np.nan)
            code = DOUBLE
        else:
            data = values.to_numpy(dtype=np.int64, na_value=0)
            code = LONG
        return _fixed(name, code, data.astype("<f8" if code == DOUBLE else "<i8"), missing)
    if kind == "b":
        data = values.to_numpy(dtype=bool, na_value=False).astype(np.uint8)
        return _fixed(name, BOOL, data, values.isna().to_numpy())
    # Text, nullable numbers as objects, anything else: encode each distinct value once.
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    plain = [None if _is_missing(v) else (v.item() if hasattr(v, "item") else v) for v in uniques]
    typed = plain if name in TEXT_COLUMNS else typed_values(plain)
    encoded = [encode_value(v) for v in typed] + [b"\x00"]  # last: missing (code -1)
    sizes = np.array([len(e) for e in encoded], dtype=np.int64)
    offsets = np.zeros(len(encoded), dtype=np.int64)
    np.cumsum(sizes[:-1], out=offsets[1:])
    blob = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    return _Column(name, blob, offsets[codes], sizes[codes])


def _fixed(name: str, code: int, data: np.ndarray, missing: np.ndarray) -> _Column:
    """A column of one fixed-width type: type byte + ``data``'s bytes, or a null byte."""
    n, width = len(data), data.dtype.itemsize
    rows = np.empty((n, 1 + width), dtype=np.uint8)
    rows[:, 0] = code
    rows[:, 1:] = data.view(np.uint8).reshape(n, width)
    if missing.any():
        rows[missing, 0] = NULL
    lengths = np.where(missing, 1, 1 + width).astype(np.int64)
    return _Column(name, rows.reshape(-1), np.arange(n, dtype=np.int64) * (1 + width), lengths)


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN, pd.NA raise or are unequal to themselves
    except (TypeError, ValueError):
        return True
