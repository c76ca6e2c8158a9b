"""Top-k recommendations from a serving bundle (numpy only).

The score of user ``u`` and item ``i`` is the dot product ``z_u . z_i`` of their final
embeddings, as in training. Items the user has interacted with (any split) are never
returned. A user outside the training data can be served from *seed items*: the user vector
is then the mean of those items' embeddings (a LightGCN user embedding is, to first order, a
normalised sum of its items' embeddings, so the mean points the same way).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from kgrec.errors import KgrecError
from kgrec.serve.bundle import Bundle

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
    """

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        if bundle.num_items == 0:
            raise KgrecError("the catalogue is empty: the model knows no items to recommend")
        self._items = np.asarray(bundle.item_embedding, dtype=np.float32)  # [I, d]

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

    def recommend(
        self, user_id: str | None, k: int = 10, seed_items: Sequence[str] | None = None
    ) -> list[Recommendation]:
        """The ``k`` best unseen items for ``user_id`` (or for ``seed_items``), best first.

        Raises:
            UnknownIdError: unknown user (without seed items) or unknown seed item ids.
            KgrecError: ``k < 1`` or malformed seed items.
        """
        _check_k(k)
        vector, seen = self.user_vector(user_id, seed_items)
        return self._rank(self._items @ vector, seen, k)  # [I]

    def recommend_many(
        self, user_ids: Iterable[str], k: int = 10, batch_size: int = 256
    ) -> list[list[Recommendation]]:
        """:meth:`recommend` for many known users, scored ``batch_size`` at a time.

        Each batch is one ``[B, d] @ [d, I]`` product; every unknown id raises
        :class:`UnknownIdError` before anything is scored for its batch.
        """
        _check_k(k)
        out: list[list[Recommendation]] = []
        batch: list[int] = []
        for user_id in user_ids:
            batch.append(self._user(user_id))
            if len(batch) == batch_size:
                out.extend(self._score_batch(batch, k))
                batch = []
        if batch:
            out.extend(self._score_batch(batch, k))
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

    def _score_batch(self, users: list[int], k: int) -> list[list[Recommendation]]:
        vectors = np.asarray(self.bundle.user_embedding[users], dtype=np.float32)  # [B, d]
        scores = vectors @ self._items.T  # [B, I]
        return [
            self._rank(row, self.bundle.seen(u), k) for row, u in zip(scores, users, strict=True)
        ]


def _check_k(k: int) -> None:
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise KgrecError(f"k must be a positive integer, got {k!r}")
