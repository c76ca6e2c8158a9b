"""The binary bulk loader (``GRAPH.BULK``): the same graph as the ``UNWIND`` upserts, its
byte format, bad payloads refused before anything is sent, and durability in the
append-only log."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from kgrec.errors import StoreError
from kgrec.store import bulk
from kgrec.store.base import GraphPayload, NodeSet, RelationshipSet
from kgrec.store.bulk import _column, encode_value, node_positions, pack_records
from kgrec.store.falkordb import FalkorDBStore
from kgrec.store.payload import upsert_payload
from kgrec.store.server import FalkorDBServer, _binaries


def awkward_payload() -> GraphPayload:
    """Every kind of value the loader meets: typed numeric text, zip codes, nullable ints,
    missing values, unicode, a text column of digits, and one label split over two sets."""
    users = pd.DataFrame(
        {
            "id": ["u1", "u2", "u3", "u4"],
            "age": ["22", "48", None, "7"],
            "zip": ["02134", "T8H1N", None, "90210"],
            "name": ["Zoë", "李雷", None, 'O\'Brien "Jr"'],
        }
    )
    items = pd.DataFrame({"id": ["i1", "i2"], "title": ["1984", "Heat"], "year": [1984.0, np.nan]})
    added = pd.DataFrame({"id": ["i3"], "title": ["Memento"]})
    rels = pd.DataFrame(
        {
            "source": ["u1", "u2", "u3", "u1", "u4"],
            "target": ["i1", "i1", "i2", "i2", "i3"],
            "rating": [4.0, np.nan, 3.5, 1.0, 5.0],
            "timestamp": pd.array([1, None, 3, 2**40, -5], dtype="Int64"),
            "split": ["train", "val", "test", None, "train"],
        }
    )
    follows = pd.DataFrame({"source": ["u1", "u2"], "target": ["u2", "u1"]})
    return GraphPayload(
        nodes=(NodeSet("User", users), NodeSet("Item", items), NodeSet("Item", added)),
        relationships=(
            RelationshipSet("INTERACTED", "User", "Item", rels),
            RelationshipSet("FOLLOWS", "User", "User", follows),
        ),
    )


@pytest.fixture
def store(falkordb_home: Path, graph_name: str):  # type: ignore[no-untyped-def]
    server = FalkorDBServer(falkordb_home)
    info = server.start()
    store = FalkorDBStore(info.host, info.port, server.password(), graph=graph_name)
    yield store
    for name in (graph_name, f"{graph_name}_upsert"):
        store._drop(name)
    store.close()


def snapshot(store: FalkorDBStore) -> tuple[list[Any], list[Any]]:
    nodes = store.query(
        "MATCH (n) RETURN labels(n)[0] AS l, n.id AS id, properties(n) AS p, "
        "[k IN keys(n) | typeOf(n[k])] AS types ORDER BY l, id"
    ).rows
    rels = store.query(
        "MATCH (a)-[r]->(b) RETURN type(r) AS t, a.id AS s, b.id AS d, properties(r) AS p, "
        "[k IN keys(r) | typeOf(r[k])] AS types ORDER BY t, s, d"
    ).rows
    return nodes, rels


def test_bulk_load_writes_the_same_graph_as_the_upserts(
    store: FalkorDBStore, falkordb_home: Path
) -> None:
    payload = awkward_payload()
    assert store.load(payload) == payload.expected_counts()
    bulk = snapshot(store)
    info = FalkorDBServer(falkordb_home).start()
    upserted = FalkorDBStore(
        info.host, info.port, FalkorDBServer(falkordb_home).password(),
        graph=f"{store.graph_name}_upsert",
    )  # fmt: skip
    upsert_payload(upserted, payload)  # the UNWIND ... MERGE path of add-items and Neo4j
    assert bulk == snapshot(upserted)
    upserted.close()
    nodes, rels = bulk
    assert nodes[3][1:] == ["u1", {"id": "u1", "age": 22, "zip": "02134", "name": "Zoë"}, [
        "String", "Integer", "String", "String"]]  # fmt: skip
    assert nodes[0][1:3] == ["i1", {"id": "i1", "title": "1984", "year": 1984.0}]
    assert next(r for r in rels if r[1:3] == ["u1", "i2"])[3] == {
        "rating": 1.0,
        "timestamp": 2**40,
    }
    # lookups by id use the index built after the load
    plan = store._db.select_graph(store.graph_name).explain("MATCH (u:User {id: 'u2'}) RETURN u")
    assert "Index" in str(plan)


def test_relationships_connect_the_right_nodes_at_scale(
    store: FalkorDBStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(0)
    users = pd.DataFrame({"id": [f"u{k}" for k in range(3_000)]})
    items = pd.DataFrame({"id": [f"i{k}" for k in range(2_000)]})
    pairs = np.unique(
        np.stack([rng.integers(0, 3_000, 40_000), rng.integers(0, 2_000, 40_000)], 1), axis=0
    )
    rels = pd.DataFrame(
        {
            "source": [f"u{u}" for u in pairs[:, 0]],
            "target": [f"i{i}" for i in pairs[:, 1]],
            "w": (pairs[:, 0] * 10_000 + pairs[:, 1]).astype(np.int64),
        }
    )
    payload = GraphPayload(
        nodes=(NodeSet("User", users), NodeSet("Item", items)),
        relationships=(RelationshipSet("R", "User", "Item", rels),),
    )
    seen: list[int] = []
    monkeypatch.setattr(bulk, "RELATIONSHIPS_PER_TOKEN", 7_000)  # many commands in flight
    monkeypatch.setattr(bulk, "NODES_PER_TOKEN", 1_000)
    assert store.load(payload, progress=seen.append) == payload.expected_counts()
    assert sum(seen) == 5_000 + len(pairs) and len(seen) > 10
    wrong = store.query(
        "MATCH (u:User)-[r:R]->(i:Item) "
        "WHERE toInteger(substring(u.id, 1)) * 10000 + toInteger(substring(i.id, 1)) <> r.w "
        "RETURN count(r)"
    ).rows
    assert wrong == [[0]]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: _rels(p, source="nobody"), "INTERACTED relationship source 'nobody' is not"),
        (lambda p: _rels(p, target="u1"), "target 'u1' is not among the :Item nodes"),
        (lambda p: _dup_node(p), "node id 'u1' appears twice among the :User nodes"),
        (lambda p: _dup_rel(p), "some FOLLOWS relationships repeat the same source and target"),
        (lambda p: _nul(p), "NUL character"),
    ],
)
def test_bad_payloads_are_refused_and_the_live_graph_stays(
    store: FalkorDBStore, change: Any, message: str
) -> None:
    payload = awkward_payload()
    store.load(payload)
    before = snapshot(store)
    with pytest.raises(StoreError, match=message):
        store.load(change(payload))
    assert snapshot(store) == before
    assert f"{store.graph_name}__staging" not in store._db.list_graphs()


def _rels(payload: GraphPayload, **column: str) -> GraphPayload:
    frame = payload.relationships[0].frame.copy()
    for name, value in column.items():
        frame.loc[2, name] = value
    first = RelationshipSet("INTERACTED", "User", "Item", frame)
    return GraphPayload(payload.nodes, (first, *payload.relationships[1:]))


def _dup_node(payload: GraphPayload) -> GraphPayload:
    extra = NodeSet("User", pd.DataFrame({"id": ["u1"]}))
    return GraphPayload((*payload.nodes, extra), payload.relationships)


def _dup_rel(payload: GraphPayload) -> GraphPayload:
    frame = pd.DataFrame({"source": ["u1", "u2", "u1"], "target": ["u2", "u1", "u2"]})
    return GraphPayload(
        payload.nodes, (payload.relationships[0], RelationshipSet("FOLLOWS", "User", "User", frame))
    )


def _nul(payload: GraphPayload) -> GraphPayload:
    users = payload.nodes[0].frame.assign(name=["a\x00b", None, None, None])
    return GraphPayload((NodeSet("User", users), *payload.nodes[1:]), payload.relationships)


# -- the byte format, against a plain struct encoder ----------------------------------------


def reference_value(value: Any, kind: str) -> bytes:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return b"\x00"
    if kind == "double":
        return struct.pack("<Bd", 2, value)
    if kind == "long":
        return struct.pack("<Bq", 4, int(value))
    return b"\x03" + str(value).encode() + b"\x00"


def test_packed_records_match_a_row_by_row_encoder() -> None:
    rng = np.random.default_rng(1)
    n = 2_000
    words = np.array(["train", "val", "test", "ünïcode", "", "x" * 40], dtype=object)
    frame = pd.DataFrame(
        {
            "rating": np.where(rng.random(n) < 0.1, np.nan, rng.random(n) * 5),
            "when": pd.array(
                np.where(rng.random(n) < 0.1, None, rng.integers(-(2**40), 2**40, n)),
                dtype="Int64",
            ),
            "count": rng.integers(0, 100, n),
            "split": np.where(rng.random(n) < 0.1, None, words[rng.integers(0, 6, n)]),
        }
    )
    source = rng.integers(0, 10**6, n).astype(np.uint64)
    target = rng.integers(0, 10**6, n).astype(np.uint64)
    kinds = {"rating": "double", "when": "long", "count": "long", "split": "string"}
    columns = [_column(name, frame[name]) for name in frame.columns]
    expected = b"".join(
        struct.pack("<QQ", int(source[i]), int(target[i]))
        + b"".join(reference_value(frame[c].iloc[i], kinds[c]) for c in frame.columns)
        for i in range(n)
    )
    assert pack_records(source, target, columns) == expected


def test_values_and_numeric_text_are_typed_like_the_upsert_rows() -> None:
    assert encode_value(True) == b"\x01\x01" and encode_value(None) == b"\x00"
    assert encode_value(["a", 2]) == struct.pack("<Bq", 5, 2) + b"\x03a\x00" + struct.pack(
        "<Bq", 4, 2
    )
    with pytest.raises(StoreError, match="64 bits"):
        encode_value(2**70)
    ages = _column("age", pd.Series(["22", None, "7"], dtype=object))
    assert ages.blob[ages.starts[0]] == 4 and ages.lengths.tolist() == [9, 1, 9]
    zips = _column("zip", pd.Series(["02134", "7"], dtype=object))
    assert zips.blob[zips.starts[1]] == 3  # "02134" keeps the column text
    titles = _column("title", pd.Series(["1984"], dtype=object))
    assert titles.blob.tobytes() == b"\x031984\x00\x00"
    assert list(node_positions(awkward_payload())["Item"]) == ["i1", "i2", "i3"]


# -- durability ---------------------------------------------------------------------------


def test_a_bulk_load_survives_kill_9_with_the_append_only_log(tmp_path: Path) -> None:
    """``GRAPH.BULK`` is replicated verbatim, so the append-only log holds it."""
    import socket

    import falkordb

    server, module = _binaries()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        str(server), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path),
        "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--loadmodule",
        str(module),
    ]  # fmt: skip

    def start() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                falkordb.FalkorDB(host="127.0.0.1", port=port).connection.ping()
                return process
            except Exception:
                time.sleep(0.05)
        process.kill()
        raise AssertionError("server did not start")

    process = start()
    try:
        store = FalkorDBStore("127.0.0.1", port, None, graph="durable")
        payload = awkward_payload()
        store.load(payload)
        before = snapshot(store)
        store.close()
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        process = start()
        store = FalkorDBStore("127.0.0.1", port, None, graph="durable")
        assert store.counts() == payload.expected_counts()
        assert snapshot(store) == before
        store.close()
    finally:
        process.kill()
        process.wait()
