"""The graph-store interface every backend implements, and what it loads.

A store holds the property graph analysts and support staff query: one node label per node
type (``:User``, ``:Item``, ``:Genre`` ...; each node has a unique ``id``) and one
relationship type per relation (``:INTERACTED``, ``:HAS_GENRE`` ...). Labels and relationship
types cannot be Cypher parameters, so they are checked against
:data:`kgrec.naming.IDENTIFIER` before they reach any query text; every value travels as a
parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import pandas as pd

# The naming helpers live in kgrec.naming (torch- and pandas-free); re-exported for backends.
from kgrec.naming import check_identifier as check_identifier
from kgrec.naming import label_for_type as label_for_type
from kgrec.naming import rel_type_for_relation as rel_type_for_relation


@dataclass(frozen=True)
class NodeSet:
    """Nodes of one label. ``frame`` has a unique ``id`` column plus property columns."""

    label: str
    frame: pd.DataFrame


@dataclass(frozen=True)
class RelationshipSet:
    """Relationships of one type between two labels.

    ``frame`` has ``source`` and ``target`` columns (node ids) plus property columns.
    """

    type: str
    source_label: str
    target_label: str
    frame: pd.DataFrame


@dataclass(frozen=True)
class GraphPayload:
    """Everything one ``build-graph`` writes to the store: nodes first, then relationships."""

    nodes: tuple[NodeSet, ...]
    relationships: tuple[RelationshipSet, ...]

    def expected_counts(self) -> GraphCounts:
        """Counts the store must report after loading this payload (into an empty graph)."""
        nodes: dict[str, int] = {}
        for node_set in self.nodes:
            nodes[node_set.label] = nodes.get(node_set.label, 0) + len(node_set.frame)
        rels: dict[str, int] = {}
        for rel_set in self.relationships:
            rels[rel_set.type] = rels.get(rel_set.type, 0) + len(rel_set.frame)
        return GraphCounts(nodes=nodes, relationships=rels)


@dataclass(frozen=True)
class GraphCounts:
    """Nodes per label and relationships per type."""

    nodes: dict[str, int] = field(default_factory=dict)
    relationships: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class QueryResult:
    """Rows of a Cypher query: ``columns`` names, ``rows`` lists of plain Python values."""

    columns: list[str]
    rows: list[list[Any]]

    def records(self) -> Iterator[dict[str, Any]]:
        """Rows as dicts keyed by column."""
        for row in self.rows:
            yield dict(zip(self.columns, row, strict=True))


Progress = Callable[[int], None]
"""Called with the number of rows just written."""


class GraphStore(Protocol):
    """What kgrec needs from a graph database.

    Implementations: :class:`kgrec.store.falkordb.FalkorDBStore` (embedded default) and
    :class:`kgrec.store.neo4j.Neo4jStore`.
    """

    name: str

    def load(
        self,
        payload: GraphPayload,
        *,
        batch_size: int = 20_000,
        progress: Progress | None = None,
    ) -> GraphCounts:
        """Write ``payload`` so the graph equals it afterwards (re-running changes nothing).

        On any failure the graph is left as it was before the call. Returns the counts read
        back from the database.
        """
        ...

    def counts(self) -> GraphCounts:
        """Nodes per label and relationships per type currently stored."""
        ...

    def query(
        self,
        cypher: str,
        params: Mapping[str, Any] | None = None,
        *,
        write: bool = False,
        timeout: float | None = None,
    ) -> QueryResult:
        """Run parameterised Cypher; read-only unless ``write`` is true.

        A write returns once it is durable. ``timeout`` (seconds) aborts a read on the server.
        """
        ...

    def write_many(self, statements: Sequence[tuple[str, Mapping[str, Any]]]) -> list[QueryResult]:
        """Run parameterised write queries in order, each atomic on its own, and return once
        all of them are durable (one wait for the log instead of one per query: a group
        commit). A failure raises; the statements before it may then be stored."""
        ...

    def close(self) -> None:
        """Release connections (does not stop an embedded server)."""
        ...


@runtime_checkable
class StagedStore(Protocol):
    """A store that loads in two steps (stage, then an atomic swap), so the caller can
    journal in between: the embedded FalkorDB. Neo4j loads in one transaction instead."""

    name: str

    def staging_name(self, tag: str = "") -> str:
        """Name of the staging graph for a load tagged ``tag``."""
        ...

    def stage(
        self,
        payload: GraphPayload,
        *,
        batch_size: int = 5_000,
        progress: Progress | None = None,
        staging: str | None = None,
    ) -> str:
        """Write ``payload`` into the staging graph and check its counts; returns its name."""
        ...

    def commit(self, staging: str) -> GraphCounts:
        """Swap ``staging`` in as the live graph (atomically); returns its counts."""
        ...

    def has_graph(self, name: str) -> bool:
        """Whether graph ``name`` exists."""
        ...

    def drop_graph(self, name: str) -> None:
        """Delete graph ``name`` if it exists."""
        ...
