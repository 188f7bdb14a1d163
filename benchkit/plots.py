"""The figures of ``benchkit report``, drawn with matplotlib's object API (no pyplot, no
global backend: each function returns a :class:`~matplotlib.figure.Figure` that saves to PNG
through Agg).

Every function takes the combined ``results`` table of the report's result sets (a ``set``
column names the set each row came from) and returns ``None`` when it has nothing to draw.
"""

from __future__ import annotations

import math
import textwrap

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

MIB = 1024 * 1024
# Colours and line styles are handed out in order of the names the data holds (precisions
# and devices come from plugins, so no name is known in advance); the same sorted names always
# get the same colour, whichever report draws them.
_PALETTE = [
    "tab:blue",
    "tab:orange",
    "tab:green",
    "tab:red",
    "tab:purple",
    "tab:brown",
    "tab:pink",
    "tab:gray",
    "tab:olive",
    "tab:cyan",
]
_STYLES = ["-", "--", ":", "-."]
_CYCLE = _PALETTE
_VERDICT_COLORS = {
    "holds": "tab:green",
    "supported": "tab:green",
    "pass": "tab:green",
    "does not hold": "tab:red",
    "refuted": "tab:red",
    "fail": "tab:red",
    "inconclusive": "tab:orange",
    "not measured": "tab:gray",
}


def _pick(names: pd.Series, name: str, choices: list[str]) -> str:
    """The choice for ``name`` among the sorted distinct ``names`` of the data."""
    ordered = sorted({str(n) for n in names.dropna()})
    index = ordered.index(name) if name in ordered else len(ordered)
    return choices[index % len(choices)]


def _device_base(device: str) -> str:
    """``cuda:1`` draws like ``cuda``: one style per kind of device."""
    return device.split(":")[0]


def workloads(results: pd.DataFrame) -> list[tuple[str, str]]:
    """(model, dataset) pairs in the order they first appear."""
    pairs = results[["model", "dataset"]].drop_duplicates()
    return [tuple(p) for p in pairs.itertuples(index=False, name=None)]


def _series_label(precision: str, device: str, set_name: str, many_sets: bool) -> str:
    label = f"{precision} / {device}"
    return f"{label} ({set_name})" if many_sets else label


