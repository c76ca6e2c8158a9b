"""Statistics for comparing models: mean ± std over seeds, paired bootstrap intervals over users.

- :func:`mean_std`: the mean and the *sample* standard deviation (``ddof = 1``) of one figure
  over training seeds; one seed has no spread (``std = None``).
- :func:`paired_bootstrap`: a percentile bootstrap confidence interval of the mean per-user
  difference ``a_u - b_u`` of two models evaluated on the *same* users (e.g. NDCG@20 of kgrec and
  of the best baseline on each test user). Users are resampled with replacement, both models'
  values of a user travel together (that is the pairing), ``resamples`` times with a seeded
  generator (:func:`scipy.stats.bootstrap` on the differences). An interval above zero says the
  difference is not an accident of which users happen to be in the test set; it says nothing
  about the variance over training seeds, which :func:`mean_std` reports (average per-user
  values over seeds first, :func:`mean_over_seeds`, to fold both in).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import ArrayLike


@dataclass(frozen=True)
class MeanStd:
    """A figure over seeds: ``mean``, sample ``std`` (``None`` for one seed) and ``n``."""

    mean: float
    std: float | None
    n: int

    def __str__(self) -> str:
        return f"{self.mean:.4f}" if self.std is None else f"{self.mean:.4f} ± {self.std:.4f}"


def mean_std(values: Sequence[float]) -> MeanStd:
    """Mean and sample standard deviation (``ddof = 1``) of ``values`` (at least one)."""
    if not values:
        raise ValueError("mean_std needs at least one value")
    array = np.asarray(values, dtype=np.float64)
    std = float(array.std(ddof=1)) if array.size > 1 else None
    return MeanStd(float(array.mean()), std, int(array.size))


@dataclass(frozen=True)
class PairedInterval:
    """A bootstrap confidence interval of ``mean(a - b)`` over paired users.

    Attributes:
        difference: The observed mean difference ``mean_u(a_u - b_u)``.
        low, high: The interval's bounds.
        confidence: Its level (``0.95``).
        num_users: Users paired.
        resamples: Bootstrap resamples drawn.
        seed: The generator's seed.
    """

    difference: float
    low: float
    high: float
    confidence: float
    num_users: int
    resamples: int
    seed: int

    @property
    def above_zero(self) -> bool:
        """Whether the whole interval lies above zero (``a`` better than ``b``)."""
        return self.low > 0

    def __str__(self) -> str:
        return f"{self.difference:+.4f} [{self.low:+.4f}, {self.high:+.4f}]"


def paired_bootstrap(
    a: ArrayLike,
    b: ArrayLike,
    *,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedInterval:
    """Percentile bootstrap interval of ``mean(a - b)`` over users (see the module docstring).

    Args:
        a, b: Per-user values ``[U]`` of two models, the same users in the same order.
        resamples: Bootstrap resamples (``>= 2000`` for a 95% interval's tails).
        confidence: The interval's level.
        seed: Seeds the resampling (the same inputs and seed give the same interval).
    """
    from scipy.stats import bootstrap

    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"paired values need the same users: shapes {x.shape} and {y.shape}")
    if x.size < 2:
        raise ValueError("a bootstrap over users needs at least two users")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    difference = x - y
    result = bootstrap(
        (difference,),
        np.mean,
        n_resamples=resamples,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
        batch=max(1, min(resamples, 2**24 // difference.size)),  # <= 16M values at a time
    )
    low, high = result.confidence_interval
    return PairedInterval(
        float(difference.mean()), float(low), float(high), confidence, int(x.size), resamples, seed
    )


def mean_over_seeds(per_seed: Sequence[torch.Tensor | np.ndarray]) -> np.ndarray:
    """Element-wise mean ``[U]`` of per-user values ``[U]`` from several seeds (same users)."""
    arrays = [np.asarray(v, dtype=np.float64) for v in per_seed]
    if not arrays:
        raise ValueError("mean_over_seeds needs at least one seed")
    if any(a.shape != arrays[0].shape for a in arrays):
        raise ValueError("every seed must cover the same users")
    return np.mean(arrays, axis=0)
