"""Neo4j 5 backend, through the official ``neo4j`` driver.

The URI comes from ``store.uri`` or ``KGREC_NEO4J_URI``; the user from ``store.user`` or
``KGREC_NEO4J_USER``; the password only from ``KGREC_NEO4J_PASSWORD`` (never printed). A load
creates the uniqueness constraints, then runs every batched upsert of ``cypher/load/`` in one
transaction, checks the counts and commits: a failure rolls everything back. Reads run with
``routing_=READ`` so a cluster serves them from a reader.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import neo4j

from kgrec.errors import StoreError
from kgrec.store.base import GraphCounts, GraphPayload, Progress, QueryResult
from kgrec.store.falkordb import _count_diff
from kgrec.store.queries import load_query
from kgrec.store.rows import node_batches, relationship_batches, relationship_query


class Neo4jStore:
    """A Neo4j database reached over ``neo4j://`` or ``bolt://``."""

    name = "neo4j"

    def __init__(self, uri: str, user: str, password: str | None, database: str | None = None):
        self.database = database
        try:
            self._driver = neo4j.GraphDatabase.driver(uri, auth=(user, password or ""))
            self._driver.verify_connectivity()
        except neo4j.exceptions.AuthError as exc:
            raise StoreError(
                f"Neo4j at {uri} refused user {user!r} (check KGREC_NEO4J_PASSWORD)"
            ) from exc
        except (neo4j.exceptions.ServiceUnavailable, ValueError) as exc:
            raise StoreError(f"cannot reach Neo4j at {uri}: {exc}") from exc

    def load(
        self,
        payload: GraphPayload,
        *,
        batch_size: int = 5_000,
        progress: Progress | None = None,
    ) -> GraphCounts:
        """Upsert ``payload`` in one transaction and check the counts; see the module docs."""
        for label in sorted({n.label for n in payload.nodes}):
            self._driver.execute_query(
                load_query("schema/node_constraint_neo4j", label=label), database_=self.database
            )
        expected = payload.expected_counts()
        with (
            self._driver.session(database=self.database) as session,
            session.begin_transaction() as tx,
        ):
            for node_set in payload.nodes:
                query = load_query("load/upsert_nodes", label=node_set.label)
                for rows in node_batches(node_set, batch_size):
                    tx.run(query, rows=rows).consume()
                    if progress:
                        progress(len(rows))
            for rel_set in payload.relationships:
                query = relationship_query("load/upsert_relationships", rel_set)
                for rows in relationship_batches(rel_set, batch_size):
                    tx.run(query, rows=rows).consume()
                    if progress:
                        progress(len(rows))
            counts = _tx_counts(tx)
            wanted = GraphCounts(
                nodes={k: counts.nodes.get(k, 0) for k in expected.nodes},
                relationships={k: counts.relationships.get(k, 0) for k in expected.relationships},
            )
            if wanted != expected:
                tx.rollback()
                raise StoreError(
                    "Neo4j would hold different counts than the input (rolled back): "
                    f"{_count_diff(expected, wanted)}; nodes from another dataset? "
                    "use a fresh database"
                )
            tx.commit()
        return self.counts()

    def counts(self) -> GraphCounts:
        """Nodes per label and relationships per type."""
        with self._driver.session(database=self.database) as session:
            return session.execute_read(_tx_counts)

    def query(
        self,
        cypher: str,
        params: Mapping[str, Any] | None = None,
        *,
        write: bool = False,
        timeout: float | None = None,
    ) -> QueryResult:
        """Run parameterised Cypher, in a read transaction unless ``write`` (committed, so
        durable, when it returns); ``timeout`` in seconds."""
        try:
            records, _, keys = self._driver.execute_query(
                neo4j.Query(cypher, timeout=timeout),
                dict(params or {}),
                database_=self.database,
                routing_=neo4j.RoutingControl.WRITE if write else neo4j.RoutingControl.READ,
            )
        except neo4j.exceptions.Neo4jError as exc:
            raise StoreError(f"Neo4j rejected the query: {exc.message}") from exc
        return QueryResult(columns=list(keys), rows=[list(r.values()) for r in records])

    def write_many(self, statements: Sequence[tuple[str, Mapping[str, Any]]]) -> list[QueryResult]:
        """Run write queries in order, each in its own committed transaction."""
        return [self.query(cypher, params, write=True) for cypher, params in statements]

    def close(self) -> None:
        """Close the driver."""
        self._driver.close()


def _tx_counts(tx: Any) -> GraphCounts:
    nodes = {
        r["label"]: int(r["n"])
        for r in tx.run(load_query("load/node_counts"))
        if r["label"] is not None
    }
    rels = {r["type"]: int(r["n"]) for r in tx.run(load_query("load/relationship_counts"))}
    return GraphCounts(nodes=dict(sorted(nodes.items())), relationships=dict(sorted(rels.items())))


def neo4j_settings(uri: str | None, user: str) -> tuple[str, str, str | None]:
    """URI, user and password from config and the environment."""
    uri = uri or os.environ.get("KGREC_NEO4J_URI")
    if not uri:
        raise StoreError("store.backend is neo4j but no URI: set KGREC_NEO4J_URI or store.uri")
    if not uri.startswith(("neo4j://", "neo4j+s://", "bolt://", "bolt+s://")):
        raise StoreError(f"not a Neo4j URI (neo4j:// or bolt://): {uri}")
    user = os.environ.get("KGREC_NEO4J_USER", user)
    return uri, user, os.environ.get("KGREC_NEO4J_PASSWORD")
