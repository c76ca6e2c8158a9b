"""How ``recommend`` sets up a :class:`~kgrec.serve.recommend.Recommender` beyond the bundle:
the approximate index for large catalogues (``serve`` section of the config) and the
diversity of ``--diversify``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kgrec.config import Config
from kgrec.serve.ann import open_index
from kgrec.serve.bundle import Bundle
from kgrec.serve.diversify import (
    Diversity,
    Similarity,
    attribute_similarity,
    embedding_similarity,
    item_attributes,
)


def serving_options(
    config: Config,
    bundle: Bundle,
    diversify: float = 0.0,
    by: str = "kg",
    note: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Keyword arguments of :class:`~kgrec.serve.recommend.Recommender`: ``index`` (built
    or loaded when the catalogue reaches ``serve.ann_min_items``), ``candidates`` and
    ``diversity`` (``None`` for ``diversify == 0``).

    Args:
        by: ``kg`` (items sharing KG neighbours: genres, people, ... are similar), an entity
            type (``genre``: only those neighbours count) or ``embedding``.
    """
    serve = config.serve
    index = open_index(
        bundle,
        min_items=serve.ann_min_items,
        target_recall=serve.ann_target_recall,
        note=note,
    )
    diversity = None
    if diversify > 0:
        diversity = Diversity(diversify, item_similarity(config, bundle, by))
    return {"index": index, "candidates": serve.candidates, "diversity": diversity}


def item_similarity(config: Config, bundle: Bundle, by: str) -> Similarity:
    """The item similarity ``by`` names, for the bundle's items."""
    if by == "embedding":
        return embedding_similarity(bundle.item_embedding)
    entity_type = None if by == "kg" else by
    return attribute_similarity(
        *item_attributes(config.artifacts_dir, bundle.item_ids, entity_type)
    )
