"""FalkorDB backend (the embedded default), through the ``falkordb`` client.

A load is all-or-nothing and in two steps, so ``build-graph`` can journal between them:

1. :meth:`FalkorDBStore.stage` writes the payload into a fresh staging graph with FalkorDB's
   binary bulk loader (:mod:`kgrec.store.bulk`; the batched ``UNWIND ... MERGE`` upserts of
   ``cypher/load/`` serve ``add-items`` and Neo4j) and checks its counts against the payload;
2. :meth:`FalkorDBStore.commit` copies the recorded recommendations over from the live graph
   and renames the staging graph onto the live one (Redis ``RENAME`` is atomic). The records
   are copied while recording goes on; then the graph's :class:`~kgrec.locks.RecordGate`
   holds every other kgrec write back for the few milliseconds it takes to copy the records
   written meanwhile and rename, so a record lands in the new graph exactly once; the swap
   then waits for the append-only log's fsync.

Readers never see a half-loaded graph, and a failed load leaves the live graph untouched.
Writes into the live graph (:meth:`FalkorDBStore.query` with ``write=True``) go through the
same gate and return only once the server's append-only log holds them (``WAITAOF``), so an
acknowledged record survives ``kill -9`` of the server. Client errors (a dead server, a
rejected query) become :class:`~kgrec.errors.StoreError` with a one-line message.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext, suppress
from pathlib import Path
from typing import Any

import falkordb
import redis

from kgrec.errors import StoreError
from kgrec.locks import RecordGate
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
CLOCK_MARGIN_MS = 5_000
"""How much earlier than the first copying pass the second one starts (clock steps)."""
WAITAOF_TIMEOUT_MS = 10_000


class FalkorDBStore:
    """One named graph in a FalkorDB server.

    Args:
        host, port, password: Where the server listens (see :mod:`kgrec.store.server`).
        graph: Graph (Redis key) name.
        lock_dir: Folder of the graph's :class:`~kgrec.locks.RecordGate` (kgrec's state
            folder ``locks/``); ``None`` writes without it (tests of a private graph).
    """

    name = "falkordb"

    def __init__(
        self,
        host: str,
        port: int,
        password: str | None,
        graph: str = "kgrec",
        *,
        lock_dir: Path | None = None,
    ) -> None:
        self.graph_name = graph
        self.where = f"{host}:{port}"
        self._gate = RecordGate(lock_dir, graph) if lock_dir is not None else None
        try:
            self._db = falkordb.FalkorDB(host=host, port=port, password=password)
            self._db.connection.ping()
            aof = self._db.connection.config_get("appendonly").get("appendonly")
        except redis.exceptions.AuthenticationError as exc:
            raise StoreError(f"FalkorDB on {host}:{port} refused the password") from exc
        except redis.exceptions.BusyLoadingError as exc:
            raise StoreError(
                f"FalkorDB on {host}:{port} is still loading its data: try again in a moment"
            ) from exc
        except redis.exceptions.ConnectionError as exc:
            raise StoreError(
                f"cannot reach FalkorDB on {host}:{port} (is it running? kgrec db status)"
            ) from exc
        self._aof = aof == "yes"

    # ------------------------------------------------------------------ loading

    def staging_name(self, tag: str = "") -> str:
        """Name of the staging graph of a load (``tag`` keeps loads of different sources apart)."""
        return f"{self.graph_name}__staging" + (f"_{tag}" if tag else "")

    def load(
        self,
        payload: GraphPayload,
        *,
        batch_size: int = 5_000,
        progress: Progress | None = None,
    ) -> GraphCounts:
        """Replace the graph by ``payload`` atomically; returns the counts read back."""
        staging = self.stage(payload, batch_size=batch_size, progress=progress)
        return self.commit(staging)

    def stage(
        self,
        payload: GraphPayload,
        *,
        batch_size: int = 5_000,
        progress: Progress | None = None,
        staging: str | None = None,
    ) -> str:
        """Write ``payload`` into a fresh staging graph and check its counts; returns its name.

        On any failure the staging graph is dropped (when the server still answers).
        """
        staging = staging or self.staging_name()
        with self._errors():
            self.drop_graph(staging)
            graph = self._db.select_graph(staging)
            try:
                write_fresh(self._db.connection, graph, payload, progress=progress)
                _run(graph, load_query("schema/served_index"))
                counts = _counts(graph)
                expected = payload.expected_counts()
                if counts != expected:
                    raise StoreError(
                        "the database holds different counts than the input after loading: "
                        f"{_count_diff(expected, counts)} (the live graph was left unchanged)"
                    )
                self._wait_durable()  # on disk before anyone journals the swap
            except BaseException:
                self._drop_quietly(staging)
                raise
        return staging

    def commit(self, staging: str) -> GraphCounts:
        """Carry the served records over and rename ``staging`` onto the live graph.

        Records are copied in two passes: all of them while recording goes on, then, with
        the gate closed, those recorded meanwhile (by the server's clock, a margin early;
        copied with ``MERGE`` on their request id, so none twice). The gate stays closed for
        the second pass and the rename only.
        """
        with self._errors():
            graph = self._db.select_graph(staging)
            since = self._server_ms() - CLOCK_MARGIN_MS
            self._carry_over_served(graph)
            with self._gate.exclusive() if self._gate is not None else nullcontext():
                self._carry_over_served(graph, since=since)
                self._db.connection.rename(staging, self.graph_name)
                self._wait_durable()
            live = self._db.select_graph(self.graph_name)
            labels = [r[0] for r in live.ro_query("CALL db.labels()").result_set]
            for label in sorted(labels):
                self._unique_constraint(label)
            return _counts(live)

    def _server_ms(self) -> int:
        graph = self._db.select_graph(self.graph_name)
        if self.graph_name not in self._db.list_graphs():
            return 0
        return int(graph.ro_query("RETURN timestamp()").result_set[0][0])

    def has_graph(self, name: str) -> bool:
        """Whether the server holds graph ``name``."""
        with self._errors():
            return name in self._db.list_graphs()

    def drop_graph(self, name: str) -> None:
        """Delete graph ``name`` if it exists."""
        with self._errors():
            if name in self._db.list_graphs():
                self._db.select_graph(name).delete()

    def _drop(self, graph: str) -> None:
        self.drop_graph(graph)

    def _drop_quietly(self, graph: str) -> None:
        with suppress(StoreError):  # the server is gone; the next load drops the staging graph
            self.drop_graph(graph)

    def _carry_over_served(self, staging: Any, since: int | None = None) -> None:
        """Copy recorded ``RECOMMENDED`` relationships whose user and item still exist.

        ``since=None``: all of them, page by page along the internal relationship ids
        (keyset pagination); ``since=ms``: only those recorded since then (``r.ts``), with
        ``MERGE``, for the second pass of :meth:`commit`.
        """
        if self.graph_name not in self._db.list_graphs():
            return
        live = self._db.select_graph(self.graph_name)
        if RECOMMENDED not in {
            r[0] for r in live.ro_query("CALL db.relationshipTypes()").result_set
        }:
            return
        if since is not None:
            rows = live.ro_query(load_query("load/served_since"), {"since": since}).result_set
            merge = load_query("load/served_merge")
            for start in range(0, len(rows), EXPORT_PAGE):
                batch = [
                    {"source": s, "target": t, "props": dict(p)}
                    for _, s, t, p in rows[start : start + EXPORT_PAGE]
                ]
                _run(staging, merge, {"rows": batch})
            return
        export, import_ = load_query("load/served_export"), load_query("load/served_import")
        after = -1
        while True:
            rows = live.ro_query(export, {"after": after, "limit": EXPORT_PAGE}).result_set
            if not rows:
                return
            batch = [{"source": s, "target": t, "props": dict(p)} for _, s, t, p in rows]
            _run(staging, import_, {"rows": batch})
            after = int(rows[-1][0])

    def _unique_constraint(self, label: str) -> None:
        """Ask FalkorDB to enforce unique ``id`` per label (built in the background)."""
        try:
            self._db.connection.execute_command(
                "GRAPH.CONSTRAINT", "CREATE", self.graph_name, "UNIQUE", "NODE",
                check_identifier(label), "PROPERTIES", 1, "id",
            )  # fmt: skip
        except redis.exceptions.ResponseError as exc:
            if "already exists" not in str(exc):
                raise StoreError(f"cannot create the unique constraint on :{label}: {exc}") from exc

    def _wait_durable(self) -> None:
        """Return once the append-only log holds every write so far (fsynced)."""
        if not self._aof:
            return
        local, _ = self._db.connection.execute_command("WAITAOF", 1, 0, WAITAOF_TIMEOUT_MS)
        if int(local) < 1:
            raise StoreError(
                f"FalkorDB did not confirm the write in its append-only log within "
                f"{WAITAOF_TIMEOUT_MS // 1000} s (disk full or slow?); check "
                "<state>/falkordb/server.log and retry"
            )

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Client errors as one-line :class:`StoreError` messages."""
        try:
            yield
        except redis.exceptions.BusyLoadingError as exc:
            raise StoreError(
                f"FalkorDB on {self.where} is still loading its data: try again in a moment"
            ) from exc
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise StoreError(
                f"lost the connection to FalkorDB on {self.where} ({_first_line(exc)}): check "
                "kgrec db status, then run the command again"
            ) from exc
        except redis.exceptions.RedisError as exc:
            raise StoreError(f"FalkorDB failed: {_first_line(exc)}") from exc

    # ------------------------------------------------------------------ reading

    def counts(self) -> GraphCounts:
        """Nodes per label and relationships per type of the live graph."""
        with self._errors():
            if self.graph_name not in self._db.list_graphs():
                return GraphCounts()
            return _counts(self._db.select_graph(self.graph_name))

    def query(
        self,
        cypher: str,
        params: Mapping[str, Any] | None = None,
        *,
        write: bool = False,
        timeout: float | None = None,
    ) -> QueryResult:
        """Run parameterised Cypher (``GRAPH.RO_QUERY`` unless ``write``).

        A write waits for a graph swap in progress (the gate) and returns once the
        append-only log holds it. ``timeout`` (seconds) aborts a read on the server.
        """
        with self._errors():
            graph = self._db.select_graph(self.graph_name)
            if not write and self.graph_name not in self._db.list_graphs():
                others = ", ".join(self.graphs()) or "none"
                raise StoreError(
                    f"graph {self.graph_name!r} does not exist yet: load it with kgrec "
                    f"build-graph, or point store.graph (the config, -c) at one that exists: "
                    f"{others}"
                )
            millis = max(int(timeout * 1000), 1) if timeout else None
            if write:
                with self._gate.shared() if self._gate is not None else nullcontext():
                    result = _run(graph, cypher, dict(params or {}), write=True, timeout=millis)
                    self._wait_durable()
            else:
                result = _run(graph, cypher, dict(params or {}), write=False, timeout=millis)
        return _result(result)

    def write_many(self, statements: Sequence[tuple[str, Mapping[str, Any]]]) -> list[QueryResult]:
        """Run write queries in order, sent in one pipeline (one round trip) under one hold
        of the gate, then wait once for the append-only log (``WAITAOF``): a group commit.
        Each query is atomic on its own; when one fails the others still ran."""
        if not statements:
            return []
        with self._errors():
            graph = self._db.select_graph(self.graph_name)
            pipe = self._db.connection.pipeline(transaction=False)
            for cypher, params in statements:
                # the client's own parameter header (what graph.query sends), pipelined
                text = graph._build_params_header(dict(params)) + cypher
                pipe.execute_command("GRAPH.QUERY", self.graph_name, text, "--compact")
            with self._gate.shared() if self._gate is not None else nullcontext():
                responses = pipe.execute(raise_on_error=False)
                failed = [r for r in responses if isinstance(r, Exception)]
                if not failed:
                    self._wait_durable()
            if failed:
                raise StoreError(f"FalkorDB rejected the query: {_first_line(failed[0])}")
            return [_result(falkordb.query_result.QueryResult(graph, r)) for r in responses]

    def graphs(self) -> list[str]:
        """Names of the graphs this server holds (staging copies left out), sorted."""
        return sorted(g for g in self._db.list_graphs() if not g.endswith("__staging"))

    def close(self) -> None:
        """Close the client connection (the server keeps running)."""
        with suppress(Exception):  # closing a dead connection is not an error
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


