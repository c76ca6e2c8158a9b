"""Approximate inner-product search over a large catalogue (faiss, CPU).

Exact serving scores every item, ``[num_items, d] @ [d]``, then selects the top k: about
20 ms a user at a million items on one core. Above ``serve.ann_min_items`` items kgrec
serves from an inverted-file index instead (``faiss.IndexIVFFlat``, inner product): the
items are split into ``nlist`` clusters by k-means (``nlist`` about ``2 * sqrt(num_items)``),
and a query scans only the ``nprobe`` clusters whose centroids score highest, so a user
costs ``nlist + nprobe * num_items / nlist`` dot products instead of ``num_items``.

``nprobe`` is chosen when the index is built: for a sample of users (``tuning_users``), the
smallest ``nprobe`` whose top-k agrees with exact search on at least ``target_recall`` of
the items (recall@k, seen items excluded on both sides) is kept, and the recall reached is
recorded in ``meta.json``. Items a user has seen are excluded inside the search (a faiss
``IDSelector``), so they are never returned and never crowd out unseen items.

**Re-ranking seam.** :meth:`ItemIndex.candidates` returns ``n`` candidates by the dot
product; :class:`~kgrec.serve.recommend.Recommender` then scores those candidates with its
``scorer`` (default: the exact dot product, which IVF-flat already computed) and keeps the
top k. A hybrid score (say ``z_u . z_i`` plus an item-item term) plugs in as a scorer: the
index retrieves by the dot-product part, the scorer re-ranks the few hundred candidates
with the full score, so the approximation only affects which items are considered.

The index lives in ``<serving bundle>/ann/`` (``index.faiss``, ``meta.json``), is built on
first use (tens of seconds at a million items on 2 cores) and rebuilt when the bundle's
model or item count changes; a re-exported bundle replaces the whole folder.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kgrec.errors import KgrecError

ANN_DIR = "ann"
FORMAT = 1
NPROBES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
TRAIN_PER_LIST = 40
"""k-means training points per list (faiss asks for at least 39)."""
KMEANS_ITERATIONS = 10


@dataclass(frozen=True)
class IndexMeta:
    """How an index was built and how well it agrees with exact search.

    Attributes:
        recall: Mean recall@``k`` against exact search over ``tuning_users`` users at the
            chosen ``nprobe`` (seen items excluded on both sides).
    """

    model_id: str
    num_items: int
    dim: int
    nlist: int
    nprobe: int
    k: int
    recall: float
    tuning_users: int
    target_recall: float
    build_seconds: float
    format: int = FORMAT


class ItemIndex:
    """An IVF-flat inner-product index over the item embeddings ``[num_items, d]``."""

    def __init__(self, index: Any, meta: IndexMeta) -> None:
        self.index = index
        self.meta = meta

    @classmethod
    def build(
        cls,
        items: np.ndarray,
        queries: np.ndarray,
        seen: Callable[[int], np.ndarray],
        *,
        model_id: str = "",
        k: int = 20,
        target_recall: float = 0.95,
        seed: int = 0,
    ) -> ItemIndex:
        """Train and fill the index, then pick ``nprobe`` on ``queries``.

        Args:
            items: Item embeddings ``[num_items, d]``.
            queries: User vectors ``[n, d]`` to tune ``nprobe`` on (a sample of users).
            seen: ``seen(q)``: item indices query ``q`` must never get.
        """
        faiss = _faiss()
        start = time.perf_counter()
        items = np.ascontiguousarray(items, dtype=np.float32)
        n, dim = items.shape
        nlist = int(min(max(16, 2 * math.sqrt(n)), max(1, n // 39)))
        rng = np.random.default_rng(seed)
        train = items[rng.choice(n, min(n, TRAIN_PER_LIST * nlist), replace=False)]
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = seed
        index.cp.niter = KMEANS_ITERATIONS
        index.train(train)
        index.add(items)
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        exact = [_exact_top(items, queries[q], seen(q), k) for q in range(len(queries))]
        probe, recall = nlist, 1.0
        for candidate in (p for p in NPROBES if p <= nlist):
            found = [
                _search(faiss, index, queries[q], k, seen(q), candidate)
                for q in range(len(queries))
            ]
            recall = _recall(found, exact)
            probe = candidate
            if recall >= target_recall:
                break
        meta = IndexMeta(
            model_id=model_id,
            num_items=n,
            dim=dim,
            nlist=nlist,
            nprobe=probe,
            k=k,
            recall=round(recall, 4),
            tuning_users=len(queries),
            target_recall=target_recall,
            build_seconds=round(time.perf_counter() - start, 2),
        )
        return cls(index, meta)

    def candidates(self, vector: np.ndarray, n: int, exclude: np.ndarray) -> np.ndarray:
        """Item indices ``[<= n]`` with the highest ``vector . z_i``, best first, none of
        them in ``exclude``."""
        return _search(_faiss(), self.index, vector, n, exclude, self.meta.nprobe)

    def save(self, folder: Path | str) -> None:
        """Write ``index.faiss`` and ``meta.json`` into ``folder`` atomically."""
        faiss = _faiss()
        folder = Path(folder)
        staging = folder.with_name(f".{folder.name}.tmp")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        faiss.write_index(self.index, str(staging / "index.faiss"))
        (staging / "meta.json").write_text(json.dumps(asdict(self.meta), indent=2), "utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)

    @classmethod
    def load(cls, folder: Path | str) -> ItemIndex | None:
        """The index saved in ``folder``, or ``None`` when absent or unreadable."""
        folder = Path(folder)
        try:
            meta = IndexMeta(**json.loads((folder / "meta.json").read_text("utf-8")))
            index = _faiss().read_index(str(folder / "index.faiss"))
        except (OSError, ValueError, TypeError, RuntimeError):
            return None
        return cls(index, meta)


def open_index(
    bundle: Any,
    *,
    min_items: int,
    target_recall: float = 0.95,
    tuning_users: int = 200,
    note: Callable[[str], None] | None = None,
) -> ItemIndex | None:
    """The ANN index of a serving bundle, or ``None`` when exact scoring applies.

    ``None`` when the catalogue has fewer than ``min_items`` items (``0`` turns the index
    off). Builds and saves the index on first use (``note`` is told), and rebuilds it when
    the bundle's model or item count changed.

    Raises:
        KgrecError: When the catalogue is large but faiss is not installed.
    """
    if min_items <= 0 or bundle.num_items < min_items:
        return None
    folder = Path(bundle.path) / ANN_DIR
    index = ItemIndex.load(folder)
    if (
        index is not None
        and index.meta.format == FORMAT
        and index.meta.model_id == bundle.model_id
        and index.meta.num_items == bundle.num_items
        and index.meta.target_recall == target_recall
    ):
        return index
    if note:
        note(f"building the approximate index for {bundle.num_items:,} items (once per model)")
    rng = np.random.default_rng(0)
    users = np.sort(rng.choice(bundle.num_users, min(tuning_users, bundle.num_users), False))
    index = ItemIndex.build(
        np.asarray(bundle.item_embedding),
        np.asarray(bundle.user_embedding[users]),
        lambda q: bundle.seen(int(users[q])),
        model_id=bundle.model_id,
        target_recall=target_recall,
    )
    index.save(folder)
    if note:
        meta = index.meta
        note(
            f"approximate index: {meta.nlist} lists, nprobe {meta.nprobe}, recall@{meta.k} "
            f"{meta.recall:.3f} against exact search ({meta.build_seconds:.0f} s)"
        )
    return index


def _search(
    faiss: Any, index: Any, vector: np.ndarray, n: int, exclude: np.ndarray, nprobe: int
) -> np.ndarray:
    query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
    excluded = np.ascontiguousarray(exclude, dtype=np.int64)
    selector = faiss.IDSelectorNot(faiss.IDSelectorBatch(excluded)) if excluded.size else None
    params = faiss.SearchParametersIVF(nprobe=nprobe, sel=selector)
    _, ids = index.search(query, n, params=params)
    found = ids[0]
    return found[found >= 0].astype(np.int64)


def _exact_top(items: np.ndarray, vector: np.ndarray, exclude: np.ndarray, k: int) -> np.ndarray:
    scores = items @ vector
    scores[exclude] = -np.inf
    top = np.argpartition(-scores, k - 1)[:k] if k < scores.size else np.arange(scores.size)
    return top[np.isfinite(scores[top])]


def _recall(found: list[np.ndarray], exact: list[np.ndarray]) -> float:
    hits = [len(np.intersect1d(f, e)) / max(1, len(e)) for f, e in zip(found, exact, strict=True)]
    return float(np.mean(hits)) if hits else 1.0


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as exc:
        raise KgrecError(
            "this catalogue is large enough for approximate search, which needs faiss: "
            "pip install 'kgrec[ann]' (faiss-cpu), or set serve.ann_min_items: 0 for exact "
            "scoring"
        ) from exc
    return faiss
