"""Placing added items in a model's item space (numpy only)."""

from __future__ import annotations

import numpy as np

from kgrec.data.added_items import AddedItem, AddedItems, Link
from kgrec.serve.placement import place_items


def _item(item_id: str, *links: Link) -> AddedItem:
    return AddedItem(item_id, item_id, item_id, links, "test", "2026-01-01T00:00:00+00:00")


def test_placement_follows_the_text_and_the_shared_entities() -> None:
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(6, 4)).astype(np.float32)  # [I, d]
    text = np.eye(6, 8, dtype=np.float32)  # every item has its own text direction
    entities = [{"g:a"}, {"g:a"}, {"g:b"}, {"g:b"}, set(), {"g:c"}]
    query = text[[0]] * 0.9 + text[[3]] * 0.1  # text close to item 0
    added = AddedItems(
        (_item("n", Link("has_genre", "genre", "g:b")),), query / np.linalg.norm(query), "m"
    )
    placement = place_items(added, emb, text, entities, scale="norm")
    vector = placement.embedding[0]
    text_part = emb[0]  # softmax at tau=0.05 puts all text weight on item 0
    kg_part = (emb[2] + emb[3]) / 2  # both holders of g:b, equal weights
    direction = (text_part + kg_part) / 2
    assert np.allclose(vector / np.linalg.norm(vector), direction / np.linalg.norm(direction))
    norms = np.linalg.norm(emb, axis=1)
    expected_norm = (norms[0] + (norms[2] + norms[3]) / 2) / 2
    assert np.isclose(np.linalg.norm(vector), expected_norm, rtol=1e-5)
    assert placement.anchors[0][0] == 0 and {2, 3} <= set(placement.anchors[0])


def test_placement_without_links_uses_the_text_alone() -> None:
    emb = np.arange(12, dtype=np.float32).reshape(3, 4) + 1
    text = np.eye(3, dtype=np.float32)
    added = AddedItems((_item("n"),), text[[2]], "m")
    placed = place_items(added, emb, text, [set(), set(), set()], scale="norm").embedding[0]
    assert np.allclose(placed, emb[2], rtol=1e-4)
    plain = place_items(added, emb, text, [set(), set(), set()], scale="none").embedding[0]
    assert np.allclose(plain, emb[2], rtol=1e-4)  # one neighbour: nothing to undo


def test_residual_scaling_keeps_popularity_and_restores_specificity() -> None:
    rng = np.random.default_rng(1)
    common = np.ones(8) / np.sqrt(8)
    emb = (3.0 * common + rng.normal(size=(40, 8))).astype(np.float32)  # [I, d]
    text = rng.normal(size=(40, 16)).astype(np.float32)
    entities = [{"e"} if k < 20 else set() for k in range(40)]  # 20 items share entity e
    added = AddedItems(
        (_item("n", Link("r", "t", "e")),), rng.normal(size=(1, 16)).astype(np.float32), "m"
    )
    kwargs = {"text_neighbours": 0}
    plain = place_items(added, emb, text, entities, scale="none", **kwargs).embedding[0]
    placed = place_items(added, emb, text, entities, **kwargs).embedding[0]
    mean_dir = emb.mean(0) / np.linalg.norm(emb.mean(0))
    assert np.isclose(placed @ mean_dir, plain @ mean_dir, rtol=1e-5)  # popularity as averaged
    rest = placed - (placed @ mean_dir) * mean_dir
    holders = emb[:20] - np.outer(emb[:20] @ mean_dir, mean_dir)
    assert np.isclose(np.linalg.norm(rest), np.linalg.norm(holders, axis=1).mean(), rtol=1e-4)
    assert np.linalg.norm(rest) > 2 * np.linalg.norm(plain - (plain @ mean_dir) * mean_dir)