def loss_curves(
    results: pd.DataFrame,
    curves: pd.DataFrame,
    model: str,
    dataset: str,
    references: pd.DataFrame | None = None,
) -> Figure | None:
    """Training loss per epoch on a log scale: one line per precision and device (the median
    of the seeds), a band from the lowest to the highest seed; validation loss dashed.

    :param references: ``references.csv`` rows; those of this workload for ``loss`` or
        ``valid_loss`` are drawn as the source's points over the curves."""
    rows = results[(results["model"] == model) & (results["dataset"] == dataset)]
    rows = rows[rows["status"].isin(["ok", "diverged"])]
    data = curves[curves["run_id"].isin(rows["run_id"])]
    if data.empty:
        return None
    many_sets = results["set"].nunique() > 1
    fig = Figure(figsize=(9, 5.5), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    drawn = 0
    for (set_name, precision, device), group in rows.groupby(
        ["set", "precision", "device"], sort=False
    ):
        runs = data[(data["set"] == set_name) & data["run_id"].isin(group["run_id"])]
        color = _pick(rows["precision"], precision, _PALETTE)
        label = _series_label(precision, device, set_name, many_sets)
        diverged = group[group["status"] == "diverged"]
        if len(diverged) and (runs.empty or not np.isfinite(runs["loss"]).any()):
            epoch = int(diverged["diverged_epoch"].min())
            ax.plot(
                [],
                [],
                marker="X",
                markersize=9,
                color=color,
                linestyle="none",
                label=f"{label}: diverged at epoch {epoch}, no finite loss",
            )
            drawn += 1
            continue
        for column in ("loss", "valid_loss"):
            if runs.empty or column not in runs.columns or runs[column].isna().all():
                continue
            table = runs.pivot_table(index="epoch", columns="run_id", values=column, dropna=False)
            values = table.to_numpy(dtype=float)
            values = np.where(np.isfinite(values), values, np.nan)
            with _quiet():
                median = np.nanmedian(values, axis=1)
                low, high = np.nanmin(values, axis=1), np.nanmax(values, axis=1)
            at_zero = np.flatnonzero(median == 0)
            median, low, high = (np.where(v > 0, v, np.nan) for v in (median, low, high))
            if column == "loss":
                ax.fill_between(table.index, low, high, color=color, alpha=0.18, linewidth=0)
                ax.plot(
                    table.index,
                    median,
                    color=color,
                    linewidth=1.6,
                    label=label,
                    linestyle=_pick(
                        rows["device"].map(_device_base), _device_base(device), _STYLES
                    ),
                )
            else:
                ax.plot(
                    table.index,
                    median,
                    color=color,
                    linewidth=1.4,
                    alpha=0.7,
                    linestyle=(0, (4, 2)),
                    label=f"{label}, validation",
                )
            finite = np.flatnonzero(np.isfinite(median))
            if column == "loss" and len(diverged) and finite.size:
                # A run that diverged ends early; a cross marks its last finite loss.
                what = (
                    f"diverged at epoch {int(diverged['diverged_epoch'].min())}"
                    if len(diverged) == len(group)
                    else f"{len(diverged)} of {len(group)} seeds diverged"
                )
                ax.plot(
                    [table.index[finite[-1]]],
                    [median[finite[-1]]],
                    marker="X",
                    markersize=9,
                    color=color,
                    linestyle="none",
                    label=f"{label}: {what}",
                )
            if column == "loss" and at_zero.size:
                # A log axis cannot show 0: the line stops there; a marker says so.
                epoch = table.index[at_zero[0]]
                ax.plot(
                    [epoch],
                    [0.015],
                    marker="v",
                    markersize=8,
                    color=color,
                    linestyle="none",
                    transform=ax.get_xaxis_transform(),
                    clip_on=False,
                    label=f"{label}: median loss exactly 0 from epoch {epoch}",
                )
            drawn += 1
    if not drawn:
        return None
    _source_points(ax, references, model, dataset)
    ax.set_yscale("log")
    ax.set_xlim(data["epoch"].min(), data["epoch"].max())
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (log scale)")
    title = f"{model} on {dataset}: loss per epoch (line: median of seeds; band: min–max)"
    ax.set_title(title, fontsize=11)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    return fig


_SOURCE_MARKERS = {"loss": "o", "valid_loss": "s"}


def _source_points(ax, references: pd.DataFrame | None, model: str, dataset: str) -> None:
    """What a source printed of this workload's loss curves: black markers, hollow (and
    "not met" in the legend) where benchkit did not reproduce the figure."""
    if references is None or references.empty:
        return
    needed = {"model", "dataset", "metric", "epoch", "source_value", "verdict", "reference"}
    if not needed <= set(references.columns):
        return
    rows = references[
        (references["model"] == model)
        & (references["dataset"] == dataset)
        & references["metric"].isin(list(_SOURCE_MARKERS))
        & references["epoch"].notna()
    ].drop_duplicates(["reference", "metric", "epoch"])
    for (reference, metric), group in rows.groupby(["reference", "metric"], sort=False):
        group = group[group["source_value"] > 0]  # a log axis
        if group.empty:
            continue
        source = str(group["source"].iloc[0]) if "source" in group else str(reference)
        reproduced = group["verdict"] == "reproduced"
        marker = _SOURCE_MARKERS[metric]
        what = "validation" if metric == "valid_loss" else "loss"
        label = textwrap.shorten(f"source {what}: {source}", 60)
        for mask, face, suffix in ((reproduced, "black", ""), (~reproduced, "none", " (not met)")):
            if mask.any():
                ax.plot(
                    group.loc[mask, "epoch"],
                    group.loc[mask, "source_value"],
                    marker=marker,
                    markersize=6,
                    markerfacecolor=face,
                    markeredgecolor="black",
                    linestyle="none",
                    zorder=4,
                    label=label + suffix,
                )


class _quiet:
    """Silence numpy's all-NaN warnings inside a block."""

    def __enter__(self) -> None:
        import warnings

        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc: object) -> None:
        self._catch.__exit__(*exc)


