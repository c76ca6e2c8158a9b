r"""Why was an item recommended? Graph paths from the user to the item, ranked by the model.

Paths (at most 3 hops) are walked in the model's own message-passing graph
(:mod:`kgrec.serve.graph`: the training interactions plus the knowledge-graph edge types the
model used):

====================  ====================================================================
kind                  path
====================  ====================================================================
``direct``            ``user -INTERACTED-> item`` (the user already interacted with it)
``attribute``         ``user -INTERACTED-> j -REL-> entity <-REL- item`` (shared director,
                      actor, genre, ...)
``linked``            ``user -INTERACTED-> j -REL- item`` (a KG relation between two items)
``collaborative``     ``user -INTERACTED-> j <-INTERACTED- other user -INTERACTED-> item``
====================  ====================================================================

**Ranking: what deleting the path would cost the score.** The model scores
``s(u, i) = z_u . z_i`` with final embeddings ``z`` that are layer means of propagation in
which a node's state is a weighted sum of its neighbours' states: ``w_uj = 1 / sqrt(deg(u)
deg(j))`` on interactions (LightGCN's symmetric normalisation) and ``w_ix = 1 / deg_kg(i)``
on the knowledge-graph edges into an item (the model's mean aggregation). An edge therefore
carries its neighbour's embedding into the endpoint's, and deleting it removes, to first
order,

.. math::

    \Delta_{u}(j) = w_{uj}\, z_j \cdot z_i \quad \text{(edge } u - j\text{, through } z_u),
    \qquad \Delta_{i}(x) = w_{ix}\, z_x \cdot z_u \quad \text{(edge } x - i\text{, through }
    z_i)

from the score. A path's **contribution** is what deleting its edges removes:
``Delta_u(j) + Delta_i(x)`` for the paths ``u - j ... x - i`` (``x`` is the shared entity,
the other user, or ``j`` itself for a linked item), ``Delta_u(i) + Delta_i(u)`` for the
direct path; the middle edge of a 3-hop path reaches the score only through two normalised
hops and is left out. ``z_x`` is the model's final embedding of every node type, entities
included (written into the bundle at export). The top path is thus the one whose deletion
costs the most, which is what :mod:`kgrec.eval.faithfulness` checks against the model itself
(``docs/benchmarks.md``). ``share`` is the contribution over the score ``s(u, i)``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from kgrec.data.edges import ArtifactEdge
from kgrec.naming import ITEM, USER, rel_type_for_relation
from kgrec.serve import sentences
from kgrec.serve.bundle import Bundle
from kgrec.serve.graph import ExplanationGraph, load_graph
from kgrec.serve.recommend import UnknownIdError

INTERACTED = "INTERACTED"
INTERACTS = "interacts"
KINDS = ("direct", "linked", "attribute", "collaborative")
HOPS = {"direct": 1, "linked": 2, "attribute": 3, "collaborative": 3}


@dataclass(frozen=True)
class Node:
    """A node of a path: node type (``user``, ``item``, ``director`` ...), external id,
    display name and index within its node type (``-1`` when it has none)."""

    type: str
    id: str
    name: str
    index: int = -1


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
    """

    kind: str
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    contribution: float
    share: float
    sentence: str

    @property
    def hops(self) -> int:
        return len(self.edges)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["hops"] = self.hops
        return out

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


