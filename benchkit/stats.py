"""Statistics for noisy metrics: how sure are we that B is slower than A?

The question ``benchkit compare`` asks of a timing is "is the new median different from the
baseline's by more than noise?". It answers with a bootstrap confidence interval of the ratio
of medians ``median(new) / median(base)``:

- the repeats of each side come in *clusters* (one per run: the per-epoch throughput samples
  of one seed), and the samples of one run share its conditions (what else the machine was
  doing), so the bootstrap is hierarchical: each resample draws runs with replacement, then
  samples with replacement within each drawn run. With one sample per run (a run's total
  time) it is the plain bootstrap over runs;
- the resampling loop is compiled with numba and seeded, so the same inputs always give the
  same interval and the same verdict. numba is imported on first use only: ``benchkit run``
  never pays for it.

When the raw repeats are not at hand (a pytest-benchmark file saved without
``--benchmark-save-data``), :func:`notch_ratio_ci` bounds the ratio with the medians'
notches, ``median ± 1.57 · IQR / √n`` (McGill, Tukey and Larsen 1978), the interval box
plots draw.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_ITERATIONS = 2000
DEFAULT_CONFIDENCE = 0.95
DEFAULT_SEED = 0


@dataclass(frozen=True)
class RatioInterval:
    """``ratio`` = median(new) / median(base), with its confidence interval ``[low, high]``.

    ``method`` says how the interval was made (``bootstrap`` or ``notch``); ``repeats`` is
    the number of samples on each side (baseline, new); ``medians`` the two medians."""

    ratio: float
    low: float
    high: float
    confidence: float
    method: str
    repeats: tuple[int, int]
    medians: tuple[float, float] = (math.nan, math.nan)

    def excludes_one(self) -> bool:
        """Whether the interval lies wholly above or wholly below 1: a change that noise over
        these repeats does not explain."""
        return self.low > 1.0 or self.high < 1.0


def _pack(runs: Sequence[Sequence[float]], side: str) -> tuple[np.ndarray, np.ndarray]:
    arrays = [np.asarray(r, dtype=np.float64) for r in runs]
    arrays = [a[np.isfinite(a)] for a in arrays]
    arrays = [a for a in arrays if a.size]
    if not arrays:
        raise ValueError(f"no finite {side} samples")
    sizes = np.array([0] + [a.size for a in arrays], dtype=np.int64)
    return np.concatenate(arrays), np.cumsum(sizes)


def bootstrap_ratio_of_medians(
    base: Sequence[Sequence[float]],
    new: Sequence[Sequence[float]],
    iterations: int = DEFAULT_ITERATIONS,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = DEFAULT_SEED,
) -> RatioInterval:
    """Percentile bootstrap interval of ``median(new) / median(base)``.

    :param base: the baseline's samples, one sequence per run (cluster); non-finite values
        are dropped.
    :param new: the new side's samples, likewise.
    :param iterations: bootstrap resamples.
    :param confidence: two-sided coverage of the interval (0.95: the 2.5th to 97.5th
        percentile of the resampled ratios).
    :param seed: the resampling RNG's seed: equal inputs give equal intervals.
    :raises ValueError: a side without finite samples, or a non-positive baseline median.
    """
    base_values, base_offsets = _pack(base, "baseline")
    new_values, new_offsets = _pack(new, "new")
    base_median = float(np.median(base_values))
    if base_median <= 0:
        raise ValueError(f"baseline median is {base_median}; a ratio needs it positive")
    new_median = float(np.median(new_values))
    ratio = new_median / base_median
    out = np.empty(iterations)
    from benchkit._resample import bootstrap_ratios  # numba: imported on first use

    bootstrap_ratios(base_values, base_offsets, new_values, new_offsets, seed, out)
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(out, [tail, 100.0 - tail])
    return RatioInterval(
        ratio=ratio,
        low=float(low),
        high=float(high),
        confidence=confidence,
        method="bootstrap",
        repeats=(int(base_values.size), int(new_values.size)),
        medians=(base_median, new_median),
    )


def notch_ratio_ci(
    base_median: float,
    base_iqr: float,
    base_n: int,
    new_median: float,
    new_iqr: float,
    new_n: int,
) -> RatioInterval:
    """Interval of ``new_median / base_median`` from each median's notch
    ``median ± 1.57 · IQR / √n`` (roughly 95 % for the comparison of two medians).

    For summaries that kept only median, IQR and the number of rounds.
    """
    if base_median <= 0 or base_n < 1 or new_n < 1:
        raise ValueError("notch interval needs a positive baseline median and rounds >= 1")
    base_half = 1.57 * base_iqr / math.sqrt(base_n)
    new_half = 1.57 * new_iqr / math.sqrt(new_n)
    base_low = base_median - base_half
    low = (new_median - new_half) / (base_median + base_half)
    high = (new_median + new_half) / base_low if base_low > 0 else math.inf
    return RatioInterval(
        ratio=new_median / base_median,
        low=low,
        high=high,
        confidence=0.95,
        method="notch",
        repeats=(base_n, new_n),
        medians=(base_median, new_median),
    )


# --- claims over seeds: a one-sided rank test and the effect's interval ------------------------

ALTERNATIVES = ("greater", "less")


@dataclass(frozen=True)
class RankTest:
    """A one-sided Mann-Whitney U test of two samples.

    ``u`` is the statistic of the first sample (the number of pairs in which its value is the
    larger, ties counting a half); ``p_value`` the probability, with no difference between the
    two, of a U at least as extreme in the ``alternative`` direction; ``method`` ``exact`` (the
    null distribution counted) or ``asymptotic`` (normal, tie-corrected, with continuity
    correction)."""

    u: float
    p_value: float
    method: str
    alternative: str
    sizes: tuple[int, int]


def _average_ranks(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ranks from 1, ties given their average rank; and the size of each group of ties."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    sizes = np.diff(np.r_[starts, ordered.size])
    mean_rank = starts + (sizes + 1) / 2.0
    ranks = np.empty(values.size)
    ranks[order] = np.repeat(mean_rank, sizes)
    return ranks, sizes


def _u_distribution(m: int, n: int) -> np.ndarray:
    """How many of the C(m + n, m) orderings of two samples without ties give each value of
    U (0 … m·n) for the first sample, by the recurrence on the largest value: it is either
    the first sample's (beating all ``n``) or the second's."""
    previous = [np.ones(1) for _ in range(n + 1)]  # m = 0: U is 0 whatever n is
    for i in range(1, m + 1):
        current = [np.ones(1)]
        for j in range(1, n + 1):
            counts = np.zeros(i * j + 1)
            counts[j : j + previous[j].size] += previous[j]
            counts[: current[j - 1].size] += current[j - 1]
            current.append(counts)
        previous = current
    return previous[n]


def mann_whitney_u(
    x: Sequence[float], y: Sequence[float], alternative: str = "greater"
) -> RankTest:
    """One-sided Mann-Whitney U test: are the values of ``x`` larger (``greater``) or smaller
    (``less``) than those of ``y``?

    Infinite values are ordinary values here (larger than any finite one): an epoch count of
    "never" ranks above every run that got there. The method is the one
    ``scipy.stats.mannwhitneyu`` chooses with ``method="auto"``: the exact null distribution
    when there are no ties and not both samples have more than 8 values; otherwise the normal
    approximation with the tie correction and a continuity correction. The results equal
    scipy's (the tests hold values computed with it; scipy is not a dependency).

    :raises ValueError: an empty sample, a NaN, or an unknown ``alternative``.
    """
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative {alternative!r} is not one of {', '.join(ALTERNATIVES)}")
    xs = np.asarray(x, dtype=np.float64)
    ys = np.asarray(y, dtype=np.float64)
    if not xs.size or not ys.size:
        raise ValueError("a rank test needs at least one value on each side")
    both = np.concatenate([xs, ys])
    if np.isnan(both).any():
        raise ValueError("a rank test cannot rank NaN")
    n1, n2 = xs.size, ys.size
    ranks, ties = _average_ranks(both)
    u1 = float(ranks[:n1].sum() - n1 * (n1 + 1) / 2)
    u = u1 if alternative == "greater" else n1 * n2 - u1
    if not (n1 > 8 and n2 > 8) and not (ties > 1).any():
        counts = _u_distribution(n1, n2)
        p = float(counts[round(u) :].sum() / counts.sum())
        method = "exact"
    else:
        n = n1 + n2
        tie_term = float((ties.astype(np.float64) ** 3 - ties).sum())
        spread = math.sqrt(n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1))))
        numerator = u - n1 * n2 / 2 - 0.5
        # every value the same (no spread): z is -inf, p is 1, no evidence either way
        z = numerator / spread if spread > 0 else math.copysign(math.inf, numerator)
        p = 0.5 * math.erfc(z / math.sqrt(2))
        method = "asymptotic"
    return RankTest(
        u=u1,
        p_value=min(max(p, 0.0), 1.0),
        method=method,
        alternative=alternative,
        sizes=(n1, n2),
    )


def median_difference(a: np.ndarray, b: np.ndarray) -> float:
    """``median(a) - median(b)``; two infinite medians of the same sign ("never" on both
    sides) differ by 0."""
    ma, mb = float(np.median(a)), float(np.median(b))
    if ma == mb:
        return 0.0
    return ma - mb


@dataclass(frozen=True)
class DifferenceInterval:
    """``difference`` = median(a) − median(b), with a percentile bootstrap interval
    ``[low, high]`` at ``confidence`` (each side resampled on its own, seeded)."""

    difference: float
    low: float
    high: float
    confidence: float


def bootstrap_median_difference(
    a: Sequence[float],
    b: Sequence[float],
    iterations: int = DEFAULT_ITERATIONS,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = DEFAULT_SEED,
) -> DifferenceInterval:
    """Percentile bootstrap interval of the difference of medians of two independent samples.

    Each resample draws ``len(a)`` values of ``a`` and ``len(b)`` of ``b`` with replacement,
    from a generator seeded with ``seed``: equal inputs give equal intervals. Infinite values
    (a run that never met a criterion) stay infinite, so an interval may reach ±inf; the
    bounds are values the resampled differences took (no interpolation across an infinity).

    :raises ValueError: an empty sample or a NaN.
    """
    xa = np.asarray(a, dtype=np.float64)
    xb = np.asarray(b, dtype=np.float64)
    if not xa.size or not xb.size:
        raise ValueError("a difference of medians needs at least one value on each side")
    if np.isnan(xa).any() or np.isnan(xb).any():
        raise ValueError("a difference of medians cannot use NaN")
    rng = np.random.default_rng(seed)
    medians_a = np.median(xa[rng.integers(0, xa.size, (iterations, xa.size))], axis=1)
    medians_b = np.median(xb[rng.integers(0, xb.size, (iterations, xb.size))], axis=1)
    with np.errstate(invalid="ignore"):
        differences = np.where(medians_a == medians_b, 0.0, medians_a - medians_b)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(differences, [tail, 1.0 - tail], method="inverted_cdf")
    return DifferenceInterval(
        difference=median_difference(xa, xb),
        low=float(low),
        high=float(high),
        confidence=confidence,
    )
