"""Throughput suites (``[suite] kind = "throughput"``): cases timed by pytest-benchmark.

``benchkit run`` runs the suite folder's test files in a pytest subprocess with benchkit's
pytest plugin (:mod:`benchkit.pytest_plugin`), keeps pytest-benchmark's own JSON as
``benchmark.json`` (for ``pytest-benchmark compare`` and CI actions that read that format) and
converts it to ``results.csv``: one row per case and kind (``train_step`` or ``inference``)
with the step latency's median, IQR and minimum, the rounds, samples per second, the FLOPs of
one call and the achieved FLOP/s against the device's measured peak in that dtype.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import pandas as pd

from benchkit.errors import BenchkitError
from benchkit.resultset import THROUGHPUT_COLUMNS, ResultSetWriter
from benchkit.suite import Suite


def pytest_filter_args(filters: dict[str, Sequence[Any]]) -> list[str]:
    """benchkit's CLI filters as ``--benchkit-filter`` options for the pytest plugin."""
    names = {
        "models": "model",
        "datasets": "dataset",
        "precisions": "precision",
        "devices": "device",
        "seeds": "seeds",
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
) -> pd.DataFrame:
    """Run the suite's pytest-benchmark tests, write ``results.csv`` through ``writer`` (and
    pytest-benchmark's machine info into ``run.json``), and return the table."""
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
    writer.set_rows(frame)
    return frame


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
                **{k: problem[k] for k in ("model", "dataset", "precision", "device", "seed")},
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