@dataclass(frozen=True)
class Candidates:
    """Every path from one user to one item, as parallel arrays ``[n]``.

    Attributes:
        user, item: Their indices.
        base_score: ``s(user, item) = z_u . z_i``.
        kind: Index into :data:`KINDS`.
        contribution: Each path's contribution (module docstring).
        rated: ``j``, the user's item the path leaves by (the item itself for ``direct``).
        via: The shared entity (``attribute``), the other user (``collaborative``), else
            ``-1``.
        edge_rated: The KG edge at ``j``: item-entity edge id (``attribute``), item-item
            edge id (``linked``), else ``-1``.
        edge_item: The item-entity edge id at the item (``attribute``), else ``-1``.
    """

    user: int
    item: int
    base_score: float
    kind: np.ndarray
    contribution: np.ndarray
    rated: np.ndarray
    via: np.ndarray
    edge_rated: np.ndarray
    edge_item: np.ndarray

    def __len__(self) -> int:
        return int(self.kind.size)

    @property
    def hops(self) -> np.ndarray:
        """``[n]`` path lengths."""
        return np.asarray([HOPS[k] for k in KINDS])[self.kind]

    def ranked(self) -> np.ndarray:
        """Indices, highest contribution first (ties: kind, then the indices of the path)."""
        return np.lexsort((self.via, self.rated, self.kind, -self.contribution))


