"""The bootstrap's resampling loop, compiled by numba.

Kept apart from :mod:`benchkit.stats` so that numba is imported (and the loop compiled, or
loaded from numba's on-disk cache) only when a comparison needs it.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def resampled_median(values: np.ndarray, offsets: np.ndarray, buffer: np.ndarray) -> float:
    """Median of one hierarchical resample: draw as many runs as there are, with replacement,
    then within each drawn run as many samples as it has, with replacement.

    Run ``i`` holds ``values[offsets[i]:offsets[i + 1]]``; ``buffer`` is scratch space for
    at least ``runs * largest run`` values.
    """
    runs = offsets.shape[0] - 1
    filled = 0
    for _ in range(runs):
        run = np.random.randint(0, runs)
        start = offsets[run]
        size = offsets[run + 1] - start
        for _ in range(size):
            buffer[filled] = values[start + np.random.randint(0, size)]
            filled += 1
    return np.median(buffer[:filled])


@numba.njit(cache=True)
def bootstrap_ratios(
    base: np.ndarray,
    base_offsets: np.ndarray,
    new: np.ndarray,
    new_offsets: np.ndarray,
    seed: int,
    out: np.ndarray,
) -> None:
    """Fill ``out`` with resampled ``median(new) / median(base)``, from a seeded RNG."""
    np.random.seed(seed)
    base_buffer = np.empty(np.max(np.diff(base_offsets)) * (base_offsets.shape[0] - 1))
    new_buffer = np.empty(np.max(np.diff(new_offsets)) * (new_offsets.shape[0] - 1))
    for i in range(out.shape[0]):
        b = resampled_median(base, base_offsets, base_buffer)
        n = resampled_median(new, new_offsets, new_buffer)
        out[i] = n / b if b != 0.0 else np.inf
