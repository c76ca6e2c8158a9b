r"""Why was an item recommended? Paths from the user to the item, ranked by the model's score.

kgrec's score is exactly a per-user constant plus one contribution per item of the user's
history (:mod:`kgrec.serve.scorer`)::

    score(u, i) = c_u + sum_h contribution(h, i)

so "why ``i``" has an exact answer: the history items ``h`` with the largest contributions,
the evidence the model weighed. Each is shown with a path of at most 3 hops in the graph the
model used (:mod:`kgrec.serve.graph`: the user's interactions plus the knowledge-graph edge
types the model read) from the user through ``h`` to ``i``:

====================  ====================================================================
kind                  path
====================  ====================================================================
``attribute``         ``user -INTERACTED-> h -REL-> entity <-REL- item`` (shared director,
                      actor, genre, ...; the least common entity first)
``linked``            ``user -INTERACTED-> h -REL- item`` (a KG relation between two items)
``collaborative``     ``user -INTERACTED-> h <-INTERACTED- another user -INTERACTED-> item``
                      (no other user is named)
====================  ====================================================================

A path's ``contribution`` is ``contribution(h, i)``: what deleting its first edge (``h`` from
the user's history) removes from the score, to first order (exactly, up to the per-user
standardisation; :mod:`kgrec.eval.faithfulness` checks it against the checkpoint's own
scorer). ``share`` is that contribution over the sum of the positive ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kgrec.errors import KgrecError
from kgrec.naming import ITEM, USER, rel_type_for_relation
from kgrec.serve import sentences
from kgrec.serve.bundle import Bundle
from kgrec.serve.graph import Csr, ExplanationGraph, load_graph
from kgrec.serve.graph_path import Edge, GraphPath, Node
from kgrec.serve.reasons import ATTRIBUTE, LINKED, Route, RouteFinder, liked_keys, readable_names
from kgrec.serve.recommend import UnknownIdError
from kgrec.serve.scorer import Contributions

INTERACTED = "INTERACTED"
INTERACTS = "interacts"
KINDS = ("attribute", "linked", "collaborative")
HOPS = {"linked": 2, "attribute": 3, "collaborative": 3}
TRIES = 5
"""History items tried beyond ``limit`` when some have no path (a bound on the work)."""


@dataclass(frozen=True)
class Candidates:
    """Every path from one user to one item, as parallel arrays ``[n]``.

    Attributes:
        user, item: Their indices.
        base_score: The item's score for the user.
        total: The sum of the positive per-history-item contributions.
        kind: Index into :data:`KINDS`.
        contribution: Each path's contribution (that of its history item).
        rated: ``h``, the history item the path leaves by.
        via: The shared entity (``attribute``), the other user (``collaborative``), else
            ``-1``.
        edge_rated: The KG edge at ``h``: item-entity edge id (``attribute``), item-item
            edge id (``linked``), else ``-1``.
        edge_item: The item-entity edge id at the item (``attribute``), else ``-1``.
        specificity: Tie-break within one history item: higher first (``1 / degree`` of a
            shared entity; 0 for the other kinds).
    """

    user: int
    item: int
    base_score: float
    total: float
    kind: np.ndarray
    contribution: np.ndarray
    rated: np.ndarray
    via: np.ndarray
    edge_rated: np.ndarray
    edge_item: np.ndarray
    specificity: np.ndarray

    def __len__(self) -> int:
        return int(self.kind.shape[0])

    @property
    def hops(self) -> np.ndarray:
        """Each path's length ``[n]``."""
        return np.asarray([HOPS[KINDS[k]] for k in self.kind.tolist()], dtype=np.int64)

    def ranked(self) -> np.ndarray:
        """Path positions, largest contribution first; then attribute, linked,
        collaborative; then the most specific shared entity."""
        return np.lexsort((-self.specificity, self.kind, -self.contribution))


