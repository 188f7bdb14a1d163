"""Throughput suites (``[suite] kind = "throughput"``): cases timed by pytest-benchmark.

``benchkit run`` runs the suite folder's test files in a pytest subprocess with benchkit's
pytest plugin (:mod:`benchkit.pytest_plugin`), keeps pytest-benchmark's own JSON as
``benchmark.json`` (for ``pytest-benchmark compare`` and CI actions that read that format) and
converts it to ``results.csv``: one row per case and kind (``train_step`` or ``inference``)
with the step latency's median, IQR and minimum, the rounds, samples per second, the FLOPs of
one call and the achieved FLOP/s against the device's measured peak in that dtype, the bytes
one call moves, its arithmetic intensity and what bounds it (:mod:`benchkit.roofline`), and
the mode's one-off seconds apart from the step times.

No row's fraction of peak exceeds 1: where a case ran faster than the peak the GEMM probe
measured, the peak of that device and dtype is raised to the case's rate, for every row of the
set, in ``run.json`` and in the machine's cache (:mod:`benchkit.peaks`), and the row says so.
Failures print one line per case; ``--debug`` shows pytest's tracebacks.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import pandas as pd

from benchkit.errors import BenchkitError
from benchkit.peaks import raise_peak
from benchkit.resultset import THROUGHPUT_COLUMNS, ResultSetWriter
from benchkit.roofline import bound
from benchkit.suite import Suite


def pytest_filter_args(filters: dict[str, Sequence[Any]]) -> list[str]:
    """benchkit's CLI filters as ``--benchkit-filter`` options for the pytest plugin."""
    names = {
        "models": "model",
        "datasets": "dataset",
        "precisions": "precision",
        "devices": "device",
        "seeds": "seeds",
        "modes": "mode",
    }
    args = []
    for key, values in filters.items():
        if values:
            args += ["--benchkit-filter", f"{names[key]}={','.join(map(str, values))}"]
    return args


def run_throughput(
    suite: Suite,
    writer: ResultSetWriter,
    filters: dict[str, Sequence[Any]],
    batch_sizes: Sequence[int | None],
    threads: int | None,
    quiet: bool,
    max_time: float,
    debug: bool = False,
) -> pd.DataFrame:
    """Run the suite's pytest-benchmark tests, write ``results.csv`` through ``writer`` (and
    pytest-benchmark's machine info and the peaks used into ``run.json``), and return the
    table. A case that fails is one line of pytest's summary, its traceback only with
    ``debug``."""
    raw = writer.path("benchmark.json")
    problems = writer.path("problems.json")
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        str(suite.path.parent),
        "-p",
        "no:cacheprovider",
        "--benchkit-suite",
        str(suite.path),
        "--benchkit-skips",
        str(problems),
        "--benchmark-json",
        str(raw),
        f"--benchmark-max-time={max_time}",
        "--benchmark-min-rounds=5",
        "--benchmark-save-data",  # every round's time, so compare can bootstrap them
        "-q" if not quiet else "-qq",
        "--tb=long" if debug else "--tb=no",  # a failing case: one line, or its traceback
        "-W",
        "ignore::pytest_benchmark.logger.PytestBenchmarkWarning",  # a failed case used no timer
        *pytest_filter_args(filters),
    ]
    if batch_sizes:
        cmd += [
            "--benchkit-batch-sizes",
            ",".join("recipe" if b is None else str(b) for b in batch_sizes),
        ]
    if threads:
        cmd += ["--benchkit-threads", str(threads)]
    done = subprocess.run(cmd, capture_output=quiet, text=True)
    # pytest: 0 all passed, 1 some failed (those cases become error rows), else nothing ran
    if done.returncode == 1 and not raw.exists() and problems.exists():
        raw.write_text(json.dumps({"benchmarks": []}))  # every case failed: no JSON was saved
    if done.returncode not in (0, 1) or not raw.exists():
        detail = (done.stderr or done.stdout or "").strip().splitlines()[-3:] if quiet else []
        raise BenchkitError(
            f"the throughput tests in {suite.path.parent} did not run "
            f"(pytest exit {done.returncode}) " + " ".join(detail)
        )
    doc = json.loads(raw.read_text())
    found = json.loads(problems.read_text()) if problems.exists() else []
    frame = results_from_benchmarks(doc, found)
    writer.set_environment("pytest_benchmark_machine", doc.get("machine_info", {}))
    writer.set_environment("peaks", _peaks_used(doc, frame))
    writer.set_rows(frame)
    return frame


