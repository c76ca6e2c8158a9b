"""Explanation paths as records: what ``kgrec explain`` prints and ``--record`` stores."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kgrec.data.edges import ArtifactEdge


@dataclass(frozen=True)
class Node:
    """A node of a path: node type (``user``, ``item``, ``director`` ...), external id,
    display name and index within its node type (``-1`` when it has none)."""

    type: str
    id: str
    name: str
    index: int = -1

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "id": self.id, "name": self.name, "index": self.index}


@dataclass(frozen=True)
class Edge:
    """A relationship as stored: ``nodes[source] -relation-> nodes[target]``.

    ``type`` is the graph database's relationship type (``INTERACTED``, ``DIRECTED_BY``),
    ``relation`` the artifact's edge-type name (``interacts``, ``directed_by``).
    """

    type: str
    relation: str
    source: int
    target: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "relation": self.relation,
            "source": self.source,
            "target": self.target,
        }


@dataclass(frozen=True)
class GraphPath:
    """One explanation path from the user to the item (JSON-serialisable via :meth:`to_dict`).

    Attributes:
        kind: ``direct``, ``attribute``, ``linked`` or ``collaborative``.
        nodes: The user first, the item last.
        edges: One per hop, in the graph's direction.
        contribution: What deleting the path's edges removes from the score (module
            docstring).
        share: ``contribution`` over the score ``s(user, item)``.
        sentence: A sentence for people.
        liked: Whether the user liked the history item the path leaves by (rating at or
            above their own mean); customer-facing reasons cite only liked items.
    """

    kind: str
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    contribution: float
    share: float
    sentence: str
    liked: bool = True

    @property
    def hops(self) -> int:
        return len(self.edges)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values: ``dataclasses.asdict`` plus ``hops``, written out (asdict's deep
        copy was most of what recording 28k reasons cost)."""
        return {
            "kind": self.kind,
            "nodes": [n.to_dict() for n in self.nodes],
            "edges": [e.to_dict() for e in self.edges],
            "contribution": self.contribution,
            "share": self.share,
            "sentence": self.sentence,
            "liked": self.liked,
            "hops": self.hops,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GraphPath:
        """Inverse of :meth:`to_dict` (e.g. a path recorded with a served list)."""
        return cls(
            kind=str(data["kind"]),
            nodes=tuple(Node(**n) for n in data["nodes"]),
            edges=tuple(Edge(**e) for e in data["edges"]),
            contribution=float(data["contribution"]),
            share=float(data.get("share", 0.0)),
            sentence=str(data["sentence"]),
            liked=bool(data.get("liked", True)),
        )

    def artifact_edges(self) -> list[ArtifactEdge]:
        """The path's edges in the graph artifact (for deleting them from the model's graph)."""
        out = []
        for edge in self.edges:
            src, dst = self.nodes[edge.source], self.nodes[edge.target]
            out.append(ArtifactEdge((src.type, edge.relation, dst.type), src.index, dst.index))
        return out


def paths_json(paths: Sequence[GraphPath]) -> str:
    """The paths as a JSON array (what :mod:`kgrec.serve.record` stores)."""
    return json.dumps([p.to_dict() for p in paths], ensure_ascii=False)