class Explainer:
    """Path explanations for one model (bundle); its graph is loaded once.

    Args:
        bundle: The serving bundle (scorer, histories, ids, titles, the model's graph).
        graph: The bundle's explanation graph (default: read from the bundle folder).
    """

    def __init__(self, bundle: Bundle, graph: ExplanationGraph | None = None) -> None:
        if bundle.scorer is None:
            raise KgrecError(f"{bundle.path}: a bundle without a scorer cannot be explained")
        self.bundle = bundle
        self.scorer = bundle.scorer
        self.graph = graph or load_graph(bundle.path, bundle.num_users, bundle.num_items)
        self._rel_types: dict[str, str] = {}
        entities = self.graph.entities
        self.routes = RouteFinder(
            self.graph,
            readable_names(entities.ids, entities.names, bundle.titles),
            liked_keys(
                bundle.history_indptr, bundle.history_items, bundle.history_liked,
                bundle.num_items,
            ),
            bundle.num_items,
        )  # fmt: skip

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

    @staticmethod
    def _someone(v: int) -> Node:
        """Another user, never named (customers see no one else's data)."""
        return Node(USER, "", "another user", v)

    def _item_node(self, i: int) -> Node:
        return Node(ITEM, self.bundle.item_ids[i], self.bundle.titles[i], i)

    def _entity_node(self, e: int) -> Node:
        entities = self.graph.entities
        return Node(entities.type_of(e), entities.ids[e], entities.names[e], int(entities.index[e]))

    # ------------------------------------------------------------------ paths

    def contributions(self, user_id: str, item_id: str) -> Contributions:
        """The exact split of the item's score over the user's history items."""
        u, i = self.user_index(user_id), self.item_index(item_id)
        items, ages = self.bundle.history(u)
        return self.scorer.contributions(items, ages, i)

    def candidates(self, user_id: str, item_id: str) -> Candidates:
        """Every path of at most 3 hops from the user through a history item to the item,
        with that history item's contribution.

        Raises:
            UnknownIdError: unknown user or item id.
        """
        u, i = self.user_index(user_id), self.item_index(item_id)
        split = self.contributions(user_id, item_id)
        by_item: dict[int, float] = {}
        for h, c in zip(split.items.tolist(), split.per_item.tolist(), strict=True):
            by_item[h] = by_item.get(h, 0.0) + c
        by_item.pop(i, None)
        total = float(sum(c for c in by_item.values() if c > 0))
        mine = np.asarray(sorted(by_item), dtype=np.int64)
        weight = np.zeros(self.bundle.num_items)
        in_mine = np.zeros(self.bundle.num_items, dtype=bool)
        weight[mine] = [by_item[h] for h in mine.tolist()]
        in_mine[mine] = True
        graph = self.graph
        parts: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        reached = np.zeros(self.bundle.num_items, dtype=bool)

        def add(kind: str, rated: np.ndarray, via: np.ndarray, edge_rated: np.ndarray,
                edge_item: np.ndarray, specificity: np.ndarray) -> None:  # fmt: skip
            if rated.size:
                parts.append((KINDS.index(kind), rated, via, edge_rated, edge_item, specificity))
                reached[rated] = True

        entities, edges_i = graph.item_entities.row(i), graph.item_entities.row_data(i)
        if entities.size:
            items, edges_j, owner = _rows(graph.entity_items, entities)
            hit = in_mine[items] & (items != i)
            degree = np.diff(graph.entity_items.indptr)[entities[owner[hit]]]
            add("attribute", items[hit], entities[owner[hit]], edges_j[hit],
                edges_i[owner[hit]], 1.0 / np.maximum(degree, 1))  # fmt: skip
        links, link_edges = graph.item_links.row(i), graph.item_links.row_data(i)
        hit = in_mine[links] & (links != i)
        minus = np.full(int(hit.sum()), -1)
        add("linked", links[hit], minus, link_edges[hit], minus, np.zeros(minus.size))
        users_i = graph.item_users.row(i)
        lonely = [h for h in mine.tolist() if not reached[h]]
        rated, via = [], []
        for h in lonely:  # someone else who has both, when the KG links nothing
            both = np.intersect1d(graph.item_users.row(h), users_i, assume_unique=True)
            both = both[both != u]
            if both.size:
                rated.append(h)
                via.append(int(both[0]))
        minus = np.full(len(rated), -1)
        add("collaborative", np.asarray(rated, dtype=np.int64), np.asarray(via, dtype=np.int64),
            minus, minus, np.zeros(len(rated)))  # fmt: skip

        def column(k: int, dtype: type) -> np.ndarray:
            if not parts:
                return np.empty(0, dtype=dtype)
            return np.concatenate([np.asarray(p[k], dtype=dtype) for p in parts])

        kinds = np.concatenate([np.full(p[1].size, p[0]) for p in parts]) if parts else None
        rated_all = column(1, np.int64)
        return Candidates(
            user=u,
            item=i,
            base_score=split.score,
            total=total,
            kind=(kinds if kinds is not None else np.empty(0)).astype(np.int64),
            contribution=weight[rated_all],
            rated=rated_all,
            via=column(2, np.int64),
            edge_rated=column(3, np.int64),
            edge_item=column(4, np.int64),
            specificity=column(5, np.float64),
        )

    def explain(
        self, user_id: str, item_id: str, limit: int = 3, staff: bool = False
    ) -> list[GraphPath]:
        """The paths of the ``limit`` history items that contribute most (one each).

        Customer-facing (default): only items the user liked, each with its most telling
        path (:mod:`kgrec.serve.reasons`), no other user identified. ``staff``: every
        contributing item, liked or not (``GraphPath.liked``), the raw path included.

        Raises:
            UnknownIdError: unknown user or item id.
        """
        return self.explain_many(user_id, [item_id], limit, staff)[0]

    def explain_many(
        self, user_id: str, item_ids: list[str], limit: int = 3, staff: bool = False
    ) -> list[list[GraphPath]]:
        """:meth:`explain` for several items of one user (one split of the score for all).

        Raises:
            UnknownIdError: unknown user or item id.
        """
        u = self.user_index(user_id)
        targets = np.asarray([self.item_index(i) for i in item_ids], dtype=np.int64)
        items, ages = self.bundle.history(u)
        per_item = self.scorer.contributions_many(items, ages, targets)  # [n, k]
        rated, inverse = np.unique(items, return_inverse=True)
        weight = np.zeros((rated.shape[0], targets.shape[0]))
        np.add.at(weight, inverse, per_item)
        liked = np.zeros(rated.shape[0], dtype=bool)
        np.logical_or.at(liked, inverse, self.bundle.liked(u))
        out = []
        for k, i in enumerate(targets.tolist()):
            w = np.where(rated == i, 0.0, weight[:, k])
            total = float(w[w > 0].sum())
            shown = np.flatnonzero((w > 0) & (liked | staff))
            paths: list[GraphPath] = []
            for j in shown[np.argsort(-w[shown], kind="stable")][: limit + TRIES].tolist():
                route = self.routes.best(u, int(rated[j]), i, customer=not staff)
                if route is not None:
                    share = float(w[j]) / total if total > 0 else 0.0
                    found = (float(w[j]), share, bool(liked[j]), staff)
                    paths.append(self._build(u, int(rated[j]), i, route, *found))
                if len(paths) == limit:
                    break
            out.append(paths)
        return out

    def same_length_paths(self, found: Candidates, top: int, num: int, seed: int = 0) -> list[int]:
        """Up to ``num`` paths drawn uniformly (seeded) from the paths of ``found`` as long as
        path ``top`` that leave by another history item: the comparison of
        :func:`kgrec.eval.faithfulness.deletion_test`."""
        hops = found.hops
        others = np.flatnonzero((hops == hops[top]) & (found.rated != found.rated[top]))
        if not others.size:
            return []
        rng = np.random.default_rng(seed)
        return [int(k) for k in rng.choice(others, size=min(num, others.size), replace=False)]

    def path(self, found: Candidates, k: int) -> GraphPath:
        """The :class:`GraphPath` of candidate ``k`` of ``found`` (staff wording)."""
        kind = KINDS[int(found.kind[k])]
        route = Route(kind, int(found.via[k]), int(found.edge_rated[k]), int(found.edge_item[k]))
        contribution = float(found.contribution[k])
        share = contribution / found.total if found.total > 0 else 0.0
        return self._build(
            found.user, int(found.rated[k]), found.item, route, contribution, share, True, True
        )

    def _build(
        self,
        u: int,
        j: int,
        i: int,
        route: Route,
        contribution: float,
        share: float,
        liked: bool,
        staff: bool,
    ) -> GraphPath:
        """The :class:`GraphPath` ``user u -> j -> ... -> i`` along ``route``; customers
        read "liked" and names they can read, staff "rated" and every name."""
        rated = Edge(INTERACTED, INTERACTS, 0, 1)
        graph = self.graph
        start = sentences.because(self.bundle.titles[j], "rated" if staff else "liked", liked)
        if route.kind == ATTRIBUTE:
            e, ej, ei = route.via, route.edge_rated, route.edge_item
            nodes: tuple[Node, ...] = (self._user_node(u), self._item_node(j))
            nodes += (self._entity_node(e), self._item_node(i))
            rel_j, rel_i = int(graph.ie_relation[ej]), int(graph.ie_relation[ei])
            head_j, head_i = bool(graph.ie_item_is_head[ej]), bool(graph.ie_item_is_head[ei])
            edges: tuple[Edge, ...] = (rated, self._kg_edge(rel_j, 1, 2, head_j))
            edges += (self._kg_edge(rel_i, 3, 2, head_i),)
            name = graph.relations[rel_i][1]
            shown = nodes[2].name if staff or self.routes.named[e] else nodes[2].id
            words = (nodes[1].name, nodes[3].name, name, shown, nodes[2].id, head_i, start)
            if rel_i == rel_j:
                sentence = sentences.attribute_sentence(*words)
            else:
                sentence = sentences.mixed_attribute_sentence(*words)
        elif route.kind == LINKED:
            edge = route.edge_rated
            nodes = (self._user_node(u), self._item_node(j), self._item_node(i))
            rel = int(graph.ii_relation[edge])
            j_is_head = int(graph.ii_head[edge]) == j
            edges = (rated, self._kg_edge(rel, 1, 2, j_is_head))
            name = graph.relations[rel][1]
            sentence = sentences.linked_sentence(
                nodes[1].name, nodes[2].name, name, j_is_head, start
            )
        else:  # collaborative: the other user is never named (customers: not even indexed)
            someone = self._someone(route.via if staff else -1)
            nodes = (self._user_node(u), self._item_node(j), someone, self._item_node(i))
            edges = (rated, Edge(INTERACTED, INTERACTS, 2, 1), Edge(INTERACTED, INTERACTS, 2, 3))
            verb = "liked" if route.others_liked else "rated"
            sentence = sentences.collaborative_sentence(nodes[1].name, nodes[3].name, start, verb)
        return GraphPath(route.kind, nodes, edges, contribution, share, sentence, liked)

    def _kg_edge(self, relation: int, item: int, other: int, item_is_head: bool) -> Edge:
        """The KG edge between path positions ``item`` and ``other`` in its stored direction."""
        name = self.graph.relations[relation][1]
        if name not in self._rel_types:
            self._rel_types[name] = rel_type_for_relation(name)
        src, dst = (item, other) if item_is_head else (other, item)
        return Edge(self._rel_types[name], name, src, dst)


def _rows(csr: Csr, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The entries of several CSR ``rows`` at once: ``(columns, data, position in rows)``."""
    starts, ends = csr.indptr[rows], csr.indptr[rows + 1]
    lengths = (ends - starts).astype(np.int64)
    owner = np.repeat(np.arange(rows.size), lengths)
    offsets = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    position = starts[owner] + offsets
    return np.asarray(csr.indices[position]), np.asarray(csr.data[position]), owner
