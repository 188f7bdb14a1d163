"""How many CPU threads torch uses, and whether other processes compete for the CPU.

**The default thread count.** torch starts with one thread per core. On a quiet machine that is
the fastest choice, but its threads wait for one another by spinning, and when another process
takes a core a multi-threaded step waits for a thread that is not running: on a 2-core machine
with one other CPU-bound process the README's sine MLP run took 3.3 times its quiet time with 2
threads and 1.2 times with 1 (issue 11). So, unless ``--threads`` says otherwise, benchkit looks
at the CPU for a moment before the first run (:func:`measure_load`: the idle time of the cores
this process may use, from ``/proc/stat`` over :data:`PROBE_SECONDS`) and uses as many threads
as there are idle cores, at least one and at most torch's own count (:func:`choose_threads`).
A quiet machine keeps torch's default; a busy one gets fewer threads, which cost little because
the models benchkit trains are small. The choice and its reason go to ``run.json``. Because
the number of threads can change the last bits of a result, pass ``--threads`` when two result
sets must match bit for bit (the committed baselines do).

**Contention.** A machine that is busy at the start is reported once on stderr with what to
do. During a run, :class:`LoadWindow` measures how much CPU time other processes used (all
busy time of this process's cores minus this process's own CPU time), and
:func:`epoch_spread` how unevenly the epochs took: another process that takes the core now
and then makes some epochs several times slower than others. A run is ``contended`` when
other processes used at least :data:`CONTENDED_CORES` cores on average, or its epoch times
spread by more than :data:`CONTENDED_SPREAD`. ``benchkit compare`` shows the timings of
contended runs but never gates on them.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: How long the start-up probe watches the CPU.
PROBE_SECONDS = 0.25
#: A core counts as idle when at least this share of it was idle during the probe.
IDLE_SHARE = 0.75
#: Other processes using this many cores on average during a run make it contended.
CONTENDED_CORES = 0.5
#: Epoch times whose 90th percentile is more than this many times their 10th: contended.
CONTENDED_SPREAD = 2.0
#: Fewest epochs (after warm-up) for the spread to say anything.
SPREAD_MIN_EPOCHS = 20
#: Runs shorter than this are too short for the load figure (ticks of 10 ms) to mean much.
LOAD_MIN_SECONDS = 0.25

_STAT = Path("/proc/stat")


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return max(1, cores)


def _cgroup_quota() -> float | None:
    """The cgroup v2 CPU quota in cores (``cpu.max``: ``QUOTA PERIOD``), if one is set."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    try:
        return int(quota) / int(period)
    except (ValueError, ZeroDivisionError):
        return None


@dataclass(frozen=True)
class CpuTimes:
    """Busy and total CPU time of this process's cores (seconds), this process's own CPU
    time, and the wall clock, at one moment."""

    busy: float
    total: float
    own: float
    wall: float
    cores: int


def read_cpu_times() -> CpuTimes | None:
    """Now's :class:`CpuTimes` from ``/proc/stat``; ``None`` where there is no such file."""
    try:
        lines = _STAT.read_text().splitlines()
    except OSError:
        return None
    try:
        mine = {f"cpu{i}" for i in os.sched_getaffinity(0)}
    except (AttributeError, OSError):
        mine = set()
    busy = total = 0
    cores = 0
    for line in lines:
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu") or name == "cpu" or (mine and name not in mine):
            continue
        fields = [int(x) for x in rest.split()[:8]]
        idle = fields[3] + fields[4]  # idle + iowait
        total += sum(fields)
        busy += sum(fields) - idle
        cores += 1
    if cores == 0:
        return None
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    return CpuTimes(busy / tick, total / tick, time.process_time(), time.perf_counter(), cores)


def other_load(start: CpuTimes, end: CpuTimes) -> float | None:
    """Cores other processes kept busy on average between two readings (this process's own
    CPU time taken out); ``None`` when the two readings cannot be compared."""
    wall = end.wall - start.wall
    if wall <= 0 or end.total <= start.total or start.cores != end.cores:
        return None
    per_core = (end.total - start.total) / end.cores  # seconds of each core's clock
    if per_core <= 0:
        return None
    others = (end.busy - start.busy) - (end.own - start.own)
    return max(0.0, others / per_core)


@dataclass(frozen=True)
class CpuLoad:
    """What the start-up probe saw: usable cores and how many were busy with other work."""

    cores: int
    busy: float | None  # None: unknown (no /proc/stat)
    method: str

    @property
    def idle(self) -> float | None:
        """Idle cores, or ``None`` when unknown."""
        return None if self.busy is None else max(0.0, self.cores - self.busy)


