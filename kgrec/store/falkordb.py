"""FalkorDB backend (the embedded default), through the ``falkordb`` client.

A load is all-or-nothing: the payload is written into a fresh staging graph by FalkorDB's
binary bulk loader (:mod:`kgrec.store.bulk`; the batched ``UNWIND ... MERGE`` upserts of
``cypher/load/`` serve ``add-items`` and Neo4j), its counts are checked against the payload,
recorded recommendations are carried over from the live graph, and only then is the staging
graph renamed onto the live one (Redis ``RENAME`` is atomic). Readers never see a half-loaded
graph, and a failed load leaves the live graph untouched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kgrec.errors import StoreError
from kgrec.store.base import (
    GraphCounts,
    GraphPayload,
    Progress,
    QueryResult,
    check_identifier,
)
from kgrec.store.queries import load_query

RECOMMENDED = "RECOMMENDED"
EXPORT_PAGE = 10_000


class FalkorDBStore:
    """One named graph in a FalkorDB server.

    Args:
        host, port, password: Where the server listens (see :mod:`kgrec.store.server`).
        graph: Graph (Redis key) name.
    """

    name = "falkordb"

    def __init__(self, host: str, port: int, password: str | None, graph: str = "kgrec") -> None:
        import falkordb
        import redis

        self.graph_name = graph
        try:
            self._db = falkordb.FalkorDB(host=host, port=port, password=password)
            self._db.connection.ping()
        except redis.exceptions.AuthenticationError as exc:
            raise StoreError(f"FalkorDB on {host}:{port} refused the password") from exc
        except redis.exceptions.ConnectionError as exc:
            raise StoreError(
                f"cannot reach FalkorDB on {host}:{port} (is it running? kgrec db status)"
            ) from exc

    # ------------------------------------------------------------------ loading

    def load(
        self,
        payload: GraphPayload,
        *,
        batch_size: int = 5_000,
        progress: Progress | None = None,
    ) -> GraphCounts:
        """Replace the graph by ``payload`` atomically; returns the counts read back.

        The staging graph is written by :func:`write_fresh` (``GRAPH.BULK``), so
        ``batch_size`` (rows per ``UNWIND`` batch) is not used here.
        """
        staging = f"{self.graph_name}__staging"
        self._drop(staging)
        graph = self._db.select_graph(staging)
        try:
            write_fresh(self._db.connection, graph, payload, progress=progress)
            counts = _counts(graph)
            expected = payload.expected_counts()
            if counts != expected:
                raise StoreError(
                    "the database holds different counts than the input after loading: "
                    f"{_count_diff(expected, counts)} (the live graph was left unchanged)"
                )
            self._carry_over_served(graph)
            self._db.connection.rename(staging, self.graph_name)
        except BaseException:
            self._drop(staging)
            raise
        live = self._db.select_graph(self.graph_name)
        for label in sorted({n.label for n in payload.nodes}):
            self._unique_constraint(label)
        return _counts(live)

    def _carry_over_served(self, staging: Any) -> None:
        """Copy recorded ``RECOMMENDED`` relationships whose user and item still exist."""
        if self.graph_name not in self._db.list_graphs():
            return
        live = self._db.select_graph(self.graph_name)
        if RECOMMENDED not in {
            r[0] for r in live.ro_query("CALL db.relationshipTypes()").result_set
        }:
            return
        export, import_ = load_query("load/served_export"), load_query("load/served_import")
        skip = 0
        while True:
            rows = live.ro_query(export, {"skip": skip, "limit": EXPORT_PAGE}).result_set
            if not rows:
                return
            batch = [{"source": s, "target": t, "props": dict(p)} for s, t, p in rows]
            _run(staging, import_, {"rows": batch})
            skip += len(rows)

    def _unique_constraint(self, label: str) -> None:
        """Ask FalkorDB to enforce unique ``id`` per label (built in the background)."""
        import redis

        try:
            self._db.connection.execute_command(
                "GRAPH.CONSTRAINT", "CREATE", self.graph_name, "UNIQUE", "NODE",
                check_identifier(label), "PROPERTIES", 1, "id",
            )  # fmt: skip
        except redis.exceptions.ResponseError as exc:
            if "already exists" not in str(exc):
                raise StoreError(f"cannot create the unique constraint on :{label}: {exc}") from exc

    def _drop(self, graph: str) -> None:
        if graph in self._db.list_graphs():
            self._db.select_graph(graph).delete()

    # ------------------------------------------------------------------ reading

    def counts(self) -> GraphCounts:
        """Nodes per label and relationships per type of the live graph."""
        if self.graph_name not in self._db.list_graphs():
            return GraphCounts()
        return _counts(self._db.select_graph(self.graph_name))

    def query(
        self, cypher: str, params: Mapping[str, Any] | None = None, *, write: bool = False
    ) -> QueryResult:
        """Run parameterised Cypher (``GRAPH.RO_QUERY`` unless ``write``)."""
        graph = self._db.select_graph(self.graph_name)
        if not write and self.graph_name not in self._db.list_graphs():
            others = ", ".join(self.graphs()) or "none"
            raise StoreError(
                f"graph {self.graph_name!r} does not exist yet: load it with kgrec build-graph, "
                f"or point store.graph (the config, -c) at one that exists: {others}"
            )
        result = _run(graph, cypher, dict(params or {}), write=write)
        columns = [str(h[1]) for h in (result.header or [])]
        rows = [[_plain(v) for v in row] for row in result.result_set or []]
        return QueryResult(columns=columns, rows=rows)

    def graphs(self) -> list[str]:
        """Names of the graphs this server holds (staging copies left out), sorted."""
        return sorted(g for g in self._db.list_graphs() if not g.endswith("__staging"))

    def close(self) -> None:
        """Close the client connection (the server keeps running)."""
        self._db.close()


# ---------------------------------------------------------------------- helpers


def write_fresh(
    connection: Any, graph: Any, payload: GraphPayload, *, progress: Progress | None = None
) -> None:
    """Write ``payload`` into the empty, not yet existing ``graph`` with the binary bulk
    loader (:mod:`kgrec.store.bulk`), then index every label's ``id``."""
    from kgrec.store.bulk import bulk_load  # numpy: kept off the query commands' start-up

    bulk_load(connection, graph.name, payload, progress=progress)
    for label in sorted({n.label for n in payload.nodes}):
        _run(graph, load_query("schema/node_index", label=label))


