r"""Why was an item recommended? Graph paths from the user to the item, ranked by the model.

Paths (at most 3 hops) are found in the model's message-passing graph: the artifact's
*training* interactions plus the knowledge-graph triples (``tables/*.parquet``):

====================  ====================================================================
kind                  path
====================  ====================================================================
``direct``            ``user -INTERACTED-> item`` (the user already interacted with it)
``attribute``         ``user -INTERACTED-> j -REL-> entity <-REL- item`` (shared director,
                      actor, genre, ...)
``linked``            ``user -INTERACTED-> j -REL- item`` (a KG relation between two items)
``collaborative``     ``user -INTERACTED-> j <-INTERACTED- other user -INTERACTED-> item``
====================  ====================================================================

**Ranking.** The model scores ``s(u, i) = z_u . z_i`` with final embeddings ``z`` that are
layer means of LightGCN-style propagation: a node's state is the normalised sum of its
neighbours' states. To first order therefore

.. math::

    z_u \approx c \sum_{j \in N(u)} w_{uj} z_j, \qquad z_i \approx c \sum_{x \in N(i)} w_{ix} z_x

with the model's own edge weights: ``w_uj = 1 / sqrt(deg(u) deg(j))`` on interactions
(LightGCN's symmetric normalisation) and ``w_ix = 1 / deg_kg(i)`` on the knowledge-graph
edges into ``i`` (the model's mean aggregation). Substituting both into the dot product gives

.. math::

    s(u, i) \approx c^2 \sum_{j \in N(u)} \sum_{x \in N(i)} w_{uj}\, w_{ix}\, (z_j \cdot z_x),

a sum over chains ``u - j ... x - i``. The chains in which ``x`` is a neighbour of ``j`` are
exactly the 3-hop paths ``u -> j - x - i`` above, so each path's **contribution** is its own
term of the score,

    ``contribution(u, j, x, i) = w_uj * w_ix * (z_j . z_x)``

(``c^2`` is dropped: it does not change the order). For the 2-hop ``linked`` path ``x = j``;
for the ``direct`` path the term is ``w_iu * (z_u . z_u)``. Entities have no serving
embedding, so ``z_e`` is the mean of the final embeddings of ``e``'s items, which is what the
model's relational mean aggregation feeds back into items (relation vectors are left out).
Specific shared attributes (a director of two films) thus weigh more than broad ones (a
genre of hundreds), and users' items that resemble the entity or the co-rater weigh more.
``share`` is a path's contribution over the sum of all positive path contributions.

:func:`faithfulness` checks the ranking against the model itself: it deletes the top path's
edges, re-runs the full propagation (torch) and compares the score drop with deleting random
paths of the same length between the same user and item.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path as FilePath
from typing import TYPE_CHECKING, Any

import numpy as np

from kgrec.errors import KgrecError
from kgrec.serve.bundle import Bundle
from kgrec.serve.recommend import UnknownIdError

if TYPE_CHECKING:
    from torch import Tensor

INTERACTED = "INTERACTED"
USER, ITEM = "user", "item"
HOPS = {"direct": 1, "linked": 2, "attribute": 3, "collaborative": 3}


@dataclass(frozen=True)
class Node:
    """A node of a path: node type (``user``, ``item``, ``director`` ...), id, display name."""

    type: str
    id: str
    name: str


@dataclass(frozen=True)
class Edge:
    """A relationship as stored: ``source -type-> target`` (indices into the path's nodes).

    ``relation`` is the artifact's edge-type name (``interacts``, ``directed_by`` ...).
    """

    type: str
    relation: str
    source: int
    target: int


@dataclass(frozen=True)
class Path:
    """One explanation path from the user to the item (JSON-serialisable via :meth:`to_dict`).

    Attributes:
        kind: ``direct``, ``attribute``, ``linked`` or ``collaborative``.
        nodes: The user first, the item last.
        edges: One per hop, in the graph's direction.
        contribution: The path's term of the score (module docstring).
        share: ``contribution`` over the sum of all positive path contributions.
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


@dataclass
class _Csr:
    """Rows of sorted column indices: ``indices[indptr[r]:indptr[r+1]]``."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    @classmethod
    def build(
        cls, rows: np.ndarray, cols: np.ndarray, n: int, data: np.ndarray | None = None
    ) -> _Csr:
        order = np.lexsort((cols, rows))
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
        extra = data[order] if data is not None else np.empty(0, dtype=np.int64)
        return cls(indptr, cols[order].astype(np.int64), extra)

    def row(self, r: int) -> np.ndarray:
        return self.indices[self.indptr[r] : self.indptr[r + 1]]

    def row_data(self, r: int) -> np.ndarray:
        return self.data[self.indptr[r] : self.indptr[r + 1]]

    def degree(self) -> np.ndarray:
        return np.diff(self.indptr)


class Explainer:
    """Path explanations for one model (bundle) and its artifact; adjacency built once.

    Args:
        bundle: The serving bundle (embeddings, ids, titles).
        artifacts_dir: The ``build-graph`` artifact folder (``tables/``, ``id_maps.parquet``).
    """

    def __init__(self, bundle: Bundle, artifacts_dir: FilePath | str) -> None:
        import pandas as pd

        from kgrec.store.base import rel_type_for_relation

        self.bundle = bundle
        folder = FilePath(artifacts_dir)
        tables = folder / "tables"
        if not (tables / "interactions.parquet").exists():
            raise KgrecError(f"no tables in {folder}: run `kgrec build-graph` first")
        self.user_pos = pd.Index(bundle.user_ids)
        self.item_pos = pd.Index(bundle.item_ids)
        num_users, num_items = len(bundle.user_ids), len(bundle.item_ids)
        self.z_user = np.asarray(bundle.user_embedding, dtype=np.float32)  # [U, d]
        self.z_item = np.asarray(bundle.item_embedding, dtype=np.float32)  # [I, d]

        inter = pd.read_parquet(
            tables / "interactions.parquet", columns=["user_id", "item_id", "split"]
        )
        inter = inter[inter["split"].astype(str) == "train"]
        u = self.user_pos.get_indexer(inter["user_id"].astype(str))
        i = self.item_pos.get_indexer(inter["item_id"].astype(str))
        keep = (u >= 0) & (i >= 0)
        pairs = np.unique(u[keep].astype(np.int64) * num_items + i[keep])
        u, i = pairs // num_items, pairs % num_items
        self.user_items = _Csr.build(u, i, num_users)  # [U] -> train items
        self.item_users = _Csr.build(i, u, num_items)  # [I] -> train users
        self.deg_user = np.maximum(self.user_items.degree(), 1).astype(np.float64)
        self.deg_item = np.maximum(self.item_users.degree(), 1).astype(np.float64)

        entities = pd.read_parquet(tables / "entities.parquet")
        ent_type = entities["type"].astype(str).to_numpy()
        ent_id = entities["entity_id"].astype(str).to_numpy()
        names = entities["name"] if "name" in entities.columns else entities["entity_id"]
        ent_name = [_text(n, e) for n, e in zip(names, ent_id, strict=True)]
        self.ent_type, self.ent_id, self.ent_name = ent_type, ent_id, ent_name
        ent_key = pd.Index([f"{t}\x00{e}" for t, e in zip(ent_type, ent_id, strict=True)])
        self.ent_local = self._entity_local_index(folder, ent_type, ent_id)

        triples = _with_added_links(pd.read_parquet(tables / "triples.parquet"), folder)
        self.relations: list[str] = sorted(triples["relation"].astype(str).unique().tolist())
        self.rel_type = [rel_type_for_relation(r) for r in self.relations]
        self.rel_name = [relation_name(r) for r in self.relations]
        rel_of = {r: k for k, r in enumerate(self.relations)}
        head_t, tail_t = triples["head_type"].astype(str), triples["tail_type"].astype(str)
        heads, tails = triples["head"].astype(str), triples["tail"].astype(str)
        rels = triples["relation"].astype(str).map(rel_of).to_numpy(dtype=np.int64)

        # item -> entity edges (either direction in the store); flag 1 = item is the head
        item_rows, ent_cols, rel_ids, item_head = [], [], [], []
        for item_is_head in (True, False):
            mine = (head_t == ITEM) & ~tail_t.isin([ITEM, USER])
            if not item_is_head:
                mine = (tail_t == ITEM) & ~head_t.isin([ITEM, USER])
            items = (heads if item_is_head else tails)[mine]
            others = (tails if item_is_head else heads)[mine]
            other_t = (tail_t if item_is_head else head_t)[mine]
            ii = self.item_pos.get_indexer(items)
            ee = ent_key.get_indexer(other_t + "\x00" + others)
            ok = (ii >= 0) & (ee >= 0)
            item_rows.append(ii[ok])
            ent_cols.append(ee[ok])
            rel_ids.append(rels[mine.to_numpy()][ok])
            item_head.append(np.full(int(ok.sum()), int(item_is_head)))
        ie_item, ie_ent = np.concatenate(item_rows), np.concatenate(ent_cols)
        ie_rel, ie_head = np.concatenate(rel_ids), np.concatenate(item_head)
        edge_ids = np.arange(ie_item.size)
        self.ie_rel, self.ie_head = ie_rel, ie_head
        self.item_ents = _Csr.build(ie_item, ie_ent, num_items, edge_ids)  # [I] -> entities
        self.ent_items = _Csr.build(ie_ent, ie_item, len(ent_id), edge_ids)  # [E] -> items

        # item -> item KG edges (both directions), data = edge id into ii_*
        both = (head_t == ITEM) & (tail_t == ITEM)
        h = self.item_pos.get_indexer(heads[both])
        t = self.item_pos.get_indexer(tails[both])
        ok = (h >= 0) & (t >= 0)
        h, t, r = h[ok], t[ok], rels[both.to_numpy()][ok]
        self.ii_head, self.ii_tail, self.ii_rel = h, t, r
        ids = np.arange(h.size)
        self.item_items = _Csr.build(
            np.concatenate([h, t]), np.concatenate([t, h]), num_items, np.concatenate([ids, ids])
        )
        self.deg_kg = np.maximum(self.item_ents.degree() + self.item_items.degree(), 1).astype(
            np.float64
        )

        # entity "embedding": mean of its items' final embeddings [E, d]
        z_ent = np.zeros((len(ent_id), self.z_item.shape[1]), dtype=np.float64)
        np.add.at(z_ent, ie_ent, self.z_item[ie_item])
        count = np.bincount(ie_ent, minlength=len(ent_id))
        self.z_ent = (z_ent / np.maximum(count, 1)[:, None]).astype(np.float32)

    @staticmethod
    def _entity_local_index(
        folder: FilePath, ent_type: np.ndarray, ent_id: np.ndarray
    ) -> np.ndarray:
        """Each entity's index within its node type (the artifact's id maps) ``[E]``."""
        import pandas as pd

        path = folder / "id_maps.parquet"
        local = np.full(ent_id.size, -1, dtype=np.int64)
        if not path.exists():
            return local
        frame = pd.read_parquet(path)
        key = frame["node_type"].astype(str) + "\x00" + frame["id"].astype(str)
        lookup = pd.Series(frame["index"].to_numpy(dtype=np.int64), index=key.to_numpy())
        found = lookup.reindex([f"{t}\x00{e}" for t, e in zip(ent_type, ent_id, strict=True)])
        return found.fillna(-1).to_numpy(dtype=np.int64)

    # ------------------------------------------------------------------ lookups

    def _user(self, user_id: str) -> int:
        k = int(self.user_pos.get_indexer([str(user_id)])[0])
        if k < 0:
            raise UnknownIdError(f"unknown user {user_id!r}: no such user in the model's data")
        return k

    def _item(self, item_id: str) -> int:
        k = int(self.item_pos.get_indexer([str(item_id)])[0])
        if k < 0:
            raise UnknownIdError(f"unknown item {item_id!r}: no such item in the model's data")
        return k

    def _user_node(self, u: int) -> Node:
        return Node(USER, self.bundle.user_ids[u], self.bundle.user_ids[u])

    def _item_node(self, i: int) -> Node:
        return Node(ITEM, self.bundle.item_ids[i], self.bundle.titles[i])

    def _ent_node(self, e: int) -> Node:
        return Node(str(self.ent_type[e]), str(self.ent_id[e]), self.ent_name[e])

    # ------------------------------------------------------------------ paths

    def candidates(self, user_id: str, item_id: str) -> list[tuple[float, str, tuple[int, ...]]]:
        """Every path with its contribution: ``(contribution, kind, key)``, unsorted.

        ``key`` holds indices: ``direct (u, i)``, ``attribute (u, j, edge_j, edge_i, e, i)``,
        ``linked (u, j, edge, i)``, ``collaborative (u, j, v, i)``.
        """
        u, i = self._user(user_id), self._item(item_id)
        mine = self.user_items.row(u)  # [n_u]
        w_u = 1.0 / np.sqrt(self.deg_user[u] * self.deg_item[mine])  # [n_u]
        in_mine = np.zeros(self.z_item.shape[0], dtype=bool)
        in_mine[mine] = True
        pos = np.full(self.z_item.shape[0], -1, dtype=np.int64)
        pos[mine] = np.arange(mine.size)
        out: list[tuple[float, str, tuple[int, ...]]] = []

        if in_mine[i]:
            w = 1.0 / np.sqrt(self.deg_user[u] * self.deg_item[i])
            out.append((float(w * self.z_user[u] @ self.z_user[u]), "direct", (u, i)))

        w_kg = 1.0 / self.deg_kg[i]
        for e, edge_i in zip(self.item_ents.row(i), self.item_ents.row_data(i), strict=True):
            items = self.ent_items.row(e)
            edges = self.ent_items.row_data(e)
            hit = in_mine[items] & (items != i)
            if not hit.any():
                continue
            js, ejs = items[hit], edges[hit]
            terms = w_u[pos[js]] * w_kg * (self.z_item[js] @ self.z_ent[e])
            for j, ej, c in zip(js.tolist(), ejs.tolist(), terms.tolist(), strict=True):
                out.append((c, "attribute", (u, j, ej, int(edge_i), int(e), i)))

        for j, edge in zip(self.item_items.row(i), self.item_items.row_data(i), strict=True):
            if in_mine[j] and j != i:
                c = w_u[pos[j]] * w_kg * float(self.z_item[j] @ self.z_item[j])
                out.append((float(c), "linked", (u, int(j), int(edge), i)))

        users = self.item_users.row(i)
        users = users[users != u]
        if users.size:
            w_iv = 1.0 / np.sqrt(self.deg_item[i] * self.deg_user[users])  # [n_v]
            for v, w in zip(users.tolist(), w_iv.tolist(), strict=True):
                theirs = self.user_items.row(v)
                js = theirs[in_mine[theirs] & (theirs != i)]
                if js.size == 0:
                    continue
                terms = w_u[pos[js]] * w * (self.z_item[js] @ self.z_user[v])
                for j, c in zip(js.tolist(), terms.tolist(), strict=True):
                    out.append((c, "collaborative", (u, j, v, i)))
        return out

    def explain(self, user_id: str, item_id: str, limit: int = 3) -> list[Path]:
        """The ``limit`` paths (at most 3 hops) that contribute most to ``s(user, item)``.

        Raises:
            UnknownIdError: unknown user or item id.
        """
        found = self.candidates(user_id, item_id)
        total = sum(c for c, _, _ in found if c > 0) or 1.0
        found.sort(key=lambda x: (-x[0], x[1], x[2]))
        # best path first; then prefer paths through a connector not shown yet (variety)
        picked: list[int] = []
        seen_connectors: set[tuple[str, int]] = set()
        for n, (_, kind, key) in enumerate(found):
            if len(picked) >= limit:
                break
            connector = _connector(kind, key)
            if connector not in seen_connectors:
                picked.append(n)
                seen_connectors.add(connector)
        rest = [n for n in range(len(found)) if n not in set(picked)]
        picked = sorted(picked + rest[: max(limit - len(picked), 0)])[: max(limit, 0)]
        return [
            self.path(found[n][1], found[n][2], found[n][0], found[n][0] / total) for n in picked
        ]

    def path(self, kind: str, key: tuple[int, ...], contribution: float, share: float) -> Path:
        """Build the :class:`Path` of a candidate ``(kind, key)`` from :meth:`candidates`."""
        rated = Edge(INTERACTED, "interacts", 0, 1)
        if kind == "direct":
            u, i = key
            nodes: tuple[Node, ...] = (self._user_node(u), self._item_node(i))
            edges: tuple[Edge, ...] = (rated,)
            sentence = f"You already rated *{nodes[1].name}*"
        elif kind == "attribute":
            u, j, ej, ei, e, i = key
            nodes = (self._user_node(u), self._item_node(j), self._ent_node(e), self._item_node(i))
            rel = int(self.ie_rel[ej])
            first = _kg_edge(self.rel_type[rel], self.rel_name[rel], 1, 2, bool(self.ie_head[ej]))
            rel_i = int(self.ie_rel[ei])
            last = _kg_edge(
                self.rel_type[rel_i], self.rel_name[rel_i], 3, 2, bool(self.ie_head[ei])
            )
            edges = (rated, first, last)
            phrase = _relation_phrase(self.relations[rel_i], nodes[2], bool(self.ie_head[ei]))
            sentence = f"Because you rated *{nodes[1].name}*: *{nodes[3].name}* is {phrase}"
            if rel_i == rel:
                sentence = f"Because you rated *{nodes[1].name}*, also {phrase}"
        elif kind == "linked":
            u, j, edge, i = key
            nodes = (self._user_node(u), self._item_node(j), self._item_node(i))
            rel = int(self.ii_rel[edge])
            j_is_head = int(self.ii_head[edge]) == j
            link = _kg_edge(self.rel_type[rel], self.rel_name[rel], 1, 2, j_is_head)
            edges = (rated, link)
            words = self.relations[rel].replace("_", " ")
            a, b = (nodes[1].name, nodes[2].name) if j_is_head else (nodes[2].name, nodes[1].name)
            sentence = f"Because you rated *{nodes[1].name}* (*{a}* {words} *{b}*)"
        elif kind == "collaborative":
            u, j, v, i = key
            nodes = (self._user_node(u), self._item_node(j), self._user_node(v), self._item_node(i))
            edges = (
                rated,
                Edge(INTERACTED, "interacts", 2, 1),
                Edge(INTERACTED, "interacts", 2, 3),
            )
            sentence = (
                f"Because you rated *{nodes[1].name}*: user {nodes[2].id} rated it too, "
                f"and also rated *{nodes[3].name}*"
            )
        else:  # pragma: no cover - kinds come from candidates()
            raise ValueError(kind)
        return Path(kind, nodes, edges, float(contribution), float(share), sentence)

    def path_edges(self, path: Path) -> list[tuple[tuple[str, str, str], int, int]]:
        """The artifact edges ``(edge_type, src_index, dst_index)`` of ``path`` (no reverses)."""
        out = []
        for edge in path.edges:
            src, dst = path.nodes[edge.source], path.nodes[edge.target]
            out.append(((src.type, edge.relation, dst.type), self._local(src), self._local(dst)))
        return out

    def _local(self, node: Node) -> int:
        if node.type == USER:
            return self._user(node.id)
        if node.type == ITEM:
            return self._item(node.id)
        hit = np.flatnonzero((self.ent_id == node.id) & (self.ent_type == node.type))
        return int(self.ent_local[hit[0]]) if hit.size else -1


def relation_name(relation: str) -> str:
    """The artifact's edge-type name of a relation (as :func:`kgrec.data.hetero.relation_name`,
    repeated here because that module imports torch)."""
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", relation.strip())
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _connector(kind: str, key: tuple[int, ...]) -> tuple[str, int]:
    """The node that links the user's item to the target: entity, other user or the item."""
    if kind == "attribute":
        return ("entity", key[4])
    if kind == "collaborative":
        return ("user", key[2])
    return (kind, key[1])


