"""What a device can do: its practical peak FLOP/s per dtype and its memory bandwidth.

**Peak FLOP/s** per device and dtype is the best rate of several matrix products
(:data:`GEMM_SHAPES`): a large square one, sized until one product takes about 20 ms, and the
small, thin ones the seed models run (a 2048-row batch through 20→64 and 64→64 layers, their
weight gradients, which reduce over the batch, and an LSTM's gate product). One large product
alone is the wrong ceiling where small shapes take a faster path (float16 on a CPU: the model's
small products ran at 114–188 % of the "peak" a single 4096² product gave).

**Memory bandwidth** per device is the better of a large copy (``a = b``: 2 × size bytes moved)
and a STREAM triad (``a = b + s·c``: 3 × size), with arrays larger than any cache.

Both are measured once per machine and cached in ``peaks.json`` under the cache folder
(``$BENCHKIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/benchkit``, else ``~/.cache/benchkit``),
keyed by a fingerprint of the hardware and software that set them (device name, torch
version, CPU capability, torch threads on the CPU). A result set records the figures it used
in ``run.json``. When a workload is measured faster than the recorded peak, the peak is raised
to that rate, in the result set and in the cache, with a note saying which case raised it: a
fraction of peak above 100 % is a wrong peak, never a fast model.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from benchkit.device import Device
from benchkit.resultset import atomic_write_text

CACHE_ENV = "BENCHKIT_CACHE_DIR"
CACHE_FILE = "peaks.json"
#: Matrix products (m, k, n) timed for the peak, besides the large square one: a batch of
#: 2048 through the sine MLP's 20→64 and 64→64 layers, their weight gradients (which reduce
#: over the batch), an LSTM step's gate product (64 × 384 → 1024) and a mid-sized square.
GEMM_SHAPES: tuple[tuple[int, int, int], ...] = (
    (2048, 20, 64),
    (2048, 64, 64),
    (64, 2048, 64),
    (64, 384, 1024),
    (512, 512, 512),
)
#: Bytes per array for the bandwidth test: larger than the last-level cache of CPUs and GPUs.
BANDWIDTH_BYTES = {"cpu": 128 * 2**20, "default": 512 * 2**20}


@dataclass
class Peak:
    """The best rate of a device in one dtype, with where it came from.

    :param flops_per_second: the best matrix-product rate measured (or raised to).
    :param shape: the product that gave it, ``MxKxN``, or ``raised by RUN_ID``.
    :param bandwidth_bytes_per_second: the device's memory bandwidth (copy or triad).
    :param source: ``measured`` in this process, or ``cached`` from an earlier one.
    :param fingerprint: the cache key: what must match for the figures to apply.
    :param raised_from: the measured peak before a workload beat it, if one did.
    """

    flops_per_second: float
    shape: str
    bandwidth_bytes_per_second: float
    source: str
    fingerprint: str
    measured_at: str = ""
    raised_from: float | None = None


def cache_dir() -> Path:
    """Where measured peaks are kept between runs."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "benchkit"


def fingerprint(device: Device) -> str:
    """What the figures of ``device`` depend on: its name and kind, torch's version, and on
    the CPU the vector capability and torch's thread count."""
    parts = [device.torch_device.type, device.display_name(), f"torch {torch.__version__}"]
    if device.torch_device.type == "cpu":
        parts += [torch.backends.cpu.get_cpu_capability(), f"{torch.get_num_threads()} threads"]
    return " | ".join(parts)


