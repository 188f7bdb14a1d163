"""Throughput result tables from pytest-benchmark's JSON, and the CPU-versus-GPU views.

``benchkit run`` on a throughput suite keeps pytest-benchmark's own JSON (``benchmark.json``, for
``pytest-benchmark compare`` and CI actions that read that format) and writes beside it a
``results.csv`` with one row per case and kind (``train_step`` or ``inference``): the step
latency's median, IQR and minimum, the rounds, samples per second, the FLOPs of one call and
the achieved FLOP/s against the device's measured peak in that dtype.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from benchkit.results import KEY_COLUMNS

#: The leading columns of every per-case measurement table (throughput, memory).
MEASUREMENT_COLUMNS = [
    "run_id",
    *KEY_COLUMNS,
    "kind",
    "device_name",
    "status",
    "status_detail",
    "batch_size",
    "params",
]
THROUGHPUT_COLUMNS = [
    *MEASUREMENT_COLUMNS,
    "step_median_seconds",
    "step_iqr_seconds",
    "step_min_seconds",
    "rounds",
    "samples_per_second",
    "flops_per_call",
    "flops_method",
    "achieved_flops_per_second",
    "peak_flops_per_second",
    "peak_fraction",
    "matmul_dtype",
]
_KEYS = ["model", "dataset", "precision", "seed", "variant", "kind"]


def _split_run_id(run_id: str) -> dict[str, Any]:
    model, dataset, precision, device, seed, *_ = run_id.split("/")
    return {
        "model": model,
        "dataset": dataset,
        "precision": precision,
        "device": device,
        "seed": int(seed.removeprefix("seed")),
    }


def results_from_benchmarks(doc: dict[str, Any], problems: list[dict[str, Any]]) -> pd.DataFrame:
    """benchkit's throughput table from a pytest-benchmark JSON document and the list of
    skipped/failed cases the pytest plugin wrote."""
    rows = []
    for bench in doc.get("benchmarks", []):
        info = bench.get("extra_info", {})
        if not info.get("benchkit"):
            continue
        stats = bench["stats"]
        median = stats["median"]
        flops = info["flops_per_call"]
        achieved = flops / median if median > 0 else None
        peak = info.get("peak_flops_per_second")
        rows.append(
            {
                "run_id": f"{info['run_id']}/{info['kind']}",
                **{
                    k: info[k]
                    for k in (
                        "model",
                        "dataset",
                        "precision",
                        "device",
                        "seed",
                        "variant",
                        "kind",
                        "device_name",
                        "batch_size",
                        "params",
                    )
                },
                "status": "ok",
                "status_detail": "",
                "step_median_seconds": median,
                "step_iqr_seconds": stats["iqr"],
                "step_min_seconds": stats["min"],
                "rounds": stats["rounds"],
                "samples_per_second": info["batch_size"] / median if median > 0 else None,
                "flops_per_call": flops,
                "flops_method": info.get("flops_method", ""),
                "achieved_flops_per_second": achieved,
                "peak_flops_per_second": peak,
                "peak_fraction": achieved / peak if achieved and peak else None,
                "matmul_dtype": info.get("matmul_dtype", ""),
            }
        )
    for problem in problems:
        rows.append(
            {
                "run_id": f"{problem['run_id']}/{problem['kind']}",
                **_split_run_id(problem["run_id"]),
                "variant": problem.get("variant", ""),
                "kind": problem["kind"],
                "status": problem["status"],
                "status_detail": problem["reason"],
            }
        )
    frame = pd.DataFrame(rows, columns=THROUGHPUT_COLUMNS)
    for col in ("batch_size", "params", "rounds", "flops_per_call"):
        frame[col] = frame[col].astype("Int64")
    return frame.sort_values(
        ["model", "dataset", "kind", "precision", "device", "batch_size"], kind="stable"
    ).reset_index(drop=True)


def speedup_table(frame: pd.DataFrame, baseline: str = "cpu") -> pd.DataFrame:
    """Samples per second of every other device against ``baseline`` on the same model,
    dataset, precision, kind and batch size (rows of ``ok`` status only)."""
    ok = frame[(frame["status"] == "ok") & frame["samples_per_second"].notna()].copy()
    if "kind" not in ok:
        ok["kind"] = "train"
    keys = [k for k in (*_KEYS, "batch_size") if k in ok and k not in ("seed", "variant")]
    agg = ok.groupby([*keys, "device"], dropna=False)["samples_per_second"].median().reset_index()
    base = agg[agg["device"] == baseline].drop(columns="device")
    others = agg[agg["device"] != baseline]
    merged = others.merge(base, on=keys, suffixes=("", "_base"))
    merged = merged.rename(columns={"samples_per_second_base": f"{baseline}_samples_per_second"})
    merged["speedup"] = merged["samples_per_second"] / merged[f"{baseline}_samples_per_second"]
    return merged.reset_index(drop=True)


def device_speedup(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """:func:`speedup_table` over one or more result sets (convergence or throughput). When
    the same device name appears in several sets (two machines' ``cpu``), each is labelled
    with its hardware name, and the first set's CPU is the baseline."""
    labelled = []
    for frame in frames:
        frame = frame.copy()
        if "device_name" not in frame:
            frame["device_name"] = ""
        labelled.append(frame)
    pooled = pd.concat(labelled, ignore_index=True)
    if len(frames) > 1:
        seen = [set(f["device"]) for f in labelled]
        clash = {d for i, a in enumerate(seen) for b in seen[i + 1 :] for d in a & b}
        for frame in labelled:
            named = frame["device"].isin(clash) & frame["device_name"].fillna("").ne("")
            frame.loc[named, "device"] = (
                frame.loc[named, "device"] + " [" + frame.loc[named, "device_name"] + "]"
            )
        pooled = pd.concat(labelled, ignore_index=True)
    first_cpu = [d for d in labelled[0]["device"].unique() if str(d).startswith("cpu")]
    if not first_cpu:
        return pd.DataFrame()
    return speedup_table(pooled, baseline=first_cpu[0])


def crossover_table(frame: pd.DataFrame, baseline: str = "cpu") -> pd.DataFrame:
    """Per model, precision, kind and device: the smallest batch size from which the device
    is faster than ``baseline`` at that batch and every larger one measured (empty when it
    never is)."""
    speed = speedup_table(frame, baseline)
    rows = []
    group_keys = [k for k in ("model", "dataset", "precision", "kind", "device") if k in speed]
    for key, group in speed.groupby(group_keys, dropna=False):
        group = group.sort_values("batch_size")
        faster = list(group["speedup"] > 1)
        crossover = None
        for i in range(len(faster)):
            if all(faster[i:]):
                crossover = int(group["batch_size"].iloc[i])
                break
        rows.append(
            {
                **dict(zip(group_keys, key, strict=True)),
                "batch_sizes": "/".join(str(int(b)) for b in group["batch_size"]),
                "crossover_batch_size": crossover,
                "speedup_at_largest": float(group["speedup"].iloc[-1]),
            }
        )
    out = pd.DataFrame(rows)
    if len(out):
        out["crossover_batch_size"] = out["crossover_batch_size"].astype("Int64")
    return out


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
                "device": ok["device"],
                "batch": ok["batch_size"],
                "median ms": (ok["step_median_seconds"] * 1e3).map(lambda v: f"{v:.3g}"),
                "IQR ms": (ok["step_iqr_seconds"] * 1e3).map(lambda v: f"{v:.2g}"),
                "samples/s": ok["samples_per_second"].map(lambda v: f"{v:.3g}"),
                "GFLOP/s": (ok["achieved_flops_per_second"] / 1e9).map(lambda v: f"{v:.3g}"),
                "of peak": ok["peak_fraction"].map(lambda v: f"{v:.2%}" if pd.notna(v) else "-"),
            }
        )
        lines.append(view.to_string(index=False))
    for _, row in frame[frame["status"] == "error"].iterrows():
        lines.append(f"error: {row['run_id']}: {row['status_detail']}")
    skipped = frame[frame["status"] == "skipped"]
    for reason, group in skipped.groupby("status_detail", sort=False):
        lines.append(f"skipped ({len(group)} benchmarks): {reason}")
    return "\n".join(lines)
