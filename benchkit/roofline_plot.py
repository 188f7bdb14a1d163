"""The roofline figure of ``benchkit report``: where each measured step sits against what its
device can do (:mod:`benchkit.roofline`).

One panel per device of each throughput result set (a CPU and a GPU side by side when both
were measured), log-log: arithmetic intensity (FLOP per byte moved) across, achieved FLOP/s
up. Each dtype the device ran in has its roof, ``min(peak, intensity × bandwidth)``, drawn in
its own colour; each measured step is a point in its dtype's colour (a circle for a training
step, a triangle for an inference call), labelled ``model/precision/mode``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

_COLOURS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]
_MARKERS = {"train_step": "o", "inference": "^"}
_NEEDED = [
    "arithmetic_intensity",
    "achieved_flops_per_second",
    "peak_flops_per_second",
    "memory_bandwidth_bytes_per_second",
    "matmul_dtype",
]


def _points(results: pd.DataFrame) -> pd.DataFrame:
    if not set(_NEEDED) <= set(results.columns):
        return results.iloc[0:0]
    rows = results[results["status"] == "ok"].copy()
    for column in _NEEDED[:4]:
        rows[column] = pd.to_numeric(rows[column], errors="coerce")
    return rows.dropna(subset=_NEEDED[:4])


def roofline(results: pd.DataFrame) -> Figure | None:
    """The roofline panels of every throughput row with its roofline figures, or ``None``."""
    points = _points(results)
    if points.empty:
        return None
    if "set" not in points:
        points = points.assign(set="")
    if "mode" not in points:
        points = points.assign(mode="eager")
    panels = list(points.groupby(["set", "device"], sort=False))
    many_sets = points["set"].nunique() > 1
    dtypes = sorted(points["matmul_dtype"].astype(str).unique())
    colour = {d: _COLOURS[i % len(_COLOURS)] for i, d in enumerate(dtypes)}
    fig = Figure(figsize=(10 * len(panels), 8), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, ((set_name, device), rows) in zip(axes, panels, strict=True):
        _panel(ax, rows, colour)
        name = str(rows["device_name"].iloc[0]) if "device_name" in rows else ""
        title = f"{device}: {name}" if name and name != device else str(device)
        ax.set_title(f"{title}\n[{set_name}]" if many_sets else title, fontsize=10)
    fig.suptitle("Roofline: achieved FLOP/s against the device's roofs")
    return fig


def _panel(ax, rows: pd.DataFrame, colour: dict[str, str]) -> None:
    intensity = rows["arithmetic_intensity"].to_numpy(dtype=float)
    roofs = rows.groupby(rows["matmul_dtype"].astype(str)).agg(
        peak=("peak_flops_per_second", "max"),
        bandwidth=("memory_bandwidth_bytes_per_second", "max"),
    )
    ridges = (roofs["peak"] / roofs["bandwidth"]).to_numpy(dtype=float)
    low = min(intensity.min(), ridges.min()) / 4
    high = max(intensity.max(), ridges.max()) * 4
    x = np.logspace(np.log10(low), np.log10(high), 200)
    for dtype, roof in roofs.iterrows():
        ax.plot(
            x,
            np.minimum(roof["peak"], x * roof["bandwidth"]),
            color=colour[dtype],
            linewidth=1.5,
            label=f"{dtype} roof: {roof['peak'] / 1e9:.3g} GFLOP/s, "
            f"{roof['bandwidth'] / 1e9:.3g} GB/s",
        )
    for kind, marker in _MARKERS.items():
        ax.scatter([], [], marker=marker, color="black", label=kind.replace("_", " "))
    for i, (_, row) in enumerate(rows.sort_values("arithmetic_intensity").iterrows()):
        dtype = str(row["matmul_dtype"])
        ax.scatter(
            row["arithmetic_intensity"],
            row["achieved_flops_per_second"],
            marker=_MARKERS.get(str(row.get("kind")), "s"),
            color=colour[dtype],
            edgecolor="black",
            linewidth=0.4,
            zorder=3,
        )
        ax.annotate(
            f"{row['model']}/{row['precision']}/{row['mode']}",
            (row["arithmetic_intensity"], row["achieved_flops_per_second"]),
            textcoords="offset points",
            xytext=(4, 3 if i % 2 == 0 else -8),  # alternate sides: neighbours stay legible
            fontsize=6,
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    top = max(roofs["peak"].max(), rows["achieved_flops_per_second"].max())
    bottom = min(rows["achieved_flops_per_second"].min(), (x[0] * roofs["bandwidth"]).min())
    ax.set_ylim(bottom / 2, top * 3)
    ax.set_xlabel("arithmetic intensity (FLOP per byte moved)")
    ax.set_ylabel("FLOP/s")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