def _kg_edge(rel_type: str, rel_name: str, item: int, other: int, item_is_head: bool) -> Edge:
    src, dst = (item, other) if item_is_head else (other, item)
    return Edge(rel_type, rel_name, src, dst)


def _relation_phrase(relation: str, entity: Node, item_is_head: bool) -> str:
    """``directed_by`` + Michael Mann -> ``directed by Michael Mann``."""
    words = relation.replace("_", " ").strip()
    if words in ("has genre", "genre", "in genre"):
        article = "an" if entity.name[:1].lower() in "aeiou" else "a"
        return f"{article} {entity.name} title"
    if entity.name == entity.id:  # no name to show: "with the same award nomination"
        return f"with the same {words.removeprefix('has ')}"
    if not item_is_head:
        return f"linked to {entity.name} ({entity.name} {words} it)"
    return f"{words} {entity.name}"


def _text(value: Any, fallback: str) -> str:
    if value is None or (isinstance(value, float) and value != value) or str(value) == "":
        return fallback
    return str(value)


def paths_json(paths: Sequence[Path]) -> str:
    """The paths as a JSON array (what :mod:`kgrec.serve.record` stores)."""
    return json.dumps([p.to_dict() for p in paths], ensure_ascii=False)


# ---------------------------------------------------------------------- faithfulness


