"""Synthetic benchmark histories with planted steps: what the step detector is tested and
calibrated on (``tests/test_step_detect.py``, ``benchmarks/step_detection.py``)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

#: The issue's scenario: 40 commits, throughput −20 % at commit 13 and +5 % at commit 27.
PLANTED_STEPS: dict[int, float] = {13: -0.20, 27: 0.05}


def history(
    commits: int = 40,
    steps: Mapping[int, float] | None = None,
    noise: float = 0.03,
    distribution: str = "uniform",
    level: float = 1000.0,
    seed: int = 0,
    slow_jobs: float = 0.0,
) -> np.ndarray:
    """One value per commit: ``level``, multiplied by ``1 + change`` from each planted commit
    on, times noise.

    :param steps: ``{commit index: relative change}``; the change applies from that commit on.
    :param noise: relative size of the noise: ``uniform`` draws from ``±noise``, ``normal``
        has standard deviation ``noise``.
    :param seed: the RNG's seed.
    :param slow_jobs: the share of commits measured on a busy machine: 20 to 40 % slower
        (drawn after the noise, so the same seed gives the same noise with or without).
    """
    rng = np.random.default_rng(seed)
    factor = np.ones(commits)
    for commit, change in (steps or {}).items():
        factor[commit:] *= 1.0 + change
    if distribution == "uniform":
        jitter = rng.uniform(-noise, noise, commits)
    elif distribution == "normal":
        jitter = rng.normal(0.0, noise, commits)
    else:
        raise ValueError(f"distribution must be 'uniform' or 'normal', not {distribution!r}")
    values = level * factor * (1.0 + jitter)
    if slow_jobs:
        hit = rng.uniform(0.0, 1.0, commits) < slow_jobs
        values = np.where(hit, values * (1.0 - rng.uniform(0.2, 0.4, commits)), values)
    return values
