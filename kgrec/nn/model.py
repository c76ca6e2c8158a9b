"""KGRec: collaborative + knowledge-graph propagation over text-initialised node embeddings.

The model joins three ideas:

- **LightGCN** (He et al., "LightGCN: Simplifying and Powering Graph Convolution Network for
  Recommendation", SIGIR'20): parameter-free, symmetrically normalised propagation over the
  user--item training edges, layer outputs averaged, dot-product scores.
- **KGAT** (Wang et al., "KGAT: Knowledge Graph Attention Network for Recommendation",
  KDD'19): knowledge-graph neighbours are aggregated into the same embedding space as the
  collaborative signal (KGAT weights them by relation-aware attention; here the cheaper
  KGIN form below is used).
- **KGIN** (Wang et al., "Learning Intents behind Interactions with Knowledge Graph for
  Recommendation", WWW'21): relational path aggregation, a neighbour ``v`` reached by
  relation ``r`` sends ``e_r * e_v`` (one learnable vector per relation, shared by layers).

All node types live in one homogeneous index space (users, items, then the entity types in
sorted order). Per layer ``h' = LGConv(h; user-item edges) + RelAgg(h; KG edges)``: users and
items receive the collaborative signal, and every node with knowledge-graph edges (items,
entities, and users with attribute triples) receives its relational neighbourhood. The final
embedding of a node is the mean of its layer-0..L states.

Layer-0 ("ego") inputs: users and items get a learnable id embedding plus a shared linear
projection of their text embedding (``text_dim -> embedding_dim``); entity types with text get
the projection plus a learnable type embedding, entity types without text get id embeddings.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import HeteroData
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import degree

USER, ITEM = "user", "item"
EdgeType = tuple[str, str, str]


def prune_edge_types(
    edge_index_dict: Mapping[EdgeType, Tensor], min_edges: int
) -> dict[EdgeType, Tensor]:
    """Drop knowledge-graph edge types with fewer than ``min_edges`` edges.

    User--item edge types are always kept. Rare relations carry little signal but each costs a
    relation vector and a sparse product per layer.
    """
    return {
        edge_type: edge_index
        for edge_type, edge_index in edge_index_dict.items()
        if _is_interaction(edge_type) or edge_index.size(1) >= min_edges
    }


def _is_interaction(edge_type: EdgeType) -> bool:
    return {edge_type[0], edge_type[2]} == {USER, ITEM}


class _SpMM(torch.autograd.Function):
    """``adj_t @ x`` whose backward uses a precomputed ``adj = adj_t^T`` (no re-sorting)."""

    @staticmethod
    def forward(ctx: Any, adj_t: Tensor, adj: Tensor, x: Tensor) -> Tensor:
        ctx.adj, ctx.dtype = adj, x.dtype  # sparse products run in the adjacency's float32
        return torch.sparse.mm(adj_t, x.to(adj_t.dtype))

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[None, None, Tensor]:
        return None, None, torch.sparse.mm(ctx.adj, grad.to(ctx.adj.dtype)).to(ctx.dtype)


class SparseConv(MessagePassing):
    r"""Weighted neighbour sum ``x_i' = sum_j w_ij x_j`` as one sparse-dense product.

    With ``w_ij = 1 / sqrt(d_i d_j)`` this is LightGCN's propagation (SIGIR'20); the
    adjacency comes with its transpose so the backward pass needs no sparse re-sorting.
    """

    def __init__(self) -> None:
        super().__init__(aggr="sum")

    def forward(self, x: Tensor, adj_t: Tensor, adj: Tensor) -> Tensor:
        """``x [num_src, d]``, ``adj_t`` sparse ``[num_dst, num_src]`` of weights ``w_ij``,
        ``adj`` its transpose -> ``[num_dst, d]``."""
        return self.propagate(adj_t, x=x, adj=adj)

    def message_and_aggregate(self, edge_index: Tensor, x: Tensor, adj: Tensor) -> Tensor:
        out = _SpMM.apply(edge_index, adj, x)
        assert isinstance(out, Tensor)
        return out


class RelationalAggregation(SparseConv):
    r"""Relation-aware neighbour aggregation (KGIN WWW'21 relational path aggregation).

    For one relation ``r`` from source type ``s`` to destination type ``t``:

    .. math::
        \mathbf{x}_i' = \mathbf{e}_r \odot \sum_{j \in \mathcal{N}_r(i)}
            \frac{1}{|\mathcal{N}(i)|} \mathbf{x}_j

    where :math:`|\mathcal{N}(i)|` counts ``i``'s knowledge-graph neighbours over *all*
    relations, so summing the outputs of every relation gives KGIN's mean over
    :math:`(r, j)` pairs. ``e_r`` is constant per relation, so the product moves outside the
    sum and the aggregation is one sparse-dense product (no ``[E, d]`` intermediate).
    Relation vectors are passed in (shared by all layers and by the KG loss).
    """

    def forward(  # type: ignore[override]
        self, x: Tensor, adj_t: Tensor, adj: Tensor, relation: Tensor
    ) -> Tensor:
        """As :meth:`SparseConv.forward`, times ``relation [d]``."""
        return relation * super().forward(x, adj_t, adj)


@dataclass(frozen=True)
class NodeEmbeddings:
    """Node embeddings per node type: ``ego`` (layer 0) and ``final`` (layer mean).

    Each value is ``[num_nodes[node_type], embedding_dim]``.
    """

    ego: dict[str, Tensor]
    final: dict[str, Tensor]


@dataclass(frozen=True)
class _Graph:
    """The edge_index_dict as normalised sparse adjacencies (``adj_t``: rows = destinations)."""

    key: tuple[tuple[EdgeType, Tensor], ...]  # the edge tensors themselves, kept alive
    user_adj_t: Tensor  # [num_users, num_items], 1/sqrt(d_u d_i)
    item_adj_t: Tensor  # [num_items, num_users], its transpose
    kg_adj_t: list[tuple[int, str, str, Tensor, Tensor]]  # (rel, src, dst, adj_t, adj)


def _same_edges(
    a: tuple[tuple[EdgeType, Tensor], ...], b: tuple[tuple[EdgeType, Tensor], ...]
) -> bool:
    """Whether two ``edge_index_dict`` snapshots hold the very same tensors (by identity)."""
    return len(a) == len(b) and all(
        ka == kb and va is vb for (ka, va), (kb, vb) in zip(a, b, strict=True)
    )


def _sparse(edge_index: Tensor, weight: Tensor, num_dst: int, num_src: int) -> Tensor:
    """Sparse CSR ``[num_dst, num_src]`` from ``edge_index [2, E]`` (row 0 = source)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        adj = torch.sparse_coo_tensor(edge_index.flip(0), weight, (num_dst, num_src))
        return adj.coalesce().to_sparse_csr()


class KGRec(nn.Module):
    r"""Knowledge-graph recommender (LightGCN SIGIR'20 + KGAT KDD'19 / KGIN WWW'21).

    Args:
        num_nodes: Nodes per node type; must contain ``"user"`` and ``"item"``.
        edge_types: The edge types the model may use, ``(src, rel, dst)``. The user->item
            type(s) are the collaborative edges (made symmetric internally; their reverses are
            ignored); every other type (KG relations and their reverses) gets a relation
            vector. Edge types seen in ``forward`` but not listed here are ignored, which is
            how pruned relations are dropped.
        embedding_dim: Size ``d`` of every node embedding. (default: ``64``)
        num_layers: Propagation layers ``L``. (default: ``2``)
        text_dim: Size of the text embeddings in ``x_dict``; ``None`` for id embeddings only.
        text_node_types: Node types that come with text features (default: all node types when
            ``text_dim`` is set). Entity types not listed get id embeddings.
        use_kg: Aggregate knowledge-graph neighbours; ``False`` gives LightGCN (plus text).
        dropout: Dropout on the layer-0 embeddings during training. (default: ``0.0``)
    """

    def __init__(
        self,
        num_nodes: Mapping[str, int],
        edge_types: Iterable[Sequence[str]],
        embedding_dim: int = 64,
        num_layers: int = 2,
        text_dim: int | None = None,
        text_node_types: Sequence[str] | None = None,
        use_kg: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if USER not in num_nodes or ITEM not in num_nodes:
            raise ValueError("num_nodes needs 'user' and 'item'")
        self.num_nodes = dict(num_nodes)
        self.node_types = [USER, ITEM, *sorted(t for t in num_nodes if t not in (USER, ITEM))]
        self.embedding_dim = embedding_dim
        self.num_layers = num_layers
        self.text_dim = text_dim
        self.use_kg = use_kg
        self.dropout = dropout
        all_edge_types = [(str(s), str(r), str(d)) for s, r, d in edge_types]
        self.cf_edge_types = [
            e for e in all_edge_types if e[0] == USER and e[2] == ITEM and _is_interaction(e)
        ]
        self.kg_edge_types = [e for e in all_edge_types if not _is_interaction(e)]
        if text_dim is None:
            self.text_node_types: list[str] = []
        elif text_node_types is None:
            self.text_node_types = list(self.node_types)
        else:
            self.text_node_types = [t for t in self.node_types if t in set(text_node_types)]

        offsets, total = {}, 0
        for node_type in self.node_types:
            offsets[node_type] = total
            total += self.num_nodes[node_type]
        self.offsets = offsets
        self.total_nodes = total

        self.id_emb = nn.ModuleDict()
        for node_type in self.node_types:
            if node_type in (USER, ITEM) or node_type not in self.text_node_types:
                self.id_emb[node_type] = nn.Embedding(self.num_nodes[node_type], embedding_dim)
        self.text_proj = nn.Linear(text_dim, embedding_dim) if text_dim else None
        entity_text = [t for t in self.text_node_types if t not in (USER, ITEM)]
        self.type_emb = nn.ParameterDict(
            {t: nn.Parameter(torch.zeros(embedding_dim)) for t in entity_text}
        )
        self.relation_emb = nn.Parameter(
            torch.empty(max(len(self.kg_edge_types), 1), embedding_dim)
        )
        self.cf_conv = SparseConv()
        self.kg_conv = RelationalAggregation()
        self._graph: _Graph | None = None
        self._cache: dict[str, Tensor] | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Id embeddings ``N(0, 0.1)`` (LightGCN), relation vectors ``N(1, 0.1)``."""
        for node_type in self.id_emb:
            nn.init.normal_(self._id_weight(node_type), std=0.1)
        if self.text_proj is not None:
            self.text_proj.reset_parameters()
        for param in self.type_emb.values():
            nn.init.normal_(param, std=0.1)
        nn.init.normal_(self.relation_emb, mean=1.0, std=0.1)
        self._cache = None

    def _id_weight(self, node_type: str) -> Tensor:
        """The id-embedding table ``[num_nodes, d]`` of ``node_type``."""
        emb = self.id_emb[node_type]
        assert isinstance(emb, nn.Embedding)
        return emb.weight

    @property
    def model_args(self) -> dict[str, Any]:
        """Constructor arguments as plain Python values (for checkpoints)."""
        return {
            "num_nodes": dict(self.num_nodes),
            "edge_types": [list(e) for e in self.cf_edge_types + self.kg_edge_types],
            "embedding_dim": self.embedding_dim,
            "num_layers": self.num_layers,
            "text_dim": self.text_dim,
            "text_node_types": list(self.text_node_types) if self.text_dim else None,
            "use_kg": self.use_kg,
            "dropout": self.dropout,
        }

    # ----------------------------------------------------------------------------- inputs
    def ego_embeddings(self, x_dict: Mapping[str, Tensor] | None = None) -> dict[str, Tensor]:
        """Layer-0 embeddings ``{node_type: [num_nodes, d]}`` from ids and text features.

        A node type listed in ``text_node_types`` but missing from ``x_dict`` gets only its id
        (users, items) or type embedding (entities).
        """
        x_dict = x_dict or {}
        device = self.relation_emb.device
        out: dict[str, Tensor] = {}
        for node_type in self.node_types:
            n = self.num_nodes[node_type]
            h = self._id_weight(node_type) if node_type in self.id_emb else None
            x = x_dict.get(node_type)
            if self.text_proj is not None and node_type in self.text_node_types:
                if x is not None:
                    if x.size(0) != n:
                        raise ValueError(
                            f"x_dict[{node_type!r}] has {x.size(0)} rows, expected {n}"
                        )
                    proj = self.text_proj(x.to(device=device, dtype=self.text_proj.weight.dtype))
                    h = proj if h is None else h + proj
                if node_type in self.type_emb:
                    t = self.type_emb[node_type].expand(n, -1)
                    h = t if h is None else h + t
            if h is None:
                h = torch.zeros(n, self.embedding_dim, device=device)
            out[node_type] = h
        return out

    def _prepare(self, edge_index_dict: Mapping[EdgeType, Tensor]) -> _Graph:
        """Build (and cache) the normalised sparse adjacencies of the graph."""
        key = tuple(sorted(edge_index_dict.items(), key=lambda kv: kv[0]))
        # Identity, not memory address: the cache keeps the tensors, so a freed-and-reused
        # address can never be mistaken for the cached graph.
        if self._graph is not None and _same_edges(self._graph.key, key):
            return self._graph
        device = self.relation_emb.device
        num_users, num_items = self.num_nodes[USER], self.num_nodes[ITEM]
        cf = [edge_index_dict[e].to(device) for e in self.cf_edge_types if e in edge_index_dict]
        ui = torch.cat(cf, dim=1) if cf else torch.empty(2, 0, dtype=torch.long, device=device)
        deg_u = degree(ui[0], num_users)
        deg_i = degree(ui[1], num_items)
        weight = (deg_u[ui[0]] * deg_i[ui[1]]).rsqrt()
        user_adj_t = _sparse(ui.flip(0), weight, num_users, num_items)
        item_adj_t = _sparse(ui, weight, num_items, num_users)

        kg_adj_t: list[tuple[int, str, str, Tensor, Tensor]] = []
        if self.use_kg:
            present = [
                (rel, e, edge_index_dict[e].to(device))
                for rel, e in enumerate(self.kg_edge_types)
                if e in edge_index_dict and edge_index_dict[e].size(1) > 0
            ]
            in_degree = {t: torch.zeros(n, device=device) for t, n in self.num_nodes.items()}
            for _, (_, _, dst), ei in present:
                in_degree[dst] += degree(ei[1], self.num_nodes[dst])
            for rel, (src, _, dst), ei in present:
                w = in_degree[dst][ei[1]].reciprocal()
                adj_t = _sparse(ei, w, self.num_nodes[dst], self.num_nodes[src])
                adj = _sparse(ei.flip(0), w, self.num_nodes[src], self.num_nodes[dst])
                kg_adj_t.append((rel, src, dst, adj_t, adj))
        self._graph = _Graph(key, user_adj_t, item_adj_t, kg_adj_t)
        return self._graph

    # ------------------------------------------------------------------------ propagation
    def propagate(
        self,
        data: HeteroData | Mapping[EdgeType, Tensor],
        x_dict: Mapping[str, Tensor] | None = None,
    ) -> NodeEmbeddings:
        """Ego and final embeddings of every node type (see the module docstring)."""
        edge_index_dict = data.edge_index_dict if isinstance(data, HeteroData) else data
        graph = self._prepare(edge_index_dict)
        ego = self.ego_embeddings(x_dict)
        h = dict(ego)
        if self.training and self.dropout > 0:
            h = {t: F.dropout(v, p=self.dropout) for t, v in h.items()}
        total = dict(h)
        for _ in range(self.num_layers):
            nxt: dict[str, Tensor] = {
                USER: self.cf_conv(h[ITEM], graph.user_adj_t, graph.item_adj_t),
                ITEM: self.cf_conv(h[USER], graph.item_adj_t, graph.user_adj_t),
            }
            for rel, src, dst, adj_t, adj in graph.kg_adj_t:
                relation = self.relation_emb[rel].to(h[src].dtype)
                msg = self.kg_conv(h[src], adj_t, adj, relation)
                nxt[dst] = nxt[dst] + msg if dst in nxt else msg
            h = {t: nxt.get(t, torch.zeros_like(h[t])) for t in self.node_types}
            total = {t: total[t] + h[t] for t in self.node_types}
        scale = 1.0 / (self.num_layers + 1)
        return NodeEmbeddings(ego=ego, final={t: v * scale for t, v in total.items()})

    def forward(
        self,
        data: HeteroData | Mapping[EdgeType, Tensor],
        x_dict: Mapping[str, Tensor] | None = None,
    ) -> dict[str, Tensor]:
        """Final node embeddings ``{node_type: [num_nodes, embedding_dim]}``.

        Args:
            data: A ``HeteroData`` or its ``edge_index_dict``.
            x_dict: Text embeddings ``{node_type: [num_nodes, text_dim]}`` (types may be missing).
        """
        return self.propagate(data, x_dict).final

    # ---------------------------------------------------------------------------- serving
    def train(self, mode: bool = True) -> KGRec:
        if mode:
            self._cache = None  # parameters are about to change
        return super().train(mode)

    def get_embedding(
        self,
        data: HeteroData | Mapping[EdgeType, Tensor] | None = None,
        x_dict: Mapping[str, Tensor] | None = None,
    ) -> dict[str, Tensor]:
        """Serving embeddings ``{"user": [num_users, d], "item": [num_items, d]}``.

        With ``data`` the embeddings are computed (eval mode, no grad) and cached; without it
        the cache is returned (filled by an earlier call or by ``load_checkpoint``).
        """
        if data is not None:
            was_training = self.training
            self.eval()
            with torch.no_grad():
                final = self.propagate(data, x_dict).final
            self._cache = {USER: final[USER].float(), ITEM: final[ITEM].float()}
            if was_training:
                super().train(True)
        if self._cache is None:
            raise RuntimeError("no cached embeddings: call get_embedding(data, x_dict) first")
        return self._cache

    def set_embedding(self, user_embedding: Tensor, item_embedding: Tensor) -> None:
        """Install precomputed serving embeddings (``[num_users, d]``, ``[num_items, d]``)."""
        self._cache = {USER: user_embedding, ITEM: item_embedding}

    def score(self, users: Tensor, embeddings: Mapping[str, Tensor] | None = None) -> Tensor:
        """Dot-product scores of ``users [B]`` against every item -> ``[B, num_items]``.

        ``embeddings`` defaults to the serving cache (:meth:`get_embedding`).
        """
        emb = embeddings if embeddings is not None else self.get_embedding()
        user_emb = emb[USER][users.to(emb[USER].device)]
        return user_emb @ emb[ITEM].t()

    def recommend(
        self,
        user_index: Tensor,
        k: int,
        exclude: Tensor | None = None,
        embeddings: Mapping[str, Tensor] | None = None,
    ) -> Tensor:
        """Top-``k`` items per user -> ``[B, k]`` item indices, best first.

        Args:
            user_index: Users ``[B]``.
            k: Items per user.
            exclude: Items never to return: a boolean mask ``[B, num_items]`` or a user->item
                edge index ``[2, E]`` in global user ids (e.g. the training interactions).
            embeddings: As in :meth:`score`.
        """
        scores = self.score(user_index, embeddings)
        if exclude is not None:
            scores = scores.masked_fill(_exclude_mask(user_index, exclude, scores), float("-inf"))
        return scores.topk(min(k, scores.size(1)), dim=1).indices


def _exclude_mask(user_index: Tensor, exclude: Tensor, scores: Tensor) -> Tensor:
    if exclude.dtype == torch.bool:
        return exclude.to(scores.device)
    device = scores.device
    user_index, exclude = user_index.to(device), exclude.to(device)
    num_users = int(max(user_index.max().item(), exclude[0].max().item() if exclude.numel() else 0))
    row_of = torch.full((num_users + 1,), -1, dtype=torch.long, device=device)
    mask = torch.zeros_like(scores, dtype=torch.bool)
    # A user may appear several times in the batch: mark each occurrence.
    for rows in _occurrences(user_index):
        row_of.fill_(-1)
        row_of[user_index[rows]] = rows
        r = row_of[exclude[0]]
        keep = r >= 0
        mask[r[keep], exclude[1, keep]] = True
    return mask


def _occurrences(user_index: Tensor) -> list[Tensor]:
    """Split batch rows into groups in which each user appears at most once."""
    order = torch.argsort(user_index, stable=True)
    sorted_users = user_index[order]
    first = torch.ones_like(sorted_users, dtype=torch.bool)
    first[1:] = sorted_users[1:] != sorted_users[:-1]
    start = torch.cummax(torch.where(first, torch.arange(len(order), device=order.device), 0), 0)
    rank = torch.arange(len(order), device=order.device) - start.values
    groups = []
    for r in range(int(rank.max().item()) + 1 if len(order) else 0):
        groups.append(order[rank == r])
    return groups
