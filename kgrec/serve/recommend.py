"""Top-k recommendations from a serving bundle (numpy only).

A user's scores are the trained scorer's (:mod:`kgrec.serve.scorer`: the item-item teacher
plus the GNN, recomputed from the user's time-ordered history), so what a user did last
weighs most, and an interaction recorded after training counts at once. Items the user has
interacted with (any split) are never returned, nor retired items (``kgrec items retire``);
a forgotten user (``kgrec users forget``) is refused by name (:mod:`kgrec.data.lifecycle`).
A user outside the training data, or a known user with new behaviour, is served from *seed
items*: they join the history as its latest items. A bundle without a scorer (embeddings
only) scores by the dot product ``z_u . z_i``.

Large catalogues are served from an approximate index (:mod:`kgrec.serve.ann`): it
retrieves candidates by the GNN's user vector, seen items excluded, and the exact score
re-ranks them. ``diversity`` re-ranks the best candidates by maximal marginal relevance
(:mod:`kgrec.serve.diversify`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from kgrec.data.lifecycle import ForgetList, forgotten_error, load_retired
from kgrec.errors import KgrecError
from kgrec.serve.bundle import Bundle
from kgrec.serve.diversify import Diversity, mmr

if TYPE_CHECKING:
    from kgrec.serve.ann import ItemIndex

Scorer = Callable[[int | None, np.ndarray, np.ndarray], np.ndarray]
"""``scorer(user, vector [d], candidates [n]) -> scores [n]``: re-scores the candidates an
index retrieved (``user`` is the user's index, ``None`` for seed items). The default is the
bundle's own score; another re-ranker plugs in here."""


@dataclass(frozen=True)
class Query:
    """What a list is computed from.

    Attributes:
        user: The user's index (``None`` for seed items alone).
        items, ages: The history the scorer reads ``[n]`` (seed items last, age 0).
        seen: Items never to return ``[m]``.
        vector: The GNN's user vector ``[d]`` (the approximate index's query).
    """

    user: int | None
    items: np.ndarray
    ages: np.ndarray
    seen: np.ndarray
    vector: np.ndarray


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
        self.scorer = scorer
        self.candidates = candidates
        self.diversity = diversity
        # the lifecycle lists of the artifact folder (kgrec items retire, kgrec users forget)
        artifacts = bundle.meta.artifacts
        self._forgotten = ForgetList.load(artifacts) if artifacts else ForgetList(None, {})
        retired = [bundle.item_index(i) for i in load_retired(artifacts)] if artifacts else []
        self._retired = np.asarray(sorted(k for k in retired if k is not None), dtype=np.int64)

    def _excluded(self, seen: np.ndarray) -> np.ndarray:
        """``seen`` plus the retired items: what a list never returns."""
        return np.union1d(seen, self._retired) if self._retired.size else seen

    def knows(self, user_id: str) -> bool:
        """Whether ``user_id`` has a history in the model and was not forgotten."""
        return (
            self.bundle.user_index(str(user_id)) is not None
            and self._forgotten.since(str(user_id)) is None
        )

    def unknown_reason(self, user_id: str) -> str:
        """Why ``user_id`` gets no list: forgotten (and since when), or unknown to the model."""
        since = self._forgotten.since(str(user_id))
        if since is not None:
            return str(forgotten_error(str(user_id), since))
        return f"unknown user {user_id!r}"

    def _refuse_forgotten(self, user_id: str) -> None:
        since = self._forgotten.since(str(user_id))
        if since is not None:
            raise UnknownIdError(str(forgotten_error(str(user_id), since)))

    def scores(self, query: Query) -> np.ndarray:
        """Scores ``[num_items]`` (float64) of every item for ``query``."""
        if self.bundle.scorer is not None:
            return self.bundle.scorer.score(query.items, query.ages)
        return (self._items @ query.vector).astype(np.float64)

    @property
    def model_id(self) -> str:
        return self.bundle.model_id

    def _user(self, user_id: str) -> int:
        self._refuse_forgotten(user_id)
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

    def query(self, user_id: str | None, seed_items: Sequence[str] | None = None) -> Query:
        """The :class:`Query` of a known user, of seed items, or of both (the seed items
        then join the user's history as the latest items)."""
        if seed_items is None:
            if user_id is None:
                raise KgrecError("give a user id or seed items")
            user = self._user(user_id)
            items, ages = self.bundle.history(user)
            vector = np.asarray(self.bundle.user_embedding[user], dtype=np.float32)
            return Query(user, items, ages, self._excluded(self.bundle.seen(user)), vector)
        if user_id is not None:
            self._refuse_forgotten(user_id)
        seeds = self._items_of(seed_items)
        known = self.bundle.user_index(str(user_id)) if user_id is not None else None
        items, ages, seen = seeds, np.zeros(seeds.size, dtype=np.int64), seeds
        if known is not None:
            past, past_ages = self.bundle.history(known)
            items = np.concatenate([past, seeds])
            ages = np.concatenate([past_ages + 1, ages])
            seen = np.union1d(seeds, self.bundle.seen(known))
        return Query(known, items, ages, self._excluded(seen), self._vector(items, ages))

    def _vector(self, items: np.ndarray, ages: np.ndarray) -> np.ndarray:
        scorer = self.bundle.scorer
        if scorer is not None and scorer.gnn is not None:
            vector, norm = scorer.gnn.user_vector(items, ages)
            return (vector / norm).astype(np.float32)
        if self._items.shape[1] == 0:
            return np.zeros(0, dtype=np.float32)
        return self._items[items].mean(axis=0)

    def _rank(self, scores: np.ndarray, seen: np.ndarray, k: int) -> list[Recommendation]:
        scores = scores.astype(np.float64, copy=True)
        scores[seen] = -np.inf
        top = top_k(scores, k)
        return [
            Recommendation(self.bundle.item_ids[i], self.bundle.titles[i], float(scores[i]), r)
            for r, i in enumerate(top.tolist(), start=1)
        ]

    def _rank_pool(self, query: Query, k: int, diversity: Diversity | None) -> list[Recommendation]:
        """Top ``k`` from a candidate pool: the index's candidates re-scored exactly (or by
        ``scorer``), else the best of all items, MMR-re-ranked when ``diversity``."""
        size = max(k, diversity.pool) if diversity is not None else k
        if self.index is not None:
            pool = self.index.candidates(query.vector, max(size, self.candidates), query.seen)
            if self.scorer is not None:
                pool_scores = np.asarray(
                    self.scorer(query.user, query.vector, pool), dtype=np.float64
                )
            elif self.bundle.scorer is None:  # dot products of the pool alone: O(pool), not O(I)
                pool_scores = (self._items[pool] @ query.vector).astype(np.float64)
            else:  # the hybrid standardises over every item, so it scores them all
                pool_scores = self.scores(query)[pool]
            keep = np.lexsort((pool, -pool_scores))[:size]
            pool, pool_scores = pool[keep], pool_scores[keep]
        else:
            full = self.scores(query)
            full[query.seen] = -np.inf
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
        query = self.query(user_id, seed_items)
        if self.index is None and diversity is None:
            return self._rank(self.scores(query), query.seen, k)  # [I]
        return self._rank_pool(query, k, diversity)

    def recommend_many(
        self,
        user_ids: Iterable[str],
        k: int = 10,
        batch_size: int = 256,
        diversity: Diversity | None = None,
    ) -> list[list[Recommendation]]:
        """:meth:`recommend` for many known users, scored ``batch_size`` at a time.

        Every unknown id raises :class:`UnknownIdError` before anything is scored for its
        batch (an embeddings-only bundle scores a batch in one ``[B, d] @ [d, I]`` product).
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
        if self._items.shape[1] == 0:
            raise KgrecError(
                "this model serves the item-item teacher alone: it has no item embeddings "
                "to compare items by"
            )
        trained = self._items[: self.bundle.meta.num_trained_items]  # [I, d]
        norms = np.maximum(np.linalg.norm(trained, axis=1), 1e-12)
        vector = self._items[index]
        cosine = (trained @ vector) / (norms * max(float(np.linalg.norm(vector)), 1e-12))
        return self._rank(cosine, np.asarray([index]) if index < trained.shape[0] else _NONE, k)

    def _score_batch(
        self, users: list[int], k: int, diversity: Diversity | None = None
    ) -> list[list[Recommendation]]:
        if self.bundle.scorer is None and self.index is None and diversity is None:
            vectors = np.asarray(self.bundle.user_embedding[users], dtype=np.float32)  # [B, d]
            scores = vectors @ self._items.T  # [B, I]
            return [
                self._rank(row, self._excluded(self.bundle.seen(u)), k)
                for row, u in zip(scores, users, strict=True)
            ]
        out = []
        for user in users:
            query = self.query(self.bundle.user_ids[user])
            if self.index is None and diversity is None:
                out.append(self._rank(self.scores(query), query.seen, k))
            else:
                out.append(self._rank_pool(query, k, diversity))
        return out


def _check_k(k: int) -> None:
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise KgrecError(f"k must be a positive integer, got {k!r}")
