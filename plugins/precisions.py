"""Built-in precisions.

- ``fp32``, ``bf16``, ``fp64``: parameters and floating inputs cast to one dtype.
- ``fp16``: what the source material does: parameters and inputs cast with ``.half()``, no loss
  scaling, the optimizer's state in float16 too. It is expected to fail on some workloads
  (Adam's epsilon of 1e-8 is 0 in float16, and small squared gradients underflow); the runner
  records how.
- ``amp_fp16``: the way float16 is meant to be trained: float32 parameters, the forward pass
  under ``torch.autocast`` in float16, the loss scaled by ``torch.amp.GradScaler``. The number
  of optimizer steps the scaler skipped (inf/NaN gradients) is recorded.
- ``amp_bf16``: autocast to bfloat16; bfloat16 has float32's range, so no scaler.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

import benchkit
from benchkit import Device, Precision


class CastPrecision(Precision):
    """Train with parameters and floating inputs cast to one dtype."""

    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype


class AutocastPrecision(Precision):
    """Mixed precision: float32 parameters and inputs, the forward pass and the loss under
    ``torch.autocast(dtype)``, optionally with a gradient scaler."""

    def __init__(self, dtype: torch.dtype, scaled: bool) -> None:
        self.autocast_dtype = dtype
        self.scaled = scaled
        self.dtype = torch.float32
        self._scaler: torch.amp.GradScaler | None = None
        self._device_type = "cpu"
        self._skipped: torch.Tensor | None = None
        self._steps = 0

    @property
    def compute_dtype(self) -> torch.dtype:
        """Matrix products run in the autocast dtype."""
        return self.autocast_dtype

    def unsupported_reason(self, device: Device) -> str | None:
        kind = device.torch_device.type
        if not torch.amp.is_autocast_available(kind):
            return f"torch {torch.__version__} has no autocast for {kind}"
        return device.dtype_unsupported_reason(self.autocast_dtype)

    def prepare_model(self, model: torch.nn.Module) -> torch.nn.Module:
        param = next(model.parameters(), None)
        self._device_type = param.device.type if param is not None else "cpu"
        if self.scaled:
            self._scaler = torch.amp.GradScaler(self._device_type)
        return model.float()

    def autocast(self, device: Device) -> contextlib.AbstractContextManager[Any]:
        return torch.autocast(device.torch_device.type, dtype=self.autocast_dtype)

    def backward_step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        scaler = self._scaler
        if scaler is None:
            loss.backward()
            optimizer.step()
            return
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        before = scaler._scale.clone()  # the scale lives on the device: compare there, no sync
        scaler.update()
        # update() halves the scale exactly when the step was skipped for inf/NaN gradients.
        lowered = (scaler._scale < before).to(torch.int64)
        self._skipped = lowered if self._skipped is None else self._skipped + lowered
        self._steps += 1

    def stats(self) -> dict[str, float | int]:
        if self._scaler is None:
            return {}
        skipped = int(self._skipped.item()) if self._skipped is not None else 0
        return {
            "scaler_skipped_steps": skipped,
            "scaler_steps": self._steps,
            "scaler_final_scale": float(self._scaler.get_scale()),
        }


@benchkit.hookimpl
def benchkit_register_precisions(register):
    """Plain casts to float32, float16, bfloat16 and float64, and autocast mixed precision."""
    register("fp32", lambda: CastPrecision(torch.float32), description="float32")
    register(
        "fp16",
        lambda: CastPrecision(torch.float16),
        description="float16 by .half(), no loss scaling (the source's way)",
    )
    register("bf16", lambda: CastPrecision(torch.bfloat16), description="bfloat16 by cast")
    register("fp64", lambda: CastPrecision(torch.float64), description="float64 reference")
    register(
        "amp_fp16",
        lambda: AutocastPrecision(torch.float16, scaled=True),
        description="autocast float16 + GradScaler (mixed precision done right)",
    )
    register(
        "amp_bf16",
        lambda: AutocastPrecision(torch.bfloat16, scaled=False),
        description="autocast bfloat16, no scaler",
    )
