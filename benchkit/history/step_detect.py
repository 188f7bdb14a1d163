r"""Steps in a benchmark's history: where did the level change, and at which commit?

The model
---------
A metric measured once per commit (the median over a commit's runs) is taken to be
*piecewise constant plus noise*: it stays at one level until a commit moves it. We work with
``x_i = ln y_i``, so a step is a ratio (−20 % is ``ln 0.8`` at any scale) and noise that is a
fraction of the value (±3 %) has the same size everywhere.

A segmentation of ``x_0 … x_{n-1}`` into ``k`` pieces, each at the median of its points, is
judged by the penalised L1 cost (the *Potts* functional of [Friedrich2008]_, as in asv)

.. math::

    F = \sum_{r=1}^{k} \sum_{i \in \text{piece } r} |x_i - \operatorname{median}_r| + \gamma (k - 1)

and the detector returns the segmentation of least ``F``. L1 rather than squared error: it is
the likelihood of Laplace noise, and one job that ran on a busy machine (an outlier) moves a
median, and so the fit, far less than a mean. (Squared error finds a small step in uniform or
Gaussian noise somewhat more often, but turns a pair of slow jobs into a step; the same fit on
ranks has a penalty that needs no noise estimate, but places steps less exactly. Both were
tried on the benchmark below and lost.) Each piece must hold at least ``min_size``
commits (default 2), so a single odd commit is never a step of its own.

Solving it exactly
------------------
``F`` is minimised exactly by dynamic programming over the end of the last piece ("optimal
partitioning", Jackson et al. 2005): ``B[j] = min_i B[i] + γ + C(i, j)``, where ``C(i, j)`` is
the L1 cost of ``x_i … x_{j-1}``. For each start ``i`` the loop walks ``j`` forward and keeps
the points in two heaps (the lower half and the upper half, with their sums), so the median
and ``C(i, j) = Σ upper − Σ lower (+ the median when the count is odd)`` cost ``O(log n)`` per
step: ``O(n² log n)`` for the whole problem, compiled with numba (a history of 1,000 commits
takes milliseconds). asv solves the same functional only approximately (an exact solver on
windows of 20 points, then merging) because its loop is pure Python; with numba the exact
answer is affordable.

Choosing γ
----------
The penalty sets how much a step must explain to be reported. It is a BIC-style penalty on
the noise scale of this very series,

.. math::

    \gamma = \beta \, \hat\sigma \, \ln n, \qquad
    \hat\sigma = 1.4826 \cdot \operatorname{MAD}(x_{i+1} - x_i) / \sqrt 2

``σ̂`` is the robust standard deviation of the commit-to-commit differences: a step changes
only one difference, so ``k`` steps barely move the median absolute deviation of ``n − 1``
of them, while noise moves every difference. The ``ln n`` is Schwarz's: the reduction in cost
that a spurious split of pure noise can reach grows with the number of places to try it, and
the penalty must outgrow it. asv instead picks γ by minimising an information criterion over
a family of solutions (with a fudge factor β of its own); a scale measured from the data
and one fixed ``β`` (:data:`DEFAULT_BETA`) is simpler to explain and to check, and
``benchmarks/step_detection.py`` is that check: on 40-commit histories with ±3 % noise it
finds a −20 % step at its commit in every seed and reports a step in about 1 of 100 flat
series.

Slow jobs
---------
L1 alone shrugs off one slow job, but two slow jobs a commit or two apart (a busy CI runner
for a quarter of an hour) make a two-commit piece: a false step down and back up. Before the
fit, each value more than ``5 σ̂`` from the median of the five around it (itself and two
either side) is replaced by that median (a Hampel filter). Noise never comes near ``5 σ̂``;
a slow job 20 % off does; a real step moves the local median with it after two commits, so
it stays. On the benchmark's flat series with 5 % slow jobs (1,000 seeds) this takes false
alarms from 19 to 4 in 100, and changes nothing on clean series (1.1 in 100 either way).

Where exactly, and how sure
---------------------------
For each step the module also gives the commits that could have introduced it: with the
neighbouring steps held fixed, every split position whose two-piece cost is within
``b · ln 8`` of the best (``b``: the Laplace scale, the mean absolute residual of the fit) is
kept. This is a likelihood *support interval*: positions at least 1/8 as likely as the best
one. A clear step has exactly one commit in it.

Limits
------
The noise is assumed independent from commit to commit. A machine whose speed drifts slowly
(a trend rather than steps) violates that: the detector then cuts the drift into steps. asv
models such drift as AR(1) noise; here, use ``benchkit ab`` to compare two commits run
interleaved on one machine, which cancels drift by design.

.. [Friedrich2008] F. Friedrich et al., "Complexity Penalized M-Estimation: Fast
   Computation", Journal of Computational and Graphical Statistics 17.1, 201-224 (2008).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numba
import numpy as np

#: β in γ = β σ̂ ln n, from ``benchmarks/step_detection.py --seeds 1000 --beta B`` on
#: 40-commit series with ±3 % uniform noise (flat: false alarms per 100 series; planted: the
#: +5 % step found at its commit; the −20 % step is found at its commit for every β here):
#: β 2: 3.3 and 76 %; β 2.5: 1.1 and 71 %; β 3: 0.5 and 61 %. 2.5 keeps false alarms well
#: under the goal of 5 in 100 with most of the sensitivity.
DEFAULT_BETA = 2.5
#: Fewest commits in a piece: one odd commit is an outlier, not a level.
DEFAULT_MIN_SIZE = 2
#: The slow-job filter: a value further than this many σ̂ from its neighbourhood's median
#: (``HAMPEL_REACH`` values either side) is replaced by that median before the fit.
HAMPEL_SIGMAS = 5.0
HAMPEL_REACH = 2
#: Relative likelihood that bounds the support interval of a step's position.
SUPPORT_RATIO = 8.0
#: How far from a step its support interval is searched (commits each way).
SUPPORT_REACH = 25
# When the differences have no spread at all (a series that changes rarely and exactly), any
# change is a step: a tiny scale instead of zero keeps the penalty positive.
_SCALE_FLOOR = 1e-9


@numba.njit(cache=True)
def _heap_push(heap: np.ndarray, size: int, value: float) -> int:
    """Push ``value`` onto the min-heap ``heap[:size]``; returns the new size."""
    i = size
    heap[i] = value
    while i > 0:
        parent = (i - 1) // 2
        if heap[parent] <= heap[i]:
            break
        heap[parent], heap[i] = heap[i], heap[parent]
        i = parent
    return size + 1


@numba.njit(cache=True)
def _heap_pop(heap: np.ndarray, size: int) -> float:
    """Remove and return the least value of the min-heap ``heap[:size]`` (size shrinks by one:
    the caller decrements its count)."""
    top = heap[0]
    size -= 1
    heap[0] = heap[size]
    i = 0
    while True:
        left = 2 * i + 1
        if left >= size:
            break
        child = left
        if left + 1 < size and heap[left + 1] < heap[left]:
            child = left + 1
        if heap[i] <= heap[child]:
            break
        heap[i], heap[child] = heap[child], heap[i]
        i = child
    return top


@numba.njit(cache=True)
def optimal_partition(x: np.ndarray, penalty: float, min_size: int) -> np.ndarray:
    """Exact minimiser of the penalised L1 cost; returns the start of each piece.

    ``starts[0] == 0``; piece ``r`` spans ``x[starts[r]:starts[r + 1]]`` (the last one runs to
    the end). Each piece holds at least ``min_size`` points (one piece if ``x`` is shorter
    than ``2 * min_size``).
    """
    n = x.shape[0]
    best = np.full(n + 1, np.inf)
    prev = np.full(n + 1, -1, dtype=np.int64)
    best[0] = -penalty
    lower = np.empty(n)  # max-heap of the lower half, stored negated
    upper = np.empty(n)  # min-heap of the upper half
    for i in range(n):
        if not np.isfinite(best[i]):
            continue
        n_low = 0
        n_up = 0
        sum_low = 0.0
        sum_up = 0.0
        for j in range(i, n):
            v = x[j]
            if n_low == 0 or v <= -lower[0]:
                n_low = _heap_push(lower, n_low, -v)
                sum_low += v
            else:
                n_up = _heap_push(upper, n_up, v)
                sum_up += v
            # keep n_low == n_up or n_low == n_up + 1: the median is the top of the lower half
            if n_low > n_up + 1:
                moved = -_heap_pop(lower, n_low)
                n_low -= 1
                sum_low -= moved
                n_up = _heap_push(upper, n_up, moved)
                sum_up += moved
            elif n_up > n_low:
                moved = _heap_pop(upper, n_up)
                n_up -= 1
                sum_up -= moved
                n_low = _heap_push(lower, n_low, -moved)
                sum_low += moved
            length = j - i + 1
            if length < min_size:
                continue
            cost = sum_up - sum_low
            if n_low > n_up:
                cost += -lower[0]
            if cost < 0.0:
                cost = 0.0  # rounding
            candidate = best[i] + penalty + cost
            end = j + 1
            # the last piece must leave room for nothing or for another whole piece
            if end != n and n - end < min_size:
                continue
            if candidate < best[end]:
                best[end] = candidate
                prev[end] = i
    if prev[n] < 0:  # shorter than one piece of min_size: a single piece
        return np.zeros(1, dtype=np.int64)
    count = 0
    j = n
    while j > 0:
        count += 1
        j = prev[j]
    starts = np.empty(count, dtype=np.int64)
    j = n
    k = count - 1
    while j > 0:
        starts[k] = prev[j]
        k -= 1
        j = prev[j]
    return starts


def l1_cost(x: np.ndarray) -> float:
    """L1 cost of one piece: the sum of absolute deviations from its median."""
    if x.size == 0:
        return 0.0
    return float(np.abs(x - np.median(x)).sum())


def hampel(x: np.ndarray, scale: float) -> np.ndarray:
    """``x`` with each value further than :data:`HAMPEL_SIGMAS` ``· scale`` from the median of
    its neighbourhood (:data:`HAMPEL_REACH` values either side, fewer at the ends) replaced by
    that median: isolated or paired slow jobs out, steps kept."""
    out = x.copy()
    for i in range(x.size):
        local = float(np.median(x[max(0, i - HAMPEL_REACH) : i + HAMPEL_REACH + 1]))
        if abs(x[i] - local) > HAMPEL_SIGMAS * scale:
            out[i] = local
    return out


def noise_scale(x: np.ndarray) -> float:
    """Robust standard deviation of the noise from commit-to-commit differences:
    ``1.4826 · MAD(diff(x)) / √2`` (consistent for Gaussian noise; a few steps hardly move it).
    """
    if x.size < 3:
        return _SCALE_FLOOR
    d = np.diff(x)
    mad = float(np.median(np.abs(d - np.median(d))))
    return max(1.4826 * mad / math.sqrt(2.0), _SCALE_FLOOR)


@dataclass(frozen=True)
class Segmentation:
    """A fit of a series as levels.

    ``starts``: index of the first point of each piece; ``levels``: each piece's median (in
    the units given, i.e. log units when called from :func:`detect`); ``scale``: σ̂;
    ``penalty``: γ; ``laplace_scale``: the mean absolute residual of the fit;
    ``support``: per step (piece 1 onwards) the first and last index that could start it.
    """

    starts: tuple[int, ...]
    levels: tuple[float, ...]
    scale: float
    penalty: float
    laplace_scale: float
    support: tuple[tuple[int, int], ...]

    @property
    def steps(self) -> tuple[int, ...]:
        """Index of the first point after each step."""
        return self.starts[1:]


def segment(
    x: np.ndarray,
    beta: float = DEFAULT_BETA,
    min_size: int = DEFAULT_MIN_SIZE,
    scale: float | None = None,
    guard: bool = True,
) -> Segmentation:
    """Fit levels to ``x`` (already on the scale where steps are additive: log values).

    :param x: the series, oldest first; must be finite.
    :param beta: the penalty factor β of γ = β σ̂ ln n.
    :param min_size: fewest points in a piece.
    :param scale: the noise scale σ̂ to use instead of estimating it from ``x``.
    :param guard: replace slow jobs first (:func:`hampel`); the levels and support are
        those of the filtered series.
    :raises ValueError: non-finite values, or ``min_size < 1``.
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    if not np.isfinite(x).all():
        raise ValueError("the series has non-finite values")
    if min_size < 1:
        raise ValueError("min_size must be at least 1")
    n = x.size
    sigma = noise_scale(x) if scale is None else max(float(scale), _SCALE_FLOOR)
    penalty = beta * sigma * math.log(max(n, 2))
    if n == 0:
        return Segmentation((), (), sigma, penalty, 0.0, ())
    if guard:
        x = hampel(x, sigma)
    starts = [int(s) for s in optimal_partition(x, penalty, min_size)]
    bounds = [*starts, n]
    levels = [float(np.median(x[a:b])) for a, b in itertools.pairwise(bounds)]
    residual = sum(l1_cost(x[a:b]) for a, b in itertools.pairwise(bounds))
    laplace = max(residual / n, _SCALE_FLOOR)
    support = tuple(
        _support(x, bounds[r - 1], bounds[r], bounds[r + 1], min_size, laplace)
        for r in range(1, len(starts))
    )
    return Segmentation(tuple(starts), tuple(levels), sigma, penalty, laplace, support)


