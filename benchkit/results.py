"""Result tables: what one run measured, and how a result set is written to disk.

A result set is a folder with three files, the contract other tools and CI read:

- ``results.csv``: one row per run (:data:`RESULT_COLUMNS`, then each workload's own metrics);
- ``curves.csv``: one row per run and epoch (``run_id, epoch, loss, valid_loss, seconds,
  lr``) with the run's key columns, joinable to ``results.csv`` on ``run_id``; ``lr`` is the
  epoch's learning rate when the recipe has a schedule, empty otherwise;
- ``run.json``: the schema version, the suite, and the environment.

Every write goes to a temporary file that is renamed into place, so a crash or Ctrl-C leaves
either the previous complete table or the new one, never half of one.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

SCHEMA_VERSION = 1

KEY_COLUMNS = ["model", "dataset", "precision", "device", "seed", "variant"]
RESULT_COLUMNS = [
    "run_id",
    "model",
    "dataset",
    "precision",
    "device",
    "device_name",
    "seed",
    "variant",
    "status",
    "status_detail",
    "diverged_epoch",
    "nonfinite_loss",
    "grads_nonfinite_epoch",
    "params_nonfinite_epoch",
    "epochs",
    "target_loss",
    "final_loss",
    "best_loss",
    "converged_epoch",
    "zero_loss_epoch",
    "train_seconds",
    "time_to_target_seconds",
    "samples_per_second",
    "peak_memory_bytes",
    "params",
    "train_samples",
    "batch_size",
    "optimizer",
    "lr",
]
# lr: the epoch's learning rate, written when the recipe has a schedule (empty otherwise)
CURVE_COLUMNS = ["run_id", *KEY_COLUMNS, "epoch", "loss", "valid_loss", "seconds", "lr"]
# Integer-valued columns that may be empty: written without a trailing ".0".
_NULLABLE_INT = [
    "diverged_epoch",
    "grads_nonfinite_epoch",
    "params_nonfinite_epoch",
    "converged_epoch",
    "zero_loss_epoch",
    "peak_memory_bytes",
    "params",
    "train_samples",
    "batch_size",
    "epochs",
]


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
    time_to_target_seconds: float | None = None
    samples_per_second: float | None = None
    peak_memory_bytes: int | None = None
    params: int | None = None
    train_samples: int | None = None
    batch_size: int | None = None
    optimizer: str = ""
    lr: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    curve: list[float] = field(default_factory=list)
    valid_curve: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    lr_curve: list[float] = field(default_factory=list)  # per epoch, with a schedule only
    criteria: dict[str, tuple[int | None, float | None]] = field(default_factory=dict)
    trace: list[dict[str, float]] = field(default_factory=list)
    series: dict[str, list[float]] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        """The ``results.csv`` row: the fixed columns, then the metrics."""
        row = {c: getattr(self, c) for c in RESULT_COLUMNS}
        row.update(self.metrics)
        return row

    def curve_rows(self) -> list[dict[str, Any]]:
        """The ``curves.csv`` rows of this run."""
        keys = {c: getattr(self, c) for c in KEY_COLUMNS}
        rows = []
        for epoch, loss in enumerate(self.curve):
            rows.append(
                {
                    "run_id": self.run_id,
                    **keys,
                    "epoch": epoch,
                    "loss": loss,
                    "valid_loss": self.valid_curve[epoch]
                    if epoch < len(self.valid_curve)
                    else None,
                    "seconds": self.epoch_seconds[epoch]
                    if epoch < len(self.epoch_seconds)
                    else None,
                    "lr": self.lr_curve[epoch] if epoch < len(self.lr_curve) else None,
                }
            )
        return rows


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


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def results_frame(results: list[RunResult]) -> pd.DataFrame:
    """``results.csv`` as a DataFrame, metric columns after the fixed ones."""
    frame = pd.DataFrame([r.row() for r in results])
    if frame.empty:
        return pd.DataFrame(columns=RESULT_COLUMNS)
    metric_cols = [c for c in frame.columns if c not in RESULT_COLUMNS]
    frame = frame[RESULT_COLUMNS + metric_cols]
    for col in _NULLABLE_INT:
        frame[col] = frame[col].astype("Int64")
    return frame


def curves_frame(results: list[RunResult]) -> pd.DataFrame:
    """``curves.csv`` as a DataFrame."""
    rows = [row for r in results for row in r.curve_rows()]
    return pd.DataFrame(rows, columns=CURVE_COLUMNS)


def _keyed(result: RunResult) -> dict[str, Any]:
    return {"run_id": result.run_id, **{c: getattr(result, c) for c in KEY_COLUMNS}}


def criteria_frame(results: list[RunResult]) -> pd.DataFrame:
    """``criteria.csv``: per run and criterion, the first epoch it was met and the time."""
    rows = [
        {**_keyed(r), "criterion": name, "epoch": epoch, "seconds": seconds}
        for r in results
        for name, (epoch, seconds) in r.criteria.items()
    ]
    frame = pd.DataFrame(rows, columns=[*_keyed_columns(), "criterion", "epoch", "seconds"])
    frame["epoch"] = frame["epoch"].astype("Int64")
    return frame


def trace_frame(results: list[RunResult]) -> pd.DataFrame:
    """``trace.csv``: per traced run and epoch, prediction, loss, parameters and gradients."""
    rows = [
        {**_keyed(r), "epoch": epoch, "loss": r.curve[epoch], **values}
        for r in results
        for epoch, values in enumerate(r.trace)
    ]
    return pd.DataFrame(rows)


def series_frame(results: list[RunResult]) -> pd.DataFrame:
    """``series.csv``: sequences a workload's evaluation returned (e.g. the rollout)."""
    rows = [
        {**_keyed(r), "series": name, "step": step, "value": value}
        for r in results
        for name, values in r.series.items()
        for step, value in enumerate(values)
    ]
    return pd.DataFrame(rows, columns=[*_keyed_columns(), "series", "step", "value"])


