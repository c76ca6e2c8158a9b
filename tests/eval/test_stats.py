"""Seed statistics and the paired bootstrap, against cases computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kgrec.eval.stats import mean_over_seeds, mean_std, paired_bootstrap


def test_mean_and_sample_std() -> None:
    figure = mean_std([0.1, 0.2, 0.3])
    assert figure.mean == pytest.approx(0.2)
    assert figure.std == pytest.approx(0.1)  # sqrt(((-.1)^2 + 0 + .1^2) / (3 - 1))
    assert figure.n == 3
    assert str(figure) == "0.2000 ± 0.1000"
    single = mean_std([0.25])
    assert single.std is None and str(single) == "0.2500"
    with pytest.raises(ValueError):
        mean_std([])


def test_bootstrap_of_three_users_matches_the_enumerated_distribution() -> None:
    # differences d = (0, 0, 3): a resample's mean is K, the number of times user 3 is drawn,
    # K ~ Binomial(3, 1/3): P(K=0) = 8/27 > 2.5% and P(K=3) = 1/27 > 2.5%, so the 95%
    # percentile interval is exactly [0, 3]; the observed mean is 1.
    ci = paired_bootstrap([1.0, 1.0, 4.0], [1.0, 1.0, 1.0], resamples=4000, seed=0)
    assert ci.difference == pytest.approx(1.0)
    assert (ci.low, ci.high) == pytest.approx((0.0, 3.0))
    assert not ci.above_zero
    assert (ci.num_users, ci.resamples, ci.confidence) == (3, 4000, 0.95)


def test_bootstrap_of_two_users() -> None:
    # d = (0, 1): resample means 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4 -> [0, 1]
    ci = paired_bootstrap(np.array([0.5, 1.0]), np.array([0.5, 0.0]), resamples=2000, seed=3)
    assert ci.difference == pytest.approx(0.5)
    assert (ci.low, ci.high) == pytest.approx((0.0, 1.0))


def test_a_constant_improvement_has_a_point_interval_above_zero() -> None:
    a = torch.linspace(0.1, 0.9, 50)
    ci = paired_bootstrap(a + 0.02, a)
    assert (ci.low, ci.difference, ci.high) == pytest.approx((0.02, 0.02, 0.02))
    assert ci.above_zero


def test_large_samples_match_the_normal_approximation() -> None:
    rng = np.random.default_rng(7)
    b = rng.uniform(0, 1, 5000)
    a = b + rng.normal(0.01, 0.2, 5000)
    d = a - b
    half = 1.959964 * d.std(ddof=1) / math.sqrt(d.size)
    ci = paired_bootstrap(a, b, resamples=3000, seed=1)
    assert ci.difference == pytest.approx(d.mean())
    assert ci.low == pytest.approx(d.mean() - half, abs=0.15 * half)
    assert ci.high == pytest.approx(d.mean() + half, abs=0.15 * half)


def test_pairing_removes_the_users_own_spread() -> None:
    # users differ a lot, the models by a small constant-ish amount: only a paired test sees it
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 1, 400)
    a = base + 0.01 + rng.normal(0, 0.001, 400)
    assert paired_bootstrap(a, base).above_zero
    shuffled = rng.permutation(base)  # the same values, pairing destroyed
    assert not paired_bootstrap(a, shuffled).above_zero


def test_bootstrap_is_seeded() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.uniform(size=300), rng.uniform(size=300)
    assert paired_bootstrap(a, b, seed=5) == paired_bootstrap(a, b, seed=5)
    assert paired_bootstrap(a, b, seed=5).low != paired_bootstrap(a, b, seed=6).low


def test_bootstrap_rejects_unpaired_input() -> None:
    with pytest.raises(ValueError, match="same users"):
        paired_bootstrap([0.1, 0.2, 0.3], [0.1, 0.2])
    with pytest.raises(ValueError, match="two users"):
        paired_bootstrap([0.1], [0.2])
    with pytest.raises(ValueError, match="confidence"):
        paired_bootstrap([0.1, 0.2], [0.2, 0.1], confidence=95)


def test_mean_over_seeds_averages_each_user() -> None:
    out = mean_over_seeds([torch.tensor([0.0, 1.0]), np.array([1.0, 0.0]), [0.5, 0.5]])
    assert out.tolist() == [0.5, 0.5]
    with pytest.raises(ValueError, match="same users"):
        mean_over_seeds([np.zeros(2), np.zeros(3)])