def _peaks_used(doc: dict[str, Any], frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per device and dtype the peak FLOP/s and bandwidth the rows were measured against, as
    ``run.json`` records them; a peak a case beat is raised here and in the machine's cache."""
    used: dict[str, dict[str, Any]] = {}
    for bench in doc.get("benchmarks", []):
        info = bench.get("extra_info", {})
        if not info.get("benchkit") or info.get("peak_flops_per_second") is None:
            continue
        entry = used.setdefault(info["device"], {"name": info.get("device_name", "")})
        entry.setdefault("fingerprint", info.get("peak_fingerprint", ""))
        entry["memory_bandwidth_bytes_per_second"] = info.get("memory_bandwidth_bytes_per_second")
        entry.setdefault("flops", {}).setdefault(
            info["matmul_dtype"],
            {
                "peak_flops_per_second": info["peak_flops_per_second"],
                "shape": info.get("peak_shape", ""),
                "source": info.get("peak_source", ""),
            },
        )
    raised = frame[frame["peak_note"].fillna("").ne("")] if "peak_note" in frame else frame[:0]
    for _, row in raised.iterrows():
        flops = used.get(row["device"], {}).get("flops", {}).get(row["matmul_dtype"])
        if flops is None or row["peak_flops_per_second"] <= flops["peak_flops_per_second"]:
            continue
        flops["raised_from"] = flops["peak_flops_per_second"]
        flops["peak_flops_per_second"] = row["peak_flops_per_second"]
        flops["raised_by"] = row["run_id"]
        key = used[row["device"]].get("fingerprint")
        if key:
            raise_peak(key, row["matmul_dtype"], float(row["peak_flops_per_second"]), row["run_id"])
    return used


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
        moved = info.get("bytes_per_call")
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
                "mode": info.get("mode", "eager"),
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
                "matmul_dtype": info.get("matmul_dtype", ""),
                "mode_setup_seconds": info.get("mode_setup_seconds"),
                "calls_per_block": info.get("calls_per_block", 1),
                "bytes_per_call": moved,
                "arithmetic_intensity": flops / moved if moved else None,
                "memory_bandwidth_bytes_per_second": info.get("memory_bandwidth_bytes_per_second"),
            }
        )
    for problem in problems:
        rows.append(
            {
                "run_id": f"{problem['run_id']}/{problem['kind']}",
                **{k: problem[k] for k in ("model", "dataset", "precision", "device", "seed")},
                "variant": problem.get("variant", ""),
                "mode": problem.get("mode", "eager"),
                "kind": problem["kind"],
                "status": problem["status"],
                "status_detail": problem["reason"],
            }
        )
    frame = _against_peaks(pd.DataFrame(rows, columns=THROUGHPUT_COLUMNS))
    for col in ("batch_size", "params", "rounds", "flops_per_call", "calls_per_block"):
        frame[col] = frame[col].astype("Int64")
    frame["bytes_per_call"] = frame["bytes_per_call"].astype("Int64")
    return frame.sort_values(
        ["model", "dataset", "kind", "precision", "device", "batch_size", "mode"], kind="stable"
    ).reset_index(drop=True)


def _against_peaks(frame: pd.DataFrame) -> pd.DataFrame:
    """Fractions of peak and bounds. Per device and dtype the peak is the higher of the GEMM
    probe's and the fastest case's rate, so no fraction exceeds 1; the case that raised it says
    so in ``peak_note``."""
    frame = frame.copy()
    frame["peak_note"] = frame["peak_note"].astype(object)
    measured = frame["status"].eq("ok") & frame["peak_flops_per_second"].notna()
    for _, group in frame[measured].groupby(["device", "matmul_dtype"], sort=False):
        probe = float(group["peak_flops_per_second"].max())
        best = group["achieved_flops_per_second"].astype(float)
        top = best.idxmax() if best.notna().any() else None
        if top is not None and best[top] > probe:
            frame.loc[group.index, "peak_flops_per_second"] = best[top]
            frame.loc[top, "peak_note"] = (
                f"peak raised from {probe / 1e9:.3g} to {best[top] / 1e9:.3g} GFLOP/s: this "
                "case ran faster than every matrix product of the peak probe"
            )
    achieved = frame["achieved_flops_per_second"].astype(float)
    peak = frame["peak_flops_per_second"].astype(float)
    frame["peak_fraction"] = (achieved / peak).clip(upper=1.0)
    frame["bound"] = [
        bound(a, p, i, w)
        for a, p, i, w in zip(
            achieved,
            peak,
            frame["arithmetic_intensity"].astype(float),
            frame["memory_bandwidth_bytes_per_second"].astype(float),
            strict=True,
        )
    ]
    return frame
