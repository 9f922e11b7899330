"""Monte Carlo checks of the estimators' honesty: intervals cover what their label says, and standard
errors match the spread of the estimate over independent replications.

Synthetic seeds: each organism has a true score; a seed's mean is that score plus between-seed spread
(fine-tuning noise) plus measurement noise over a few hundred samples. The interval over seeds must
contain the true score 95% of the time, within ±3 points, for 3, 5 and 10 seeds.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from selfaware.report.results import bootstrap_ci, clustered_stderr, seed_interval, t_interval, t_quantile

REPS = 4000  # coverage is estimated to ±0.7 points (2 SE at 95%)


def seed_means(rng: np.random.Generator, truth: float, k: int) -> np.ndarray:
    """k seed means: between-seed spread (normal, sd 0.08) + the mean of 200 Bernoulli answers."""
    p = np.clip(truth + rng.normal(0, 0.08, size=k), 0.001, 0.999)
    return rng.binomial(200, p) / 200


def coverage(method: str, k: int, truth: float = 0.6, seed: int = 0) -> float:
    rng = np.random.default_rng([seed, k])
    hits = 0
    for _ in range(REPS):
        lo, hi = seed_interval(seed_means(rng, truth, k), method, 1000, rng)
        hits += lo <= truth <= hi
    return hits / REPS


@pytest.mark.parametrize("k", [3, 5, 10])
def test_t_interval_covers_its_label(k):
    assert abs(coverage("t", k) - 0.95) <= 0.03


def test_paper_bootstrap_undercovers_with_few_seeds():
    # Why the t interval is the default: resampling 3 values never reaches beyond them.
    assert coverage("bootstrap", 3) < 0.85


def test_t_quantile_matches_tables():
    for df, q in [(1, 12.7062), (2, 4.3027), (4, 2.7764), (9, 2.2622), (29, 2.0452)]:
        assert t_quantile(0.975, df) == pytest.approx(q, abs=1e-4)


def test_single_seed_has_no_interval():
    lo, hi = t_interval(np.array([0.4]))
    assert math.isnan(lo) and math.isnan(hi)
    lo, hi = bootstrap_ci(np.array([0.4]), 100, np.random.default_rng(0))
    assert math.isnan(lo) and math.isnan(hi)


@pytest.mark.parametrize("orders", [2, 6])
def test_clustered_stderr_matches_the_spread_over_replications(orders):
    """Behavior items asked in both orders (2), or a 3-option question's 6 orders per paraphrase: the orders
    share the item's true probability. The clustered SE matches the SD of the mean over replications within
    10%; the naive SE (orders as independent samples) is too small by about sqrt(orders)."""
    rng = np.random.default_rng(orders)
    units, reps = 40, 3000
    means, clustered, naive = [], [], []
    clusters = [u for u in range(units) for _ in range(orders)]
    for _ in range(reps):
        item_p = rng.beta(2, 2, size=units)  # each unit's probability
        values = np.repeat(item_p, orders) + rng.normal(0, 0.03, size=units * orders)  # order noise
        means.append(values.mean())
        clustered.append(clustered_stderr(values, clusters))
        naive.append(values.std(ddof=1) / math.sqrt(len(values)))
    truth = float(np.std(means, ddof=1))
    assert abs(np.mean(clustered) / truth - 1) <= 0.10
    assert np.mean(naive) / truth == pytest.approx(1 / math.sqrt(orders), rel=0.1)
