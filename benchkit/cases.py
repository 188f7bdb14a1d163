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

import os
import statistics
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from benchkit.device import Device
from benchkit.errors import BenchkitError
from benchkit.flops import FlopCount, step_flops
from benchkit.mode import DEFAULT_MODE, Mode
from benchkit.precision import Precision
from benchkit.recipe_parts import RecipeParts, resolve_recipe
from benchkit.registry import Registry, call_factory
from benchkit.roofline import ByteCount, step_bytes
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


def build_mode(registry: Registry, case: Case) -> Mode:
    """The case's execution mode, fresh for this run. ``eager`` is the base :class:`Mode`
    where no plugin registered it (a registry built without benchkit's own modes)."""
    if case.mode == DEFAULT_MODE and DEFAULT_MODE not in registry.entries["mode"]:
        return Mode()
    return call_factory(registry, "mode", case.mode, dict(case.mode_options))


REFERENCE_PRECISION = "fp32"


def limit_reason(
    case: Case, registry: Registry, devices: DeviceCache, exc: BaseException
) -> str | None:
    """Whether ``exc``, raised while running ``case``, is a limit of torch on this device
    under the case's precision or mode rather than a bug; then the reason to skip the case
    with, else ``None``.

    Only an exception raised inside torch itself qualifies (an error in a plugin's own code
    is that plugin's bug). The probe: the same case in fp32 and eager runs a training step and
    an inference call here. If it does, what failed is the precision or mode on this device
    (the oneDNN LSTM under autocast float16 on the CPU: "could not create a primitive
    descriptor"). If it fails too, or the case is fp32 and eager already, the error is the
    case's own.
    """
    if isinstance(exc, BenchkitError) or not isinstance(exc, Exception):
        return None
    frames = traceback.extract_tb(exc.__traceback__)
    torch_root = os.path.dirname(torch.__file__) + os.sep
    if not frames or not frames[-1].filename.startswith(torch_root):
        return None
    if REFERENCE_PRECISION not in registry.entries["precision"]:
        return None
    reference = replace(case, precision=REFERENCE_PRECISION, mode=DEFAULT_MODE, mode_options={})
    if reference == case:
        return None
    try:
        probe = PreparedCase.build(reference, registry, devices)
        probe.train_step()
        probe.inference()
    except Exception:
        return None
    what = [f"precision {case.precision}"] if case.precision != REFERENCE_PRECISION else []
    what += [f"mode {case.mode}"] if case.mode != DEFAULT_MODE else []
    first_line = (str(exc).strip().splitlines() or [""])[0].split(". ")[0]
    return (
        f"{' with '.join(what)} cannot run {case.model} on {case.device} in torch "
        f"{torch.__version__} ({type(exc).__name__}: {first_line}); it runs in "
        f"{REFERENCE_PRECISION} {DEFAULT_MODE}"
    )


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
    """Model, optimizer and one batch on the device, ready to step.

    :meth:`train_step` and :meth:`inference` wait for the device after every call. To time
    short steps without timing the wait, :meth:`benchmark` (pytest-benchmark) and
    :meth:`block` run blocks of calls with one synchronisation per block, sized by
    :meth:`block_size` as ``torch.utils.benchmark``'s ``blocked_autorange`` does, and report
    the figure per call.
    """

    case: Case
    device: Device
    precision: Precision
    model: nn.Module
    batch: Split
    batch_size: int
    params: int
    optimizer: torch.optim.Optimizer
    parts: RecipeParts
    mode: Mode = field(default_factory=Mode)
    _calls: dict[str, Callable[[], Any]] = field(default_factory=dict, repr=False)

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
        mode = build_mode(registry, case)
        reason = mode.unsupported_reason(device, precision)
        if reason:
            raise CaseUnavailable(
                f"mode {case.mode} unsupported on {case.device} in {case.precision}: {reason}"
            )
        model, data, params = prepare(case, registry, device, precision)
        n = len(data.train)
        size = case.recipe.batch_size or n
        index = torch.arange(size, device=device.torch_device) % n
        batch = Split(tuple(t[index] for t in data.train.inputs), data.train.target[index])
        parts = resolve_recipe(case.recipe, registry)
        extra = mode.optimizer_options(case.recipe.optimizer)
        optimizer = parts.make_optimizer(model.parameters(), extra)
        return cls(case, device, precision, model, batch, size, params, optimizer, parts, mode)

    def _loss(self) -> torch.Tensor:
        with self.precision.autocast(self.device):
            return self.parts.loss(self.model(*self.batch.inputs), self.batch.target)

    def _train_call(self) -> torch.Tensor:
        self.model.train()
        loss = self._loss()
        self.optimizer.zero_grad(set_to_none=True)
        self.precision.backward_step(loss, self.optimizer)
        return loss.detach()

    def _inference_call(self) -> torch.Tensor:
        self.model.eval()
        with torch.no_grad(), self.precision.autocast(self.device):
            return self.model(*self.batch.inputs)

    def call(self, kind: str) -> Any:
        """One call of ``kind`` (``train_step`` or ``inference``) through the case's mode,
        without waiting for the device."""
        fn = self._calls.get(kind)
        if fn is None:
            raw = self._train_call if kind == "train_step" else self._inference_call
            fn = self._calls[kind] = self.mode.wrap(raw, self.device)
        return fn()

    def train_step(self) -> None:
        """One forward pass, backward pass and optimizer step on the batch; waits for the
        device."""
        self.call("train_step")
        self.device.synchronize()

    def inference(self) -> None:
        """One forward pass on the batch without gradients; waits for the device."""
        self.call("inference")
        self.device.synchronize()

    def run(self, kind: str) -> None:
        """``train_step`` or ``inference``."""
        (self.train_step if kind == "train_step" else self.inference)()

    def warm_up(self, kind: str) -> float:
        """Make the calls after which the mode's one-off work is done (compiling, capturing),
        and two more; return the mode's one-off seconds so far."""
        for _ in range(self.mode.warmup_calls + 2):
            self.call(kind)
        self.device.synchronize()
        return self.mode.setup_seconds

    def block(self, kind: str, number: int) -> float:
        """Run ``number`` calls of ``kind`` and wait for the device once; seconds per call."""
        call = self.call
        start = time.perf_counter()
        for _ in range(number):
            call(kind)
        self.device.synchronize()
        return (time.perf_counter() - start) / number

    def block_size(self, kind: str, min_run_time: float = 0.2) -> int:
        """Calls per block, chosen as ``torch.utils.benchmark``'s ``blocked_autorange`` does:
        from 1, ten times more until the wait for the device (the median of five empty
        blocks) is at most 1e-4 of a block that lasts at least ``min_run_time / 1000``, or
        until a block lasts more than ``min_run_time``."""
        sync = self.device.synchronize
        waits = []
        for _ in range(5):
            start = time.perf_counter()
            sync()
            waits.append(time.perf_counter() - start)
        overhead = statistics.median(waits)
        number = 1
        while True:
            taken = self.block(kind, number) * number
            if overhead <= 1e-4 * taken and taken >= min_run_time / 1000:
                return number
            if taken > min_run_time or number >= 10**7:
                return number
            number *= 10

    def benchmark(self, benchmark: Any, kind: str, max_time: float | None = None) -> int:
        """Time ``kind`` with pytest-benchmark's ``benchmark`` fixture in blocks: each round
        is one block of calls ending in one wait for the device, and pytest-benchmark records
        the time per call. Returns the calls per block (also in ``extra_info``)."""
        max_time = float(max_time if max_time is not None else getattr(benchmark, "_max_time", 1))
        min_rounds = int(getattr(benchmark, "_min_rounds", 5))
        number = self.block_size(kind, max(max_time / min_rounds, 1e-3))
        per_block = self.block(kind, number) * number
        rounds = max(min_rounds, int(max_time / max(per_block, 1e-9)))
        calls = 0
        call, sync = self.call, self.device.synchronize

        def counted() -> None:
            nonlocal calls
            call(kind)
            calls += 1
            if calls % number == 0:
                sync()

        benchmark.extra_info["calls_per_block"] = number
        benchmark.pedantic(counted, iterations=number, rounds=rounds, warmup_rounds=1)
        sync()  # pytest-benchmark makes one more call after the rounds
        return number

    def bytes(self, kind: str) -> ByteCount:
        """Bytes one call of ``kind`` moves, estimated as :mod:`benchkit.roofline` says."""

        def forward() -> None:
            with self.precision.autocast(self.device):
                self.model(*self.batch.inputs)

        train = kind == "train_step"
        self.model.train(train)
        return step_bytes(
            self.model, self.optimizer, self.batch.inputs, self.batch.target, forward, train
        )

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
