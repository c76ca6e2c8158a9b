"""The graph-database side of ``kgrec add-items``: added items as ``:Item`` nodes and links."""

from __future__ import annotations

import pandas as pd

from kgrec.data.added_items import AddedItems
from kgrec.naming import ITEM, label_for_type, rel_type_for_relation
from kgrec.store.base import GraphPayload, NodeSet, RelationshipSet


def added_graph(
    added: AddedItems, known_items: set[str], known_entities: set[str] | None
) -> GraphPayload:
    """The ``:Item`` nodes (``title``, ``added_at``) and KG relationships of added items.

    Items in ``known_items`` (the catalogue has them now) are left out, and so are links to
    entities not in ``known_entities`` (``None``: keep all links).
    """
    items = [item for item in added.items if item.item_id not in known_items]
    nodes = pd.DataFrame(
        {
            "id": [item.item_id for item in items],
            "title": [item.title for item in items],
            "added_at": [item.added for item in items],
        }
    )
    groups: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for item in items:
        for link in item.links:
            if known_entities is None or link.entity_id in known_entities:
                key = (rel_type_for_relation(link.relation), label_for_type(link.entity_type))
                groups.setdefault(key, []).append((item.item_id, link.entity_id))
    label = label_for_type(ITEM)
    relationships = tuple(
        RelationshipSet(rel_type, label, target, pd.DataFrame(pairs, columns=["source", "target"]))
        for (rel_type, target), pairs in sorted(groups.items())
    )
    return GraphPayload(nodes=(NodeSet(label, nodes),), relationships=relationships)