def rollout(
    results: pd.DataFrame, rollout_rows: pd.DataFrame, model: str, dataset: str
) -> Figure | None:
    """Actual values against the autoregressive predictions, as the source plots them: one
    predicted line per precision and device (its lowest seed)."""
    rows = results[(results["model"] == model) & (results["dataset"] == dataset)]
    data = rollout_rows[rollout_rows["run_id"].isin(rows["run_id"])]
    if data.empty:
        return None
    many_sets = results["set"].nunique() > 1
    fig = Figure(figsize=(9, 5), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    actual_drawn = False
    for (set_name, precision, device), group in rows.groupby(
        ["set", "precision", "device"], sort=False
    ):
        group = group.sort_values("seed")
        for _, run in group.iterrows():
            steps = data[(data["set"] == set_name) & (data["run_id"] == run["run_id"])]
            if steps.empty:
                continue
            steps = steps.sort_values("step")
            if not actual_drawn:
                ax.plot(
                    steps["step"], steps["actual"], color="black", linewidth=2.2, label="actual"
                )
                actual_drawn = True
            label = _series_label(precision, device, set_name, many_sets)
            ax.plot(
                steps["step"],
                steps["predicted"],
                color=_pick(rows["precision"], precision, _PALETTE),
                linestyle=_pick(rows["device"].map(_device_base), _device_base(device), _STYLES),
                linewidth=1.4,
                label=f"predicted, {label} (seed {run['seed']})",
            )
            break
    ax.set_xlabel("rollout step (each prediction fed back as input)")
    ax.set_ylabel("series value")
    ax.set_title(f"{model} on {dataset}: autoregressive rollout, actual vs predicted", fontsize=11)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return fig


def _bar_panels(
    results: pd.DataFrame,
    column: str,
    ylabel: str,
    title: str,
    scale: float = 1.0,
    log: bool = False,
    never: bool = False,
) -> Figure | None:
    """One panel per workload; precisions along x, one bar per device (and set): the median
    of the seeds, each seed a dot. ``never``: a missing value means "never reached"."""
    # Diverged runs count for convergence (they never got there), not for speed or memory.
    rows = results[results["status"].isin(["ok", "diverged"] if never else ["ok"])]
    pairs = [p for p in workloads(rows) if column in rows.columns]
    if never:
        pairs = [p for p in pairs if _has_target(rows, p)]
    else:
        pairs = [p for p in pairs if _select(rows, p)[column].notna().any()]
    if not pairs:
        return None
    many_sets = results["set"].nunique() > 1
    cols = min(2, len(pairs))
    nrows = math.ceil(len(pairs) / cols)
    fig = Figure(figsize=(6 * cols, 3.6 * nrows + 0.6), dpi=100, layout="constrained")
    fig.suptitle(title, fontsize=12)
    for i, pair in enumerate(pairs):
        ax = fig.add_subplot(nrows, cols, i + 1)
        sub = _select(rows, pair)
        precisions = list(dict.fromkeys(sub["precision"]))
        series = list(dict.fromkeys(zip(sub["set"], sub["device"], strict=True)))
        width = min(0.5, 0.8 / max(1, len(series)))
        start = -width * len(series) / 2
        for j, (set_name, device) in enumerate(series):
            label = f"{device} ({set_name})" if many_sets else device
            color = (
                _pick(rows["device"].map(_device_base), _device_base(device), _PALETTE)
                if not many_sets
                else _CYCLE[j % len(_CYCLE)]
            )
            for k, precision in enumerate(precisions):
                cell = sub[
                    (sub["set"] == set_name)
                    & (sub["device"] == device)
                    & (sub["precision"] == precision)
                ]
                if cell.empty:
                    continue
                x = k + start + width * (j + 0.5)
                values = cell[column].astype(float) / scale
                if values.notna().any():
                    ax.bar(x, values.median(), width * 0.92, color=color, label=label)
                    ax.plot(
                        [x] * values.notna().sum(),
                        values.dropna(),
                        "o",
                        color="black",
                        markersize=3,
                        zorder=3,
                    )
                if never and values.isna().any():
                    reached = int(values.notna().sum())
                    diverged = int((cell["status"] == "diverged").sum())
                    text = f"{reached} of {len(values)} seeds"
                    if not reached:
                        text = "diverged" if diverged == len(values) else "never"
                    top = values.median() if reached else 0
                    ax.annotate(
                        text,
                        (x, top),
                        xytext=(0, 3),
                        textcoords="offset points",
                        ha="center",
                        va="bottom",
                        fontsize=8,
                    )
        ax.set_xticks(range(len(precisions)), precisions)
        ax.set_xlim(-0.6, len(precisions) - 0.4)
        ax.set_xlabel("precision")
        ax.set_ylabel(ylabel, fontsize=9)
        subtitle = f"{pair[0]} on {pair[1]}"
        if never:
            target = sub["target_loss"].dropna()
            if not target.empty:
                subtitle += f" (target loss ≤ {target.iloc[0]:g})"
        ax.set_title(subtitle, fontsize=10)
        positive = sub[column].astype(float) / scale
        positive = positive[positive > 0]
        if log and not positive.empty and positive.max() > 20 * positive.min():
            ax.set_yscale("log")
            ax.set_ylabel(f"{ylabel} (log scale)", fontsize=9)
        ax.grid(True, axis="y", alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles, strict=True))
        if unique:
            ax.legend(unique.values(), unique.keys(), fontsize=8, title="device", title_fontsize=8)
    return fig


