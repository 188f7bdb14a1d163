"""The statistics behind ``aggregate = "test"`` claims: a one-sided Mann-Whitney U test, and the
difference of medians with a seeded bootstrap interval.

The expected U and p-values were computed once with ``scipy.stats.mannwhitneyu`` (scipy
1.17.1, ``method="auto"``, ``use_continuity=True``) and are pasted here as literals; scipy is
not a dependency of benchkit.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchkit.stats import (
    bootstrap_median_difference,
    mann_whitney_u,
    median_difference,
)

INF = math.inf

#: name: (x, y, {alternative: (U of x, p-value, method)}), from scipy.
SCIPY = {
    "exact_small": (
        [3.0, 5.0, 7.0, 9.0],
        [1.0, 2.0, 4.0, 6.0],
        {"greater": (13.0, 0.1, "exact"), "less": (13.0, 0.9428571428571428, "exact")},
    ),
    "exact_unequal": (
        [12.0, 15.0, 11.0],
        [1.0, 4.0, 2.0, 8.0, 6.0, 3.0, 10.0],
        {"greater": (21.0, 0.008333333333333333, "exact"), "less": (21.0, 1.0, "exact")},
    ),
    "exact_sizes_3_20": (
        [30.0, 31.5, 2.5],
        [float(i) for i in range(20)],
        {
            "greater": (43.0, 0.13382269904009034, "exact"),
            "less": (43.0, 0.8848108413325805, "exact"),
        },
    ),
    "asymptotic_ten_each": (
        [23.0, 41.0, 35.0, 29.0, 44.0, 38.0, 50.0, 27.0, 33.0, 46.0],
        [21.0, 19.0, 30.0, 25.0, 17.0, 22.0, 28.0, 26.0, 16.0, 24.0],
        {
            "greater": (92.0, 0.0008531246844597982, "asymptotic"),
            "less": (92.0, 0.9993425276651434, "asymptotic"),
        },
    ),
    "ties_and_misses": (
        [34.0, 37.0, INF, 36.0, INF, 35.0, 37.0, 40.0, INF, 36.0],
        [17.0, 18.0, 17.0, INF, 19.0, 18.0, 17.0, 20.0, 18.0, 17.0],
        {
            "greater": (91.5, 0.0008738702793179066, "asymptotic"),
            "less": (91.5, 0.999327957888331, "asymptotic"),
        },
    ),
    "all_equal": (
        [5.0, 5.0, 5.0],
        [5.0, 5.0],
        {"greater": (3.0, 1.0, "asymptotic"), "less": (3.0, 1.0, "asymptotic")},
    ),
    "every_miss_one_side": (
        [INF] * 10,
        [12.0, 13.0, 12.0, 14.0, 15.0, 12.0, 13.0, 16.0, 12.0, 13.0],
        {
            "greater": (100.0, 2.8816435569887487e-05, "asymptotic"),
            "less": (100.0, 0.9999796577271775, "asymptotic"),
        },
    ),
}


@pytest.mark.parametrize("alternative", ["greater", "less"])
@pytest.mark.parametrize("name", list(SCIPY))
def test_u_and_p_equal_scipys(name, alternative):
    x, y, expected = SCIPY[name]
    u, p, method = expected[alternative]
    result = mann_whitney_u(x, y, alternative)
    assert result.u == u
    assert result.p_value == pytest.approx(p, rel=1e-12, abs=1e-15)
    assert result.method == method
    assert result.sizes == (len(x), len(y))


def test_swapping_the_samples_swaps_the_direction():
    x, y, _ = SCIPY["ties_and_misses"]
    assert mann_whitney_u(x, y, "greater").p_value == pytest.approx(
        mann_whitney_u(y, x, "less").p_value, rel=1e-12
    )


def test_the_exact_distribution_counts_every_ordering():
    # with 2 and 2 values there are 6 orderings; U of the first sample is 0,1,2,2,3,4
    result = mann_whitney_u([3.0, 4.0], [1.0, 2.0], "greater")
    assert (result.u, result.p_value) == (4.0, 1 / 6)
    assert mann_whitney_u([2.0, 4.0], [1.0, 3.0], "greater").p_value == pytest.approx(2 / 6)


@pytest.mark.parametrize(
    ("x", "y", "alternative", "message"),
    [
        ([], [1.0], "greater", "at least one value"),
        ([math.nan], [1.0], "greater", "NaN"),
        ([1.0], [2.0], "two-sided", "not one of greater, less"),
    ],
)
def test_bad_input_is_refused(x, y, alternative, message):
    with pytest.raises(ValueError, match=message):
        mann_whitney_u(x, y, alternative)


def test_the_median_difference_treats_two_nevers_as_equal():
    assert median_difference(np.array([3.0, 5.0, 9.0]), np.array([1.0, 2.0])) == 3.5
    assert median_difference(np.array([INF, INF]), np.array([INF, 1.0, INF])) == 0.0
    assert median_difference(np.array([INF, INF, 3.0]), np.array([1.0])) == INF


def test_the_bootstrap_interval_is_seeded_and_covers_the_difference():
    rng = np.random.default_rng(7)
    a, b = rng.normal(30.0, 2.0, 10), rng.normal(20.0, 2.0, 10)
    first = bootstrap_median_difference(a, b, seed=3)
    assert first == bootstrap_median_difference(a, b, seed=3)
    assert first != bootstrap_median_difference(a, b, seed=4)
    assert first.low <= first.difference <= first.high
    assert first.low > 5.0 and first.high < 15.0  # the true difference is 10
    assert first.confidence == 0.95


def test_the_interval_reaches_infinity_when_misses_decide_the_median():
    a = [INF] * 6 + [40.0] * 4  # most fp32 seeds never reach it
    b = [17.0, 18.0, 17.0, 19.0, 18.0, 17.0, 17.0, 20.0, 18.0, 17.0]
    interval = bootstrap_median_difference(a, b)
    assert interval.difference == INF
    assert interval.high == INF and math.isfinite(interval.low)
    assert interval.low >= 20.0


def test_identical_samples_give_a_zero_effect():
    interval = bootstrap_median_difference([5.0] * 4, [5.0] * 4)
    assert (interval.difference, interval.low, interval.high) == (0.0, 0.0, 0.0)
