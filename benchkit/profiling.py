"""``benchkit profile``: where a step's time goes, from ``torch.profiler``.

For each case of a suite (narrowed as ``benchkit run`` narrows it) the step is prepared as a
throughput benchmark prepares it, warmed up (the mode's one-off work done), timed without the
profiler in blocks (:meth:`~benchkit.cases.PreparedCase.block`), then run ``steps`` times under
``torch.profiler``. The step's profiled time is split into:

- ``compute``: time inside the operators that touch data. On the CPU: the self time (time not
  in a nested operator) of every ``aten::`` operator but those that only make views or
  metadata or merely call others (:data:`NOT_COMPUTE`: ``aten::view``, ``aten::linear`` …),
  and of a compiled step's fused kernels (``cpp_fused_*``). An operator's self time includes
  its own dispatch, so this is an upper bound of the arithmetic. On a GPU: the time kernels
  run.
- ``optimizer``: the optimizer's ``step`` (its whole range on the CPU; the kernels it launched
  on a GPU). A compiled step fuses the update into its kernels: then it counts as compute.
- ``overhead``: the rest of the step on the CPU: Python, operator dispatch, the autograd
  engine's bookkeeping, allocation. On a GPU: the host's time outside operators (a different
  clock from the kernels': what makes the device wait).
- ``idle`` (GPU only): the time in the step during which no kernel runs.

On the CPU the three shares add up to the step; on a GPU compute, optimizer and idle do. The
compute floor is the step's FLOPs over the device's peak (:mod:`benchkit.peaks`): the time the
step would take if all its arithmetic ran at the best matrix-product rate; the shares say where
the rest goes. The profiler itself adds a little time per operator, so the shares are of the
profiled step (``profiled_step_seconds``), while ``step_seconds`` is timed without it.

The table is the result set's ``results.csv`` (written by
:class:`~benchkit.resultset.ResultSetWriter`, ``kind = "profile"`` in ``run.json``); with
``trace`` each case's Chrome trace goes to ``traces/`` in the set (open it in
``chrome://tracing`` or Perfetto).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch.autograd import DeviceType

from benchkit.cases import CaseUnavailable, DeviceCache, PreparedCase, limit_reason
from benchkit.errors import describe_exception
from benchkit.peaks import device_peak
from benchkit.registry import Registry
from benchkit.resultset import MEASUREMENT_COLUMNS, ResultSetWriter
from benchkit.runner import suite_header
from benchkit.suite import Case, Suite

STEP_RANGE = "benchkit.step"
#: Operators whose own time is not arithmetic: views and metadata, allocation without
#: initialisation, and composites whose work is all in the operators they call.
NOT_COMPUTE = frozenset(
    f"aten::{name}"
    for name in [
        "view",
        "as_strided",
        "t",
        "transpose",
        "permute",
        "expand",
        "expand_as",
        "reshape",
        "_reshape_alias",
        "_unsafe_view",
        "alias",
        "detach",
        "detach_",
        "squeeze",
        "unsqueeze",
        "select",
        "slice",
        "narrow",
        "split",
        "chunk",
        "unbind",
        "flatten",
        "contiguous",
        "empty",
        "empty_like",
        "empty_strided",
        "resolve_conj",
        "resolve_neg",
        "lift_fresh",
        "result_type",
        "linear",
        "matmul",
        "to",
        "numpy_T",
        "zeros_like",
        "ones_like",
    ]
)
#: Names of operators and of a compiled step's generated kernels (``graph_0_cpp_fused_relu_0``).
KERNEL_MARKS = ("aten::", "cpp_fused", "triton_")
OPTIMIZER_PREFIX = "Optimizer.step#"
PROFILE_COLUMNS = [
    *MEASUREMENT_COLUMNS,
    "steps",
    "step_seconds",
    "floor_seconds",
    "profiled_step_seconds",
    "compute_seconds",
    "optimizer_seconds",
    "overhead_seconds",
    "idle_seconds",
    "compute_share",
    "optimizer_share",
    "overhead_share",
    "idle_share",
    "top_operators",
]


@dataclass
class Breakdown:
    """Seconds per step in each part (module docs) and the operators with the most time."""

    step: float
    compute: float
    optimizer: float
    overhead: float
    idle: float | None
    top: str


def _ancestors(event: Any) -> Any:
    parent = event.cpu_parent
    while parent is not None:
        yield parent
        parent = parent.cpu_parent


def breakdown(events: Sequence[Any], steps: int) -> Breakdown:
    """Split the profiled steps (``record_function(STEP_RANGE)`` ranges) into parts, per step.

    :param events: ``prof.events()`` of a profile that ran ``steps`` steps.
    """
    step_ranges = [e for e in events if e.name == STEP_RANGE]
    if not step_ranges:
        raise ValueError(f"no {STEP_RANGE} range in the profile")
    wall = sum(e.time_range.elapsed_us() for e in step_ranges) / 1e6
    in_step = {id(e) for s in step_ranges for e in _descendants(s)}
    cpu = [e for e in events if id(e) in in_step and e.device_type == DeviceType.CPU]
    optimizer_ranges = [
        e
        for e in cpu
        if e.name.startswith(OPTIMIZER_PREFIX)
        and not any(a.name.startswith(OPTIMIZER_PREFIX) for a in _ancestors(e))
    ]
    optimizer = sum(e.time_range.elapsed_us() for e in optimizer_ranges) / 1e6
    in_optimizer = {id(d) for o in optimizer_ranges for d in _descendants(o)}
    working = [
        e
        for e in cpu
        if any(mark in e.name for mark in KERNEL_MARKS)
        and e.name not in NOT_COMPUTE
        and id(e) not in in_optimizer
    ]
    by_name: dict[str, float] = {}
    for e in working:
        by_name[e.name] = by_name.get(e.name, 0.0) + e.self_cpu_time_total / 1e6
    kernels = [e for e in events if e.device_type != DeviceType.CPU]
    if kernels:
        # a range's device time is that of the kernels launched inside it
        optimizer_kernels = sum(e.device_time_total for e in optimizer_ranges) / 1e6
        return _device_breakdown(kernels, optimizer_kernels, wall, by_name, steps)
    compute = sum(by_name.values())
    top = _top(by_name, wall)
    return Breakdown(
        wall / steps,
        compute / steps,
        optimizer / steps,
        (wall - compute - optimizer) / steps,
        None,
        top,
    )


def _descendants(event: Any) -> list[Any]:
    out, todo = [event], list(event.cpu_children)
    while todo:
        child = todo.pop()
        out.append(child)
        todo.extend(child.cpu_children)
    return out


def _device_breakdown(
    kernels: list[Any],
    optimizer: float,
    wall: float,
    host_ops: dict[str, float],
    steps: int,
) -> Breakdown:
    """On a GPU: the time kernels run (the optimizer's apart: ``optimizer`` seconds), and the
    idle gaps, over the device's span of the profiled steps; the host's time outside
    operators as the overhead."""
    intervals = sorted(
        ((k.time_range.start, k.time_range.end, k.name) for k in kernels), key=lambda i: i[:2]
    )
    busy, last_end = 0.0, None
    by_name: dict[str, float] = {}
    for start, end, name in intervals:
        by_name[name] = by_name.get(name, 0.0) + (end - start) / 1e6
        begin = start if last_end is None else max(start, last_end)
        busy += max(0.0, (end - begin) / 1e6)  # overlapping kernels count once
        last_end = end if last_end is None else max(last_end, end)
    span = (intervals[-1][1] - intervals[0][0]) / 1e6
    device_wall = max(span, wall)
    optimizer = min(optimizer, busy)
    host_overhead = max(0.0, wall - sum(host_ops.values()))
    return Breakdown(
        device_wall / steps,
        (busy - optimizer) / steps,
        optimizer / steps,
        host_overhead / steps,
        (device_wall - busy) / steps,
        _top(by_name, device_wall),
    )


def _top(by_name: dict[str, float], total: float, n: int = 4) -> str:
    ranked = sorted(by_name.items(), key=lambda kv: -kv[1])[:n]
    return ", ".join(f"{name} {seconds / total:.0%}" for name, seconds in ranked if total > 0)


def profile_case(
    case: Case,
    kind: str,
    registry: Registry,
    devices: DeviceCache,
    steps: int,
    trace_path: Any = None,
) -> dict[str, Any]:
    """One row of the profile table for ``case`` and ``kind``; never raises for the case."""
    row: dict[str, Any] = {
        "run_id": f"{case.run_id}/{kind}",
        **{k: getattr(case, k) for k in ("model", "dataset", "precision", "device", "seed")},
        "variant": case.variant,
        "mode": case.mode,
        "kind": kind,
        "status": "ok",
        "status_detail": "",
        "steps": steps,
    }
    try:
        prepared = PreparedCase.build(case, registry, devices)
        row.update(device_name=prepared.device.display_name(), batch_size=prepared.batch_size)
        row["params"] = prepared.params
        flops = prepared.flops(kind).flops
        prepared.warm_up(kind)
        row["step_seconds"] = min(prepared.block(kind, steps) for _ in range(3))
        peak = device_peak(prepared.device, prepared.precision.compute_dtype)
        row["floor_seconds"] = flops / peak.flops_per_second
        activities = [torch.profiler.ProfilerActivity.CPU]
        if prepared.device.torch_device.type == "cuda":
            activities.append(torch.profiler.ProfilerActivity.CUDA)
        prof = torch.profiler.profile(activities=activities)
        with _quiet_stderr():  # the profiler's own start/stop lines
            prof.start()
        try:
            for _ in range(steps):
                with torch.profiler.record_function(STEP_RANGE):
                    prepared.call(kind)
                    prepared.device.synchronize()
        finally:
            with _quiet_stderr():
                prof.stop()
        if trace_path is not None:
            trace_path.parent.mkdir(parents=True, exist_ok=True)
            prof.export_chrome_trace(str(trace_path))
        parts = breakdown(prof.events(), steps)
    except CaseUnavailable as exc:
        return {**row, "status": "skipped", "status_detail": str(exc)}
    except Exception as exc:
        limit = limit_reason(case, registry, devices, exc)
        if limit:
            return {**row, "status": "skipped", "status_detail": limit}
        return {**row, "status": "error", "status_detail": describe_exception(exc)}
    row.update(
        profiled_step_seconds=parts.step,
        compute_seconds=parts.compute,
        optimizer_seconds=parts.optimizer,
        overhead_seconds=parts.overhead,
        idle_seconds=parts.idle,
        top_operators=parts.top,
    )
    for part in ("compute", "optimizer", "overhead", "idle"):
        seconds = row[f"{part}_seconds"]
        row[f"{part}_share"] = None if seconds is None else seconds / parts.step
    return row


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 (where torch's profiler prints its start and stop) for a
    moment; Python exceptions are unaffected."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def profile_suite(
    suite: Suite,
    cases: Sequence[Case],
    registry: Registry,
    out: Path,
    argv: Sequence[str],
    kinds: Sequence[str] = ("train_step",),
    steps: int = 10,
    trace: bool = False,
    quiet: bool = False,
) -> pd.DataFrame:
    """``benchkit profile``: profile ``cases`` of ``suite`` into a new result set at ``out``
    (``run.json`` kind ``profile``, closed as interrupted if a signal stops it)."""
    devices = DeviceCache(registry)
    header = {**suite_header(suite, registry, devices, list(argv)), "kind": "profile"}
    writer = ResultSetWriter(out, header)
    interrupted = False
    try:
        return run_profile(cases, registry, devices, writer, kinds, steps, trace, quiet)
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        writer.set_environment("devices", devices.environment())
        writer.close(interrupted=interrupted)


def run_profile(
    cases: Sequence[Case],
    registry: Registry,
    devices: DeviceCache,
    writer: ResultSetWriter,
    kinds: Sequence[str] = ("train_step",),
    steps: int = 10,
    trace: bool = False,
    quiet: bool = False,
) -> pd.DataFrame:
    """Profile every case and kind; write the table through ``writer`` after each one."""
    from torch._inductor import config as inductor

    inductor.cpp.enable_kernel_profile = True  # a compiled step's fused CPU kernels by name
    rows: list[dict[str, Any]] = []
    total = len(cases) * len(kinds)
    for case in cases:
        for kind in kinds:
            name = f"{case.run_id}/{kind}".replace("/", "_")
            path = writer.path(f"traces/{name}.json") if trace else None
            rows.append(profile_case(case, kind, registry, devices, steps, path))
            writer.set_rows(_frame(rows))
            if not quiet:
                row = rows[-1]
                what = row["status_detail"] if row["status"] != "ok" else row["top_operators"]
                print(
                    f"[{len(rows)}/{total}] {row['run_id']}  {row['status']}  {what}",
                    file=sys.stderr,
                    flush=True,
                )
    frame = _frame(rows)
    writer.set_rows(frame)
    return frame


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=PROFILE_COLUMNS)
    for col in ("batch_size", "params", "steps"):
        frame[col] = frame[col].astype("Int64")
    return frame


def profile_summary(frame: pd.DataFrame) -> str:
    """The table ``benchkit profile`` prints: per case the step, its compute floor, and the
    shares of the profiled step."""
    ok = frame[frame["status"] == "ok"]
    lines = []
    if len(ok):

        def ms(column: str) -> pd.Series:
            return (ok[column].astype(float) * 1e3).map(lambda v: f"{v:.3g}")

        def share(column: str) -> pd.Series:
            return ok[column].map(lambda v: "-" if pd.isna(v) else f"{v:.0%}")

        view = pd.DataFrame(
            {
                "case": ok["run_id"],
                "step ms": ms("step_seconds"),
                "floor ms": ms("floor_seconds"),
                "compute": share("compute_share"),
                "optimizer": share("optimizer_share"),
                "overhead": share("overhead_share"),
                "idle": share("idle_share"),
            }
        )
        lines.append(view.to_string(index=False))
        lines.append("top operators (share of the profiled step):")
        lines += [f"  {r['run_id']}: {r['top_operators']}" for _, r in ok.iterrows()]
    for _, row in frame[frame["status"] != "ok"].iterrows():
        lines.append(f"{row['status']}: {row['run_id']}: {row['status_detail']}")
    return "\n".join(lines)