def _select(rows: pd.DataFrame, pair: tuple[str, str]) -> pd.DataFrame:
    return rows[(rows["model"] == pair[0]) & (rows["dataset"] == pair[1])]


def _has_target(rows: pd.DataFrame, pair: tuple[str, str]) -> bool:
    return "target_loss" in rows.columns and _select(rows, pair)["target_loss"].notna().any()


def convergence_epochs(results: pd.DataFrame) -> Figure | None:
    """Epochs to the target loss per precision (bars per device; dots per seed; seeds that
    never got there are counted under the bar)."""
    return _bar_panels(
        results,
        "converged_epoch",
        "epochs to target loss",
        "Convergence: first epoch at or below the target loss (bar: median of seeds)",
        never=True,
    )


def _training_rows(results: pd.DataFrame) -> pd.DataFrame:
    """Rows that measure training: convergence runs, and throughput or memory suites'
    ``train_step`` rows (their ``inference`` rows would mix another quantity in)."""
    if "kind" not in results.columns:
        return results
    return results[results["kind"].isna() | (results["kind"] == "train_step")]


def throughput(results: pd.DataFrame) -> Figure | None:
    """Training samples per second, CPU against GPU, per precision."""
    results = _training_rows(results)
    devices = set(results.loc[results["status"] == "ok", "device"].map(_device_base))
    note = "" if devices - {"cpu"} else " (no runs on another device than the CPU here)"
    return _bar_panels(
        results,
        "samples_per_second",
        "training samples / s",
        f"Throughput after warm-up: CPU vs GPU{note}",
        log=True,
    )


def peak_memory(results: pd.DataFrame) -> Figure | None:
    """Peak memory per precision and device, in MiB."""
    results = _training_rows(results)
    return _bar_panels(
        results,
        "peak_memory_bytes",
        "peak memory (MiB)",
        "Peak memory of the run (CUDA: allocator peak; CPU: resident-set growth)",
        scale=MIB,
    )


def claims(table: pd.DataFrame) -> Figure | None:
    """The claim verdicts (``claims.csv``): one line per claim, criterion and device, the
    verdict in colour and the explanation under the claim."""
    if table.empty or "verdict" not in table.columns:
        return None
    height = 1.0 + 0.6 * len(table)
    fig = Figure(figsize=(11, height), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    ax.set_xlim(0, 1)
    ax.set_ylim(len(table) - 0.5, -0.5)
    ax.axis("off")
    for i, (_, row) in enumerate(table.iterrows()):
        verdict = str(row["verdict"])
        color = _VERDICT_COLORS.get(verdict.lower(), "tab:gray")
        ax.text(
            0.0,
            i,
            f" {verdict} ",
            va="center",
            ha="left",
            fontsize=9,
            color="white",
            fontweight="bold",
            bbox={"facecolor": color, "edgecolor": "none"},
        )
        where = [
            str(row[c])
            for c in ("claim", "criterion", "device")
            if c in row and isinstance(row[c], str) and row[c]
        ]
        text = str(row.get("text", "")) if isinstance(row.get("text"), str) else ""
        head = " · ".join(where) + (f": {text}" if text else "")
        detail = next(
            (
                row[c]
                for c in ("explanation", "detail", "reason")
                if c in row and isinstance(row[c], str) and row[c]
            ),
            "",
        )
        ax.text(
            0.16,
            i - (0.14 if detail else 0),
            textwrap.shorten(head, 120),
            va="center",
            ha="left",
            fontsize=9,
        )
        if detail:
            ax.text(
                0.16,
                i + 0.2,
                textwrap.shorten(detail, 140),
                va="center",
                ha="left",
                fontsize=8,
                color="dimgray",
            )
    ax.set_title("Claim verdicts (claims.csv)", fontsize=12)
    return fig
