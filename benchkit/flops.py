"""Floating-point operations: what a step of a workload costs.

``step_flops`` counts the matrix-product FLOPs of a forward (and backward) pass with
``torch.utils.flop_counter``. Fused recurrent kernels (``nn.LSTM``/``nn.GRU`` on the CPU) are
invisible to that counter, so for those layers an analytic count is added: per token and layer,
``2 · gates · (input · hidden + hidden · hidden)`` for the forward pass and twice that for the
backward pass. Elementwise work (activations, the optimizer step) is not counted, as is usual
for model FLOPs.

What the device can do, the ceiling a workload's achieved FLOP/s is compared with, is
:mod:`benchkit.peaks`.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass

from torch import nn
from torch.utils.flop_counter import FlopCounterMode

_GATES = {nn.LSTM: 4, nn.GRU: 3, nn.RNN: 1}


@dataclass
class FlopCount:
    """FLOPs of one call, and how they were counted (``counter`` or ``counter+analytic``)."""

    flops: int
    method: str


def _recurrent_forward_flops(module: nn.RNNBase, tokens: int) -> int:
    gates = _GATES[type(module)]
    dirs = 2 if module.bidirectional else 1
    hidden = module.hidden_size
    total = 0
    for layer in range(module.num_layers):
        inputs = module.input_size if layer == 0 else hidden * dirs
        total += 2 * gates * (inputs * hidden + hidden * hidden) * tokens * dirs
    return total


def step_flops(model: nn.Module, call: Callable[[], object], backward: bool) -> FlopCount:
    """FLOPs of ``call()`` (one forward pass, plus its backward when ``backward``).

    :param model: the model ``call`` runs, to find recurrent layers.
    :param call: runs the step once; gradients it leaves behind are the caller's to clear.
    """
    seen: dict[nn.Module, int] = {}

    def record(module: nn.Module, args: tuple, _output: object) -> None:
        data = args[0]
        if isinstance(data, nn.utils.rnn.PackedSequence):
            tokens = int(data.data.shape[0])
        elif module.batch_first or data.dim() == 2:
            tokens = int(data.shape[0] * (data.shape[1] if data.dim() == 3 else 1))
        else:
            tokens = int(data.shape[0] * data.shape[1])
        seen[module] = seen.get(module, 0) + tokens

    with ExitStack() as stack:
        for module in model.modules():
            if type(module) in _GATES:
                stack.callback(module.register_forward_hook(record).remove)
        counter = FlopCounterMode(display=False)
        with counter:
            call()
    counted = int(counter.get_total_flops())
    by_module = counter.get_flop_counts()
    extra = 0
    # the counter keys modules as "Root" and "Root.child.path"
    root = type(model).__name__
    keys = {m: root if not name else f"{root}.{name}" for name, m in model.named_modules()}
    for module, tokens in seen.items():
        if sum(by_module.get(keys.get(module, ""), {}).values()) == 0:
            forward = _recurrent_forward_flops(module, tokens)
            extra += forward * (3 if backward else 1)
    return FlopCount(counted + extra, "counter+analytic" if extra else "counter")
