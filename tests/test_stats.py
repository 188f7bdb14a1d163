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


# Exact figures: each step of the interval checked against a hand computation.


def test_the_notch_interval_is_the_formula():
    # base: median 2, IQR 0.4, 16 rounds: notch half-width 1.57 * 0.4 / 4 = 0.157
    # new: median 3, IQR 0.8, 4 rounds: 1.57 * 0.8 / 2 = 0.628
    got = notch_ratio_ci(2.0, 0.4, 16, 3.0, 0.8, 4)
    assert got.ratio == 1.5
    assert got.low == pytest.approx((3.0 - 0.628) / (2.0 + 0.157), rel=1e-12)
    assert got.high == pytest.approx((3.0 + 0.628) / (2.0 - 0.157), rel=1e-12)
    assert (got.confidence, got.method, got.repeats, got.medians) == (
        0.95,
        "notch",
        (16, 4),
        (2.0, 3.0),
    )


def test_a_baseline_notch_between_zero_and_one_still_bounds_the_ratio():
    got = notch_ratio_ci(1.0, 0.1, 1, 1.0, 0.1, 1)  # both notches 1 ± 0.157
    assert got.high == pytest.approx(1.157 / 0.843, rel=1e-12)
    assert got.low == pytest.approx(0.843 / 1.157, rel=1e-12)


def test_float32_samples_are_judged_in_float64():
    # the mean of the two middle values rounds differently in float32
    base = [np.array([1.0, 1.0000001], dtype=np.float32)]
    new = [np.array([1.5, 1.5000001], dtype=np.float32)]
    got = bootstrap_ratio_of_medians(base, new)
    expected = [np.asarray(r, dtype=np.float64) for r in (base[0], new[0])]
    assert got.medians == (float(np.median(expected[0])), float(np.median(expected[1])))


def test_a_notch_reaching_zero_leaves_the_interval_open_above():
    got = notch_ratio_ci(1.0, 10.0, 1, 1.0, 0.0, 1)  # base notch 1 ± 15.7
    assert got.high == float("inf") and got.low == pytest.approx(1.0 / 16.7, rel=1e-12)
    edge = notch_ratio_ci(1.57, 1.0, 1, 1.0, 0.0, 1)  # base notch exactly 1.57 ± 1.57
    assert edge.high == float("inf")


@pytest.mark.parametrize(
    "args",
    [
        (0.0, 0.1, 10, 1.0, 0.1, 10),
        (-1.0, 0.1, 10, 1.0, 0.1, 10),
        (1.0, 0.1, 0, 1.0, 0.1, 10),
        (1.0, 0.1, 10, 1.0, 0.1, 0),
    ],
    ids=["zero-median", "negative-median", "no-base-rounds", "no-new-rounds"],
)
def test_the_notch_interval_refuses_what_it_cannot_bound(args):
    with pytest.raises(
        ValueError, match=r"^notch interval needs a positive baseline median and rounds >= 1$"
    ):
        notch_ratio_ci(*args)


def test_one_round_a_side_is_enough_for_a_notch():
    assert notch_ratio_ci(1.0, 0.0, 1, 2.0, 0.0, 1).low == 2.0


def test_the_bootstrap_interval_is_the_percentiles_of_the_seeded_resamples():
    from benchkit._resample import bootstrap_ratios

    rng = np.random.default_rng(6)
    base = [rng.lognormal(0, 0.1, 30), rng.lognormal(0.05, 0.1, 20)]
    new = [rng.lognormal(0.2, 0.1, 25), rng.lognormal(0.1, 0.1, 30), rng.lognormal(0.1, 0.1, 5)]
    got = bootstrap_ratio_of_medians(base, new, iterations=300, confidence=0.8, seed=11)

    out = np.empty(300)
    base_values = np.concatenate(base)
    new_values = np.concatenate(new)
    base_offsets = np.array([0, 30, 50])
    new_offsets = np.array([0, 25, 55, 60])
    bootstrap_ratios(base_values, base_offsets, new_values, new_offsets, 11, out)
    low, high = np.percentile(out, [10.0, 90.0])
    assert (got.low, got.high) == (low, high)
    assert got.medians == (np.median(base_values), np.median(new_values))
    assert got.ratio == np.median(new_values) / np.median(base_values)
    assert (got.confidence, got.method, got.repeats) == (0.8, "bootstrap", (50, 60))


def test_identical_repeats_give_a_point_interval():
    got = bootstrap_ratio_of_medians([[2.0, 2.0, 2.0]], [[3.0, 3.0]])
    assert (got.ratio, got.low, got.high) == (1.5, 1.5, 1.5)
    assert got.repeats == (3, 2) and got.medians == (2.0, 3.0)
    assert got.confidence == 0.95


def test_empty_and_non_finite_runs_are_dropped_before_resampling():
    # the empty and all-NaN runs must not count as runs to draw (they would add no samples
    # but change the offsets); the result equals the one without them
    messy = bootstrap_ratio_of_medians([[1.0, 1.1], [], [np.nan]], [[1.2, 1.3], [1.25]], seed=3)
    clean = bootstrap_ratio_of_medians([[1.0, 1.1]], [[1.2, 1.3], [1.25]], seed=3)
    assert messy == clean
    with pytest.raises(ValueError, match="no finite new samples"):
        bootstrap_ratio_of_medians([[1.0]], [[], [np.nan]])


def test_a_negative_baseline_median_is_refused():
    with pytest.raises(ValueError, match=r"baseline median is -1\.0; a ratio needs it positive"):
        bootstrap_ratio_of_medians([[-1.0]], [[1.0]])


@pytest.mark.parametrize(
    ("low", "high", "excludes"),
    [(1.0, 1.2, False), (1.0001, 1.2, True), (0.8, 1.0, False), (0.8, 0.9999, True)],
)
def test_an_interval_touching_one_does_not_exclude_it(low, high, excludes):
    interval = RatioInterval(1.1, low, high, 0.95, "bootstrap", (5, 5))
    assert interval.excludes_one() is excludes