def _support(
    x: np.ndarray, left: int, at: int, right: int, min_size: int, laplace: float
) -> tuple[int, int]:
    """First and last split position in ``(left, right)`` whose two-piece cost is within
    ``b ln 8`` of the best one's: the commits that could have started this step. Positions
    further than :data:`SUPPORT_REACH` from the step are not tried."""
    first = max(left + min_size, at - SUPPORT_REACH)
    last = min(right - min_size, at + SUPPORT_REACH)
    positions = range(first, last + 1)
    costs = {t: l1_cost(x[left:t]) + l1_cost(x[t:right]) for t in positions}
    if not costs:
        return (at, at)
    bound = min(costs.values()) + laplace * math.log(SUPPORT_RATIO)
    inside = [t for t, c in costs.items() if c <= bound]
    return (min(*inside, at), max(*inside, at))


def detect(
    values: np.ndarray,
    beta: float = DEFAULT_BETA,
    min_size: int = DEFAULT_MIN_SIZE,
) -> Segmentation:
    """Steps in a positive metric measured once per commit (oldest first): the fit of
    :func:`segment` on ``ln(values)``; ``levels`` are returned in the metric's own units.

    :raises ValueError: a value that is not positive and finite.
    """
    y = np.asarray(values, dtype=np.float64)
    if not (np.isfinite(y).all() and (y > 0).all()):
        raise ValueError("step detection needs positive, finite values")
    fit = segment(np.log(y), beta=beta, min_size=min_size)
    return Segmentation(
        fit.starts,
        tuple(math.exp(v) for v in fit.levels),
        fit.scale,
        fit.penalty,
        fit.laplace_scale,
        fit.support,
    )
