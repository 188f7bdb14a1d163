"""Cases made ready to measure: every way benchkit runs a case starts here.

A suite :class:`~benchkit.suite.Case` names plugins; this module turns it into live objects:
:class:`DeviceCache` builds each device once (warming torch up on it), :func:`call_factory`
calls a plugin's factory so that a plugin's bug names the plugin, :func:`prepare` builds the
data and model as the seed dictates, and :class:`PreparedCase` holds a model, optimizer and one
batch for micro-benchmarks (the throughput suite's pytest-benchmark tests and the memory probe).
The runner (training runs), the memory probe and the pytest plugin import from here, and this
module imports none of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from benchkit.device import Device
from benchkit.flops import FlopCount, step_flops
from benchkit.precision import Precision
from benchkit.recipe_parts import RecipeParts, resolve_recipe
from benchkit.registry import Registry, call_factory
from benchkit.suite import Case
from benchkit.workload import Data, Split


def warm_up(torch_device) -> None:
    """Everything torch initialises once per process: the allocator, the autograd engine, and
    (72 MB on the CPU, measured) the modules its optimizers import on their first step."""
    import torch

    layer = torch.nn.Linear(8, 8).to(torch_device)
    for optimizer in (torch.optim.SGD, torch.optim.Adam):
        opt = optimizer(layer.parameters(), lr=1e-3)
        layer(torch.randn(4, 8, device=torch_device)).sum().backward()
        opt.step()
    if torch.amp.is_autocast_available(torch_device.type):
        with torch.no_grad(), torch.autocast(torch_device.type, dtype=torch.bfloat16):
            layer(torch.randn(4, 8, device=torch_device))


@dataclass
class DeviceCache:
    """Builds each device once per suite, and remembers what it said about itself."""

    registry: Registry
    devices: dict[str, Device] = field(default_factory=dict)

    def get(self, name: str) -> Device:
        """The device for a suite's device string (``cuda:1``)."""
        if name not in self.devices:
            base, _, index = name.partition(":")
            device = call_factory(self.registry, "device", base, int(index) if index else None)
            if device.unavailable_reason() is None:
                # torch initialises itself lazily (its optimizers import 72 MB of modules on
                # their first step); do it here so that no run's peak memory includes it
                warm_up(device.torch_device)
            self.devices[name] = device
        return self.devices[name]

    def environment(self) -> dict[str, dict[str, Any]]:
        """Per device used: its display name and facts, for ``run.json``."""
        env: dict[str, dict[str, Any]] = {}
        for name, dev in self.devices.items():
            reason = dev.unavailable_reason()
            if reason:
                env[name] = {"available": False, "reason": reason}
            else:
                env[name] = {"available": True, "name": dev.display_name(), **dev.environment()}
        return env


def prepare(
    case: Case, registry: Registry, device: Device, precision: Precision
) -> tuple[torch.nn.Module, Data, int]:
    """Build the case's data and model as the seed dictates, on the device, in the precision.
    Returns the model, the data and the model's parameter count. Every way benchkit runs a
    case (training, micro-benchmarks, memory probes) starts here."""
    torch.manual_seed(case.seed)
    host_data = call_factory(registry, "dataset", case.dataset, dict(case.options))
    torch.manual_seed(case.seed)
    model = call_factory(registry, "model", case.model, host_data, dict(case.model_options))
    params = sum(p.numel() for p in model.parameters())
    model = precision.prepare_model(model.to(device.torch_device))
    return model, _to_device(host_data, device, precision), params


def _to_device(data: Data, device: Device, precision: Precision) -> Data:
    def move(t: torch.Tensor) -> torch.Tensor:
        return precision.prepare_tensor(device.to_device(t))

    splits = {name: split.map(move) for name, split in data.splits().items()}
    return Data(info=data.info, **splits)


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
