"""Paired statistics for interleaved A/B rounds: is HEAD slower than BASE on this machine?

Each round ran BASE and HEAD back to back on the same machine, so whatever the machine was
doing during that round (another job, a warm or throttled CPU) touched both. The figure per
round is the *ratio* ``HEAD / BASE`` of a workload's metric (the median over its runs, or
over their per-epoch samples where the result set kept them): a slow machine slows both
sides and leaves the ratio alone. Across rounds:

- the estimate is the **median of the per-round ratios**;
- its interval is the distribution-free confidence interval of the **Wilcoxon signed-rank
  test** on the log ratios (the Hodges–Lehmann interval): the Walsh averages
  ``(dᵢ + dⱼ)/2, i ≤ j`` of the log ratios, sorted, cut at the signed-rank statistic's
  exact critical value. It assumes only that the log ratio's distribution is symmetric about
  its centre, which suits small samples (6 rounds) better than a bootstrap: with ``n`` rounds
  the attainable two-sided levels are multiples of ``2⁻ⁿ``, and below 6 rounds no interval
  reaches 95 % (the smallest level then is ``2 · 2⁻⁵ = 6.25 %``): those comparisons say
  *unclear*.

A workload *regressed* when the median ratio is worse than the metric's threshold (the rule
table of :mod:`benchkit.compare`, or ``--threshold``) *and* the whole interval lies on the
worse side of 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

CONFIDENCE = 0.95
# Beyond this many rounds the signed-rank distribution is taken as normal.
_EXACT_UP_TO = 100


@dataclass(frozen=True)
class PairedInterval:
    """``ratio``: median of the per-round ratios; ``low``/``high``: the signed-rank interval
    of the ratio (``None`` when too few rounds); ``confidence``: its attained level."""

    ratio: float
    low: float | None
    high: float | None
    confidence: float | None
    rounds: int

    def excludes_one(self) -> bool:
        """Whether the interval lies wholly above or below 1."""
        return self.low is not None and self.high is not None and (self.low > 1 or self.high < 1)


def _null_counts(n: int) -> list[int]:
    """Number of subsets of ``{1..n}`` with each sum: the signed-rank statistic's null
    distribution, times ``2ⁿ``."""
    counts = [1] + [0] * (n * (n + 1) // 2)
    for k in range(1, n + 1):
        for s in range(len(counts) - 1, k - 1, -1):
            counts[s] += counts[s - k]
    return counts


def _critical(n: int, confidence: float) -> tuple[int, float] | None:
    """The largest ``k`` with ``P(T ≤ k) ≤ (1 - confidence) / 2`` and the two-sided level
    attained, ``1 - 2 P(T ≤ k)``; ``None`` when even ``k = 0`` is too likely."""
    alpha = (1.0 - confidence) / 2.0
    if n > _EXACT_UP_TO:
        mean = n * (n + 1) / 4.0
        sd = math.sqrt(n * (n + 1) * (2 * n + 1) / 24.0)
        z = _normal_quantile(1.0 - alpha)
        k = math.floor(mean - z * sd - 0.5)
        return (k, confidence) if k >= 0 else None
    counts = _null_counts(n)
    total = 2**n
    cumulative = 0
    best = None
    for k, c in enumerate(counts):
        cumulative += c
        if cumulative / total > alpha:
            break
        best = (k, 1.0 - 2.0 * cumulative / total)
    return best


def _normal_quantile(p: float) -> float:
    # bisection on the normal CDF: good to 1e-10, no SciPy needed
    lo, hi = -10.0, 10.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if 0.5 * math.erfc(-mid / math.sqrt(2)) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def paired_ratio(ratios: Sequence[float], confidence: float = CONFIDENCE) -> PairedInterval:
    """Median and signed-rank interval of per-round ratios ``HEAD / BASE``.

    :raises ValueError: no ratio is positive and finite.
    """
    values = np.asarray([r for r in ratios if math.isfinite(r) and r > 0], dtype=np.float64)
    if values.size == 0:
        raise ValueError("no positive, finite ratio")
    n = int(values.size)
    median = float(np.median(values))
    critical = _critical(n, confidence)
    if critical is None:
        return PairedInterval(median, None, None, None, n)
    k, attained = critical
    logs = np.log(values)
    i, j = np.triu_indices(n)
    walsh = np.sort((logs[i] + logs[j]) / 2.0)
    low, high = walsh[k], walsh[walsh.size - 1 - k]
    return PairedInterval(median, math.exp(low), math.exp(high), attained, n)


@dataclass
class PairedFinding:
    """One workload and metric over the rounds."""

    workload: str
    metric: str
    better: str
    base: float
    head: float
    ratios: list[float]
    interval: PairedInterval | None
    verdict: str
    threshold: float
    note: str = ""
    gated: bool = True

    @property
    def fails(self) -> bool:
        """Whether this finding fails the A/B comparison."""
        return self.gated and self.verdict == "regressed"


@dataclass
class PairedComparison:
    """Every finding of an A/B run and notes about it."""

    base: str
    head: str
    rounds: int
    findings: list[PairedFinding]
    notes: list[str] = field(default_factory=list)
    extra_failures: list[str] = field(default_factory=list)
    interrupted: bool = False

    @property
    def regressed(self) -> bool:
        """Whether a timing or another check regressed."""
        return bool(self.extra_failures) or any(f.fails for f in self.findings)

    @property
    def exit_code(self) -> int:
        """0 when nothing regressed, 1 when something did; 130 when Ctrl-C cut the rounds
        short (what they showed is printed all the same)."""
        if self.interrupted:
            return 130
        return 1 if self.regressed else 0


def judge(
    workload: str,
    metric: str,
    better: str,
    threshold: float,
    base: Sequence[float],
    head: Sequence[float],
) -> PairedFinding:
    """The finding for one workload and metric from its per-round values (``base[r]`` and
    ``head[r]`` ran in round ``r``)."""
    pairs = [
        (b, h)
        for b, h in zip(base, head, strict=True)
        if math.isfinite(b) and math.isfinite(h) and b > 0
    ]
    ratios = [h / b for b, h in pairs]
    base_median = float(np.median([b for b, _ in pairs])) if pairs else math.nan
    head_median = float(np.median([h for _, h in pairs])) if pairs else math.nan
    finding = PairedFinding(
        workload, metric, better, base_median, head_median, ratios, None, "unclear", threshold
    )
    if not ratios:
        finding.note = "no round with both sides measured"
        return finding
    interval = paired_ratio(ratios)
    finding.interval = interval
    if interval.low is None:
        count = len(ratios)
        finding.note = f"{count} round{'s' * (count != 1)}; a 95 % interval needs at least 6"
        return finding
    change = interval.ratio - 1.0
    worse = change < 0 if better == "higher" else change > 0
    beyond = abs(change) > threshold
    if beyond and interval.excludes_one():
        finding.verdict = "regressed" if worse else "improved"
    elif interval.excludes_one():
        finding.verdict = "within"
        finding.note = f"a real change, below the {threshold * 100:g} % threshold"
    else:
        finding.verdict = "same"
    return finding
