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
``s(u, i) = z_u . z_i`` with final embeddings ``z`` that are layer means of propagation: a
node's state is a weighted sum of its neighbours' states, with ``w_uj = 1 / sqrt(deg(u)
deg(j))`` on interactions (LightGCN's symmetric normalisation) and ``1 / k_i`` on the ``k_i``
knowledge-graph edges into an item (the model's mean aggregation, each message multiplied
by its relation's vector ``e_r``). Over the layers an edge carries its neighbour's *carrier*
``c_j`` (the layer states it passes on, :func:`kgrec.serve.export.carriers`) into the
endpoint's final embedding, and deleting it also renormalises the endpoint's other edges.
To first order, deleting the edge ``u - j`` lowers the score by

.. math::

    \Delta_u(j) = \alpha_u t_j - (\alpha_u - 1) \sum_{j' \in N(u)} t_{j'}, \qquad
    t_j = w_{uj}\, c_j \cdot z_i, \quad \alpha_u = \sqrt{\deg(u) / (\deg(u) - 1)}

and an edge ``x - i`` at the item likewise by ``Delta_i(x)`` (terms ``w_ix c_x . z_u`` over
the item's users, factor ``sqrt(deg(i) / (deg(i) - 1))``; or ``(e_r * c_x) . z_u / k_i``
over its knowledge-graph neighbours, factor ``k_i / (k_i - 1)``). A path's **contribution** is what
deleting its edges costs: ``Delta_u(j) + Delta_i(x)`` for ``u - j ... x - i`` (``x`` is the
shared entity, the other user, or ``j`` itself for a linked item), ``Delta_u(i) + Delta_i(u)``
for the direct path. The middle edge of a 3-hop path reaches the score only through two
normalised hops and is left out. The top path is thus the one whose deletion costs the model
most, to first order; :mod:`kgrec.eval.faithfulness` checks it against the model's own full
re-propagation (``benchmarks/faithfulness.py``). ``share`` is the contribution over the score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kgrec.naming import ITEM, USER, rel_type_for_relation
from kgrec.serve import sentences
from kgrec.serve.bundle import Bundle
from kgrec.serve.graph import Csr, ExplanationGraph, load_graph
from kgrec.serve.graph_path import Edge, GraphPath, Node
from kgrec.serve.recommend import UnknownIdError

INTERACTED = "INTERACTED"
INTERACTS = "interacts"
KINDS = ("direct", "linked", "attribute", "collaborative")
HOPS = {"direct": 1, "linked": 2, "attribute": 3, "collaborative": 3}


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
        self.c_user = np.asarray(self.graph.user_carrier, dtype=np.float32)  # [U, d]
        self.c_item = np.asarray(self.graph.item_carrier, dtype=np.float32)  # [I_trained, d]
        self.c_entity = np.asarray(self.graph.entity_carrier, dtype=np.float32)  # [E, d]
        self.deg_user = np.maximum(self.graph.user_items.degree(), 1).astype(np.float64)
        self.deg_item = np.maximum(self.graph.item_users.degree(), 1).astype(np.float64)

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
        terms = (self.c_item[mine] @ z_i) / np.sqrt(self.deg_user[u] * self.deg_item[mine])
        at_user[mine] = _renormalised(terms, np.sqrt(_ratio(mine.size)))
        # Delta_i(v) for every user of the item, and Delta_i(x) for its KG neighbours
        users = graph.item_users.row(i)
        terms = (self.c_user[users] @ z_u) / np.sqrt(self.deg_item[i] * self.deg_user[users])
        at_item_cf = _renormalised(terms, np.sqrt(_ratio(users.size)))  # [n_i]
        entities, edges_i = graph.item_entities.row(i), graph.item_entities.row_data(i)
        links, link_edges = graph.item_links.row(i), graph.item_links.row_data(i)
        k_i = entities.size + links.size
        # a KG message is the neighbour's carrier times the relation vector of its direction
        into_head = np.concatenate([graph.ie_item_is_head[edges_i], graph.ii_head[link_edges] == i])
        relation = np.concatenate([graph.ie_relation[edges_i], graph.ii_relation[link_edges]])
        e_r = graph.relation_vectors[into_head.astype(np.int64), relation]  # [n_e + n_l, d]
        sent = np.concatenate([self.c_entity[entities], self.c_item[links]])
        terms = ((sent * e_r) @ z_u) / max(k_i, 1)
        at_item_kg = _renormalised(terms, _ratio(k_i))  # [n_e + n_l]
        parts: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

        def add(kind: str, score: np.ndarray, rated: np.ndarray, via: np.ndarray,
                edge_rated: np.ndarray, edge_item: np.ndarray) -> None:  # fmt: skip
            if score.size:
                parts.append((KINDS.index(kind), score, rated, via, edge_rated, edge_item))

        none = np.empty(0, dtype=np.int64)
        if in_mine[i]:
            score = np.asarray([at_user[i] + at_item_cf[np.searchsorted(users, u)]])
            minus = np.asarray([-1])
            add("direct", score, np.asarray([i]), minus, minus, minus)

        if entities.size:
            items, edges_j, owner = _rows(graph.entity_items, entities)
            hit = in_mine[items] & (items != i)
            js, ej, pos = items[hit], edges_j[hit], owner[hit]
            score = at_user[js] + at_item_kg[pos]
            add("attribute", score, js, entities[pos], ej, edges_i[pos])

        hit = in_mine[links] & (links != i)
        if hit.any():
            js = links[hit]
            score = at_user[js] + at_item_kg[entities.size + np.flatnonzero(hit)]
            add("linked", score, js, np.full(js.size, -1), link_edges[hit], np.full(js.size, -1))

        others = np.flatnonzero(users != u)  # positions in users
        if others.size:
            theirs, _, owner = _rows(graph.user_items, users[others])
            hit = in_mine[theirs] & (theirs != i)
            js, pos = theirs[hit], others[owner[hit]]
            minus = np.full(js.size, -1)
            add("collaborative", at_user[js] + at_item_cf[pos], js, users[pos], minus, minus)

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


def _ratio(degree: int) -> float:
    """How deleting one of ``degree`` equal-weight edges rescales the others (mean
    aggregation: ``degree / (degree - 1)``; its square root for symmetric normalisation)."""
    return degree / (degree - 1) if degree > 1 else 1.0


def _renormalised(terms: np.ndarray, factor: float) -> np.ndarray:
    """``[n]`` first-order score drops of deleting each of a node's edges, ``terms[k]`` being
    what edge ``k`` carries into the score: it goes, and the remaining ones grow by
    ``factor`` (``factor * t_k - (factor - 1) * sum(t)``)."""
    if terms.size == 1:  # the only edge: nothing left to renormalise
        return terms.astype(np.float64)
    return factor * terms - (factor - 1.0) * float(terms.sum())


def _rows(csr: Csr, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The entries of several CSR ``rows`` at once: ``(columns, data, position in rows)``."""
    starts, ends = csr.indptr[rows], csr.indptr[rows + 1]
    lengths = (ends - starts).astype(np.int64)
    owner = np.repeat(np.arange(rows.size), lengths)
    offsets = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    flat = np.repeat(starts, lengths) + offsets
    return np.asarray(csr.indices[flat]), np.asarray(csr.data[flat]), owner
