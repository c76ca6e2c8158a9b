"""Turn a validated dataset into the property graph the store holds.

``(:User)-[:INTERACTED {rating, timestamp, split}]->(:Item)`` for every interaction (all
splits: the database is the record; ``split`` says which), and one relationship type per
relation between the labels of its endpoint types. Empty values are left out rather than
written as empty strings.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kgrec.data.contract import ITEM, USER
from kgrec.data.validate import Dataset
from kgrec.store.base import (
    GraphPayload,
    NodeSet,
    RelationshipSet,
    label_for_type,
    rel_type_for_relation,
)

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
            "timestamp": inter["timestamp"].where(inter["timestamp"] >= 0).to_numpy(),
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
