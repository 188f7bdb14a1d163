"""What one run measured (:class:`RunResult`), and the figures derived from its loss curve.

This module imports neither torch nor pandas: the runner fills a :class:`RunResult`, and
:mod:`benchkit.resultset` writes it and reads it back.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


@dataclass
class RunResult:
    """Everything one run measured. ``curve``/``valid_curve``/``epoch_seconds`` hold one value
    per epoch run; ``metrics`` holds the workload's quality metrics."""

    run_id: str
    model: str
    dataset: str
    precision: str
    device: str
    seed: int
    variant: str = ""
    mode: str = "eager"  # how each step ran (benchkit.mode)
    device_name: str = ""
    status: str = "ok"
    status_detail: str = ""
    diverged_epoch: int | None = None
    nonfinite_loss: str = ""  # nan, inf or -inf for a diverged run
    grads_nonfinite_epoch: int | None = None
    params_nonfinite_epoch: int | None = None
    epochs: int = 0
    target_loss: float | None = None
    final_loss: float | None = None
    best_loss: float | None = None
    converged_epoch: int | None = None
    zero_loss_epoch: int | None = None
    train_seconds: float | None = None
    mode_setup_seconds: float | None = None  # the mode's one-off work, not in train_seconds
    time_to_target_seconds: float | None = None
    samples_per_second: float | None = None
    samples_per_second_iqr: float | None = None
    contended: bool | None = None  # other processes competed for the CPU during the run
    other_cpu_load: float | None = None  # cores they kept busy on average
    contention: str = ""  # why the run counts as contended (not a column)
    peak_memory_bytes: int | None = None
    params: int | None = None
    train_samples: int | None = None
    batch_size: int | None = None
    optimizer: str = ""
    lr: float | None = None
    # Where the run ran (see benchkit.executors): the worker and its host, how many runs of
    # the suite were running on that host while this one ran (itself included; 1 = alone),
    # whether its timings were taken on a shared host, and the fingerprint of the process
    # that ran it (torch build, CPU, its vector capability, torch's threads).
    worker: str = ""
    worker_host: str = ""
    host_runs: int | None = None
    timings_shared: bool = False
    env_torch: str = ""
    env_cpu: str = ""
    env_cpu_capability: str = ""
    env_torch_threads: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    curve: list[float] = field(default_factory=list)
    valid_curve: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    lr_curve: list[float] = field(default_factory=list)  # per epoch, with a schedule only
    criteria: dict[str, tuple[int | None, float | None]] = field(default_factory=dict)
    trace: list[dict[str, float]] = field(default_factory=list)
    series: dict[str, list[float]] = field(default_factory=dict)
    #: the run failed on input the user can fix (a ``BenchkitError``: a missing data file)
    input_error: bool = False


def first_epoch(curve: list[float], predicate: Callable[[float], bool]) -> int | None:
    """Index of the first epoch whose loss satisfies ``predicate``, else ``None``."""
    return next((i for i, v in enumerate(curve) if predicate(v)), None)


def summarise_curve(result: RunResult) -> None:
    """Fill the loss figures of ``result`` from its curve."""
    curve = result.curve
    result.epochs = len(curve)
    if not curve:
        return
    finite = [v for v in curve if math.isfinite(v)]
    result.final_loss = curve[-1]
    result.best_loss = min(finite) if finite else None
    result.zero_loss_epoch = first_epoch(curve, lambda v: v == 0.0)
    if result.target_loss is not None:
        target = result.target_loss
        result.converged_epoch = first_epoch(curve, lambda v: v <= target)


def warmup_epochs(epochs: int) -> int:
    """Epochs left out of the throughput figure: a tenth of the run, 1 to 10 epochs."""
    return min(10, max(1, epochs // 10))


def epoch_throughputs(epoch_end_seconds: Sequence[float], samples: int | float) -> list[float]:
    """Training samples per second of each epoch after the warm-up (:func:`warmup_epochs`).

    ``epoch_end_seconds[i]`` is the time from the start of training to the end of epoch ``i``;
    an epoch's duration is the difference of consecutive values. Epochs with a duration that
    is not positive (a clock too coarse for them) are left out. ``results.csv``'s
    ``samples_per_second`` and ``benchkit compare`` both start from this list.
    """
    seconds = [float(s) for s in epoch_end_seconds]
    if len(seconds) < 2 or not samples or any(math.isnan(s) for s in seconds):
        return []
    durations = [b - a for a, b in zip([0.0, *seconds[:-1]], seconds, strict=True)]
    return [samples / d for d in durations[warmup_epochs(len(seconds)) :] if d > 0]


def median_and_iqr(values: Sequence[float]) -> tuple[float | None, float | None]:
    """The median and the interquartile range (numpy's default, linear interpolation)."""
    if not values:
        return None, None
    if len(values) == 1:
        return float(values[0]), 0.0
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return float(statistics.median(values)), float(q3 - q1)
