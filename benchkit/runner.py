"""The runner: turns one :class:`~benchkit.suite.Case` into one measured
:class:`~benchkit.results.RunResult`.

A case that cannot run here (device absent, precision unsupported) is ``skipped`` with the
reason; a non-finite loss is ``diverged`` at its epoch; any exception, whether the plugin's
or torch's, is ``error`` with its message, and the suite goes on with the next case.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from benchkit.device import Device
from benchkit.errors import BenchkitError
from benchkit.precision import Precision
from benchkit.registry import Registry
from benchkit.results import RunResult, summarise_curve
from benchkit.suite import Case
from benchkit.training import make_loss, split_loss, train
from benchkit.workload import Data, EvalContext

ProgressFn = Callable[[int, float], None]


@dataclass
class DeviceCache:
    """Builds each device once per suite, and remembers what it said about itself."""

    registry: Registry
    devices: dict[str, Device] = field(default_factory=dict)

    def get(self, name: str) -> Device:
        """The device for a suite's device string (``cuda:1``)."""
        if name not in self.devices:
            base, _, index = name.partition(":")
            factory = self.registry.get("device", base).factory
            self.devices[name] = factory(int(index) if index else None)
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


def warmup_epochs(epochs: int) -> int:
    """Epochs left out of the throughput figure: a tenth of the run, 1 to 10 epochs."""
    return min(10, max(1, epochs // 10))


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, BenchkitError):
        return str(exc)
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _to_device(data: Data, device: Device, precision: Precision) -> Data:
    def move(t: torch.Tensor) -> torch.Tensor:
        return precision.prepare_tensor(device.to_device(t))

    splits = {name: split.map(move) for name, split in data.splits().items()}
    return Data(info=data.info, **splits)


def run_case(
    case: Case, registry: Registry, devices: DeviceCache, on_progress: ProgressFn | None = None
) -> RunResult:
    """Run one case and measure it; never raises for a problem with the case itself."""
    result = RunResult(
        run_id=case.run_id,
        model=case.model,
        dataset=case.dataset,
        precision=case.precision,
        device=case.device,
        seed=case.seed,
        variant=case.variant,
        target_loss=case.target_loss,
        optimizer=case.recipe.optimizer,
        lr=case.recipe.lr,
        batch_size=case.recipe.batch_size,
    )
    try:
        device = devices.get(case.device)
        reason = device.unavailable_reason()
        if reason:
            return _skip(result, f"device {case.device} unavailable: {reason}")
        result.device_name = device.display_name()
        precision = registry.get("precision", case.precision).factory()
        reason = precision.unsupported_reason(device)
        if reason:
            return _skip(
                result, f"precision {case.precision} unsupported on {case.device}: {reason}"
            )
        _measure(case, registry, device, precision, result, on_progress)
    except Exception as exc:
        result.status, result.status_detail = "error", _error_text(exc)
    return result


def _skip(result: RunResult, reason: str) -> RunResult:
    result.status, result.status_detail = "skipped", reason
    return result


def _measure(
    case: Case,
    registry: Registry,
    device: Device,
    precision: Precision,
    result: RunResult,
    on_progress: ProgressFn | None,
) -> None:
    model_reg = registry.get("model", case.model)
    dataset_reg = registry.get("dataset", case.dataset)
    device.reset_peak_memory()

    torch.manual_seed(case.seed)
    host_data = dataset_reg.factory(dict(case.options))
    torch.manual_seed(case.seed)
    model = model_reg.factory(host_data, dict(case.model_options))
    result.params = sum(p.numel() for p in model.parameters())
    result.train_samples = len(host_data.train)

    model = precision.prepare_model(model.to(device.torch_device))
    data = _to_device(host_data, device, precision)
    outcome = train(model, data, case.recipe, precision, device, case.seed, on_progress)

    result.curve = outcome.losses
    result.valid_curve = outcome.valid_losses
    result.epoch_seconds = outcome.epoch_end_seconds
    summarise_curve(result)
    seconds = outcome.epoch_end_seconds
    if seconds:
        result.train_seconds = seconds[-1]
        warm = warmup_epochs(len(seconds))
        if len(seconds) > warm:
            span = seconds[-1] - seconds[warm - 1]
            if span > 0:
                result.samples_per_second = result.train_samples * (len(seconds) - warm) / span
    if result.converged_epoch is not None:
        result.time_to_target_seconds = seconds[result.converged_epoch]
    result.metrics.update(precision.stats())

    if outcome.diverged_epoch is not None:
        result.status = "diverged"
        result.diverged_epoch = outcome.diverged_epoch
        result.status_detail = f"non-finite training loss at epoch {outcome.diverged_epoch}"
    else:
        model.eval()
        if data.test is not None:
            loss_fn = make_loss(case.recipe)
            result.metrics["test_loss"] = float(
                split_loss(model, data.test, loss_fn, precision, device)
            )
        if result.valid_curve:
            result.metrics["valid_loss"] = result.valid_curve[-1]
        if model_reg.evaluate is not None:
            context = EvalContext(device=device, precision=precision)
            with torch.no_grad(), precision.autocast(device):
                metrics = model_reg.evaluate(model, data, context)
            result.metrics.update({k: float(v) for k, v in metrics.items()})
    device.synchronize()
    result.peak_memory_bytes = device.peak_memory_bytes()