class Explainer:
    """Path explanations for one model (bundle); its graph is loaded once.

    Args:
        bundle: The serving bundle (embeddings, ids, titles, the model's graph).
        graph: The bundle's explanation graph (default: read from the bundle folder).
    """

    def __init__(self, bundle: Bundle, graph: ExplanationGraph | None = None) -> None:
        self.bundle = bundle
        self.graph = graph or load_graph(bundle.path, bundle.num_users, bundle.num_items)
        self.z_user = np.asarray(bundle.user_embedding, dtype=np.float32)  # [U, d]
        self.z_item = np.asarray(bundle.item_embedding, dtype=np.float32)  # [I, d]
        self.z_entity = np.asarray(self.graph.entity_embedding, dtype=np.float32)  # [E, d]
        self.deg_user = np.maximum(self.graph.user_items.degree(), 1).astype(np.float64)
        self.deg_item = np.maximum(self.graph.item_users.degree(), 1).astype(np.float64)
        self.deg_kg = np.maximum(self.graph.kg_degree, 1).astype(np.float64)

    # ------------------------------------------------------------------ lookups

    def user_index(self, user_id: str) -> int:
        k = self.bundle.user_index(str(user_id))
        if k is None:
            raise UnknownIdError(f"unknown user {user_id!r}: no such user in the model's data")
        return k

    def item_index(self, item_id: str) -> int:
        k = self.bundle.item_index(str(item_id))
        if k is None:
            raise UnknownIdError(f"unknown item {item_id!r}: no such item in the model's data")
        return k

    def _user_node(self, u: int) -> Node:
        return Node(USER, self.bundle.user_ids[u], self.bundle.user_ids[u], u)

    def _item_node(self, i: int) -> Node:
        return Node(ITEM, self.bundle.item_ids[i], self.bundle.titles[i], i)

    def _entity_node(self, e: int) -> Node:
        entities = self.graph.entities
        return Node(entities.type_of(e), entities.ids[e], entities.names[e], int(entities.index[e]))

    # ------------------------------------------------------------------ paths

    def candidates(self, user_id: str, item_id: str) -> Candidates:
        """Every path of at most 3 hops from the user to the item, with its contribution.

        Raises:
            UnknownIdError: unknown user or item id.
        """
        u, i = self.user_index(user_id), self.item_index(item_id)
        graph = self.graph
        z_u, z_i = self.z_user[u], self.z_item[i]
        mine = graph.user_items.row(u)  # [n_u]
        in_mine = np.zeros(self.z_item.shape[0], dtype=bool)
        in_mine[mine] = True
        # Delta_u(j) for every j of the user, by item index
        at_user = np.zeros(self.z_item.shape[0])
        at_user[mine] = (self.z_item[mine] @ z_i) / np.sqrt(self.deg_user[u] * self.deg_item[mine])
        parts: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

        def add(kind: str, score: np.ndarray, rated: np.ndarray, via: np.ndarray,
                edge_rated: np.ndarray, edge_item: np.ndarray) -> None:  # fmt: skip
            if score.size:
                parts.append((KINDS.index(kind), score, rated, via, edge_rated, edge_item))

        none = np.empty(0, dtype=np.int64)
        if in_mine[i]:
            w = 1.0 / np.sqrt(self.deg_user[u] * self.deg_item[i])
            score = np.asarray([w * float(z_i @ z_i) + w * float(z_u @ z_u)])
            minus = np.asarray([-1])
            add("direct", score, np.asarray([i]), minus, minus, minus)

        w_kg = 1.0 / self.deg_kg[i]
        entities, edges_i = graph.item_entities.row(i), graph.item_entities.row_data(i)
        if entities.size:
            items, edges_j, owner = _rows(graph.entity_items, entities)
            hit = in_mine[items] & (items != i)
            js, ej, pos = items[hit], edges_j[hit], owner[hit]
            at_item = w_kg * (self.z_entity[entities] @ z_u)  # [n_e]
            add("attribute", at_user[js] + at_item[pos], js, entities[pos], ej, edges_i[pos])

        links, link_edges = graph.item_links.row(i), graph.item_links.row_data(i)
        hit = in_mine[links] & (links != i)
        if hit.any():
            js = links[hit]
            score = at_user[js] + w_kg * (self.z_item[js] @ z_u)
            add("linked", score, js, np.full(js.size, -1), link_edges[hit], np.full(js.size, -1))

        users = graph.item_users.row(i)
        users = users[users != u]
        if users.size:
            theirs, _, owner = _rows(graph.user_items, users)
            hit = in_mine[theirs] & (theirs != i)
            js, vs = theirs[hit], users[owner[hit]]
            w_iv = 1.0 / np.sqrt(self.deg_item[i] * self.deg_user[users])  # [n_v]
            at_item = w_iv * (self.z_user[users] @ z_u)
            minus = np.full(js.size, -1)
            add("collaborative", at_user[js] + at_item[owner[hit]], js, vs, minus, minus)

        def column(k: int, dtype: type) -> np.ndarray:
            if not parts:
                return np.empty(0, dtype=dtype)
            return np.concatenate([np.asarray(p[k], dtype=dtype) for p in parts])

        kinds = np.concatenate([np.full(p[1].size, p[0]) for p in parts]) if parts else none
        return Candidates(
            user=u,
            item=i,
            base_score=float(z_u @ z_i),
            kind=kinds.astype(np.int64),
            contribution=column(1, np.float64),
            rated=column(2, np.int64),
            via=column(3, np.int64),
            edge_rated=column(4, np.int64),
            edge_item=column(5, np.int64),
        )

    def explain(self, user_id: str, item_id: str, limit: int = 3) -> list[GraphPath]:
        """The ``limit`` paths (at most 3 hops) whose deletion would cost the score most.

        After the best path, paths through a connector not shown yet (another entity, user
        or item) come first, so the list is not three variants of one reason.

        Raises:
            UnknownIdError: unknown user or item id.
        """
        found = self.candidates(user_id, item_id)
        order = found.ranked()
        picked: list[int] = []
        seen: set[tuple[int, int]] = set()
        for k in order.tolist():
            if len(picked) >= limit:
                break
            connector = self._connector(found, k)
            if connector not in seen:
                picked.append(k)
                seen.add(connector)
        rest = [k for k in order.tolist() if k not in set(picked)]
        picked += rest[: max(limit - len(picked), 0)]
        position = {k: n for n, k in enumerate(order.tolist())}
        picked = sorted(picked, key=position.__getitem__)[: max(limit, 0)]
        return [self.path(found, k) for k in picked]

    @staticmethod
    def _connector(found: Candidates, k: int) -> tuple[int, int]:
        """The node linking the user's item to the target: entity, other user or the item."""
        kind = int(found.kind[k])
        return (kind, int(found.via[k] if found.via[k] >= 0 else found.rated[k]))

    def same_length_paths(self, found: Candidates, top: int, num: int, seed: int = 0) -> list[int]:
        """Up to ``num`` paths drawn uniformly (seeded) from the other paths of ``found`` as
        long as path ``top``: the comparison of :func:`kgrec.eval.faithfulness.deletion_test`.
        """
        hops = found.hops
        others = np.flatnonzero((hops == hops[top]) & (np.arange(len(found)) != top))
        if not others.size:
            return []
        rng = np.random.default_rng(seed)
        return [int(k) for k in rng.choice(others, size=min(num, others.size), replace=False)]

    def path(self, found: Candidates, k: int) -> GraphPath:
        """The :class:`GraphPath` of candidate ``k`` of ``found``."""
        u, i, j = found.user, found.item, int(found.rated[k])
        kind = KINDS[int(found.kind[k])]
        contribution = float(found.contribution[k])
        share = contribution / found.base_score if found.base_score > 0 else 0.0
        rated = Edge(INTERACTED, INTERACTS, 0, 1)
        graph = self.graph
        if kind == "direct":
            nodes: tuple[Node, ...] = (self._user_node(u), self._item_node(i))
            edges: tuple[Edge, ...] = (rated,)
            sentence = sentences.direct_sentence(nodes[1].name)
        elif kind == "attribute":
            e, ej, ei = int(found.via[k]), int(found.edge_rated[k]), int(found.edge_item[k])
            nodes = (self._user_node(u), self._item_node(j), self._entity_node(e))
            nodes += (self._item_node(i),)
            rel_j, rel_i = int(graph.ie_relation[ej]), int(graph.ie_relation[ei])
            head_j, head_i = bool(graph.ie_item_is_head[ej]), bool(graph.ie_item_is_head[ei])
            edges = (rated, self._kg_edge(rel_j, 1, 2, head_j), self._kg_edge(rel_i, 3, 2, head_i))
            name = graph.relations[rel_i][1]
            words = (nodes[1].name, nodes[3].name, name, nodes[2].name, nodes[2].id, head_i)
            if rel_i == rel_j:
                sentence = sentences.attribute_sentence(*words)
            else:
                sentence = sentences.mixed_attribute_sentence(*words)
        elif kind == "linked":
            edge = int(found.edge_rated[k])
            nodes = (self._user_node(u), self._item_node(j), self._item_node(i))
            rel = int(graph.ii_relation[edge])
            j_is_head = int(graph.ii_head[edge]) == j
            edges = (rated, self._kg_edge(rel, 1, 2, j_is_head))
            name = graph.relations[rel][1]
            sentence = sentences.linked_sentence(nodes[1].name, nodes[2].name, name, j_is_head)
        else:  # collaborative
            v = int(found.via[k])
            nodes = (self._user_node(u), self._item_node(j), self._user_node(v))
            nodes += (self._item_node(i),)
            edges = (rated, Edge(INTERACTED, INTERACTS, 2, 1), Edge(INTERACTED, INTERACTS, 2, 3))
            sentence = sentences.collaborative_sentence(nodes[1].name, nodes[2].id, nodes[3].name)
        return GraphPath(kind, nodes, edges, contribution, share, sentence)

    def _kg_edge(self, relation: int, item: int, other: int, item_is_head: bool) -> Edge:
        """The KG edge between path positions ``item`` and ``other`` in its stored direction."""
        name = self.graph.relations[relation][1]
        src, dst = (item, other) if item_is_head else (other, item)
        return Edge(rel_type_for_relation(name), name, src, dst)


def _rows(csr: Any, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The entries of several CSR ``rows`` at once: ``(columns, data, position in rows)``."""
    starts, ends = csr.indptr[rows], csr.indptr[rows + 1]
    lengths = (ends - starts).astype(np.int64)
    owner = np.repeat(np.arange(rows.size), lengths)
    offsets = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    flat = np.repeat(starts, lengths) + offsets
    return np.asarray(csr.indices[flat]), np.asarray(csr.data[flat]), owner
