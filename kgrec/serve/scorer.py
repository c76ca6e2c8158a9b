"""The served score in numpy: the trained hybrid, recomputed from a user's history.

kgrec's scorer (:class:`kgrec.nn.hybrid.Hybrid`) reads nothing of a user but their history:
items ``h`` with ages ``a_h`` (``0`` = latest). With the teacher's members ``m`` (item-item
matrices ``W_m [I, I]``, input decays ``g_m``, weights ``w_m``) and the GNN (input item
embeddings ``E_in [I, d]``, normalised output embeddings over the temperature ``E_out [I, d]``,
decay ``g``, weight ``alpha``)::

    s_m(i)   = sum_h g_m ** a_h * W_m[h, i]
    s_gnn(i) = norm(sum_h g ** a_h * E_in[h]) . E_out[i]
    score(i) = sum_m w_m * z(s_m)(i) + alpha * z(s_gnn)(i)

where ``z`` standardises over the trained items (mean ``mu``, sample std ``sigma``). Items
added after training (``kgrec add-items``) have no row or column in the teacher: its term
scores them at its mean (``z = 0``), so only the GNN, which placed them, ranks them. Every
term is linear in the history (the standardisation's mean too), so for a given user (fixed
``sigma`` and norm) the score is *exactly* a sum of per-history-item contributions::

    score(i) = sum_h contribution(h, i)
    contribution(h, i) = sum_m w_m / sigma_m * g_m ** a_h * (W_m[h, i] - mean_j W_m[h, j])
                         + alpha / sigma_gnn * g ** a_h * E_in[h] . (E_out[i] - mean_j E_out[j])
                           / |sum_h' g ** a_h' E_in[h']|

which is what explanations report (:meth:`HybridScorer.contributions`): the share of a
recommendation each item of the user's past carries in the very score that ranked it.
Because the score is recomputed from the history, a recorded interaction changes the next
recommendation at once (it enters with age ``0``), without retraining.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from kgrec.errors import KgrecError

_EPS = 1e-8
STATS_KEPT = 4_096
"""Histories whose per-part score statistics :class:`HybridScorer` remembers."""
DENSE_ITEMS = 4_096
"""Largest catalogue whose item-item members are also kept dense in memory (64 MiB each at
most): a user's scores are then one matrix-vector product over their history rows, about
10x faster than gathering the sparse rows (ml-100k, `benchmarks/reasons.py`)."""


@dataclass(frozen=True)
class ItemItemPart:
    """One teacher member: CSR ``W [I, I]`` (row ``h``: what history item ``h`` scores)."""

    name: str
    indptr: np.ndarray  # [I + 1]
    indices: np.ndarray  # [nnz]
    data: np.ndarray  # [nnz] float32
    decay: float
    weight: float

    @property
    def num_items(self) -> int:
        return int(self.indptr.shape[0] - 1)

    def raw(self, items: np.ndarray, ages: np.ndarray) -> np.ndarray:
        """``s_m [I]`` of a history (``items [n]``, ``ages [n]``)."""
        dense = self._dense
        if dense is not None:  # g ** a [n'] @ W[h] [n', I]: contiguous rows, one BLAS call
            keep = items < self.num_items
            scale = self.decay ** ages[keep].astype(np.float64)
            return np.asarray(scale @ dense[items[keep]], dtype=np.float64)
        cols, vals = self._rows(items, ages)
        return np.bincount(cols, weights=vals, minlength=self.num_items)

    def pairwise(
        self, items: np.ndarray, ages: np.ndarray, target: int, num_trained: int
    ) -> np.ndarray:
        """``g ** a_h * (W[h, target] - mean_j W[h, j])`` for each history item ``[n]``
        (the mean over the ``num_trained`` items: each item's share of the standardisation's
        mean, so the shares sum to ``s_m(target) - mean(s_m)``)."""
        out = np.zeros(items.shape[0])
        if target >= self.num_items:  # an item added after training: scored at the mean
            return out
        for k, (h, a) in enumerate(zip(items.tolist(), ages.tolist(), strict=True)):
            if h >= self.num_items:
                continue
            lo, hi = int(self.indptr[h]), int(self.indptr[h + 1])
            total = float(np.sum(self.data[lo:hi], dtype=np.float64))
            value = -total / num_trained if num_trained else 0.0
            if target < self.num_items:
                hit = np.flatnonzero(self.indices[lo:hi] == target)
                if hit.size:
                    value += float(self.data[lo + int(hit[0])])
            out[k] = self.decay**a * value
        return out

    def pairwise_many(
        self, items: np.ndarray, ages: np.ndarray, targets: np.ndarray, num_trained: int
    ) -> np.ndarray:
        """:meth:`pairwise` for several ``targets [k]`` at once: ``[n, k]``, read from the
        targets' columns of ``W`` (no loop over the history)."""
        out = np.zeros((items.shape[0], targets.shape[0]))
        known = items < self.num_items
        unique, inverse = np.unique(items[known], return_inverse=True)
        position = np.full(self.num_items, -1, dtype=np.int64)  # history item -> row of values
        position[unique] = np.arange(unique.shape[0])
        values = np.zeros((unique.shape[0], targets.shape[0]))
        trained = targets < self.num_items  # an item added after training: scored at the mean
        dense = self._dense
        if dense is not None:
            values[:, trained] = dense[np.ix_(unique, targets[trained])]
        else:
            indptr, rows, data = self._columns
            for k, target in enumerate(targets.tolist()):
                if target >= self.num_items:
                    continue
                lo, hi = int(indptr[target]), int(indptr[target + 1])
                at = position[rows[lo:hi]]
                values[at[at >= 0], k] = data[lo:hi][at >= 0]
        if num_trained:
            values[:, trained] -= (self._row_sums[unique] / num_trained)[:, None]
        scale = self.decay ** ages[known].astype(np.float64)
        out[known] = values[inverse] * scale[:, None]
        return out

    @cached_property
    def _dense(self) -> np.ndarray | None:
        """``W`` as a dense ``[I, I]`` float32 matrix for catalogues of at most
        :data:`DENSE_ITEMS` items (scoring reads whole rows), else ``None``."""
        if self.num_items > DENSE_ITEMS:
            return None
        dense = np.zeros((self.num_items, self.num_items), dtype=np.float32)
        dense[self._entry_rows(), np.asarray(self.indices, dtype=np.int64)] = self.data
        return dense

    @cached_property
    def _columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``W`` by column: ``(indptr [I + 1], rows [nnz], values [nnz] float64)``."""
        rows = self._entry_rows()
        columns = np.asarray(self.indices, dtype=np.int64)
        order = np.argsort(columns, kind="stable")
        indptr = np.zeros(self.num_items + 1, dtype=np.int64)
        np.cumsum(np.bincount(columns, minlength=self.num_items), out=indptr[1:])
        return indptr, rows[order], np.asarray(self.data, dtype=np.float64)[order]

    @cached_property
    def _row_sums(self) -> np.ndarray:
        """``[I]``: ``sum_j W[h, j]`` per row."""
        dense = self._dense
        if dense is not None:
            return dense.sum(axis=1, dtype=np.float64)
        return np.bincount(self._entry_rows(), weights=self.data, minlength=self.num_items)

    def _entry_rows(self) -> np.ndarray:
        """``[nnz]``: the row of each stored entry."""
        counts: np.ndarray = np.diff(self.indptr).astype(np.int64)
        return np.repeat(np.arange(self.num_items), counts)

    def _rows(self, items: np.ndarray, ages: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        keep = items < self.num_items
        items, ages = items[keep], ages[keep]
        starts, ends = self.indptr[items], self.indptr[items + 1]
        lengths = ends - starts
        if not int(lengths.sum()):
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        owner = np.repeat(np.arange(items.shape[0]), lengths)
        offset = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        position = starts[owner] + offset
        scale = self.decay ** ages[owner].astype(np.float64)
        return self.indices[position], self.data[position].astype(np.float64) * scale


@dataclass(frozen=True)
class EmbeddingPart:
    """The GNN: ``E_in [I, d]``, ``E_out [I, d]`` (normalised, over the temperature)."""

    item_input: np.ndarray
    item_output: np.ndarray
    decay: float
    weight: float

    def user_vector(self, items: np.ndarray, ages: np.ndarray) -> tuple[np.ndarray, float]:
        """``(sum_h g ** a_h E_in[h] [d], its norm)``."""
        known = items < self.item_input.shape[0]
        scale = self.decay ** ages[known].astype(np.float64)
        vector = scale @ np.asarray(self.item_input[items[known]], dtype=np.float64)
        return vector, max(float(np.linalg.norm(vector)), 1e-12)

    def raw(self, items: np.ndarray, ages: np.ndarray) -> np.ndarray:
        """``s_gnn [I]`` (items added after training included)."""
        vector, norm = self.user_vector(items, ages)
        return np.asarray(self.item_output, dtype=np.float64) @ (vector / norm)

    def pairwise(
        self, items: np.ndarray, ages: np.ndarray, target: int, num_trained: int
    ) -> np.ndarray:
        """``g ** a_h E_in[h] . (E_out[target] - mean_j E_out[j]) / |sum|`` per history item
        ``[n]`` (the mean over the ``num_trained`` items, as for the teacher)."""
        _, norm = self.user_vector(items, ages)
        out = np.zeros(items.shape[0])
        known = items < self.item_input.shape[0]
        e_in = np.asarray(self.item_input[items[known]], dtype=np.float64)
        e_out = np.asarray(self.item_output[target], dtype=np.float64)
        mean = (
            np.asarray(self.item_output[:num_trained], dtype=np.float64).mean(axis=0)
            if num_trained
            else np.zeros(e_out.shape[0])
        )
        out[known] = self.decay ** ages[known].astype(np.float64) * (e_in @ (e_out - mean)) / norm
        return out

    def pairwise_many(
        self, items: np.ndarray, ages: np.ndarray, targets: np.ndarray, num_trained: int
    ) -> np.ndarray:
        """:meth:`pairwise` for several ``targets [k]`` at once: ``[n, k]``."""
        _, norm = self.user_vector(items, ages)
        out = np.zeros((items.shape[0], targets.shape[0]))
        known = items < self.item_input.shape[0]
        e_in = np.asarray(self.item_input[items[known]], dtype=np.float64)
        e_out = np.asarray(self.item_output[targets], dtype=np.float64)  # [k, d]
        if num_trained:
            e_out = e_out - self._mean(num_trained)
        scale = self.decay ** ages[known].astype(np.float64) / norm
        out[known] = (e_in @ e_out.T) * scale[:, None]
        return out

    def _mean(self, num_trained: int) -> np.ndarray:
        """``[d]`` mean output embedding of the first ``num_trained`` items (cached)."""
        cached = self.__dict__.get("_means", {})
        if num_trained not in cached:
            rows = np.asarray(self.item_output[:num_trained], dtype=np.float64)
            cached[num_trained] = rows.mean(axis=0)
            self.__dict__["_means"] = cached
        return cached[num_trained]


@dataclass(frozen=True)
class Contributions:
    """``score(target) = constant + sum(per_item)`` for one user and one target item.

    Attributes:
        items: The history items ``[n]`` (indices).
        per_item: Each one's contribution ``[n]``.
        by_part: ``{part name: [n]}``, the same split by teacher member and ``gnn``.
        constant: What no history item carries (0: the standardisation's mean is shared out).
        score: The target's score (``constant + per_item.sum()``).
    """

    items: np.ndarray
    per_item: np.ndarray
    by_part: dict[str, np.ndarray]
    constant: float
    score: float


@dataclass(frozen=True)
class HybridScorer:
    """The served score of :mod:`kgrec.serve.scorer` over ``num_items`` (trained + added).

    Attributes:
        teacher: The teacher's members with non-zero weight.
        gnn: The GNN part (``None`` when the teacher is served alone).
        num_items: Scored items (trained, then items placed after training).
        num_trained_items: Items the teacher and the standardisation know.
        standardize: Whether parts are z-scored (false for a GNN served alone, whose
            score is then its raw cosine over the temperature).
    """

    teacher: tuple[ItemItemPart, ...]
    gnn: EmbeddingPart | None
    num_items: int
    num_trained_items: int
    standardize: bool = True
    _stats_seen: OrderedDict[bytes, list[tuple[float, float]]] = field(
        default_factory=OrderedDict, init=False, repr=False, compare=False
    )
    """Per-part ``(mean, std)`` of the histories scored last (:data:`STATS_KEPT`), so the
    split of a list just ranked (:meth:`contributions_many`) does not score it again."""

    def _parts(self) -> list[tuple[str, ItemItemPart | EmbeddingPart]]:
        parts: list[tuple[str, ItemItemPart | EmbeddingPart]] = [(p.name, p) for p in self.teacher]
        if self.gnn is not None:
            parts.append(("gnn", self.gnn))
        return parts

    def _stats(self, raw: np.ndarray) -> tuple[float, float]:
        if not self.standardize:
            return 0.0, 1.0
        trained = raw[: self.num_trained_items]
        std = float(trained.std(ddof=1)) if trained.size > 1 else 0.0
        if std <= _EPS:
            return float(trained.mean()) if trained.size else 0.0, np.inf
        return float(trained.mean()), std

    def _raw(self, part: ItemItemPart | EmbeddingPart, items: np.ndarray, ages: np.ndarray):
        raw = part.raw(items, ages)
        if raw.shape[0] < self.num_items:  # items added after training: the teacher's mean
            fill = float(raw.mean()) if raw.size else 0.0
            raw = np.concatenate([raw, np.full(self.num_items - raw.shape[0], fill)])
        return raw

    def score(self, items: np.ndarray, ages: np.ndarray) -> np.ndarray:
        """Scores ``[num_items]`` (float64) of a history ``items [n]``, ``ages [n]``."""
        items, ages = np.asarray(items, dtype=np.int64), np.asarray(ages, dtype=np.int64)
        total = np.zeros(self.num_items)
        if not items.size:
            return total
        stats = []
        for _, part in self._parts():
            raw = self._raw(part, items, ages)
            mean, std = self._stats(raw)
            stats.append((mean, std))
            if np.isfinite(std):
                total += part.weight * (raw - mean) / std
        self._remember(items, ages, stats)
        return total

    def _remember(
        self, items: np.ndarray, ages: np.ndarray, stats: list[tuple[float, float]]
    ) -> None:
        seen = self._stats_seen
        seen[items.tobytes() + b"|" + ages.tobytes()] = stats
        while len(seen) > STATS_KEPT:
            seen.popitem(last=False)

    def _part_stats(self, items: np.ndarray, ages: np.ndarray) -> list[tuple[float, float]]:
        """Per-part ``(mean, std)`` of a history (remembered from :meth:`score`, or computed)."""
        known = self._stats_seen.get(items.tobytes() + b"|" + ages.tobytes())
        if known is not None:
            return known
        return [self._stats(self._raw(part, items, ages)) for _, part in self._parts()]

    def contributions(self, items: np.ndarray, ages: np.ndarray, target: int) -> Contributions:
        """The exact split of ``score(target)`` over the history items (module docstring)."""
        items, ages = np.asarray(items, dtype=np.int64), np.asarray(ages, dtype=np.int64)
        per_item = np.zeros(items.shape[0])
        by_part: dict[str, np.ndarray] = {}
        constant = 0.0
        for name, part in self._parts():
            raw = self._raw(part, items, ages)
            _, std = self._stats(raw)
            if not np.isfinite(std) or not items.size:
                continue
            if self.standardize:
                share = (
                    part.weight / std * part.pairwise(items, ages, target, self.num_trained_items)
                )
            else:  # a GNN served alone: its raw score, no mean taken out
                share = part.weight * part.pairwise(items, ages, target, 0)
            by_part[name] = share
            per_item += share
        return Contributions(items, per_item, by_part, constant, float(constant + per_item.sum()))

    def contributions_many(
        self, items: np.ndarray, ages: np.ndarray, targets: np.ndarray
    ) -> np.ndarray:
        """``[n, k]``: ``contributions(items, ages, t).per_item`` for each of ``targets [k]``,
        computed together (one score of the history, then the targets' columns)."""
        items, ages = np.asarray(items, dtype=np.int64), np.asarray(ages, dtype=np.int64)
        targets = np.asarray(targets, dtype=np.int64)
        out = np.zeros((items.shape[0], targets.shape[0]))
        if not items.size:
            return out
        for (_, part), (_, std) in zip(self._parts(), self._part_stats(items, ages), strict=True):
            if not np.isfinite(std):
                continue
            if self.standardize:
                pairs = part.pairwise_many(items, ages, targets, self.num_trained_items)
                out += part.weight / std * pairs
            else:  # a GNN served alone: its raw score, no mean taken out
                out += part.weight * part.pairwise_many(items, ages, targets, 0)
        return out


_SCORER_META = "scorer.json"


def save_scorer(scorer: HybridScorer, folder: str | Path) -> None:
    """Write ``scorer`` as ``.npy`` arrays and a JSON description into ``folder`` (new)."""
    folder = Path(folder)
    folder.mkdir(parents=True)
    members = []
    for k, part in enumerate(scorer.teacher):
        for name in ("indptr", "indices", "data"):
            np.save(folder / f"teacher{k}_{name}.npy", getattr(part, name))
        members.append({"name": part.name, "decay": part.decay, "weight": part.weight})
    gnn = None
    if scorer.gnn is not None:
        np.save(folder / "item_input.npy", scorer.gnn.item_input.astype(np.float32))
        np.save(folder / "item_output.npy", scorer.gnn.item_output.astype(np.float32))
        gnn = {"decay": scorer.gnn.decay, "weight": scorer.gnn.weight}
    meta = {
        "teacher": members,
        "gnn": gnn,
        "num_items": scorer.num_items,
        "num_trained_items": scorer.num_trained_items,
        "standardize": scorer.standardize,
    }
    (folder / _SCORER_META).write_text(json.dumps(meta), encoding="utf-8")


def load_scorer(folder: str | Path) -> HybridScorer:
    """Read what :func:`save_scorer` wrote (arrays memory-mapped)."""
    folder = Path(folder)
    try:
        meta = json.loads((folder / _SCORER_META).read_text(encoding="utf-8"))
        teacher = tuple(
            ItemItemPart(
                name=str(m["name"]),
                decay=float(m["decay"]),
                weight=float(m["weight"]),
                **{
                    name: _mapped(folder / f"teacher{k}_{name}.npy")
                    for name in ("indptr", "indices", "data")
                },
            )
            for k, m in enumerate(meta["teacher"])
        )
        gnn = None
        if meta["gnn"] is not None:
            gnn = EmbeddingPart(
                item_input=_mapped(folder / "item_input.npy"),
                item_output=_mapped(folder / "item_output.npy"),
                decay=float(meta["gnn"]["decay"]),
                weight=float(meta["gnn"]["weight"]),
            )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise KgrecError(f"{folder}: unreadable scorer ({exc}); re-export the bundle") from exc
    return HybridScorer(
        teacher,
        gnn,
        int(meta["num_items"]),
        int(meta["num_trained_items"]),
        bool(meta["standardize"]),
    )


def _mapped(path: Path) -> np.ndarray:
    """A memory-mapped ``.npy`` as a plain array view (indexing a ``np.memmap`` costs more)."""
    return np.asarray(np.load(path, mmap_mode="r"))