def _run(
    graph: Any,
    cypher: str,
    params: dict[str, Any] | None = None,
    write: bool = True,
    timeout: int | None = None,
) -> Any:
    try:
        if write:
            return graph.query(cypher, params, timeout=timeout)
        return graph.ro_query(cypher, params, timeout=timeout)
    except redis.exceptions.ResponseError as exc:
        message = _first_line(exc)
        if "read-only" in message:
            message += " (pass --write to allow changes)"
        if "timed out" in message.lower() and timeout:
            message += f" after {timeout / 1000:g} s (raise it with --timeout)"
        raise StoreError(f"FalkorDB rejected the query: {message}") from exc


def _result(result: Any) -> QueryResult:
    """The client's result set as plain Python columns and rows."""
    columns = [str(h[1]) for h in (result.header or [])]
    rows = [[_plain(v) for v in row] for row in result.result_set or []]
    return QueryResult(columns=columns, rows=rows)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


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
    if isinstance(value, falkordb.Node):
        return {"labels": list(value.labels or []), **dict(value.properties)}
    if isinstance(value, falkordb.Edge):
        return {"type": value.relation, **dict(value.properties)}
    if isinstance(value, falkordb.Path):
        return {
            "nodes": [_plain(n) for n in value.nodes()],
            "relationships": [_plain(e) for e in value.edges()],
        }
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
