"""Built-in devices: ``cpu``, ``cuda`` (``cuda:N``) and ``mps``."""

from __future__ import annotations

import ctypes
import functools
import platform
import shutil
import subprocess
from typing import Any

import torch

import benchkit
from benchkit import Device, cpu_name
from benchkit.errors import BenchkitError

_PROC_STATUS = "/proc/self/status"
_CLEAR_REFS = "/proc/self/clear_refs"


def _proc_status_kib(field: str) -> int | None:
    try:
        with open(_PROC_STATUS) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


@functools.cache
def _malloc_trim() -> Any:
    """glibc's ``malloc_trim``, or ``None`` where the C library has none (musl, macOS)."""
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None


class CpuDevice(Device):
    """The host CPU.

    Peak memory is the growth of the process's resident set over the run: Linux lets a process
    reset its own high-water mark (``clear_refs``), so the figure belongs to this run, not to
    whatever ran before it. Before the run, the C allocator hands the heap's free pages back
    (glibc's ``malloc_trim``), so memory an earlier run freed counts again when this run uses
    it. What stays resident after a first use (a library's caches, kernels built on the first
    call) is not counted again, so a process's first run of a kind can read higher than its
    later ones. Elsewhere it is not measured.
    """

    name = "cpu"

    def __init__(self) -> None:
        self._baseline_kib: int | None = None

    def display_name(self) -> str:
        return cpu_name()

    def environment(self) -> dict[str, Any]:
        return {"threads": torch.get_num_threads()}

    def reset_peak_memory(self) -> None:
        trim = _malloc_trim()
        if trim is not None:
            # Hand the heap's free pages back first: otherwise a run that reuses what an
            # earlier run freed grows the process less than one that starts it, and the
            # figure depends on the runs before it (35 MiB in one order, 3 MiB in another).
            trim(0)
        try:
            with open(_CLEAR_REFS, "w") as f:
                f.write("5")
        except OSError:
            self._baseline_kib = None
            return
        self._baseline_kib = _proc_status_kib("VmRSS")

    def peak_memory_bytes(self) -> int | None:
        if self._baseline_kib is None:
            return None
        peak = _proc_status_kib("VmHWM")
        if peak is None:
            return None
        return max(0, peak - self._baseline_kib) * 1024


class CudaDevice(Device):
    """An NVIDIA GPU through torch's CUDA backend. Timing uses CUDA events, so marking an epoch
    never waits for the GPU; peak memory is the caching allocator's peak statistic."""

    asynchronous = True

    def __init__(self, index: int | None) -> None:
        self.index = 0 if index is None else index
        self.name = f"cuda:{self.index}"

    def unavailable_reason(self) -> str | None:
        if not torch.backends.cuda.is_built():
            return f"torch {torch.__version__} was built without CUDA (install a CUDA build)"
        if not torch.cuda.is_available():
            return "no CUDA device is visible (no NVIDIA GPU or driver)"
        count = torch.cuda.device_count()
        if self.index >= count:
            return f"{self.name} does not exist: {count} CUDA device(s) present"
        return None

    def display_name(self) -> str:
        return torch.cuda.get_device_name(self.index)

    def environment(self) -> dict[str, Any]:
        props = torch.cuda.get_device_properties(self.index)
        env: dict[str, Any] = {
            "gpu": props.name,
            "capability": f"{props.major}.{props.minor}",
            "memory_bytes": props.total_memory,
            "cuda": torch.version.cuda,
        }
        driver = _nvidia_driver()
        if driver:
            env["driver"] = driver
        return env

    def dtype_unsupported_reason(self, dtype: torch.dtype) -> str | None:
        if dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
            return f"{self.display_name()} has no bfloat16 support"
        return None

    def synchronize(self) -> None:
        torch.cuda.synchronize(self.index)

    def reset_peak_memory(self) -> None:
        torch.cuda.synchronize(self.index)
        torch.cuda.reset_peak_memory_stats(self.index)

    def peak_memory_bytes(self) -> int | None:
        return int(torch.cuda.max_memory_allocated(self.index))

    def mark(self) -> Any:
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def seconds_between(self, start: Any, end: Any) -> float:
        return start.elapsed_time(end) / 1000.0


@functools.cache
def _nvidia_driver() -> str | None:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return None
    try:
        out = subprocess.run(
            [exe, "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else None


class MpsDevice(Device):
    """Apple-silicon GPU through torch's Metal backend."""

    name = "mps"
    asynchronous = True
    accumulate_dtype = torch.float32  # MPS has no float64

    def unavailable_reason(self) -> str | None:
        if not torch.backends.mps.is_built():
            return f"torch {torch.__version__} was built without MPS (Apple silicon only)"
        if not torch.backends.mps.is_available():
            return "MPS is built but not available (needs macOS 12.3+ on Apple silicon)"
        return None

    def display_name(self) -> str:
        return f"Apple GPU ({platform.machine()})"

    def dtype_unsupported_reason(self, dtype: torch.dtype) -> str | None:
        if dtype == torch.float64:
            return "MPS has no float64 support"
        return None

    def synchronize(self) -> None:
        torch.mps.synchronize()

    def reset_peak_memory(self) -> None:
        torch.mps.synchronize()

    def peak_memory_bytes(self) -> int | None:
        # MPS exposes no peak statistic; the driver's current allocation after the run is the
        # closest honest figure.
        return int(torch.mps.driver_allocated_memory())

    def mark(self) -> Any:
        event = torch.mps.Event(enable_timing=True)
        event.record()
        return event

    def seconds_between(self, start: Any, end: Any) -> float:
        return start.elapsed_time(end) / 1000.0


def _cpu(index: int | None) -> Device:
    if index is not None:
        raise BenchkitError("the cpu device takes no index (write 'cpu')")
    return CpuDevice()


def _mps(index: int | None) -> Device:
    if index not in (None, 0):
        raise BenchkitError("mps has a single device (write 'mps')")
    return MpsDevice()


@benchkit.hookimpl
def benchkit_register_devices(register):
    """The CPU, NVIDIA GPUs and Apple GPUs."""
    register("cpu", _cpu, description="the host CPU")
    register("cuda", CudaDevice, description="an NVIDIA GPU (cuda:N picks one)")
    register("mps", _mps, description="an Apple-silicon GPU (Metal)")
