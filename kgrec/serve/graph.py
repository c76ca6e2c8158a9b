"""The graph the model used, as explanations walk it (numpy, from the bundle).

:func:`kgrec.serve.export.export_bundle` writes it into ``<bundle>/graph/`` from the very
edge tensors the model propagated over, keeping only the edge types the model used
(:attr:`~kgrec.serve.bundle.BundleMeta.edge_types`): a ``--no-kg`` model gets no
knowledge-graph edges at all, a model that pruned a rare relation gets none of that relation.

======================  =====================================================================
file                    content
======================  =====================================================================
``train_indptr.npy``    int64 ``[num_users + 1]``: CSR rows of the users' interactions (every
                        split: the history the scorer reads)
``train_indices.npy``   int64 ``[nnz]``: their items, sorted within each row
``item_entity.npy``     int64 ``[4, N]``: item, entity, relation, 1 if the item is the head
``item_item.npy``       int64 ``[3, M]``: head item, tail item, relation
``graph.json``          ``relations``: ``[(src, rel, dst)]`` (stored direction);
                        ``entities``: ``type`` (index into ``entity_types``), ``id``,
                        ``name``, ``index`` (within its node type), per graph entity
======================  =====================================================================

Items added after training (``kgrec add-items``) keep their links to entities when the
relation is one the model used, so they can be explained like trained items.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kgrec.data.edges import EdgeType
from kgrec.errors import KgrecError

GRAPH_DIR = "graph"
GRAPH_ARRAYS = (
    "train_indptr",
    "train_indices",
    "item_entity",
    "item_item",
)


@dataclass(frozen=True)
class Csr:
    """Rows of sorted column indices, ``indices[indptr[r]:indptr[r + 1]]``, each with a
    ``data`` value (an edge id)."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray

    @classmethod
    def build(
        cls, rows: np.ndarray, cols: np.ndarray, n: int, data: np.ndarray | None = None
    ) -> Csr:
        """From ``rows [E]``, ``cols [E]`` (``n`` rows) and optional ``data [E]``."""
        rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
        order = np.lexsort((cols, rows))
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
        extra = np.arange(rows.size) if data is None else np.asarray(data, dtype=np.int64)
        return cls(indptr, cols[order], extra[order])

    def row(self, r: int) -> np.ndarray:
        return self.indices[self.indptr[r] : self.indptr[r + 1]]

    def row_data(self, r: int) -> np.ndarray:
        return self.data[self.indptr[r] : self.indptr[r + 1]]

    def degree(self) -> np.ndarray:
        """``[n]`` entries per row."""
        return np.diff(self.indptr)


@dataclass(frozen=True)
class Entities:
    """The graph's entities (knowledge-graph nodes linked to items), ``[E]`` each."""

    types: list[str]
    type: np.ndarray
    ids: list[str]
    names: list[str]
    index: np.ndarray

    def type_of(self, e: int) -> str:
        return self.types[int(self.type[e])]


@dataclass(frozen=True)
class ExplanationGraph:
    """The model's message-passing graph around users and items.

    Attributes:
        user_items: ``[U]`` rows: each user's training items.
        item_users: ``[I]`` rows: each item's training users (items added later have none).
        item_entities: ``[I]`` rows: each item's entities, ``data`` = item-entity edge id.
        entity_items: ``[E]`` rows: each entity's items, ``data`` = item-entity edge id.
        item_links: ``[I]`` rows: items linked to each item (both directions), ``data`` =
            item-item edge id.
        ie_relation, ie_item_is_head: ``[N]`` per item-entity edge.
        ii_head, ii_relation: ``[M]`` per item-item edge.
        relations: Edge types ``(src, rel, dst)`` in their stored direction.
        entities: The entities.
    """

    user_items: Csr
    item_users: Csr
    item_entities: Csr
    entity_items: Csr
    item_links: Csr
    ie_relation: np.ndarray
    ie_item_is_head: np.ndarray
    ii_head: np.ndarray
    ii_relation: np.ndarray
    relations: list[EdgeType]
    entities: Entities


def graph_dir(bundle_dir: Path) -> Path:
    """``<bundle>/graph``."""
    return Path(bundle_dir) / GRAPH_DIR


def load_graph(bundle_dir: Path, num_users: int, num_items: int) -> ExplanationGraph:
    """Read ``<bundle>/graph`` (memory-mapped arrays; see the module docstring)."""
    folder = graph_dir(bundle_dir)
    try:
        arrays = {n: np.load(folder / f"{n}.npy", mmap_mode="r") for n in GRAPH_ARRAYS}
        meta = json.loads((folder / "graph.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise KgrecError(f"{folder}: unreadable explanation graph ({exc}); re-export") from exc
    indptr, indices = arrays["train_indptr"], arrays["train_indices"]
    if indptr.shape[0] != num_users + 1:
        raise KgrecError(f"{folder}: explanation graph of another model (re-export the bundle)")
    user_items = Csr(indptr, indices, np.arange(indices.shape[0]))
    rows = np.repeat(np.arange(num_users), np.diff(indptr))
    item_users = Csr.build(indices, rows, num_items)
    ie = np.asarray(arrays["item_entity"])
    ii = np.asarray(arrays["item_item"])
    raw = meta["entities"]
    entities = Entities(
        types=[str(t) for t in meta["entity_types"]],
        type=np.asarray(raw["type"], dtype=np.int64),
        ids=[str(e) for e in raw["id"]],
        names=[str(n) for n in raw["name"]],
        index=np.asarray(raw["index"], dtype=np.int64),
    )
    ids = np.arange(ii.shape[1])
    return ExplanationGraph(
        user_items=user_items,
        item_users=item_users,
        item_entities=Csr.build(ie[0], ie[1], num_items),
        entity_items=Csr.build(ie[1], ie[0], len(entities.ids)),
        item_links=Csr.build(
            np.concatenate([ii[0], ii[1]]),
            np.concatenate([ii[1], ii[0]]),
            num_items,
            np.concatenate([ids, ids]),
        ),
        ie_relation=ie[2],
        ie_item_is_head=ie[3],
        ii_head=ii[0],
        ii_relation=ii[2],
        relations=[(str(s), str(r), str(d)) for s, r, d in meta["relations"]],
        entities=entities,
    )
