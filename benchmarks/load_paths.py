"""Benchmark the two ways kgrec writes a graph into FalkorDB, in CPU seconds.

The same payload (``--interactions`` user-item relationships with ``rating``, ``timestamp``
and ``split``, plus one KG relationship per item, and the users, items and genres) is
written into two fresh graphs of the embedded server:

- ``unwind``: the batched ``UNWIND $rows ... MERGE`` upserts of ``cypher/load/`` (what
  ``build-graph`` did before, and what ``add-items`` and Neo4j still use), ``--batch-size``
  rows a query;
- ``bulk``: :func:`kgrec.store.bulk.bulk_load` (``GRAPH.BULK``) plus the ``id`` indexes.

For each: wall seconds, the CPU seconds of this process (packing rows) and of the server
(executing), and rows per CPU second. On a busy machine the wall time mostly measures the
wait for a core; CPU seconds measure the work.

Usage::

    python benchmarks/load_paths.py --interactions 300000
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from kgrec.store.base import GraphPayload, NodeSet, RelationshipSet
from kgrec.store.bulk import bulk_load
from kgrec.store.falkordb import FalkorDBStore, _counts
from kgrec.store.queries import load_query
from kgrec.store.server import FalkorDBServer


def payload(interactions: int, seed: int = 0) -> GraphPayload:
    rng = np.random.default_rng(seed)
    users, items = max(1, interactions // 100), max(1, interactions // 200)
    pairs = np.unique(rng.integers(0, users * items, int(interactions * 1.05)))[:interactions]
    user_ids = np.array([f"u{k}" for k in range(users)], dtype=object)
    item_ids = np.array([f"i{k}" for k in range(items)], dtype=object)
    rels = pd.DataFrame(
        {
            "source": user_ids[pairs // items],
            "target": item_ids[pairs % items],
            "rating": rng.integers(1, 6, pairs.size).astype(float),
            "timestamp": rng.integers(1_500_000_000, 1_600_000_000, pairs.size),
            "split": np.array(["train", "val", "test"], dtype=object)[
                rng.integers(0, 3, pairs.size)
            ],
        }
    )
    genres = pd.DataFrame(
        {"id": [f"g{k}" for k in range(30)], "name": [f"Genre {k}" for k in range(30)]}
    )
    kg = pd.DataFrame({"source": item_ids, "target": [f"g{k % 30}" for k in range(items)]})
    return GraphPayload(
        nodes=(
            NodeSet("User", pd.DataFrame({"id": user_ids, "age": rng.integers(13, 80, users)})),
            NodeSet(
                "Item", pd.DataFrame({"id": item_ids, "title": [f"Item {k}" for k in range(items)]})
            ),
            NodeSet("Genre", genres),
        ),
        relationships=(
            RelationshipSet("INTERACTED", "User", "Item", rels),
            RelationshipSet("HAS_GENRE", "Item", "Genre", kg),
        ),
    )


def server_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interactions", type=int, default=300_000)
    parser.add_argument("--batch-size", type=int, default=5_000)
    opts = parser.parse_args()
    data = payload(opts.interactions)
    expected = data.expected_counts()
    rows = sum(expected.nodes.values()) + sum(expected.relationships.values())
    with tempfile.TemporaryDirectory(prefix="kgrec-load-") as home:
        server = FalkorDBServer(home)
        info = server.start()
        try:
            print(
                "| path | rows | wall s | client CPU s | server CPU s | rows per CPU s | "
                "rows per wall s | counts match |"
            )
            print("|---|---:|---:|---:|---:|---:|---:|---|")
            for path in ("unwind", "bulk"):
                store = FalkorDBStore(
                    info.host, info.port, server.password(), graph=f"bench_{path}"
                )
                graph = store._db.select_graph(store.graph_name)
                load = os.getloadavg()[0]
                wall, cpu, server_before = (
                    time.perf_counter(),
                    time.process_time(),
                    server_cpu(info.pid),
                )
                if path == "unwind":
                    for label in ("User", "Item", "Genre"):
                        graph.query(load_query("schema/node_index", label=label))
                    upsert_payload_unchecked(store, data, opts.batch_size)
                else:
                    bulk_load(store._db.connection, store.graph_name, data)
                    for label in ("User", "Item", "Genre"):
                        graph.query(load_query("schema/node_index", label=label))
                counts = _counts(graph)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                spent = server_cpu(info.pid) - server_before
                print(
                    f"| {path} | {rows:,} | {wall:.1f} | {cpu:.1f} | {spent:.1f} | "
                    f"{rows / (cpu + spent):,.0f} | {rows / wall:,.0f} | {counts == expected} |"
                    f" <!-- load {load:.1f} -->"
                )
                store.close()
        finally:
            server.stop()


def upsert_payload_unchecked(store: FalkorDBStore, data: GraphPayload, batch_size: int) -> None:
    """The upserts build-graph ran before the bulk loader (no per-batch count query)."""
    from kgrec.store.rows import node_batches, relationship_batches, relationship_query

    for node_set in data.nodes:
        query = load_query("load/upsert_nodes", label=node_set.label)
        for batch in node_batches(node_set, batch_size):
            store.query(query, {"rows": batch}, write=True)
    for rel_set in data.relationships:
        query = relationship_query("load/upsert_relationships", rel_set)
        for batch in relationship_batches(rel_set, batch_size):
            store.query(query, {"rows": batch}, write=True)


if __name__ == "__main__":
    main()
