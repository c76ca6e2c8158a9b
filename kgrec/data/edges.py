"""Edge types of the graph artifact, in PyG's vocabulary (torch-free).

An edge type is a triple ``(src_type, relation, dst_type)``: ``('user', 'interacts', 'item')``
for the training interactions and ``(head_type, relation, tail_type)`` per knowledge-graph
relation, each with its reverse ``(dst_type, 'rev_<relation>', src_type)``. The graph
artifact (:mod:`kgrec.data.hetero`), the serving bundle and the faithfulness tools share
these names, so an edge cited by an explanation can be found (and deleted) in the model's
graph.
"""

from __future__ import annotations

from dataclasses import dataclass

from kgrec.naming import ITEM, USER

EdgeType = tuple[str, str, str]
INTERACTS: EdgeType = (USER, "interacts", ITEM)
REVERSE_PREFIX = "rev_"


def reverse(edge_type: EdgeType) -> EdgeType:
    """``(src, rel, dst)`` -> ``(dst, rev_rel, src)`` and back."""
    src, rel, dst = edge_type
    if rel.startswith(REVERSE_PREFIX):
        return (dst, rel[len(REVERSE_PREFIX) :], src)
    return (dst, REVERSE_PREFIX + rel, src)


def is_interaction(edge_type: EdgeType) -> bool:
    """Whether an edge type links users and items (collaborative, not knowledge-graph)."""
    return {edge_type[0], edge_type[2]} == {USER, ITEM}


@dataclass(frozen=True)
class ArtifactEdge:
    """One edge of the graph artifact: ``edge_index[edge_type][:, k] == (source, target)``.

    Attributes:
        edge_type: The stored direction (never a ``rev_`` type).
        source: Index of the source node within its node type.
        target: Index of the target node within its node type.
    """

    edge_type: EdgeType
    source: int
    target: int
