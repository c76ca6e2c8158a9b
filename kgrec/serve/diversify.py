"""Diversified top-k: maximal marginal relevance (MMR) re-ranking of a candidate list.

Carbonell & Goldstein (SIGIR'98): items are picked one at a time, each maximising

    (1 - λ) · rel(i) - λ · max_{j already picked} sim(i, j)

over the remaining candidates. ``rel`` is the model's score rescaled to ``[0, 1]`` over the
candidates (so ``λ`` means the same for every user), ``sim`` a similarity in ``[0, 1]``.
``λ = 0`` keeps the score order exactly; larger ``λ`` trades score for variety.

Two similarities: :func:`embedding_similarity` (cosine of the model's item embeddings,
clipped at 0) and :func:`attribute_similarity` (cosine of the items' knowledge-graph
neighbour sets: all of them, or one entity type such as ``genre`` for "all my
recommendations are the same genre").
:func:`intra_list_diversity` is the usual measure of a list: mean ``1 - sim`` over its pairs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kgrec.errors import KgrecError

Similarity = Callable[[np.ndarray], np.ndarray]
"""``similarity(items [n]) -> [n, n]`` in ``[0, 1]`` with ones on the diagonal."""
POOL = 100
"""Candidates re-ranked per list (the ``POOL`` best by score)."""


@dataclass(frozen=True)
class Diversity:
    """How to diversify: ``lam`` (``λ`` in ``[0, 1]``) and the item similarity."""

    lam: float
    similarity: Similarity
    pool: int = POOL

    def __post_init__(self) -> None:
        if not 0.0 <= self.lam <= 1.0:
            raise KgrecError(f"--diversify must be between 0 and 1, got {self.lam}")


def mmr(scores: np.ndarray, similarity: np.ndarray, lam: float, k: int) -> np.ndarray:
    """Positions ``[<= k]`` into the candidates, in MMR order.

    Args:
        scores: Candidate scores ``[n]`` (any scale), best candidates anywhere.
        similarity: ``[n, n]`` similarities in ``[0, 1]``.
        lam: ``λ``; ``0`` returns the candidates by score (ties: lower position first).
    """
    n = scores.size
    k = min(k, n)
    order = np.lexsort((np.arange(n), -scores))
    if lam == 0.0 or k <= 1:
        return order[:k]
    spread = float(scores.max() - scores.min())
    relevance = (scores - scores.min()) / spread if spread > 0 else np.ones(n)
    picked = [int(order[0])]
    closest = similarity[order[0]].astype(np.float64).copy()  # max sim to the picked items
    available = np.ones(n, dtype=bool)
    available[order[0]] = False
    for _ in range(k - 1):
        gain = (1.0 - lam) * relevance - lam * closest
        gain[~available] = -np.inf
        best = int(np.flatnonzero(gain == gain.max())[0])  # ties: the lower position
        picked.append(best)
        available[best] = False
        np.maximum(closest, similarity[best], out=closest)
    return np.asarray(picked, dtype=np.int64)


def embedding_similarity(item_embedding: np.ndarray) -> Similarity:
    """Cosine similarity of item embeddings ``[num_items, d]``, negative values as 0."""

    def similarity(items: np.ndarray) -> np.ndarray:
        vectors = np.asarray(item_embedding[items], dtype=np.float32)
        vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return np.clip(vectors @ vectors.T, 0.0, 1.0)

    return similarity


def attribute_similarity(indptr: np.ndarray, indices: np.ndarray) -> Similarity:
    """Cosine similarity of the items' attribute sets, given as CSR rows (item ``i`` has
    the distinct attributes ``indices[indptr[i]:indptr[i + 1]]``); items without attributes
    are similar to nothing but themselves."""
    from scipy.sparse import csr_matrix

    num_items = len(indptr) - 1
    width = int(indices.max()) + 1 if indices.size else 1
    matrix = csr_matrix(
        (np.ones(indices.size, dtype=np.float32), indices, indptr), shape=(num_items, width)
    )
    norms = np.sqrt(np.diff(indptr)).astype(np.float32)

    def similarity(items: np.ndarray) -> np.ndarray:
        rows = matrix[items]
        overlap = np.asarray((rows @ rows.T).todense(), dtype=np.float32)
        scale = np.outer(norms[items], norms[items])
        out = np.divide(overlap, scale, out=np.zeros_like(overlap), where=scale > 0)
        np.fill_diagonal(out, 1.0)
        return out

    return similarity


def item_attributes(
    artifacts_dir: Path | str, item_ids: list[str], entity_type: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """CSR ``(indptr [num_items + 1], indices)`` of each item's knowledge-graph neighbours
    (entities it points to; only those of ``entity_type`` when given, e.g. ``genre``), from
    the artifact's triples, in ``item_ids`` order.

    Raises:
        KgrecError: When the artifact has no triples, or no entities of ``entity_type``.
    """
    # parquet through pyarrow: serving never loads pandas
    import pyarrow.parquet as pq

    path = Path(artifacts_dir) / "tables" / "triples.parquet"
    if not path.exists():
        raise KgrecError(
            f"no triples in {path.parent}: run kgrec build-graph (or diversify by embedding)"
        )
    table = pq.read_table(path, columns=["head", "tail", "head_type", "tail_type"])
    head, tail, head_type, tail_type = (
        np.asarray(table.column(c).to_pylist(), dtype=str)
        for c in ("head", "tail", "head_type", "tail_type")
    )
    keep = (head_type == "item") & (tail_type != "item")
    if entity_type is not None:
        types = sorted(set(tail_type[keep].tolist()))
        if entity_type not in types:
            raise KgrecError(
                f"no {entity_type!r} entities linked to items; diversify by kg, embedding or "
                f"one of: {', '.join(types)}"
            )
        keep &= tail_type == entity_type
    index = {item: k for k, item in enumerate(item_ids)}
    position = np.asarray([index.get(h, -1) for h in head[keep].tolist()], dtype=np.int64)
    known = position >= 0
    _, codes = np.unique(tail[keep][known], return_inverse=True)
    pairs = np.unique(np.stack([position[known], codes.astype(np.int64)], axis=1), axis=0)
    pairs = pairs.reshape(-1, 2)
    indptr = np.zeros(len(item_ids) + 1, dtype=np.int64)
    np.cumsum(np.bincount(pairs[:, 0], minlength=len(item_ids)), out=indptr[1:])
    return indptr, pairs[:, 1].astype(np.int64)


def intra_list_diversity(items: np.ndarray, similarity: Similarity) -> float:
    """Mean ``1 - sim`` over the pairs of a list (``0`` for fewer than two items)."""
    n = items.size
    if n < 2:
        return 0.0
    sim = similarity(items)
    return float((1.0 - sim)[np.triu_indices(n, 1)].mean())
