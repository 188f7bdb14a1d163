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
) -> np.ndarray:
    """One value per commit: ``level``, multiplied by ``1 + change`` from each planted commit
    on, times noise.

    :param steps: ``{commit index: relative change}``; the change applies from that commit on.
    :param noise: relative size of the noise: ``uniform`` draws from ``±noise``, ``normal``
        has standard deviation ``noise``.
    :param seed: the RNG's seed.
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
    return level * factor * (1.0 + jitter)
