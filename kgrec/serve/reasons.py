"""Which path to show for one history item, and which names a customer can read.

:class:`kgrec.serve.paths.Explainer` picks the history items that carry a recommendation
(their contributions to the score); this module picks, for one history item ``h`` and the
recommended item ``i``, the path to show, by what a reader gets from it:

1. ``attribute`` through an entity with a readable name (``directed by Michael Mann``),
   the rarest such entity first;
2. ``linked``: a knowledge-graph link between ``h`` and ``i`` (both items are named);
3. ``collaborative``: another user who interacted with both (never named; for customers,
   one who *liked* both, so "people who liked X also liked Y" is true);
4. ``attribute`` through an entity without a readable name ("with the same award
   nomination"): true, but it names nothing.

A name is *readable* when the entity has one (not just its id) written in the script of the
catalogue's titles: a Latin-script catalogue (MovieLens) reads English and other Latin
names, not the Chinese or Japanese transliterations some Freebase entities carry.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from kgrec.serve.graph import ExplanationGraph

ATTRIBUTE, LINKED, COLLABORATIVE = "attribute", "linked", "collaborative"


@dataclass(frozen=True)
class Route:
    """The chosen path of one history item to one item.

    Attributes:
        kind: ``attribute``, ``linked`` or ``collaborative``.
        via: The shared entity (``attribute``) or the other user (``collaborative``), else -1.
        edge_rated: The KG edge at the history item (item-entity or item-item edge id), or -1.
        edge_item: The item-entity edge at the recommended item (``attribute``), or -1.
        named: Whether the path names what it goes through (an attribute path through a
            readable entity; linked and collaborative paths name two items).
        others_liked: ``collaborative``: whether the other user liked both items.
    """

    kind: str
    via: int = -1
    edge_rated: int = -1
    edge_item: int = -1
    named: bool = True
    others_liked: bool = False


def is_latin(text: str) -> bool:
    """Whether every letter of ``text`` is a Latin one (``Gérard``, not ``ジェラール``)."""
    return text.isascii() or all("LATIN" in unicodedata.name(c, "") for c in text if c.isalpha())


def readable_names(ids: Sequence[str], names: Sequence[str], titles: Sequence[str]) -> np.ndarray:
    """``[E]`` bool: entity ``e`` has a name (not its id) in the script of the catalogue's
    ``titles`` (any script when most titles are not Latin)."""
    sample = [t for t in titles[:2000] if t]
    latin_catalogue = not sample or sum(map(is_latin, sample)) * 2 >= len(sample)
    return np.asarray(
        [
            bool(n.strip()) and n != e and (not latin_catalogue or is_latin(n))
            for e, n in zip(ids, names, strict=True)
        ],
        dtype=bool,
    )


class RouteFinder:
    """Finds :class:`Route` s in an :class:`ExplanationGraph` (a few small array lookups each).

    Args:
        graph: The model's graph.
        named: ``[E]`` :func:`readable_names` of its entities.
        liked_keys: Sorted ``user * num_items + item`` of every liked interaction.
        num_items: Items in the index space.
    """

    def __init__(
        self, graph: ExplanationGraph, named: np.ndarray, liked_keys: np.ndarray, num_items: int
    ) -> None:
        self.graph = graph
        self.named = named
        self.liked_keys = liked_keys
        self.num_items = num_items
        self.degree = graph.entity_items.degree()
        self._marks = np.zeros(named.shape[0], dtype=bool)  # scratch: entities of one item

    def likes(self, users: np.ndarray, item: int) -> np.ndarray:
        """``[n]`` bool: whether each of ``users`` liked ``item``."""
        keys = users.astype(np.int64) * self.num_items + item
        at = np.searchsorted(self.liked_keys, keys)
        inside = at < self.liked_keys.shape[0]
        out = np.zeros(keys.shape[0], dtype=bool)
        out[inside] = self.liked_keys[at[inside]] == keys[inside]
        return out

    def best(self, user: int, rated: int, item: int, customer: bool = True) -> Route | None:
        """The most telling path ``user -> rated -> ... -> item`` (module docstring), or
        ``None`` when the graph has no path of at most 3 hops through ``rated``."""
        unnamed = self._attribute(rated, item)
        if unnamed is not None and unnamed.named:
            return unnamed
        linked = self._linked(rated, item)
        if linked is not None:
            return linked
        return self._collaborative(user, rated, item, customer) or unnamed

    def _attribute(self, rated: int, item: int) -> Route | None:
        graph = self.graph
        mine, mine_edges = graph.item_entities.row(rated), graph.item_entities.row_data(rated)
        theirs, their_edges = graph.item_entities.row(item), graph.item_entities.row_data(item)
        if not mine.size or not theirs.size:
            return None
        self._marks[theirs] = True
        shared = self._marks[mine]
        self._marks[theirs] = False
        if not shared.any():
            return None
        entity, edge_rated = mine[shared], mine_edges[shared]
        edge_item = their_edges[np.searchsorted(theirs, entity)]
        same = graph.ie_relation[edge_rated] == graph.ie_relation[edge_item]
        named = self.named[entity]
        best = int(np.lexsort((self.degree[entity], ~same, ~named))[0])
        return Route(
            ATTRIBUTE, int(entity[best]), int(edge_rated[best]), int(edge_item[best]),
            named=bool(named[best]),
        )  # fmt: skip

    def _linked(self, rated: int, item: int) -> Route | None:
        links = self.graph.item_links.row(item)
        at = int(np.searchsorted(links, rated))
        if at < links.shape[0] and int(links[at]) == rated:
            return Route(LINKED, edge_rated=int(self.graph.item_links.row_data(item)[at]))
        return None

    def _collaborative(self, user: int, rated: int, item: int, customer: bool) -> Route | None:
        users = self.graph.item_users.row(rated)
        both = users[np.isin(users, self.graph.item_users.row(item)) & (users != user)]
        if not both.size:
            return None
        if customer:
            fond = both[self.likes(both, rated) & self.likes(both, item)]
            if fond.size:
                return Route(COLLABORATIVE, via=int(fond[0]), others_liked=True)
        return Route(COLLABORATIVE, via=int(both[0]))


def liked_keys(
    indptr: np.ndarray, items: np.ndarray, liked: np.ndarray, num_items: int
) -> np.ndarray:
    """Sorted ``user * num_items + item`` of the liked interactions of CSR histories."""
    users = np.repeat(np.arange(indptr.shape[0] - 1, dtype=np.int64), np.diff(indptr))
    keys = users * num_items + np.asarray(items, dtype=np.int64)
    if liked.shape[0] == keys.shape[0]:
        keys = keys[np.asarray(liked, dtype=bool)]
    return np.unique(keys)