def measure_load(seconds: float = PROBE_SECONDS) -> CpuLoad:
    """Watch the CPU for ``seconds`` while this process sleeps; what is busy is other work.

    Linux: the busy time of this process's cores in ``/proc/stat``. Elsewhere: the one-minute
    load average (slow to follow a change), or nothing.
    """
    cores = usable_cores()
    start = read_cpu_times()
    if start is not None:
        time.sleep(seconds)
        end = read_cpu_times()
        load = other_load(start, end) if end is not None else None
        if load is not None:
            return CpuLoad(cores, min(float(cores), load), f"/proc/stat over {seconds:g} s")
    try:
        average = os.getloadavg()[0]
    except (AttributeError, OSError):
        return CpuLoad(cores, None, "unknown")
    return CpuLoad(cores, min(float(cores), average), "one-minute load average")


@dataclass(frozen=True)
class ThreadChoice:
    """How many threads torch uses for a suite, and why (recorded in ``run.json``)."""

    threads: int
    source: str  # "--threads", "resume", "idle cores", "torch default"
    reason: str
    load: CpuLoad | None = None
    torch_default: int | None = None

    @property
    def busy_at_start(self) -> bool:
        """Other processes kept at least :data:`CONTENDED_CORES` cores busy at the start."""
        return bool(self.load and self.load.busy is not None and self.load.busy >= CONTENDED_CORES)

    def record(self) -> dict[str, Any]:
        """The ``run.json`` entry."""
        out: dict[str, Any] = {
            "threads": self.threads,
            "chosen_by": self.source,
            "reason": self.reason,
            "torch_default": self.torch_default,
        }
        if self.load is not None:
            out["cores"] = self.load.cores
            out["busy_cores_at_start"] = (
                None if self.load.busy is None else round(self.load.busy, 2)
            )
            out["measured_with"] = self.load.method
        out["busy_at_start"] = self.busy_at_start
        return out


def choose_threads(
    requested: int | None, torch_default: int, load: CpuLoad | None, source: str = "--threads"
) -> ThreadChoice:
    """The thread count for a suite.

    :param requested: ``--threads`` (or the count a resumed set was made with); wins.
    :param torch_default: torch's own count in this process (``torch.get_num_threads()``).
    :param load: the start-up probe (:func:`measure_load`); ``None`` when not measured.
    """
    if requested is not None:
        return ThreadChoice(requested, source, f"{source} {requested}", load, torch_default)
    if load is None or load.idle is None:
        return ThreadChoice(
            torch_default,
            "torch default",
            f"torch's default ({torch_default}): the CPU's load could not be measured",
            load,
            torch_default,
        )
    idle_cores = math.floor(load.idle + (1 - IDLE_SHARE))
    threads = max(1, min(torch_default, idle_cores))
    if threads == torch_default:
        reason = (
            f"torch's default ({torch_default}): {load.idle:.1f} of {load.cores} cores idle "
            "at start"
        )
        return ThreadChoice(threads, "torch default", reason, load, torch_default)
    reason = (
        f"{threads} instead of torch's {torch_default}: other processes kept "
        f"{load.busy:.1f} of {load.cores} cores busy at start, and torch's threads spin-wait "
        "for a busy core"
    )
    return ThreadChoice(threads, "idle cores", reason, load, torch_default)


def busy_warning(choice: ThreadChoice) -> str:
    """The one stderr line for a machine busy at the start."""
    load = choice.load
    assert load is not None and load.busy is not None
    fewer = (
        f"using {choice.threads} torch thread{'s' * (choice.threads != 1)} instead of "
        f"{choice.torch_default}; "
        if choice.source == "idle cores"
        else ""
    )
    return (
        f"the CPU is busy: other processes keep about {load.busy:.1f} of {load.cores} cores "
        f"busy; {fewer}timings will be slower and noisier, and runs are marked contended "
        "(benchkit compare shows their timings but does not gate on them). For timings to "
        "compare, run on a quiet machine."
    )


def epoch_spread(durations: Sequence[float]) -> float | None:
    """90th over 10th percentile of epoch durations; ``None`` with too few epochs."""
    values = [d for d in durations if d > 0]
    if len(values) < SPREAD_MIN_EPOCHS:
        return None
    deciles = statistics.quantiles(values, n=10, method="inclusive")
    low, high = deciles[0], deciles[-1]
    return high / low if low > 0 else None


@dataclass
class Contention:
    """Whether one run shared the CPU, and the figures that say so."""

    contended: bool
    other_load: float | None = None
    spread: float | None = None
    reasons: list[str] = field(default_factory=list)


def assess(durations: Sequence[float], start: CpuTimes | None, end: CpuTimes | None) -> Contention:
    """Judge one run from its epoch durations (after warm-up) and two CPU readings around it."""
    load = other_load(start, end) if start is not None and end is not None else None
    long_enough = (
        start is not None and end is not None and end.wall - start.wall >= LOAD_MIN_SECONDS
    )
    spread = epoch_spread(durations)
    reasons = []
    if load is not None and long_enough and load >= CONTENDED_CORES:
        reasons.append(f"other processes used {load:.1f} of {end.cores} cores")
    if spread is not None and spread > CONTENDED_SPREAD:
        reasons.append(f"epoch times spread {spread:.1f}x (90th/10th percentile)")
    return Contention(bool(reasons), None if load is None else round(load, 3), spread, reasons)
