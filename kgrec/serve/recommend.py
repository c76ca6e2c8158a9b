"""Top-k recommendations from a serving bundle (numpy only).

The score of user ``u`` and item ``i`` is the dot product ``z_u . z_i`` of their final
embeddings, as in training. Items the user has interacted with (any split) are never
returned. A user outside the training data can be served from *seed items*: the user vector
is then the mean of those items' embeddings (a LightGCN user embedding is, to first order, a
normalised sum of its items' embeddings, so the mean points the same way).

Large catalogues are served from an approximate index (:mod:`kgrec.serve.ann`): it
retrieves candidates by the dot product, seen items excluded, and the recommender's
``scorer`` re-ranks them (the seam for a hybrid score). ``diversity`` re-ranks the best
candidates by maximal marginal relevance (:mod:`kgrec.serve.diversify`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from kgrec.errors import KgrecError
from kgrec.serve.bundle import Bundle
from kgrec.serve.diversify import Diversity, mmr

if TYPE_CHECKING:
    from kgrec.serve.ann import ItemIndex

Scorer = Callable[[int | None, np.ndarray, np.ndarray], np.ndarray]
"""``scorer(user, vector [d], candidates [n]) -> scores [n]``: re-scores the candidates an
index retrieved (``user`` is the user's index, ``None`` for seed items). The default is the
dot product ``z_i . vector``; a hybrid score plugs in here."""
CANDIDATES = 200
"""Candidates an approximate index retrieves per list before re-ranking."""

_NONE = np.empty(0, dtype=np.int64)


class UnknownIdError(KgrecError):
    """A user or item id that the model does not know."""


@dataclass(frozen=True)
class Recommendation:
    """One recommended item: external id, title, dot-product score, rank (1 = best)."""

    item_id: str
    title: str
    score: float
    rank: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_seed_items(text: str) -> list[str]:
    """``"a,b , c"`` -> ``["a", "b", "c"]``; empty or blank entries are an error."""
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or any(not p for p in parts):
        raise KgrecError(
            f"malformed --seed-items {text!r}: expected comma-separated item ids, e.g. i0001,i0042"
        )
    return parts


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest finite ``scores [n]``, best first (ties: lower index)."""
    finite = np.flatnonzero(np.isfinite(scores))
    k = min(k, finite.size)
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    part = finite[np.argpartition(-scores[finite], k - 1)[:k]] if k < finite.size else finite
    order = np.lexsort((part, -scores[part]))
    return part[order]


class Recommender:
    """Recommendations from a :class:`~kgrec.serve.bundle.Bundle`.

    Args:
        bundle: The serving bundle (embeddings, seen items, ids, titles).
        index: An approximate index over the items (:mod:`kgrec.serve.ann`); ``None``
            scores every item exactly.
        scorer: Re-scores the index's candidates (default: the dot product).
        candidates: Candidates retrieved from ``index`` per list.
        diversity: Default MMR re-ranking of every list (``None``: by score only).
    """

    def __init__(
        self,
        bundle: Bundle,
        *,
        index: ItemIndex | None = None,
        scorer: Scorer | None = None,
        candidates: int = CANDIDATES,
        diversity: Diversity | None = None,
    ) -> None:
        self.bundle = bundle
        if bundle.num_items == 0:
            raise KgrecError("the catalogue is empty: the model knows no items to recommend")
        self._items = np.asarray(bundle.item_embedding, dtype=np.float32)  # [I, d]
        self.index = index
        self.scorer: Scorer = scorer or self._dot
        self.candidates = candidates
        self.diversity = diversity

    def _dot(self, user: int | None, vector: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self._items[items] @ vector  # [n]

    @property
    def model_id(self) -> str:
        return self.bundle.model_id

    def _user(self, user_id: str) -> int:
        index = self.bundle.user_index(str(user_id))
        if index is None:
            raise UnknownIdError(
                f"unknown user {user_id!r}: the model has no history for this user; recommend "
                "from items they like with --seed-items ITEM,ITEM (or seed_items=[...])"
            )
        return index

    def _items_of(self, item_ids: Sequence[str]) -> np.ndarray:
        if isinstance(item_ids, str) or not isinstance(item_ids, Sequence) or not item_ids:
            raise KgrecError(
                f"malformed seed items {item_ids!r}: expected a non-empty list of item ids"
            )
        bad = [i for i in item_ids if not isinstance(i, str) or not i.strip()]
        if bad:
            raise KgrecError(f"malformed seed items: {bad!r} are not item ids")
        indices = [self.bundle.item_index(i.strip()) for i in item_ids]
        unknown = [i for i, k in zip(item_ids, indices, strict=True) if k is None]
        if unknown:
            shown = ", ".join(repr(u) for u in unknown[:10])
            more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
            raise UnknownIdError(f"unknown item id(s) in the seed items: {shown}{more}")
        return np.unique(np.asarray(indices, dtype=np.int64))

    def user_vector(
        self, user_id: str | None, seed_items: Sequence[str] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The query vector ``[d]`` and the item indices ``[n]`` to exclude.

        With ``seed_items`` the vector is their mean embedding and they (plus a known user's
        history) are excluded; otherwise it is the user's embedding and history.
        """
        if seed_items is not None:
            seeds = self._items_of(seed_items)
            vector = self._items[seeds].mean(axis=0)
            known = self.bundle.user_index(str(user_id)) if user_id is not None else None
            seen = seeds if known is None else np.union1d(seeds, self.bundle.seen(known))
            return vector, seen
        if user_id is None:
            raise KgrecError("give a user id or seed items")
        user = self._user(user_id)
        return np.asarray(self.bundle.user_embedding[user], dtype=np.float32), self.bundle.seen(
            user
        )

    def _rank(self, scores: np.ndarray, seen: np.ndarray, k: int) -> list[Recommendation]:
        scores = scores.astype(np.float64, copy=True)
        scores[seen] = -np.inf
        top = top_k(scores, k)
        return [
            Recommendation(self.bundle.item_ids[i], self.bundle.titles[i], float(scores[i]), r)
            for r, i in enumerate(top.tolist(), start=1)
        ]

    def _rank_pool(
        self,
        user: int | None,
        vector: np.ndarray,
        seen: np.ndarray,
        k: int,
        diversity: Diversity | None,
        scores: np.ndarray | None = None,
    ) -> list[Recommendation]:
        """Top ``k`` from a candidate pool: the index's candidates re-scored by ``scorer``
        (or the best of the exact ``scores [I]``), MMR-re-ranked when ``diversity``."""
        size = max(k, diversity.pool) if diversity is not None else k
        if self.index is not None:
            pool = self.index.candidates(vector, max(size, self.candidates), seen)
            pool_scores = np.asarray(self.scorer(user, vector, pool), dtype=np.float64)
            keep = np.lexsort((pool, -pool_scores))[:size]
            pool, pool_scores = pool[keep], pool_scores[keep]
        else:
            full = (self._items @ vector if scores is None else scores).astype(np.float64)
            full[seen] = -np.inf
            pool = top_k(full, size)
            pool_scores = full[pool]
        if diversity is not None and diversity.lam > 0:
            order = mmr(pool_scores, diversity.similarity(pool), diversity.lam, k)
        else:
            order = np.lexsort((pool, -pool_scores))[:k]
        return [
            Recommendation(
                self.bundle.item_ids[pool[i]], self.bundle.titles[pool[i]], float(pool_scores[i]), r
            )
            for r, i in enumerate(order.tolist(), start=1)
        ]

    def recommend(
        self,
        user_id: str | None,
        k: int = 10,
        seed_items: Sequence[str] | None = None,
        diversity: Diversity | None = None,
    ) -> list[Recommendation]:
        """The ``k`` best unseen items for ``user_id`` (or for ``seed_items``), best first;
        with ``diversity``, MMR-re-ranked from the best :data:`~kgrec.serve.diversify.POOL`.

        Raises:
            UnknownIdError: unknown user (without seed items) or unknown seed item ids.
            KgrecError: ``k < 1`` or malformed seed items.
        """
        _check_k(k)
        diversity = diversity or self.diversity
        vector, seen = self.user_vector(user_id, seed_items)
        if self.index is None and diversity is None:
            return self._rank(self._items @ vector, seen, k)  # [I]
        user = None if seed_items is not None else self._user(str(user_id))
        return self._rank_pool(user, vector, seen, k, diversity)

    def recommend_many(
        self,
        user_ids: Iterable[str],
        k: int = 10,
        batch_size: int = 256,
        diversity: Diversity | None = None,
    ) -> list[list[Recommendation]]:
        """:meth:`recommend` for many known users, scored ``batch_size`` at a time.

        Each batch is one ``[B, d] @ [d, I]`` product (one index search per user when
        there is an index); every unknown id raises :class:`UnknownIdError` before anything
        is scored for its batch.
        """
        _check_k(k)
        diversity = diversity or self.diversity
        out: list[list[Recommendation]] = []
        batch: list[int] = []
        for user_id in user_ids:
            batch.append(self._user(user_id))
            if len(batch) == batch_size:
                out.extend(self._score_batch(batch, k, diversity))
                batch = []
        if batch:
            out.extend(self._score_batch(batch, k, diversity))
        return out

    def similar_items(self, item_id: str, k: int = 3) -> list[Recommendation]:
        """The ``k`` trained items closest to ``item_id`` by cosine of their embeddings (best
        first; ``score`` is the cosine): where an added item landed in the model's space.

        Raises:
            UnknownIdError: unknown item id.
        """
        _check_k(k)
        index = self.bundle.item_index(str(item_id))
        if index is None:
            raise UnknownIdError(f"unknown item {item_id!r}: no such item in the model's data")
        trained = self._items[: self.bundle.meta.num_trained_items]  # [I, d]
        norms = np.maximum(np.linalg.norm(trained, axis=1), 1e-12)
        vector = self._items[index]
        cosine = (trained @ vector) / (norms * max(float(np.linalg.norm(vector)), 1e-12))
        return self._rank(cosine, np.asarray([index]) if index < trained.shape[0] else _NONE, k)

    def _score_batch(
        self, users: list[int], k: int, diversity: Diversity | None = None
    ) -> list[list[Recommendation]]:
        vectors = np.asarray(self.bundle.user_embedding[users], dtype=np.float32)  # [B, d]
        if self.index is not None:
            return [
                self._rank_pool(u, v, self.bundle.seen(u), k, diversity)
                for u, v in zip(users, vectors, strict=True)
            ]
        scores = vectors @ self._items.T  # [B, I]
        if diversity is not None:
            return [
                self._rank_pool(u, v, self.bundle.seen(u), k, diversity, row)
                for u, v, row in zip(users, vectors, scores, strict=True)
            ]
        return [
            self._rank(row, self.bundle.seen(u), k) for row, u in zip(scores, users, strict=True)
        ]


def _check_k(k: int) -> None:
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise KgrecError(f"k must be a positive integer, got {k!r}")
