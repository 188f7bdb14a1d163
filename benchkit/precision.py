"""The interface a precision plugin implements: how a model and its inputs are prepared, and how
one optimisation step runs, under a number format."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from benchkit.device import Device


class Precision:
    """A number format for training. A precision factory returns a fresh instance per run, so
    an instance may keep per-run state (a gradient scaler, counters).

    The default implementation is the "cast everything" way: parameters and floating inputs are
    converted to :attr:`dtype`, the step is a plain ``backward()`` + ``optimizer.step()``.
    Subclasses override what differs (autocast, loss scaling).
    """

    #: The dtype parameters and floating inputs are cast to.
    dtype: torch.dtype = torch.float32

    @property
    def compute_dtype(self) -> torch.dtype:
        """The dtype the model's matrix products run in: the FLOP/s peak a run is measured
        against is this dtype's. The default is :attr:`dtype`; a mixed-precision plugin
        returns its autocast dtype."""
        return self.dtype

    def unsupported_reason(self, device: Device) -> str | None:
        """Why this precision cannot run on ``device``, or ``None`` when it can.

        The default asks the device whether it can hold :attr:`dtype`.
        """
        return device.dtype_unsupported_reason(self.dtype)

    def prepare_model(self, model: torch.nn.Module) -> torch.nn.Module:
        """Return the model ready to train in this precision (already on its device)."""
        return model.to(self.dtype)

    def prepare_tensor(self, tensor: torch.Tensor) -> torch.Tensor:
        """Return an input or target tensor in this precision. Integer tensors (token ids,
        class labels) must be returned unchanged."""
        if tensor.is_floating_point():
            return tensor.to(self.dtype)
        return tensor

    def autocast(self, device: Device) -> contextlib.AbstractContextManager[Any]:
        """Context the forward pass and the loss run in (``torch.autocast`` for mixed
        precision). The default does nothing."""
        return contextlib.nullcontext()

    def backward_step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        """Back-propagate ``loss`` and apply one optimizer step (gradients are already zero)."""
        loss.backward()
        optimizer.step()

    def stats(self) -> dict[str, float | int]:
        """Per-run figures this precision wants in the result row (e.g. skipped scaler steps).
        Keys become result columns."""
        return {}
