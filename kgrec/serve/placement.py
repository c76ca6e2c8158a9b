"""Placing items added after training (``kgrec add-items``) in a model's item space (numpy).

A new item has no interactions, so the model has no embedding for it. It is placed from what
it shares with trained items:

- **text neighbours**: its text embedding is compared with every trained item's text
  feature; the ``k`` most similar items are averaged, weighted by ``softmax(cosine / tau)``;
- **KG neighbours**: trained items linked to the same entities (the ``genres`` column matched
  to genre entities by name, or explicit triples) are averaged, each shared entity weighted
  ``1 / log2(1 + degree)`` so rare entities (a director) count more than common ones (Drama).

The placed vector is the mean of the two estimates (or the one available). Averaging keeps
what neighbours share, above all the mean item direction (in a dot-product model, the
popularity direction), and shrinks what makes each of them specific. So the component along
the mean item direction is kept as averaged, and the rest is stretched back to the
neighbours' typical length: the new item is as popular as its neighbours on average, and as
specific as one of them. (Rescaling the whole vector to the neighbours' norm instead
inflates the popularity part: on the demo new items then take 9 of every user's top-20
slots; the plain average takes fewer than one. ``benchmarks/new_items.py`` measures both.)
This is the inductive recipe of content-based cold start (e.g. DropoutNet, NeurIPS'17,
without its training step).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kgrec.data.added_items import AddedItems
from kgrec.errors import KgrecError

TEXT_NEIGHBOURS = 10
KG_NEIGHBOURS = 20
TEMPERATURE = 0.05


@dataclass(frozen=True)
class Placement:
    """Where added items landed in the model's item space.

    Attributes:
        embedding: ``[n, d]`` float32 placed item embeddings.
        anchors: Per item, the trained item indices it was placed from (best first).
    """

    embedding: np.ndarray
    anchors: list[list[int]]


def place_items(
    added: AddedItems,
    item_embedding: np.ndarray,
    item_text: np.ndarray,
    item_entities: list[set[str]],
    *,
    text_neighbours: int = TEXT_NEIGHBOURS,
    kg_neighbours: int = KG_NEIGHBOURS,
    temperature: float = TEMPERATURE,
    scale: str = "residual",
) -> Placement:
    """Place added items among the trained ones (see the module docstring).

    Args:
        item_embedding: ``[I, d]`` trained item embeddings (the serving ones).
        item_text: ``[I, text_dim]`` the trained items' text features.
        item_entities: Per trained item, the entity ids it links to.

        text_neighbours: Text neighbours averaged (0: ignore the text).
        kg_neighbours: Items sharing entities averaged (0: ignore the KG links).
        temperature: Softmax temperature over the text neighbours' cosines.
        scale: ``residual`` (default): keep the average's component along the mean item
            direction (its popularity) and give the rest the neighbours' typical length;
            ``norm``: rescale the whole vector to the neighbours' mean norm; ``none``: the
            plain weighted average.

    Returns:
        The placed embeddings ``[len(added), d]`` and each item's anchor items. An item with
        neither estimate gets the average item.
    """
    emb = np.asarray(item_embedding, dtype=np.float32)
    text = np.asarray(item_text, dtype=np.float32)
    text = text / np.maximum(np.linalg.norm(text, axis=1, keepdims=True), 1e-12)
    if scale not in ("residual", "norm", "none"):
        raise KgrecError(f"unknown scale {scale!r}: use residual, norm or none")
    norms = np.linalg.norm(emb, axis=1)  # [I]
    common = emb.mean(axis=0)
    common /= max(float(np.linalg.norm(common)), 1e-12)  # [d] unit mean item direction
    residual_norms = np.linalg.norm(emb - np.outer(emb @ common, common), axis=1)  # [I]
    holders: dict[str, list[int]] = {}
    for index, linked in enumerate(item_entities):
        for entity in linked:
            holders.setdefault(entity, []).append(index)

    out = np.zeros((len(added), emb.shape[1]), dtype=np.float32)
    anchors: list[list[int]] = []
    for row, item in enumerate(added.items):
        estimates: list[tuple[np.ndarray, np.ndarray]] = []
        if text_neighbours > 0:
            query = added.text[row] / max(float(np.linalg.norm(added.text[row])), 1e-12)
            similarity = text @ query  # [I]
            k = min(text_neighbours, len(similarity))
            near = np.argpartition(-similarity, k - 1)[:k]
            near = near[np.argsort(-similarity[near], kind="stable")]
            weights = np.exp((similarity[near] - similarity[near].max()) / temperature)
            estimates.append((near, weights / weights.sum()))

        shared: dict[int, float] = {}
        for link in item.links if kg_neighbours > 0 else ():
            items = holders.get(link.entity_id, [])
            for index in items:
                shared[index] = shared.get(index, 0.0) + 1.0 / np.log2(1.0 + len(items))
        if shared:
            ranked = sorted(shared.items(), key=lambda kv: (-kv[1], kv[0]))[:kg_neighbours]
            kg_near = np.asarray([i for i, _ in ranked], dtype=np.int64)
            kg_weights = np.asarray([w for _, w in ranked], dtype=np.float64)
            estimates.append((kg_near, kg_weights / kg_weights.sum()))

        if not estimates:  # nothing to go on: the average item
            everything = np.arange(len(emb))
            estimates.append((everything, np.full(len(emb), 1.0 / len(emb))))
        vector = np.zeros(emb.shape[1], dtype=np.float64)
        norm = residual_norm = 0.0
        for indices, w in estimates:
            vector += w @ emb[indices] / len(estimates)
            norm += float(w @ norms[indices]) / len(estimates)
            residual_norm += float(w @ residual_norms[indices]) / len(estimates)
        if scale == "norm" and np.linalg.norm(vector) > 0:
            vector *= norm / float(np.linalg.norm(vector))
        elif scale == "residual":
            along = float(vector @ common)
            rest = vector - along * common
            length = float(np.linalg.norm(rest))
            if length > 0:
                vector = along * common + rest * (residual_norm / length)
        out[row] = vector
        ordered = [int(i) for indices, _ in estimates for i in indices]
        anchors.append(list(dict.fromkeys(ordered))[:5])
    return Placement(out, anchors)
