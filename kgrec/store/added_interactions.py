"""The graph-database side of ``kgrec add-interactions``: ``:INTERACTED`` edges, new users."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from kgrec.data.added_interactions import ADDED_SPLIT, AddedInteractions
from kgrec.naming import ITEM, USER, label_for_type
from kgrec.store.base import GraphPayload, NodeSet, RelationshipSet

INTERACTED = "INTERACTED"


def added_interactions_graph(added: AddedInteractions, new_users: Iterable[str]) -> GraphPayload:
    """``(:User)-[:INTERACTED {rating, timestamp, split: "added", added_at}]->(:Item)`` for
    every added interaction, and a ``:User`` node for each of ``new_users``.

    ``rating`` and ``timestamp`` are left out where not given; the upserts are idempotent
    (``MERGE`` on the ids and the pair), so writing the same rows twice changes nothing.
    """
    stamps = pd.Series(added.timestamps, dtype="int64")
    frame = pd.DataFrame(
        {
            "source": list(added.user_ids),
            "target": list(added.item_ids),
            "rating": pd.Series(added.ratings, dtype="float64"),
            "timestamp": stamps.where(stamps >= 0).astype("Int64"),
            "split": ADDED_SPLIT,
            "added_at": [str(added.sources[b].get("added", "")) for b in added.batches],
        }
    )
    frame = frame.loc[:, [c for c in frame.columns if frame[c].notna().any()]]
    users = pd.DataFrame({"id": list(dict.fromkeys(new_users))})
    user, item = label_for_type(USER), label_for_type(ITEM)
    return GraphPayload(
        nodes=(NodeSet(user, users),) if len(users) else (),
        relationships=(RelationshipSet(INTERACTED, user, item, frame),) if len(frame) else (),
    )
