"""A case prepared for micro-benchmarks: one training step or one inference batch at a time.

The throughput suite's pytest-benchmark tests and the memory probe both build a
:class:`PreparedCase` from a suite case, exactly as the runner builds a training run (same
seed, data, model, device and precision), then call :meth:`PreparedCase.train_step` or
:meth:`PreparedCase.inference`, each of which waits for the device before returning, so a
host-side timer measures the device's work.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from benchkit.device import Device
from benchkit.flops import FlopCount, step_flops
from benchkit.precision import Precision
from benchkit.recipe_parts import RecipeParts, resolve_recipe
from benchkit.registry import Registry
from benchkit.runner import DeviceCache, call_factory, prepare
from benchkit.suite import Case
from benchkit.workload import Split

KINDS = ("train_step", "inference")


class CaseUnavailable(Exception):
    """The case cannot run here (device absent, precision unsupported); the message says why."""


@dataclass
class PreparedCase:
    """Model, optimizer and one batch on the device, ready to step."""

    case: Case
    device: Device
    precision: Precision
    model: nn.Module
    batch: Split
    batch_size: int
    params: int
    optimizer: torch.optim.Optimizer
    parts: RecipeParts

    @classmethod
    def build(cls, case: Case, registry: Registry, devices: DeviceCache) -> PreparedCase:
        """Prepare ``case``; its batch is ``recipe.batch_size`` samples (the whole training
        split when the recipe is full batch), repeating the split when the batch is larger."""
        device = devices.get(case.device)
        reason = device.unavailable_reason()
        if reason:
            raise CaseUnavailable(f"device {case.device} unavailable: {reason}")
        precision = call_factory(registry, "precision", case.precision)
        reason = precision.unsupported_reason(device)
        if reason:
            raise CaseUnavailable(
                f"precision {case.precision} unsupported on {case.device}: {reason}"
            )
        model, data, params = prepare(case, registry, device, precision)
        n = len(data.train)
        size = case.recipe.batch_size or n
        index = torch.arange(size, device=device.torch_device) % n
        batch = Split(tuple(t[index] for t in data.train.inputs), data.train.target[index])
        parts = resolve_recipe(case.recipe, registry)
        optimizer = parts.make_optimizer(model.parameters())
        return cls(case, device, precision, model, batch, size, params, optimizer, parts)

    def _loss(self) -> torch.Tensor:
        with self.precision.autocast(self.device):
            return self.parts.loss(self.model(*self.batch.inputs), self.batch.target)

    def train_step(self) -> None:
        """One forward pass, backward pass and optimizer step on the batch; waits for the
        device."""
        self.model.train()
        loss = self._loss()
        self.optimizer.zero_grad(set_to_none=True)
        self.precision.backward_step(loss, self.optimizer)
        self.device.synchronize()

    def inference(self) -> None:
        """One forward pass on the batch without gradients; waits for the device."""
        self.model.eval()
        with torch.no_grad(), self.precision.autocast(self.device):
            self.model(*self.batch.inputs)
        self.device.synchronize()

    def run(self, kind: str) -> None:
        """``train_step`` or ``inference``."""
        (self.train_step if kind == "train_step" else self.inference)()

    def flops(self, kind: str) -> FlopCount:
        """FLOPs of one call of ``kind`` (the optimizer's elementwise work is not counted)."""
        if kind == "train_step":

            def call() -> None:
                self.model.train()
                self.optimizer.zero_grad(set_to_none=True)
                self._loss().backward()
                self.optimizer.zero_grad(set_to_none=True)

            return step_flops(self.model, call, backward=True)

        def infer() -> None:
            self.model.eval()
            with torch.no_grad(), self.precision.autocast(self.device):
                self.model(*self.batch.inputs)

        return step_flops(self.model, infer, backward=False)

    @property
    def matmul_dtype(self) -> torch.dtype:
        """The dtype the model's matrix products run in (autocast's, else the parameters')."""
        return getattr(self.precision, "autocast_dtype", None) or self.precision.dtype
