"""Peak memory of one case, measured in a fresh process.

Measuring a case inside a long-lived process is wrong twice over: the process's high-water mark
remembers earlier cases, and memory an allocator kept from them hides what this case needs.
So each case runs in a new Python process (``python -m benchkit.memory``) that

1. imports torch and benchkit and warms torch up on the device (a small forward, backward and
   optimizer step: the allocator, the autograd engine and the modules torch's optimizers import
   on first use initialise once per process, and that is not the case's memory);
2. on the CPU, resets the kernel's high-water mark of resident memory (``/proc/self/clear_refs``)
   and notes the resident size; on CUDA, resets the allocator's peak statistic;
3. builds the case (data, model, optimizer, one batch) and runs ``steps`` training steps or
   inference batches;
4. reports the peak: CPU, the high-water mark minus the resident size at step 2; CUDA, the
   caching allocator's peak of allocated bytes.

The parent collects one JSON line per case. The CPU method needs Linux; elsewhere the row says
so.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the probe process imports as little as it can before it measures
    import pandas as pd

    from benchkit.cases import DeviceCache
    from benchkit.resultset import ResultSetWriter
    from benchkit.suite import Case, Suite


#: Seconds a probe may take when neither ``--max-time`` nor the case's ``max_seconds`` says.
PROBE_TIMEOUT = 600.0


@dataclass
class MemoryResult:
    """What a probe reported: the peak in bytes and the method, or why it could not run."""

    status: str
    peak_memory_bytes: int | None = None
    method: str = ""
    detail: str = ""
    params: int | None = None
    batch_size: int | None = None


def probe(suite: str, run_id: str, kind: str, steps: int, plugins: list[str]) -> MemoryResult:
    """Measure one case in *this* process (the child side of :func:`measure`)."""
    from benchkit.cases import CaseUnavailable, DeviceCache, PreparedCase
    from benchkit.registry import PluginHost, PluginInfo
    from benchkit.suite import parse_suite

    host = PluginHost()
    host.load_entry_points()
    for name in plugins:
        host.add(importlib.import_module(name), PluginInfo(name=name, module=name))
    registry = host.collect()
    cases = {c.run_id: c for c in parse_suite(suite, registry).cases}
    if run_id not in cases:
        return MemoryResult("error", detail=f"{run_id} is not a case of {suite}")
    case = cases[run_id]
    devices = DeviceCache(registry)
    device = devices.get(case.device)
    reason = device.unavailable_reason()
    if reason:
        return MemoryResult("skipped", detail=f"device {case.device} unavailable: {reason}")
    # DeviceCache.get has warmed the device up; the device measures its own peak
    device.reset_peak_memory()
    try:
        prepared = PreparedCase.build(case, registry, devices)
        for _ in range(steps):
            prepared.run(kind)
    except CaseUnavailable as exc:
        return MemoryResult("skipped", detail=str(exc))
    peak = device.peak_memory_bytes()
    if peak is None:
        return MemoryResult("skipped", detail=f"{case.device} cannot measure its peak memory here")
    if device.torch_device.type == "cpu":
        method = "fresh process: resident high-water mark over the warmed-up baseline"
    else:
        method = f"fresh process: {case.device} allocator peak"
    return MemoryResult(
        "ok",
        max(0, peak),
        method,
        params=prepared.params,
        batch_size=prepared.batch_size,
    )


def measure(
    suite: Path,
    run_id: str,
    kind: str,
    steps: int = 3,
    plugins: tuple[str, ...] = (),
    timeout: float = PROBE_TIMEOUT,
    threads: int | None = None,
) -> MemoryResult:
    """Run :func:`probe` for one case in a new Python process and return its report."""
    cmd = [sys.executable, "-m", "benchkit.memory", str(suite), run_id, kind, "--steps", str(steps)]
    for name in plugins:
        cmd += ["--plugin", name]
    if threads:
        cmd += ["--threads", str(threads)]
    try:
        done = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    except subprocess.TimeoutExpired:
        return MemoryResult(
            "timeout",
            detail=f"the memory probe did not finish within its time limit of {timeout:g} s",
        )
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return MemoryResult("error", detail=f"memory probe failed: {tail}")
    return MemoryResult(**json.loads(lines[-1]))


def run_memory(
    cases: Sequence[Case],
    suite: Suite,
    writer: ResultSetWriter,
    devices: DeviceCache,
    threads: int | None,
    quiet: bool,
) -> pd.DataFrame:
    """Measure each case's peak memory for a training step and an inference batch, each in a
    fresh process, writing ``results.csv`` through ``writer`` after every measurement."""
    import pandas as pd

    from benchkit.resultset import MEMORY_COLUMNS

    rows: list[dict[str, Any]] = []
    total = 2 * len(cases)
    for case in cases:
        device = devices.get(case.device)
        name = "" if device.unavailable_reason() else device.display_name()
        for kind in ("train_step", "inference"):
            # the case's max_seconds (with --max-time folded in by the run stage) limits a probe
            limit = case.max_seconds if case.max_seconds is not None else PROBE_TIMEOUT
            got = measure(suite.path, case.run_id, kind, timeout=limit, threads=threads)
            rows.append(
                {
                    "run_id": f"{case.run_id}/{kind}",
                    "model": case.model,
                    "dataset": case.dataset,
                    "precision": case.precision,
                    "device": case.device,
                    "seed": case.seed,
                    "variant": case.variant,
                    "mode": case.mode,
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
            writer.set_rows(pd.DataFrame(rows, columns=MEMORY_COLUMNS))
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
    writer.set_rows(frame)
    return frame


def main(argv: list[str] | None = None) -> None:
    """``python -m benchkit.memory SUITE RUN_ID KIND``: print one JSON line."""
    parser = argparse.ArgumentParser(prog="python -m benchkit.memory")
    parser.add_argument("suite")
    parser.add_argument("run_id")
    parser.add_argument("kind", choices=("train_step", "inference"))
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        help="also load this module as a plugin (tests, local experiments)",
    )
    parser.add_argument("--threads", type=int)
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        result = probe(args.suite, args.run_id, args.kind, args.steps, args.plugin)
    except Exception as exc:  # reported to the parent as this case's error
        result = MemoryResult("error", detail=f"{type(exc).__name__}: {exc}")
    print(json.dumps(result.__dict__))


if __name__ == "__main__":
    main()
