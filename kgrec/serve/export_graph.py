"""The graph the explanations walk, written into the bundle (:mod:`kgrec.serve.graph`).

Only the edge types the model used are kept; items added after training keep their links of
those relations. Written by :func:`kgrec.serve.export.export_bundle` (pandas for the names).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from kgrec.data.added_items import AddedItems
from kgrec.data.edges import EdgeType, is_interaction
from kgrec.data.layout import TABLES_DIR
from kgrec.naming import ITEM, USER, relation_name

if TYPE_CHECKING:  # the artifact's tensors come from the caller
    from kgrec.data.hetero import GraphArtifact


@dataclass(frozen=True)
class Placed:
    """Items added after training and their place in the GNN's item space."""

    items: AddedItems
    embedding: np.ndarray  # [n, d]


@dataclass
class GraphArrays:
    """What :mod:`kgrec.serve.graph` reads, before it is written."""

    train: tuple[np.ndarray, np.ndarray]
    item_entity: np.ndarray  # [4, N]
    item_item: np.ndarray  # [3, M]
    relations: list[EdgeType]
    entity_types: list[str]
    entities: dict[str, list[Any]]

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True)
        np.save(folder / "train_indptr.npy", self.train[0])
        np.save(folder / "train_indices.npy", self.train[1])
        np.save(folder / "item_entity.npy", self.item_entity)
        np.save(folder / "item_item.npy", self.item_item)
        meta = {
            "relations": [list(r) for r in self.relations],
            "entity_types": self.entity_types,
            "entities": self.entities,
        }
        write_json(folder / "graph.json", meta)


def explanation_graph(
    artifact: GraphArtifact,
    artifacts_dir: Path,
    used: set[EdgeType],
    added: Placed | None,
) -> GraphArrays:
    """The used edges around items, from the artifact's own edge tensors (see
    :mod:`kgrec.serve.graph`); items added later keep their links of used relations."""
    num_users, num_items = artifact.num_nodes[USER], artifact.num_nodes[ITEM]
    every = np.concatenate([e.numpy() for e in artifact.split_edge_index.values()], axis=1)
    train = csr(user_rows(every), num_users)  # what the scorer reads: every split

    relations: list[EdgeType] = []
    ie_parts: list[np.ndarray] = []  # [5, n]: item, entity type, entity index, relation, head
    ii_parts: list[np.ndarray] = []  # [3, n]
    entity_types = sorted(t for t in artifact.num_nodes if t not in (USER, ITEM))
    type_code = {t: k for k, t in enumerate(entity_types)}
    for edge_type, edge_index in sorted(artifact.kg_edge_index.items()):
        head, _, tail = edge_type
        if edge_type not in used or is_interaction(edge_type) or USER in (head, tail):
            continue
        ei = edge_index.numpy().astype(np.int64)
        rel = np.full(ei.shape[1], len(relations))
        relations.append(edge_type)
        if head == ITEM and tail == ITEM:
            ii_parts.append(np.stack([ei[0], ei[1], rel]))
        elif head == ITEM:
            code = np.full(ei.shape[1], type_code[tail])
            ie_parts.append(np.stack([ei[0], code, ei[1], rel, np.ones_like(rel)]))
        elif tail == ITEM:
            code = np.full(ei.shape[1], type_code[head])
            ie_parts.append(np.stack([ei[1], code, ei[0], rel, np.zeros_like(rel)]))
    if added is not None:
        ie_parts += _added_links(artifact, added, used, relations, type_code, num_items)

    ie = np.concatenate(ie_parts, axis=1) if ie_parts else np.zeros((5, 0), dtype=np.int64)
    ii = np.concatenate(ii_parts, axis=1) if ii_parts else np.zeros((3, 0), dtype=np.int64)
    # one graph entity per distinct (type, index), numbered in that order
    _, entity = np.unique(
        ie[1] * (max(artifact.num_nodes.values()) + 1) + ie[2], return_inverse=True
    )
    first = np.unique(entity, return_index=True)[1]
    ent_type, ent_index = ie[1][first], ie[2][first]
    ids = [
        str(artifact.id_map.ids[entity_types[t]][k])
        for t, k in zip(ent_type, ent_index, strict=True)
    ]
    names = _entity_names(artifacts_dir, ids)
    return GraphArrays(
        train=train,
        item_entity=np.stack([ie[0], entity, ie[3], ie[4]]).astype(np.int64),
        item_item=ii.astype(np.int64),
        relations=relations,
        entity_types=entity_types,
        entities={
            "type": ent_type.tolist(),
            "id": ids,
            "name": names,
            "index": ent_index.tolist(),
        },
    )


def _added_links(
    artifact: GraphArtifact,
    added: Placed,
    used: set[EdgeType],
    relations: list[EdgeType],
    type_code: dict[str, int],
    num_items: int,
) -> list[np.ndarray]:
    """``[5, n]`` item-entity edges of the added items whose relation the model used."""
    position = {r: k for k, r in enumerate(relations)}
    rows = []
    for offset, item in enumerate(added.items.items):
        for link in item.links:
            edge_type = (ITEM, relation_name(link.relation), link.entity_type)
            ids = artifact.id_map.ids.get(link.entity_type)
            if edge_type not in used or ids is None or link.entity_type not in type_code:
                continue
            hit = np.flatnonzero(ids.astype(str) == link.entity_id)
            if not hit.size:
                continue
            if edge_type not in position:
                position[edge_type] = len(relations)
                relations.append(edge_type)
            code = type_code[link.entity_type]
            rows.append([num_items + offset, code, int(hit[0]), position[edge_type], 1])
    return [np.asarray(rows, dtype=np.int64).T] if rows else []


def _entity_names(artifacts_dir: Path, ids: Iterable[str]) -> list[str]:
    """Display names of entities (the id when the entities table has none)."""
    table = pd.read_parquet(artifacts_dir / TABLES_DIR / "entities.parquet")
    names = table["name"] if "name" in table.columns else table["entity_id"]
    named = dict(zip(table["entity_id"].astype(str), names, strict=True))
    return [title_of(named.get(e), e) for e in ids]


def user_rows(edge_index: np.ndarray) -> np.ndarray:
    """``[2, E]`` user-item edges, deduplicated and sorted by (user, item)."""
    return np.unique(edge_index.astype(np.int64).T, axis=0).T


def csr(edges: np.ndarray, num_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR ``(indptr [num_rows + 1], indices [E])`` of sorted ``[2, E]`` row-column pairs."""
    indptr = np.zeros(num_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(edges[0], minlength=num_rows), out=indptr[1:])
    return indptr, edges[1].astype(np.int64)


def title_of(value: Any, fallback: str) -> str:
    if value is None or (isinstance(value, float) and value != value) or str(value) == "":
        return fallback
    return str(value)


def write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")