def _read_cache(folder: Path) -> dict[str, Any]:
    try:
        doc = json.loads((folder / CACHE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _write_cache(folder: Path, doc: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):  # a read-only home: the figures are in run.json anyway
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / CACHE_FILE, json.dumps(doc, indent=2, sort_keys=True) + "\n")


def _best_seconds(fn: Callable[[], object], sync: Callable[[], None], budget: float) -> float:
    """The fastest of repeated blocks of calls of ``fn`` (each block at least 2 ms), per call."""
    fn()
    sync()
    number = 1
    while True:
        start = time.perf_counter()
        for _ in range(number):
            fn()
        sync()
        taken = time.perf_counter() - start
        if taken >= 2e-3 or number >= 1 << 16:
            break
        number *= 2
    best = taken / number
    deadline = time.perf_counter() + budget
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        for _ in range(number):
            fn()
        sync()
        best = min(best, (time.perf_counter() - start) / number)
    return best


def gemm_flops(
    device: torch.device,
    dtype: torch.dtype,
    sync: Callable[[], None],
    shape: tuple[int, int, int],
    budget: float = 0.1,
) -> float:
    """FLOP/s of ``(m×k) @ (k×n)`` in ``dtype`` on ``device``: ``2·m·k·n`` per product."""
    m, k, n = shape
    a = torch.randn(m, k, device=device).to(dtype)
    b = torch.randn(k, n, device=device).to(dtype)
    return 2 * m * k * n / _best_seconds(lambda: a @ b, sync, budget)


def _square_shape(device: torch.device, dtype: torch.dtype, sync: Callable[[], None]) -> int:
    """The side of a square product that takes at least about 20 ms (at most 8192)."""
    n = 256
    while n < 8192:
        a = torch.randn(n, n, device=device).to(dtype)
        a @ a
        sync()
        start = time.perf_counter()
        a @ a
        sync()
        if time.perf_counter() - start >= 0.02:
            break
        n *= 2
    return n


def peak_gemm(
    device: torch.device, dtype: torch.dtype, sync: Callable[[], None], budget: float = 0.1
) -> tuple[float, str]:
    """The best FLOP/s over :data:`GEMM_SHAPES` and a large square product, and its shape."""
    side = _square_shape(device, dtype, sync)
    rates = {
        shape: gemm_flops(device, dtype, sync, shape, budget)
        for shape in (*GEMM_SHAPES, (side, side, side))
    }
    best = max(rates, key=rates.__getitem__)
    return rates[best], "x".join(map(str, best))


def memory_bandwidth(
    device: torch.device, sync: Callable[[], None], size_bytes: int, budget: float = 0.2
) -> float:
    """Bytes per second of the better of a copy and a triad over float32 arrays of
    ``size_bytes`` each."""
    n = size_bytes // 4
    a = torch.empty(n, device=device)
    b = torch.rand(n, device=device)
    c = torch.rand(n, device=device)
    copy = 2 * size_bytes / _best_seconds(lambda: a.copy_(b), sync, budget)
    triad = 3 * size_bytes / _best_seconds(lambda: torch.add(b, c, alpha=3.0, out=a), sync, budget)
    return max(copy, triad)


def device_peak(
    device: Device,
    dtype: torch.dtype,
    folder: Path | None = None,
    budget: float = 0.1,
    bandwidth_bytes: int | None = None,
) -> Peak:
    """The peak of ``device`` in ``dtype``: from the cache where this machine measured it
    before, else measured now (a second or two) and cached.

    :param folder: the cache folder (default :func:`cache_dir`).
    :param budget: seconds spent per matrix-product shape.
    :param bandwidth_bytes: bytes per array of the bandwidth test (default
        :data:`BANDWIDTH_BYTES`).
    """
    folder = folder or cache_dir()
    key = fingerprint(device)
    name = str(dtype).removeprefix("torch.")
    doc = _read_cache(folder)
    entry = doc.get(key, {})
    flops = entry.get("flops", {}).get(name)
    bandwidth = entry.get("bandwidth_bytes_per_second")
    if isinstance(flops, dict) and isinstance(bandwidth, int | float):
        return Peak(
            float(flops["flops_per_second"]),
            str(flops.get("shape", "")),
            float(bandwidth),
            "cached",
            key,
            str(flops.get("measured_at", "")),
            flops.get("raised_from"),
        )
    sync, where = device.synchronize, device.torch_device
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    if not isinstance(bandwidth, int | float):
        size = bandwidth_bytes or BANDWIDTH_BYTES.get(where.type, BANDWIDTH_BYTES["default"])
        bandwidth = memory_bandwidth(where, sync, size, 2 * budget)
    rate, shape = peak_gemm(where, dtype, sync, budget)
    doc = _read_cache(folder)  # another process may have written meanwhile
    entry = doc.setdefault(key, {})
    entry["bandwidth_bytes_per_second"] = bandwidth
    entry.setdefault("flops", {})[name] = {
        "flops_per_second": rate,
        "shape": shape,
        "measured_at": stamp,
    }
    _write_cache(folder, doc)
    return Peak(rate, shape, float(bandwidth), "measured", key, stamp)


def raise_peak(
    key: str, dtype: str, rate: float, by: str, folder: Path | None = None
) -> dict[str, Any]:
    """Record that the case ``by`` ran at ``rate`` FLOP/s in ``dtype``, above the cached peak
    of the machine ``key``: the cached peak becomes ``rate``. Returns the new cache entry."""
    folder = folder or cache_dir()
    doc = _read_cache(folder)
    flops = doc.setdefault(key, {}).setdefault("flops", {})
    old = flops.get(dtype, {})
    previous = float(old.get("flops_per_second", 0.0))
    if rate <= previous:
        return old
    flops[dtype] = {
        "flops_per_second": rate,
        "shape": f"raised by {by}",
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "raised_from": old.get("raised_from", previous) if old else None,
    }
    _write_cache(folder, doc)
    return flops[dtype]


def peak_record(peak: Peak) -> dict[str, Any]:
    """The figures of ``peak`` as ``run.json`` keeps them."""
    return asdict(peak)