def _keyed_columns() -> list[str]:
    return ["run_id", *KEY_COLUMNS]


#: Optional per-run tables, written when a run produced rows for them.
EXTRA_TABLES = {
    "criteria.csv": criteria_frame,
    "trace.csv": trace_frame,
    "series.csv": series_frame,
}


class ResultWriter:
    """Writes a result set as runs finish.

    ``results.csv`` is rewritten after every run; ``curves.csv`` and the optional tables
    (:data:`EXTRA_TABLES`) at most every ``curves_every_seconds`` and on :meth:`close`, so long
    suites do not spend their time rewriting curves. All are always whole files.
    """

    def __init__(self, out_dir: Path, meta: dict[str, Any], curves_every_seconds: float = 5.0):
        self.out_dir = out_dir
        self.meta = meta
        self.results: list[RunResult] = []
        self.curves_every_seconds = curves_every_seconds
        self._curves_written = 0.0
        out_dir.mkdir(parents=True, exist_ok=True)
        self._write_meta(finished=False)

    def add(self, result: RunResult) -> None:
        """Record a finished run and persist it."""
        self.results.append(result)
        self._write_results()
        if time.monotonic() - self._curves_written >= self.curves_every_seconds:
            self._write_curves()

    def close(self, interrupted: bool = False) -> None:
        """Write everything that is still pending and mark the set finished (or interrupted)."""
        self._write_results()
        self._write_curves()
        self._write_meta(finished=not interrupted, interrupted=interrupted)

    def _write_results(self) -> None:
        text = results_frame(self.results).to_csv(index=False)
        atomic_write_text(self.out_dir / "results.csv", text)

    def _write_curves(self) -> None:
        text = curves_frame(self.results).to_csv(index=False)
        atomic_write_text(self.out_dir / "curves.csv", text)
        for name, make in EXTRA_TABLES.items():
            frame = make(self.results)
            if len(frame) or (self.out_dir / name).exists():
                atomic_write_text(self.out_dir / name, frame.to_csv(index=False))
        self._curves_written = time.monotonic()

    def write_table(self, name: str, frame: pd.DataFrame) -> None:
        """Write another table of the result set (``claims.csv``) atomically."""
        atomic_write_text(self.out_dir / name, frame.to_csv(index=False))

    def _write_meta(self, finished: bool, interrupted: bool = False) -> None:
        meta = {
            "schema_version": SCHEMA_VERSION,
            **self.meta,
            "finished": finished,
            "interrupted": interrupted,
            "runs": len(self.results),
        }
        if finished or interrupted:
            meta["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        atomic_write_text(self.out_dir / "run.json", json.dumps(meta, indent=2, default=str) + "\n")


def read_results(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Read a result set written by :class:`ResultWriter`: results, curves and run.json."""
    results = pd.read_csv(folder / "results.csv", keep_default_na=True)
    curves = pd.read_csv(folder / "curves.csv")
    meta = json.loads((folder / "run.json").read_text())
    return results, curves, meta
