"""Turn a validated dataset into the property graph the store holds.

``(:User)-[:INTERACTED {rating, timestamp, split}]->(:Item)`` for every interaction (all
splits: the database is the record; ``split`` says which; ``rating`` a float, ``timestamp``
integer seconds), and one relationship type per relation between the labels of its endpoint
types. Empty values are left out rather than written as empty strings. The rows the
``cypher/load/`` upserts send are made by :mod:`kgrec.store.rows`, which writes numeric
attribute columns (``User.age``, ``Item.year``) as numbers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kgrec.data.contract import ITEM, USER
from kgrec.data.validate import Dataset
from kgrec.errors import StoreError
from kgrec.store.base import (
    GraphPayload,
    GraphStore,
    NodeSet,
    RelationshipSet,
    label_for_type,
    rel_type_for_relation,
)
from kgrec.store.queries import load_query
from kgrec.store.rows import node_batches, relationship_batches, relationship_query

__all__ = [
    "node_batches",
    "payload_from_dataset",
    "relationship_batches",
    "relationship_query",
    "upsert_payload",
]

INTERACTED = "INTERACTED"


def _node_frame(frame: pd.DataFrame, id_column: str, drop: tuple[str, ...] = ()) -> pd.DataFrame:
    out = frame.drop(columns=[c for c in drop if c in frame.columns]).rename(
        columns={id_column: "id"}
    )
    out = out.replace("", np.nan)
    out = out.loc[:, ["id", *[c for c in out.columns if c != "id" and out[c].notna().any()]]]
    return out.reset_index(drop=True)


def payload_from_dataset(dataset: Dataset, split: pd.Series) -> GraphPayload:
    """The nodes and relationships ``build-graph`` writes for ``dataset``."""
    nodes = [
        NodeSet(label_for_type(USER), _node_frame(dataset.users, "user_id")),
        NodeSet(label_for_type(ITEM), _node_frame(dataset.items, "item_id")),
    ]
    for entity_type, group in dataset.entities.groupby("type", sort=True):
        nodes.append(
            NodeSet(
                label_for_type(str(entity_type)),
                _node_frame(group, "entity_id", drop=("type",)),
            )
        )
    inter = dataset.interactions
    rel_frame = pd.DataFrame(
        {
            "source": inter["user_id"].to_numpy(),
            "target": inter["item_id"].to_numpy(),
            "rating": inter["rating"].to_numpy(),
            "timestamp": inter["timestamp"]
            .where(inter["timestamp"] >= 0)
            .astype("Int64")
            .reset_index(drop=True),
            "split": split.to_numpy(),
        }
    )
    rel_frame = rel_frame.loc[:, [c for c in rel_frame.columns if rel_frame[c].notna().any()]]
    relationships = [
        RelationshipSet(INTERACTED, label_for_type(USER), label_for_type(ITEM), rel_frame)
    ]
    for (relation, head_type, tail_type), group in dataset.triples.groupby(
        ["relation", "head_type", "tail_type"], sort=True
    ):
        relationships.append(
            RelationshipSet(
                rel_type_for_relation(str(relation)),
                label_for_type(str(head_type)),
                label_for_type(str(tail_type)),
                pd.DataFrame(
                    {"source": group["head"].to_numpy(), "target": group["tail"].to_numpy()}
                ),
            )
        )
    return GraphPayload(nodes=tuple(nodes), relationships=tuple(relationships))


def upsert_payload(store: GraphStore, payload: GraphPayload, batch_size: int = 5000) -> None:
    """Add ``payload`` to the live graph with the idempotent upserts of ``cypher/load/``
    (nodes first). Unlike :meth:`GraphStore.load` nothing else is replaced; every
    relationship's endpoints must already exist or come with ``payload``.

    Raises:
        StoreError: when some relationships found no endpoints (the nodes stay: re-running
            the same upsert is harmless).
    """
    for node_set in payload.nodes:
        query = load_query("load/upsert_nodes", label=node_set.label)
        for rows in node_batches(node_set, batch_size):
            store.query(query, {"rows": rows}, write=True)
    for rel_set in payload.relationships:
        query = relationship_query("load/upsert_relationships", rel_set)
        count = relationship_query("load/count_relationships", rel_set)
        for rows in relationship_batches(rel_set, batch_size):
            store.query(query, {"rows": rows}, write=True)
            found = store.query(count, {"rows": rows}).rows
            linked = int(found[0][0]) if found else 0
            if linked != len(rows):
                raise StoreError(
                    f"only {linked} of {len(rows)} {rel_set.type} relationships found both "
                    "endpoints in the graph database"
                )
