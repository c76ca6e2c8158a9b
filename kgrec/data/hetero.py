"""The PyG ``HeteroData`` training graph and its splits.

Node types are ``user``, ``item`` and the entity types. Edge types are
``('user', 'interacts', 'item')`` (training interactions only) and one
``(head_type, relation, tail_type)`` per knowledge-graph relation, each with its reverse
``(dst, 'rev_<relation>', src)``. Validation and test interactions never enter the graph;
they live in :attr:`GraphArtifact.split_edge_index`.

On disk the artifact is plain tensors (``graph.pt``), so it loads with
``torch.load(weights_only=True)``, plus the id maps (``id_maps.parquet``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from kgrec.data.contract import ITEM, USER
from kgrec.data.edges import INTERACTS, EdgeType, reverse
from kgrec.data.layout import GRAPH_FILE, ID_MAP_FILE
from kgrec.data.mapping import IdMap
from kgrec.data.split import SPLITS
from kgrec.data.validate import Dataset
from kgrec.errors import KgrecError
from kgrec.naming import relation_name


@dataclass(frozen=True)
class GraphArtifact:
    """The training graph, the interaction splits and the id maps.

    Attributes:
        num_nodes: Nodes per node type.
        kg_edge_index: Knowledge-graph edges per ``(head_type, relation, tail_type)``,
            each ``[2, num_edges]`` (no reverses).
        split_edge_index: ``train``/``val``/``test`` user->item edges, each ``[2, num_edges]``.
        split_edge_time: Timestamps of those edges (``-1`` unknown), each ``[num_edges]``.
        split_edge_rating: Ratings of those edges (NaN unknown), each ``[num_edges]``.
        id_map: External id <-> index, per node type.
    """

    num_nodes: dict[str, int]
    kg_edge_index: dict[EdgeType, Tensor]
    split_edge_index: dict[str, Tensor]
    split_edge_time: dict[str, Tensor]
    split_edge_rating: dict[str, Tensor]
    id_map: IdMap

    def to_hetero_data(self, *, add_reverse: bool = True) -> HeteroData:
        """The message-passing graph: training interactions + KG edges (+ reverses)."""
        data = HeteroData()
        for node_type, n in self.num_nodes.items():
            data[node_type].num_nodes = n
        edges: dict[EdgeType, Tensor] = {INTERACTS: self.split_edge_index["train"]}
        edges.update(self.kg_edge_index)
        for edge_type, edge_index in edges.items():
            data[edge_type].edge_index = edge_index
            if add_reverse:
                data[reverse(edge_type)].edge_index = edge_index.flip(0)
        return data

    def save(self, folder: Path) -> None:
        """Write ``graph.pt`` and ``id_maps.parquet`` into ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        payload = {
            "format": 1,
            "num_nodes": dict(self.num_nodes),
            "kg_edge_index": {"__".join(k): v for k, v in self.kg_edge_index.items()},
            "split_edge_index": self.split_edge_index,
            "split_edge_time": self.split_edge_time,
            "split_edge_rating": self.split_edge_rating,
        }
        torch.save(payload, folder / GRAPH_FILE)
        self.id_map.save(folder / ID_MAP_FILE)

    @classmethod
    def load(cls, folder: Path) -> GraphArtifact:
        """Read an artifact written by :meth:`save` (safe: ``weights_only=True``)."""
        payload = torch.load(folder / GRAPH_FILE, weights_only=True)
        kg = {tuple(k.split("__")): v for k, v in payload["kg_edge_index"].items()}
        return cls(
            num_nodes=dict(payload["num_nodes"]),
            kg_edge_index=kg,
            split_edge_index=payload["split_edge_index"],
            split_edge_time=payload["split_edge_time"],
            split_edge_rating=payload["split_edge_rating"],
            id_map=IdMap.load(folder / ID_MAP_FILE),
        )

    def edge_counts(self) -> dict[str, int]:
        """Edges per edge type (``src__rel__dst``) and interactions per split."""
        counts = {f"interactions:{s}": int(e.size(1)) for s, e in self.split_edge_index.items()}
        counts.update({"__".join(k): int(v.size(1)) for k, v in self.kg_edge_index.items()})
        return counts


def load_artifact(folder: Path | str) -> GraphArtifact:
    """Load the graph artifact written by ``build-graph`` (clear error when absent)."""
    folder = Path(folder)
    if not (folder / GRAPH_FILE).exists():
        raise KgrecError(f"no graph artifact in {folder}: run `kgrec build-graph` first")
    return GraphArtifact.load(folder)


def build_id_map(dataset: Dataset) -> IdMap:
    """Id maps for users, items and each entity type."""
    ids: dict[str, pd.Series] = {
        USER: dataset.users["user_id"],
        ITEM: dataset.items["item_id"],
    }
    for entity_type, group in dataset.entities.groupby("type", sort=True):
        ids[str(entity_type)] = group["entity_id"]
    return IdMap.from_ids(ids)


def build_graph_artifact(dataset: Dataset, split: pd.Series, id_map: IdMap) -> GraphArtifact:
    """Index the dataset: interactions per split and KG edges per relation."""
    inter = dataset.interactions
    users = id_map.index(USER, inter["user_id"])
    items = id_map.index(ITEM, inter["item_id"])
    labels = split.to_numpy()
    split_edge_index, split_edge_time, split_edge_rating = {}, {}, {}
    for name in SPLITS:
        mask = labels == name
        split_edge_index[name] = torch.from_numpy(np.stack([users[mask], items[mask]]))
        split_edge_time[name] = torch.from_numpy(inter["timestamp"].to_numpy()[mask])
        split_edge_rating[name] = torch.from_numpy(inter["rating"].to_numpy(dtype=np.float32)[mask])
    kg: dict[EdgeType, Tensor] = {}
    triples = dataset.triples.assign(relation=dataset.triples["relation"].map(relation_name))
    for (head_type, rel, tail_type), group in triples.groupby(
        ["head_type", "relation", "tail_type"], sort=True
    ):
        src = id_map.index(str(head_type), group["head"])
        dst = id_map.index(str(tail_type), group["tail"])
        kg[(str(head_type), str(rel), str(tail_type))] = torch.from_numpy(np.stack([src, dst]))
    num_nodes = {t: id_map.num_nodes(t) for t in id_map.node_types}
    return GraphArtifact(
        num_nodes=num_nodes,
        kg_edge_index=kg,
        split_edge_index=split_edge_index,
        split_edge_time=split_edge_time,
        split_edge_rating=split_edge_rating,
        id_map=id_map,
    )
