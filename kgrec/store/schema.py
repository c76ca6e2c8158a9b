"""What a graph holds, read from the database itself: the answer of ``kgrec db schema``.

Node labels with their counts, property names and value types, and how many nodes carry a
human-readable name (a ``name`` or ``title`` that is not just the id: on ml-100k 19% of
actors); relationship types with the labels at their two ends, their counts and properties.
The queries are ``cypher/schema/*.cypher``; only the name of the engine's type function
differs between FalkorDB (``typeOf``) and Neo4j 5 (``valueType``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from kgrec.store.base import GraphStore
from kgrec.store.queries import load_query

TYPE_FUNCTIONS = {"falkordb": "typeOf", "neo4j": "valueType"}


@dataclass(frozen=True)
class Property:
    """One property name of a label or relationship type.

    Attributes:
        name: The property key.
        types: Value types found, most common first: ``integer``, ``float``, ``string``,
            ``boolean``, ``list``, ``map`` ...
        holders: How many nodes (relationships) have it.
    """

    name: str
    types: tuple[str, ...]
    holders: int


@dataclass(frozen=True)
class NodeLabel:
    """Nodes of one label (``:A:B`` when a node has several)."""

    label: str
    nodes: int
    named: int
    properties: tuple[Property, ...]

    @property
    def named_share(self) -> float:
        """Share of the nodes with a human-readable name, in [0, 1]."""
        return self.named / self.nodes if self.nodes else 0.0


@dataclass(frozen=True)
class RelationshipType:
    """Relationships of one type between nodes of two labels; ``properties`` are those of
    the type as a whole."""

    type: str
    source: str
    target: str
    relationships: int
    properties: tuple[Property, ...]

    @property
    def pattern(self) -> str:
        """``(:Item)-[:HAS_GENRE]->(:Genre)``."""
        return f"({self.source})-[:{self.type}]->({self.target})"


@dataclass(frozen=True)
class GraphSchema:
    """Labels and relationship types of a graph, most numerous first."""

    labels: tuple[NodeLabel, ...]
    relationships: tuple[RelationshipType, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form, with each label's ``named_share``."""
        return {
            "labels": [{**asdict(n), "named_share": n.named_share} for n in self.labels],
            "relationships": [{**asdict(r), "pattern": r.pattern} for r in self.relationships],
        }


def read_schema(store: GraphStore) -> GraphSchema:
    """Read the schema of the graph ``store`` is connected to (four scans of the graph)."""
    typeof = TYPE_FUNCTIONS.get(store.name, "typeOf")
    node_props = _properties(
        store.query(load_query("schema/node_properties", typeof=typeof)).rows, labels=True
    )
    labels = [
        NodeLabel(_label(ls), int(n), int(named), node_props.get(_label(ls), ()))
        for ls, n, named in store.query(load_query("schema/labels")).rows
    ]
    rel_props = _properties(
        store.query(load_query("schema/relationship_properties", typeof=typeof)).rows,
        labels=False,
    )
    relationships = [
        RelationshipType(str(t), _label(a), _label(b), int(n), rel_props.get(str(t), ()))
        for a, t, b, n in store.query(load_query("schema/relationships")).rows
    ]
    return GraphSchema(
        labels=tuple(sorted(labels, key=lambda n: (-n.nodes, n.label))),
        relationships=tuple(
            sorted(relationships, key=lambda r: (-r.relationships, r.type, r.source, r.target))
        ),
    )


def _label(labels: Any) -> str:
    names = labels if isinstance(labels, list) else [labels]
    return "".join(f":{name}" for name in names) or "(no label)"


def _properties(rows: list[list[Any]], *, labels: bool) -> dict[str, tuple[Property, ...]]:
    """``{owner: properties}`` from ``[owner, key, type, holders]`` rows."""
    found: dict[str, dict[str, dict[str, int]]] = {}
    for owner, key, value_type, holders in rows:
        name = _label(owner) if labels else str(owner)
        kinds = found.setdefault(name, {}).setdefault(str(key), {})
        kind = _type_name(value_type)
        kinds[kind] = kinds.get(kind, 0) + int(holders)
    return {
        owner: tuple(
            Property(key, tuple(sorted(kinds, key=lambda k: (-kinds[k], k))), sum(kinds.values()))
            for key, kinds in sorted(keys.items(), key=lambda kv: (kv[0] != "id", kv[0]))
        )
        for owner, keys in found.items()
    }


def _type_name(value_type: Any) -> str:
    """``Integer`` (FalkorDB) or ``INTEGER NOT NULL`` (Neo4j) -> ``integer``."""
    text = str(value_type).split()[0] if value_type else "null"
    return text.split("<")[0].lower()
