"""The roofline: how far a step is from what the hardware can do, and which limit binds.

A step does ``F`` floating-point operations (:mod:`benchkit.flops`) and moves ``B`` bytes
between the device's memory and its cores; ``I = F / B`` is its **arithmetic intensity**.
Running at ``A`` FLOP/s, it is bounded by two roofs: the compute roof ``P`` (the device's peak
FLOP/s in the step's dtype, :mod:`benchkit.peaks`) and the memory roof ``I · W`` (``W``: the
memory bandwidth). The attainable rate is ``min(P, I · W)``. The **bound**:

- ``compute``: ``A`` is at least :data:`NEAR` of the roof and the roof is ``P``;
- ``memory``: ``A`` is at least :data:`NEAR` of the roof and the roof is ``I · W``;
- ``overhead``: ``A`` is below :data:`NEAR` of both: per-operation launch, dispatch and
  framework cost dominate, not arithmetic or memory. The common case for small models.

**Bytes moved per step** are an analytic estimate, every tensor read or written once per use
(caches ignored, so it is what the step would move if nothing stayed in cache):

- *inference*: the parameters read once, the inputs read once, and every activation (the
  output of each leaf module, at the dtype it is produced in) written once:
  ``P + X + A``;
- *training step*: the forward pass as above; the backward pass reads the parameters and the
  activations again and writes the activations' gradients and the parameters' gradients; the
  optimizer reads each parameter and its gradient, reads and writes each of its state tensors
  (Adam, AdamW: two; SGD with momentum: one; plain SGD: none) and writes the parameter:
  ``2P + X + 3A + P + (3 + 2k)·P`` with ``k`` state tensors per parameter (the target is
  read too).

Not counted: weight casts under autocast, the loss, intermediate results inside fused
kernels (an LSTM's gates), and functional operations outside leaf modules.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass

import torch
from torch import nn

#: "Near the roof": at least this fraction of the attainable rate.
NEAR = 0.5
BOUNDS = ("compute", "memory", "overhead")


@dataclass
class ByteCount:
    """Bytes one call moves, by part (see the module docs)."""

    parameters: int
    inputs: int
    activations: int
    gradients: int = 0
    optimizer: int = 0

    @property
    def total(self) -> int:
        """All bytes of the call."""
        return self.parameters + self.inputs + self.activations + self.gradients + self.optimizer


def _nbytes(value: object) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, tuple | list):
        return sum(_nbytes(v) for v in value)
    if isinstance(value, nn.utils.rnn.PackedSequence):
        return _nbytes(value.data)
    return 0


def activation_bytes(model: nn.Module, forward: Callable[[], object]) -> int:
    """Bytes of every leaf module's output during ``forward()`` (a module called twice, as a
    decoder step is, counts twice)."""
    total = 0

    def record(_module: nn.Module, _args: tuple, output: object) -> None:
        nonlocal total
        total += _nbytes(output)

    with ExitStack() as stack:
        for module in model.modules():
            if next(module.children(), None) is None:
                stack.callback(module.register_forward_hook(record).remove)
        with torch.no_grad():
            forward()
    return total


def optimizer_state_tensors(optimizer: torch.optim.Optimizer) -> int:
    """State tensors the optimizer keeps per parameter: Adam and AdamW two, SGD one with
    momentum, else none."""
    if isinstance(optimizer, torch.optim.Adam | torch.optim.AdamW):
        return 2 + int(any(g.get("amsgrad") for g in optimizer.param_groups))
    if isinstance(optimizer, torch.optim.SGD):
        return int(any(g.get("momentum", 0) for g in optimizer.param_groups))
    return 0


def step_bytes(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    inputs: tuple[torch.Tensor, ...],
    target: torch.Tensor,
    forward: Callable[[], object],
    train: bool,
) -> ByteCount:
    """Bytes one training step (``train``) or one inference call moves (module docs).

    :param forward: runs the model's forward pass on the batch once (as the step does, in the
        step's autocast context), to size the activations.
    """
    params = sum(_nbytes(p) for p in model.parameters())
    moved_in = _nbytes(inputs) + (_nbytes(target) if train else 0)
    acts = activation_bytes(model, forward)
    if not train:
        return ByteCount(params, moved_in, acts)
    states = optimizer_state_tensors(optimizer)
    return ByteCount(
        parameters=2 * params,
        inputs=moved_in,
        activations=3 * acts,
        gradients=params,
        optimizer=(3 + 2 * states) * params,
    )


def bound(
    achieved: float | None, peak: float | None, intensity: float | None, bandwidth: float | None
) -> str:
    """``compute``, ``memory`` or ``overhead`` (module docs); ``""`` when a figure is missing."""
    figures = (achieved, peak, intensity, bandwidth)
    if not all(isinstance(v, int | float) and math.isfinite(v) and v > 0 for v in figures):
        return ""
    memory_roof = intensity * bandwidth
    roof = min(peak, memory_roof)
    if achieved < NEAR * roof:
        return "overhead"
    return "compute" if peak <= memory_roof else "memory"
