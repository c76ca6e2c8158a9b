"""KGRec: a user's time-decayed history view over knowledge-graph- and text-aware items.

The model scores every item for a user from the items the user met, most recent first:

- **Items** (the knowledge-graph side, KGIN, Wang et al., WWW'21): an item's input and output
  embeddings are its id embeddings plus an MLP of its text embedding (language-model features,
  "text through an MLP"), plus relation-aware aggregation of its knowledge-graph neighbours:
  an entity ``v`` reached by relation ``r`` sends ``e_r * e_v`` (KGIN's relational path
  aggregation), averaged over the item's neighbours.
- **Users** (the collaborative side): a user is the normalised, recency-weighted sum of their
  items' input embeddings, ``h_u = norm(sum_j decay^{age_j} e_j)`` (``age_j = 0`` for the
  latest item). This is one LightGCN propagation step (He et al., SIGIR'20) from items to the
  user over *time-decayed* interaction edges, without a per-user id embedding, so a user is
  defined by their history alone: a new interaction moves them at once, and an unseen user is
  served from their items.
- **Scores**: ``cos(h_u, o_i) / temperature`` over the whole catalogue ``[B, num_items]``,
  trained with a softmax over all items, or over a step's sampled candidates when the catalogue is
  too large (sampled-softmax / InfoNCE family; SimpleX, AlphaRec; :meth:`KGRec.kg_messages_of`).

Entity nodes keep learnable id embeddings; entity types listed in ``text_node_types`` add the
same text MLP. Only entities linked to at least two items can relate items, so the rest are
left out (:class:`ItemEntityGraph`, ``min_entity_degree``).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

USER, ITEM = "user", "item"
EdgeType = tuple[str, str, str]


def is_interaction(edge_type: Sequence[str]) -> bool:
    """Whether ``edge_type`` links users and items (collaborative, not knowledge-graph)."""
    return {edge_type[0], edge_type[2]} == {USER, ITEM}


def prune_edge_types(
    edge_index_dict: Mapping[EdgeType, Tensor], min_edges: int
) -> dict[EdgeType, Tensor]:
    """Drop knowledge-graph edge types with fewer than ``min_edges`` edges.

    User--item edge types are always kept. Rare relations carry little signal but each costs a
    relation vector.
    """
    return {
        edge_type: edge_index
        for edge_type, edge_index in edge_index_dict.items()
        if is_interaction(edge_type) or edge_index.size(1) >= min_edges
    }


class _FixedSpMM(torch.autograd.Function):
    """``adj @ x`` for a constant sparse ``adj``; the backward uses the precomputed ``adj^T``
    (sparse products would otherwise re-sort the transpose at every step)."""

    @staticmethod
    def forward(ctx: Any, adj: Tensor, adj_t: Tensor, x: Tensor) -> Tensor:
        ctx.adj_t = adj_t
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return torch.sparse.mm(adj, x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[None, None, Tensor]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return None, None, torch.sparse.mm(ctx.adj_t, grad)


@dataclass(frozen=True)
class ItemEntityGraph:
    """Item -> entity edges of the used relations, entities re-indexed ``0..num_entities-1``.

    Attributes:
        item: ``[E]`` item of each edge.
        entity: ``[E]`` entity (compact index) of each edge.
        relation: ``[E]`` index into the model's ``kg_edge_types``.
        weight: ``[E]`` ``1 / (number of the item's edges)`` (a mean over neighbours).
        entity_type: ``[num_entities]`` node type index of each entity (into ``types``).
        entity_index: ``[num_entities]`` the entity's index within its node type.
        types: Entity node types.

    The aggregation is one sparse product over *(entity, relation) pairs*: each distinct pair
    ``p`` sends ``e_r * e_v`` once, and ``A [num_items, num_pairs]`` (:meth:`adjacency`) sums
    them with the edge weights, so every relation of the layer runs in a single product.
    """

    item: Tensor
    entity: Tensor
    relation: Tensor
    weight: Tensor
    entity_type: Tensor
    entity_index: Tensor
    types: tuple[str, ...]

    @property
    def num_entities(self) -> int:
        return int(self.entity_type.numel())

    def pairs(self) -> tuple[Tensor, Tensor, Tensor]:
        """Distinct ``(entity, relation)`` pairs ``[P]`` each, and each edge's pair ``[E]``."""
        key = self.entity * (int(self.relation.max()) + 1 if self.relation.numel() else 1)
        key = key + self.relation
        unique, pair = torch.unique(key, return_inverse=True)
        base = int(self.relation.max()) + 1 if self.relation.numel() else 1
        return unique // base, unique % base, pair

    def adjacency(self, num_items: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(A, A^T, pair_entity, pair_relation)``: sparse CSR ``A [num_items, P]`` of the
        edge weights and its transpose."""
        pair_entity, pair_relation, pair = self.pairs()
        index = torch.stack([self.item, pair])
        size = (num_items, int(pair_entity.numel()))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            adj = torch.sparse_coo_tensor(index, self.weight.float(), size).coalesce()
            adj_t = torch.sparse_coo_tensor(index.flip(0), self.weight.float(), size[::-1])
            return (
                adj.to_sparse_csr(),
                adj_t.coalesce().to_sparse_csr(),
                pair_entity,
                pair_relation,
            )

    @classmethod
    def build(
        cls,
        edge_index_dict: Mapping[EdgeType, Tensor],
        edge_types: Sequence[EdgeType],
        num_items: int,
        min_entity_degree: int = 2,
    ) -> ItemEntityGraph:
        """From ``item -> entity`` edge types (reverses, user and item tails are skipped)."""
        types = tuple(sorted({dst for src, _, dst in edge_types if src == ITEM}))
        items, keys, rels = [], [], []
        for rel, (src, name, dst) in enumerate(edge_types):
            if src != ITEM or dst in (USER, ITEM) or name.startswith("rev_"):
                continue
            ei = edge_index_dict.get((src, name, dst))
            if ei is None or ei.numel() == 0:
                continue
            items.append(ei[0].long().cpu())
            keys.append(types.index(dst) * (1 << 40) + ei[1].long().cpu())
            rels.append(torch.full((ei.size(1),), rel, dtype=torch.long))
        if not items:
            empty = torch.empty(0, dtype=torch.long)
            return cls(empty, empty, empty, torch.empty(0), empty, empty, types)
        item, key, relation = torch.cat(items), torch.cat(keys), torch.cat(rels)
        unique, entity = torch.unique(key, return_inverse=True)
        degree = torch.bincount(entity, minlength=unique.numel())
        keep = degree[entity] >= min_entity_degree
        used = torch.unique(entity[keep])
        remap = torch.full((unique.numel(),), -1, dtype=torch.long)
        remap[used] = torch.arange(used.numel())
        item, entity, relation = item[keep], remap[entity[keep]], relation[keep]
        count = torch.bincount(item, minlength=num_items).float()
        return cls(
            item=item,
            entity=entity,
            relation=relation,
            weight=count[item].reciprocal(),
            entity_type=unique[used] >> 40,
            entity_index=unique[used] & ((1 << 40) - 1),
            types=types,
        )


class KGRec(nn.Module):
    r"""Knowledge-graph recommender with a time-decayed history view (see the module docstring).

    Args:
        num_nodes: Nodes per node type; must contain ``"user"`` and ``"item"``.
        edge_types: The edge types the model may use, ``(src, rel, dst)``. ``item -> entity``
            types feed the knowledge-graph aggregation (each gets a relation vector); user--item
            types are the interactions the history view reads. Types not listed are ignored
            (that is how rare relations are pruned).
        embedding_dim: Size ``d`` of every embedding. (default: ``256``)
        text_dim: Size of the text embeddings in ``x_dict``; ``None`` for id embeddings only.
        text_node_types: Node types that come with text features (default: all, when
            ``text_dim`` is set).
        use_kg: Aggregate knowledge-graph neighbours into items.
        decay: Recency decay of the history view, ``0 < decay <= 1``. (default: ``0.9``)
        temperature: Softmax temperature of the cosine scores. (default: ``0.1``)
        num_entities: Entities in the knowledge-graph view (:attr:`ItemEntityGraph.num_entities`
            of the graph passed to :meth:`set_graph`). (default: ``0``)
    """

    def __init__(
        self,
        num_nodes: Mapping[str, int],
        edge_types: Iterable[Sequence[str]],
        embedding_dim: int = 256,
        text_dim: int | None = None,
        text_node_types: Sequence[str] | None = None,
        use_kg: bool = True,
        decay: float = 0.9,
        temperature: float = 0.1,
        num_entities: int = 0,
    ) -> None:
        super().__init__()
        if USER not in num_nodes or ITEM not in num_nodes:
            raise ValueError("num_nodes needs 'user' and 'item'")
        if not 0 < decay <= 1:
            raise ValueError(f"decay must be in (0, 1], got {decay}")
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.num_nodes = dict(num_nodes)
        self.num_items = self.num_nodes[ITEM]
        self.embedding_dim = embedding_dim
        self.text_dim = text_dim
        self.use_kg = use_kg
        self.decay = float(decay)
        self.temperature = float(temperature)
        self.num_entities = num_entities
        self.edge_types = [(str(s), str(r), str(d)) for s, r, d in edge_types]
        self.kg_edge_types = [e for e in self.edge_types if not is_interaction(e)]
        node_types = list(self.num_nodes)
        if text_dim is None:
            self.text_node_types: list[str] = []
        else:
            wanted = set(text_node_types) if text_node_types is not None else set(node_types)
            self.text_node_types = [t for t in node_types if t in wanted]

        self.item_input = nn.Embedding(self.num_items, embedding_dim)
        self.item_output = nn.Embedding(self.num_items, embedding_dim)
        self.text_mlp = (
            nn.Sequential(
                nn.Linear(text_dim, embedding_dim),
                nn.GELU(approximate="tanh"),
                nn.Linear(embedding_dim, embedding_dim),
            )
            if text_dim
            else None
        )
        self.relation_emb = nn.Parameter(
            torch.empty(max(len(self.kg_edge_types), 1), embedding_dim)
        )
        self.entity_emb = nn.Embedding(max(num_entities, 1), embedding_dim)
        self._graph: ItemEntityGraph | None = None
        self._adjacency: tuple[Tensor, Tensor, Tensor, Tensor] | None = None
        self._entity_text: tuple[tuple[Any, ...], tuple[Tensor, Tensor]] | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Id embeddings ``N(0, 0.05)``, relation vectors ``N(1, 0.1)``."""
        nn.init.normal_(self.item_input.weight, std=0.05)
        nn.init.normal_(self.item_output.weight, std=0.05)
        nn.init.normal_(self.relation_emb, mean=1.0, std=0.1)
        if self.text_mlp is not None:
            for layer in self.text_mlp:
                if isinstance(layer, nn.Linear):
                    layer.reset_parameters()
        nn.init.normal_(self.entity_emb.weight, std=0.05)

    @property
    def model_args(self) -> dict[str, Any]:
        """Constructor arguments as plain Python values (for checkpoints)."""
        return {
            "num_nodes": dict(self.num_nodes),
            "edge_types": [list(e) for e in self.edge_types],
            "embedding_dim": self.embedding_dim,
            "text_dim": self.text_dim,
            "text_node_types": list(self.text_node_types) if self.text_dim else None,
            "use_kg": self.use_kg,
            "decay": self.decay,
            "temperature": self.temperature,
            "num_entities": self.num_entities,
        }

    def sparse_gradients(self, on: bool = True) -> None:
        """Whether the id and entity tables get sparse gradients from the rows that
        :meth:`item_embeddings` with ``items`` reads (sampled training, with a lazy Adam: a
        step's update then touches its rows, not the catalogue). Whole-table reads stay dense."""
        for table in (self.item_input, self.item_output, self.entity_emb):
            table.sparse = on

    # ------------------------------------------------------------------------- the graph
    def set_graph(self, graph: ItemEntityGraph) -> None:
        """Use ``graph`` (built by :meth:`ItemEntityGraph.build` from the model's edge types)."""
        if graph.num_entities != self.num_entities:
            raise ValueError(
                f"the graph has {graph.num_entities} entities, the model {self.num_entities}"
            )
        device = self.item_input.weight.device
        moved = [t.to(device) if isinstance(t, Tensor) else t for t in _fields(graph)]
        self._graph = ItemEntityGraph(*moved)  # type: ignore[arg-type]
        self._adjacency = self._graph.adjacency(self.num_items) if graph.item.numel() else None
        self._entity_text = None

    @property
    def graph(self) -> ItemEntityGraph:
        if self._graph is None:
            raise RuntimeError("no knowledge graph set: call set_graph(edge_index_dict) first")
        return self._graph

    # ---------------------------------------------------------------------------- items
    def item_embeddings(
        self, x_dict: Mapping[str, Tensor] | None = None, items: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Input and output item embeddings, each ``[num_items, d]``; with ``items`` (sorted,
        distinct item ids ``[S]``) those items' rows only, ``[S, d]`` each, computed from their
        own text and knowledge-graph edges (sampled training, :meth:`kg_messages_of`)."""
        x_dict = x_dict or {}
        shared: Tensor | None = None
        text = x_dict.get(ITEM)
        if self.text_mlp is not None and ITEM in self.text_node_types and text is not None:
            if text.size(0) != self.num_items:
                raise ValueError(
                    f"x_dict['item'] has {text.size(0)} rows, expected {self.num_items}"
                )
            if items is not None:
                text = text.index_select(0, items.to(text.device))
            text = text.to(self.item_input.weight)
            shared = self.text_mlp(text) * _has_text(text)
        if self.use_kg and self._graph is not None and self._graph.item.numel():
            kg = self._kg_messages(x_dict) if items is None else self.kg_messages_of(items, x_dict)
            shared = kg if shared is None else shared + kg
        if items is None:
            items_in, items_out = self.item_input.weight, self.item_output.weight
        else:
            items_in, items_out = self.item_input(items), self.item_output(items)
        if shared is not None:
            items_in, items_out = items_in + shared, items_out + shared
        return items_in, items_out

    def _kg_messages(self, x_dict: Mapping[str, Tensor]) -> Tensor:
        r"""``m_i = sum_{(r, v) in N(i)} e_r * e_v / |N(i)|`` ``[num_items, d]`` (KGIN)."""
        graph = self.graph
        entity = self.entity_emb.weight
        if graph.item.device != entity.device:  # the model moved since set_graph
            self.set_graph(graph)
            graph = self.graph
        if self.text_mlp is not None:
            rows, text = self._texts_of_entities(x_dict, entity)
            if rows.numel():
                entity = entity.index_add(0, rows, self.text_mlp(text))
        assert self._adjacency is not None
        adjacency, adjacency_t, pair_entity, pair_relation = self._adjacency
        # index_select, not entity[pair_entity]: its gradient is an index_add, where advanced
        # indexing's is a sort-based index_put (10% of a CPU training step on ml-100k)
        message = entity.index_select(0, pair_entity) * self.relation_emb.index_select(
            0, pair_relation
        )  # [P, d]
        out = _FixedSpMM.apply(adjacency, adjacency_t, message)
        assert isinstance(out, Tensor)
        return out

    def kg_messages_of(self, items: Tensor, x_dict: Mapping[str, Tensor] | None = None) -> Tensor:
        r"""``m_i`` of :meth:`_kg_messages` for the sorted, distinct items ``items [S]`` only:
        ``[S, d]``, reading just their edges (the one-hop subgraph of the items) and the
        entities those reach, so a step's cost follows the items it touches, not the catalogue.
        """
        graph = self.graph
        weight = self.entity_emb.weight
        if graph.item.device != weight.device:  # the model moved since set_graph
            self.set_graph(graph)
            graph = self.graph
        items = items.to(weight.device)
        chosen = torch.zeros(self.num_items, dtype=torch.bool, device=items.device)
        chosen[items] = True  # a lookup, not torch.isin: no sort of all the graph's edges
        edge = chosen[graph.item].nonzero().squeeze(1)  # [E_S] the items' edges
        used, local_entity = torch.unique(graph.entity[edge], return_inverse=True)
        entity = self.entity_emb(used)  # [N_S, d]
        if self.text_mlp is not None:
            rows, text = self._texts_of_entities(x_dict or {}, weight)
            if rows.numel():
                lookup = torch.full((self.num_entities,), -1, dtype=torch.long, device=rows.device)
                lookup[rows] = torch.arange(rows.numel(), device=rows.device)
                position = lookup[used]
                has = (position >= 0).nonzero().squeeze(1)
                entity = entity.index_add(0, has, self.text_mlp(text[position[has]]))
        message = entity.index_select(0, local_entity) * self.relation_emb.index_select(
            0, graph.relation[edge]
        )  # [E_S, d]
        message = message * graph.weight[edge].unsqueeze(1).to(message.dtype)
        target = torch.searchsorted(items, graph.item[edge])
        return message.new_zeros(items.numel(), message.size(1)).index_add(0, target, message)

    def _texts_of_entities(
        self, x_dict: Mapping[str, Tensor], like: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Entities with text: compact indices ``[T]`` and their features ``[T, text_dim]``
        (device and dtype of ``like``). Entities without text (all-zero rows, see
        :func:`_has_text`) have no text term, so the MLP does not run on them (56% of the
        ml-100k entities). Gathered once per ``x_dict``: the cache holds the feature tensors
        themselves, so its key cannot be reused by other tensors."""
        graph = self.graph
        used = tuple(x_dict.get(t) if t in self.text_node_types else None for t in graph.types)
        cached = self._entity_text
        if cached is not None:
            (*tensors, device, dtype), result = cached
            same = (device, dtype) == (like.device, like.dtype) and len(tensors) == len(used)
            if same and all(a is b for a, b in zip(tensors, used, strict=True)):
                return result
        rows, texts = [], []
        for t, x in enumerate(used):
            if x is None:
                continue
            of_type = (graph.entity_type == t).nonzero().squeeze(1)
            text = x[graph.entity_index[of_type].to(x.device)].to(like)
            has = text.abs().sum(-1) > 0
            rows.append(of_type[has.to(of_type.device)])
            texts.append(text[has])
        result = (
            (torch.cat(rows), torch.cat(texts))
            if rows
            else (graph.entity_type.new_empty(0), like.new_empty(0, self.text_dim or 0))
        )
        self._entity_text = ((*used, like.device, like.dtype), result)
        return result

    # ---------------------------------------------------------------------------- users
    def user_embedding(self, history: Tensor, items_in: Tensor) -> Tensor:
        """``h_u = norm(X_u E_in)`` ``[B, d]`` for recency-weighted rows ``history [B, I]``."""
        return F.normalize(history @ items_in, dim=-1)

    def forward(self, history: Tensor, x_dict: Mapping[str, Tensor] | None = None) -> Tensor:
        """Logits ``[B, num_items]`` = ``cos(h_u, o_i) / temperature``.

        Args:
            history: Recency-weighted history rows ``[B, num_items]`` (``decay ** age``, see
                :meth:`kgrec.data.history.History.rows` with :attr:`decay`).
            x_dict: Text embeddings ``{node_type: [num_nodes, text_dim]}`` (types may be missing).
        """
        items_in, items_out = self.item_embeddings(x_dict)
        user = self.user_embedding(history, items_in)
        return user @ F.normalize(items_out, dim=-1).t() / self.temperature

    @torch.no_grad()
    def serving_embeddings(
        self, x_dict: Mapping[str, Tensor] | None = None
    ) -> tuple[Tensor, Tensor]:
        """``(E_in [I, d], norm(E_out) / temperature [I, d])`` for numpy serving:
        ``logits = norm(X_u E_in) @ out.T``."""
        items_in, items_out = self.item_embeddings(x_dict)
        return items_in.float(), (F.normalize(items_out, dim=-1) / self.temperature).float()


def _has_text(x: Tensor) -> Tensor:
    """``[n, 1]``: 1 for rows with text features, 0 for the all-zero rows of nodes without
    text (``kgrec embed`` leaves those unencoded), whose text term is then dropped."""
    return (x.abs().sum(-1, keepdim=True) > 0).to(x.dtype)


def _fields(graph: ItemEntityGraph) -> list[Any]:
    return [getattr(graph, name) for name in graph.__dataclass_fields__]
