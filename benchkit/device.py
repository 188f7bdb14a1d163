"""The interface a device plugin implements: presence, data movement, synchronisation, timing
and peak memory."""

from __future__ import annotations

import time
from typing import Any

import torch


class Device:
    """A place to train. A device factory receives the index from ``cuda:N`` (``None`` when the
    suite names the device without one) and returns an instance; building it must be cheap and
    must not fail when the hardware is absent: :meth:`unavailable_reason` says so instead.
    """

    #: Name as the suite and the result table write it (``"cpu"``, ``"cuda:0"``).
    name: str = "cpu"

    #: Whether work is queued and runs later (a GPU): then the training loop never reads a value
    #: back per epoch, since that would make the host wait for the device. On a synchronous
    #: device (the CPU) reading a scalar is free, and the loop does.
    asynchronous: bool = False

    #: The dtype the training loop sums losses in on this device: float64 where the device has
    #: it, else float32 (Apple's MPS has no float64).
    accumulate_dtype: torch.dtype = torch.float64

    def unavailable_reason(self) -> str | None:
        """Why this device cannot be used here (absent, not built into torch …), else ``None``."""
        return None

    @property
    def torch_device(self) -> torch.device:
        """The ``torch.device`` tensors are moved to."""
        return torch.device(self.name)

    def display_name(self) -> str:
        """The hardware's human name (the GPU's marketing name, the CPU model)."""
        return self.name

    def environment(self) -> dict[str, Any]:
        """Facts for the result set's environment record (driver version, capability …)."""
        return {}

    def dtype_unsupported_reason(self, dtype: torch.dtype) -> str | None:
        """Why tensors of ``dtype`` cannot be trained here, else ``None``."""
        return None

    def to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        """Move a tensor onto this device."""
        return tensor.to(self.torch_device)

    def synchronize(self) -> None:
        """Wait until all queued work on this device has finished."""

    def reset_peak_memory(self) -> None:
        """Start a new peak-memory measurement (called before each run)."""

    def peak_memory_bytes(self) -> int | None:
        """Peak memory the run used on this device since :meth:`reset_peak_memory`, or ``None``
        where it cannot be measured."""
        return None

    def mark(self) -> Any:
        """Record a point in the device's own timeline without waiting for it (no host sync).
        Pass two marks to :meth:`seconds_between` after a :meth:`synchronize`."""
        return time.perf_counter()

    def seconds_between(self, start: Any, end: Any) -> float:
        """Seconds between two marks. Called only after :meth:`synchronize`."""
        return float(end - start)
