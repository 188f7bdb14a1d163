"""How much faster each device is than the CPU: speed-ups per workload, and the batch size
from which a device overtakes the CPU (``crossover.csv``). Reads results.csv tables of
convergence or throughput suites; used by ``benchkit run`` and ``benchkit compare --by device``.
"""

from __future__ import annotations

import pandas as pd

from benchkit.errors import BenchkitError

_KEYS = ["model", "dataset", "precision", "mode", "seed", "variant", "kind"]


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


def device_speedup_text(paths: list[str]) -> str:
    """``benchkit compare --by device``: the speed-up table of one or more result sets.

    :raises BenchkitError: a path is not a result set, or no workload ran on the CPU and on
        another device.
    """
    from benchkit.resultset import read_table

    frames = [read_table(path, "results.csv") for path in paths]
    speed = device_speedup(frames)
    if speed.empty:
        raise BenchkitError(
            "no model/precision measured on the CPU and on another device: run the suite with "
            "--device cpu and --device cuda (or give a CPU and a GPU result set)"
        )
    return speed.to_string(index=False)
