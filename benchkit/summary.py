"""The readable tables printed at the end of a run, one per kind of suite: convergence
(:func:`summary_table`, one line per workload, precision and device with the seeds side by
side, and :func:`trace_table`), throughput (:func:`throughput_summary`) and memory
(:func:`memory_summary`). ``benchkit report`` puts the same tables in its page."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from benchkit.resultset import RESULT_COLUMNS
from benchkit.run_result import RunResult

if TYPE_CHECKING:
    from benchkit.runner import SuiteOutcome

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
    modes = "mode" in ran and set(ran["mode"].dropna()) - {"eager"}
    by = [*_GROUP, "mode"] if modes else _GROUP  # a column only where a suite names modes
    for key, group in ran.groupby(by, sort=False):
        group = group.sort_values("seed")
        metrics = [f"{c}={_num(group[c].median())}" for c in metric_cols if group[c].notna().any()]
        one_off = {"mode setup s": _num(group["mode_setup_seconds"].median())} if modes else {}
        rows.append(
            {
                **dict(zip(by, key, strict=True)),
                "seeds": _per_seed(group["seed"]),
                "status": _status(group),
                "final loss": _num(group["final_loss"].median()),
                "converged@": _per_seed(group["converged_epoch"]),
                "zero@": _per_seed(group["zero_loss_epoch"]),
                "train s": _num(group["train_seconds"].median()),
                **one_off,
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


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    """A column of ``frame``, empty where an older result set lacks it."""
    return frame[name] if name in frame else pd.Series(None, index=frame.index, dtype=object)


def throughput_summary(frame: pd.DataFrame) -> str:
    """The readable table printed after a throughput run."""
    if frame.empty:
        return "no benchmarks"
    ok = frame[frame["status"] == "ok"]
    lines = []
    if len(ok):
        view = pd.DataFrame(
            {
                "model": ok["model"],
                "dataset": ok["dataset"],
                "kind": ok["kind"],
                "precision": ok["precision"],
                "mode": ok.get("mode", pd.Series("eager", index=ok.index)),
                "device": ok["device"],
                "batch": ok["batch_size"],
                "median ms": (ok["step_median_seconds"] * 1e3).map(lambda v: f"{v:.3g}"),
                "IQR ms": (ok["step_iqr_seconds"] * 1e3).map(lambda v: f"{v:.2g}"),
                "samples/s": ok["samples_per_second"].map(lambda v: f"{v:.3g}"),
                "GFLOP/s": (ok["achieved_flops_per_second"] / 1e9).map(lambda v: f"{v:.3g}"),
                "of peak": ok["peak_fraction"].map(lambda v: f"{v:.2%}" if pd.notna(v) else "-"),
                "FLOP/B": _column(ok, "arithmetic_intensity").map(_num),
                "bound": _column(ok, "bound").map(lambda v: v if isinstance(v, str) and v else "-"),
                "setup s": _column(ok, "mode_setup_seconds").map(_num),
            }
        )
        lines.append(view.to_string(index=False))
        noted = _column(ok, "peak_note").map(lambda v: isinstance(v, str) and v != "")
        for _, row in ok[noted.astype(bool)].iterrows():
            lines.append(f"note: {row['run_id']}: {row['peak_note']}")
    for _, row in frame[frame["status"] == "error"].iterrows():
        lines.append(f"error: {row['run_id']}: {row['status_detail']}")
    skipped = frame[frame["status"] == "skipped"]
    for reason, group in skipped.groupby("status_detail", sort=False):
        lines.append(f"skipped ({len(group)} benchmarks): {reason}")
    return "\n".join(lines)


def memory_summary(frame: pd.DataFrame) -> str:
    """The readable table printed after a memory run."""
    ok = frame[frame["status"] == "ok"]
    lines = []
    if len(ok):
        view = ok.pivot_table(
            index=["model", "dataset", "precision", "device", "batch_size"],
            columns="kind",
            values="peak_memory_bytes",
            aggfunc="max",
        )
        lines.append(
            (view / 2**20)
            .round(2)
            .rename(columns=lambda c: f"{c} MiB")
            .reset_index()
            .to_string(index=False)
        )
    for _, row in frame[frame["status"] == "error"].iterrows():
        lines.append(f"error: {row['run_id']}: {row['status_detail']}")
    for reason, group in frame[frame["status"] == "skipped"].groupby("status_detail", sort=False):
        lines.append(f"skipped ({len(group)} measurements): {reason}")
    return "\n".join(lines)


def outcome_text(outcome: SuiteOutcome, out: Path) -> str:
    """Everything ``benchkit run`` prints when a suite has finished: where the result set is,
    the summary of its kind, the traces, claims and speed-ups."""
    from benchkit.speedup import speedup_table

    suite, frame = outcome.suite, outcome.frame
    noun = "runs" if suite.kind == "convergence" else "measurements"
    count = len(outcome.cases) if suite.kind == "convergence" else len(frame)
    lines = [f"\nsuite {suite.name}: {count} {noun} in {outcome.seconds:.1f} s → {out}"]
    if suite.kind == "memory":
        lines.append(memory_summary(frame))
    elif suite.kind == "throughput":
        lines.append(throughput_summary(frame))
        if outcome.crossover is not None and len(outcome.crossover):
            lines += ["\nwhere each device overtakes the CPU (crossover.csv)"]
            lines.append(outcome.crossover.to_string(index=False))
        elif len(speedup_table(frame)):
            lines += ["\nspeed-up against the CPU", speedup_table(frame).to_string(index=False)]
    else:
        lines.append(summary_table(frame))
        first_seed = min((c.seed for c in outcome.cases), default=None)
        for result in outcome.results:
            if result.trace and result.seed == first_seed:
                lines += ["", trace_table(result)]
        if outcome.claims is not None:
            from benchkit.claims import verdict_table

            lines += ["\nclaims (claims.csv)", verdict_table(outcome.claims)]
        if outcome.references is not None:
            from benchkit.references import references_table

            lines += [
                "\nthe sources' figures against benchkit's (references.csv)",
                references_table(outcome.references),
            ]
    return "\n".join(lines)
