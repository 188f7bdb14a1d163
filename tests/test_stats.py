"""The bootstrap behind noisy-metric verdicts: it covers the true ratio, it is reproducible,
and it widens when runs disagree with each other."""

from __future__ import annotations

import numpy as np
import pytest

from benchkit.stats import RatioInterval, bootstrap_ratio_of_medians, notch_ratio_ci


def runs(
    rng,
    median: float,
    n_runs: int = 3,
    per_run: int = 100,
    spread: float = 0.05,
    run_shift: float = 0.0,
) -> list[np.ndarray]:
    """Timing-like samples: lognormal around ``median``, each run shifted by up to
    ``run_shift`` (what the machine was doing during that run)."""
    out = []
    for _ in range(n_runs):
        shift = 1 + rng.uniform(-run_shift, run_shift)
        out.append(median * shift * rng.lognormal(0.0, spread, per_run))
    return out


def test_the_interval_covers_the_true_ratio_and_excludes_one():
    rng = np.random.default_rng(1)
    interval = bootstrap_ratio_of_medians(runs(rng, 1.0), runs(rng, 1.25))
    assert interval.method == "bootstrap" and interval.repeats == (300, 300)
    assert interval.low < 1.25 < interval.high
    assert interval.low > 1.0 and interval.excludes_one()
    assert interval.low <= interval.ratio <= interval.high


def test_coverage_is_near_the_nominal_level():
    rng = np.random.default_rng(2)
    covered = 0
    trials = 60
    for _ in range(trials):
        base = runs(rng, 1.0, n_runs=1, per_run=60, spread=0.1)
        new = runs(rng, 0.8, n_runs=1, per_run=60, spread=0.1)
        interval = bootstrap_ratio_of_medians(base, new, iterations=1000)
        covered += interval.low <= 0.8 <= interval.high
    assert covered / trials >= 0.85  # nominal 95 %


def test_no_change_is_not_clear():
    rng = np.random.default_rng(3)
    interval = bootstrap_ratio_of_medians(runs(rng, 2.0), runs(rng, 2.0))
    assert interval.low < 1.0 < interval.high and not interval.excludes_one()


def test_the_same_seed_gives_the_same_interval():
    rng = np.random.default_rng(4)
    base, new = runs(rng, 1.0), runs(rng, 1.1)
    first = bootstrap_ratio_of_medians(base, new, seed=7)
    assert first == bootstrap_ratio_of_medians(base, new, seed=7)
    other = bootstrap_ratio_of_medians(base, new, seed=8)
    assert other.ratio == first.ratio and (other.low, other.high) != (first.low, first.high)


def test_runs_that_disagree_widen_the_interval():
    """Resampling whole runs first: samples of one run share its conditions, so they are
    not independent repeats."""
    rng = np.random.default_rng(5)
    base = runs(rng, 1.0, n_runs=4, run_shift=0.15)
    new = runs(rng, 1.0, n_runs=4, run_shift=0.15)
    clustered = bootstrap_ratio_of_medians(base, new)
    pooled = bootstrap_ratio_of_medians([np.concatenate(base)], [np.concatenate(new)])
    assert clustered.high - clustered.low > 2 * (pooled.high - pooled.low)


def test_non_finite_samples_are_dropped_and_empty_sides_refused():
    interval = bootstrap_ratio_of_medians([[1.0, 1.0, np.nan, 1.0]], [[2.0, np.inf, 2.0]])
    assert interval.ratio == 2.0 and interval.repeats == (3, 2)
    with pytest.raises(ValueError, match="no finite baseline samples"):
        bootstrap_ratio_of_medians([[np.nan]], [[1.0]])
    with pytest.raises(ValueError, match="positive"):
        bootstrap_ratio_of_medians([[0.0, 0.0]], [[1.0]])


def test_the_notch_interval_for_summaries():
    clear = notch_ratio_ci(1.0, 0.05, 100, 1.3, 0.05, 100)
    assert isinstance(clear, RatioInterval) and clear.method == "notch"
    assert clear.ratio == pytest.approx(1.3) and clear.excludes_one()
    unclear = notch_ratio_ci(1.0, 0.5, 5, 1.1, 0.5, 5)
    assert not unclear.excludes_one()
