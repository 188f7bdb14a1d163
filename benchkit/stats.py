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