@dataclass(frozen=True)
class Faithfulness:
    """Score drops when deleting the top path vs. random paths of the same length.

    Attributes:
        user_id, item_id: The pair.
        hops: Length of the top path.
        base_score: ``s(u, i)`` from a full propagation over the unchanged graph.
        top_drop: ``base_score - s'`` after deleting the top path's edges.
        random_drop: Mean drop over ``random_drops``.
        random_drops: Drops after deleting each random path (same length, same endpoints).
    """

    user_id: str
    item_id: str
    hops: int
    base_score: float
    top_drop: float
    random_drop: float
    random_drops: list[float]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ScoreOracle:
    """Recomputes ``s(u, i)`` with the checkpoint's model over an edited graph (torch).

    Args:
        checkpoint: ``model.pt``.
        artifacts_dir: The artifact it was trained on.
        x_dict: Text features ``{node_type: [n, text_dim]}`` for a text model; default: read
            from the artifact with :mod:`kgrec.text.features` when the model needs them.
    """

    def __init__(
        self,
        checkpoint: FilePath | str,
        artifacts_dir: FilePath | str,
        x_dict: dict[str, Tensor] | None = None,
    ) -> None:
        from kgrec.build import load_artifact
        from kgrec.train.checkpoint import load_checkpoint

        self.model, _ = load_checkpoint(checkpoint)
        artifact = load_artifact(artifacts_dir)
        self.edge_index_dict = dict(artifact.to_hetero_data().edge_index_dict)
        if x_dict is None and self.model.text_dim:
            from kgrec.text.features import load_features

            x_dict, _ = load_features(FilePath(artifacts_dir))
        self.x_dict = x_dict

    def score(
        self, user: int, item: int, removed: Sequence[tuple[tuple[str, str, str], int, int]] = ()
    ) -> float:
        """``z_u . z_i`` after deleting ``removed`` edges (and their reverses); full propagation."""
        import torch

        from kgrec.data.hetero import reverse

        edges = dict(self.edge_index_dict)
        for edge_type, src, dst in removed:
            for et, a, b in ((edge_type, src, dst), (reverse(edge_type), dst, src)):
                if et in edges:
                    ei = edges[et]
                    edges[et] = ei[:, ~((ei[0] == a) & (ei[1] == b))]
        with torch.no_grad():
            final = self.model(edges, self.x_dict)
        return float(final[USER][user] @ final[ITEM][item])


