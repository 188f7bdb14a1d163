"""Running throughput and memory suites (``[suite] kind = "throughput"`` / ``"memory"``).

A throughput suite's cases are timed by pytest-benchmark: ``benchkit run`` runs the suite
folder's test files in a pytest subprocess with benchkit's pytest plugin, keeps
pytest-benchmark's JSON as ``benchmark.json`` and converts it to ``results.csv``
(:mod:`benchkit.throughput`). A memory suite measures each case's peak memory for a training
step and for an inference batch, each in a fresh process (:mod:`benchkit.memory`).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from benchkit.errors import BenchkitError
from benchkit.results import SCHEMA_VERSION, atomic_write_text
from benchkit.suite import Case, Suite
from benchkit.throughput import MEASUREMENT_COLUMNS

MEMORY_COLUMNS = [*MEASUREMENT_COLUMNS, "peak_memory_bytes", "method"]


def write_meta(out: Path, meta: dict[str, Any], kind: str, runs: int) -> None:
    """``run.json`` of a throughput or memory result set."""
    doc = {
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        **meta,
        "finished": True,
        "interrupted": False,
        "runs": runs,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    atomic_write_text(out / "run.json", json.dumps(doc, indent=2, default=str) + "\n")


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
    out: Path,
    filters: dict[str, Sequence[Any]],
    batch_sizes: Sequence[int | None],
    threads: int | None,
    quiet: bool,
    max_time: float,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Run the suite's pytest-benchmark tests; return the result table and pytest-benchmark's
    machine info."""
    from benchkit.throughput import results_from_benchmarks

    raw = out / "benchmark.json"
    problems = out / "problems.json"
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
    atomic_write_text(out / "results.csv", frame.to_csv(index=False))
    return frame, doc.get("machine_info", {})


def run_memory(
    cases: Sequence[Case], suite: Suite, out: Path, threads: int | None, quiet: bool, registry
) -> pd.DataFrame:
    """Measure each case's peak memory for a training step and an inference batch, each in a
    fresh process, writing ``results.csv`` after every measurement."""
    from benchkit.memory import measure
    from benchkit.runner import DeviceCache

    devices = DeviceCache(registry)
    rows: list[dict[str, Any]] = []
    total = 2 * len(cases)
    for case in cases:
        device = devices.get(case.device)
        name = "" if device.unavailable_reason() else device.display_name()
        for kind in ("train_step", "inference"):
            got = measure(suite.path, case.run_id, kind, threads=threads)
            rows.append(
                {
                    "run_id": f"{case.run_id}/{kind}",
                    "model": case.model,
                    "dataset": case.dataset,
                    "precision": case.precision,
                    "device": case.device,
                    "seed": case.seed,
                    "variant": case.variant,
                    "kind": kind,
                    "device_name": name,
                    "status": got.status,
                    "status_detail": got.detail,
                    "batch_size": got.batch_size,
                    "params": got.params,
                    "peak_memory_bytes": got.peak_memory_bytes,
                    "method": got.method,
                }
            )
            frame = pd.DataFrame(rows, columns=MEMORY_COLUMNS)
            atomic_write_text(out / "results.csv", frame.to_csv(index=False))
            if not quiet:
                size = (
                    f"{got.peak_memory_bytes / 2**20:.2f} MiB"
                    if got.peak_memory_bytes is not None
                    else got.detail
                )
                print(
                    f"[{len(rows):>{len(str(total))}}/{total}] {case.run_id} {kind}  "
                    f"{got.status}  {size}",
                    file=sys.stderr,
                    flush=True,
                )
    frame = pd.DataFrame(rows, columns=MEMORY_COLUMNS)
    for col in ("batch_size", "params", "peak_memory_bytes"):
        frame[col] = frame[col].astype("Int64")
    return frame


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
