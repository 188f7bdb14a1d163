"""The readable table printed at the end of a run: one line per workload, precision and
device, with the seeds side by side."""

from __future__ import annotations

import math

import pandas as pd

from benchkit.results import RESULT_COLUMNS, RunResult

_GROUP = ["model", "dataset", "precision", "device"]


def _num(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if value == 0:
        return "0"
    return f"{value:.3g}"


def _per_seed(values: pd.Series) -> str:
    return "/".join("-" if pd.isna(v) else str(int(v)) for v in values)


def _status(group: pd.DataFrame) -> str:
    """``ok``, or counts such as ``ok×2 diverged×1``; diverged runs name their epochs."""
    parts = []
    for status, n in group["status"].value_counts().items():
        text = status if n == len(group) else f"{status}×{n}"
        if status == "diverged":
            text += "@" + _per_seed(group.loc[group["status"] == "diverged", "diverged_epoch"])
        parts.append(text)
    return " ".join(parts)


def summary_table(results: pd.DataFrame) -> str:
    """Format ``results.csv`` rows for the terminal.

    Runs that were skipped for the same reason collapse into one line under the table.
    """
    if results.empty:
        return "no runs"
    ran = results[results["status"] != "skipped"]
    skipped = results[results["status"] == "skipped"]
    metric_cols = [
        c
        for c in results.columns
        if c not in RESULT_COLUMNS and pd.api.types.is_numeric_dtype(results[c])
    ]
    rows = []
    for key, group in ran.groupby(_GROUP, sort=False):
        group = group.sort_values("seed")
        metrics = [f"{c}={_num(group[c].median())}" for c in metric_cols if group[c].notna().any()]
        rows.append(
            {
                **dict(zip(_GROUP, key, strict=True)),
                "seeds": _per_seed(group["seed"]),
                "status": _status(group),
                "final loss": _num(group["final_loss"].median()),
                "converged@": _per_seed(group["converged_epoch"]),
                "zero@": _per_seed(group["zero_loss_epoch"]),
                "train s": _num(group["train_seconds"].median()),
                "samples/s": _num(group["samples_per_second"].median()),
                "metrics (median)": " ".join(metrics),
            }
        )
    lines = []
    if rows:
        table = pd.DataFrame(rows)
        lines.append(table.to_string(index=False))
    errors = ran[ran["status"] == "error"]
    for _, row in errors.iterrows():
        lines.append(f"error: {row['run_id']}: {row['status_detail']}")
    for reason, group in skipped.groupby("status_detail", sort=False):
        lines.append(f"skipped ({len(group)} runs): {reason}")
    return "\n".join(lines)


def trace_table(result: RunResult, max_rows: int = 40) -> str:
    """The source's step-by-step table for a traced run: epoch, prediction, loss, each
    parameter and its gradient; it stops a little after the loss first reaches zero."""
    frame = pd.DataFrame(result.trace)
    frame.insert(0, "epoch", range(len(frame)))
    frame.insert(2 if "prediction" in frame else 1, "loss", result.curve[: len(frame)])
    stop = len(frame)
    if result.zero_loss_epoch is not None:
        stop = min(stop, result.zero_loss_epoch + 2)
    shown = frame.iloc[: min(stop, max_rows)]
    formatters = {c: (lambda v: f"{v:.6g}") for c in shown.columns if c != "epoch"}
    lines = [f"trace of {result.run_id}", shown.to_string(index=False, formatters=formatters)]
    if len(shown) < len(frame):
        lines.append(f"... {len(frame) - len(shown)} more epochs in trace.csv")
    return "\n".join(lines)