def faithfulness(
    explainer: Explainer,
    oracle: ScoreOracle,
    user_id: str,
    item_id: str,
    num_random: int = 5,
    seed: int = 0,
) -> Faithfulness | None:
    """Delete the top path vs. ``num_random`` random same-length paths; see :class:`Faithfulness`.

    Random paths are drawn uniformly from every other path between the same user and item with
    the same number of hops. ``None`` when there is no top path or no other path to compare.
    """
    found = explainer.candidates(user_id, item_id)
    if not found:
        return None
    found.sort(key=lambda x: (-x[0], x[1], x[2]))
    top = explainer.path(found[0][1], found[0][2], found[0][0], 1.0)
    others = [
        explainer.path(kind, key, c, 0.0) for c, kind, key in found[1:] if HOPS[kind] == top.hops
    ]
    if not others:
        return None
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(others), size=min(num_random, len(others)), replace=False)
    u, i = explainer._user(user_id), explainer._item(item_id)
    base = oracle.score(u, i)
    top_drop = base - oracle.score(u, i, explainer.path_edges(top))
    drops = [base - oracle.score(u, i, explainer.path_edges(others[int(k)])) for k in picks]
    return Faithfulness(
        user_id=str(user_id),
        item_id=str(item_id),
        hops=top.hops,
        base_score=base,
        top_drop=top_drop,
        random_drop=float(np.mean(drops)),
        random_drops=drops,
    )


def time_explain(explainer: Explainer, pairs: Sequence[tuple[str, str]]) -> list[float]:
    """Seconds per :meth:`Explainer.explain` call for each ``(user, item)`` pair."""
    out = []
    for user_id, item_id in pairs:
        clock = time.perf_counter()
        explainer.explain(user_id, item_id)
        out.append(time.perf_counter() - clock)
    return out


def _with_added_links(triples: Any, folder: FilePath) -> Any:
    """``triples`` plus the KG links of items added by ``kgrec add-items``, so their
    attribute paths (you liked X, which shares a genre with the new item) can be shown."""
    import pandas as pd

    from kgrec.serve.new_items import load_added

    added = load_added(folder)
    if added is None or not len(links := added.triples()):
        return triples
    return pd.concat([triples, links], ignore_index=True)