def _run(graph: Any, cypher: str, params: dict[str, Any] | None = None, write: bool = True) -> Any:
    import redis

    try:
        if write:
            return graph.query(cypher, params)
        return graph.ro_query(cypher, params)
    except redis.exceptions.ResponseError as exc:
        message = str(exc)
        if "read-only" in message:
            message += " (pass --write to allow changes)"
        raise StoreError(f"FalkorDB rejected the query: {message}") from exc
    except redis.exceptions.ConnectionError as exc:
        raise StoreError(f"lost the connection to FalkorDB: {exc}") from exc


def _counts(graph: Any) -> GraphCounts:
    nodes = {
        str(label): int(n)
        for label, n in graph.ro_query(load_query("load/node_counts")).result_set
        if label is not None
    }
    rels = {
        str(rel): int(n)
        for rel, n in graph.ro_query(load_query("load/relationship_counts")).result_set
    }
    return GraphCounts(nodes=dict(sorted(nodes.items())), relationships=dict(sorted(rels.items())))


def _count_diff(expected: GraphCounts, got: GraphCounts) -> str:
    diffs = []
    for kind, want, have in (
        ("nodes", expected.nodes, got.nodes),
        ("relationships", expected.relationships, got.relationships),
    ):
        for key in sorted(set(want) | set(have)):
            if want.get(key, 0) != have.get(key, 0):
                diffs.append(f"{key} {kind}: expected {want.get(key, 0)}, got {have.get(key, 0)}")
    return "; ".join(diffs) or "none"


def _plain(value: Any) -> Any:
    """Client objects (nodes, edges, paths) as plain dicts and lists."""
    from falkordb import Edge, Node, Path

    if isinstance(value, Node):
        return {"labels": list(value.labels or []), **dict(value.properties)}
    if isinstance(value, Edge):
        return {"type": value.relation, **dict(value.properties)}
    if isinstance(value, Path):
        return {
            "nodes": [_plain(n) for n in value.nodes()],
            "relationships": [_plain(e) for e in value.edges()],
        }
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
