"""Open the configured graph store (the embedded FalkorDB started on demand, or Neo4j)."""

from __future__ import annotations

from pathlib import Path

from kgrec.config import StoreConfig
from kgrec.store.base import GraphStore
from kgrec.store.falkordb import FalkorDBStore
from kgrec.store.server import FalkorDBServer


def open_store(config: StoreConfig, state_dir: Path) -> GraphStore:
    """A connected store for ``config``; the embedded server is started if it is not running.

    Neo4j is used when ``store.backend`` is ``neo4j`` or ``store.uri`` is a Neo4j URI.
    """
    if config.backend == "neo4j" or (config.uri or "").startswith(("neo4j", "bolt")):
        # the Neo4j driver loads only for that backend (the embedded one is the default)
        from kgrec.store.neo4j import Neo4jStore, neo4j_settings

        uri, user, password = neo4j_settings(config.uri, config.user)
        return Neo4jStore(uri, user, password, database=config.database)
    server = FalkorDBServer(state_dir, port=config.port)
    info = server.start()
    return FalkorDBStore(
        info.host, info.port, server.password(), graph=config.graph, lock_dir=state_dir / "locks"
    )
