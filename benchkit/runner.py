"""The runner: turns one :class:`~benchkit.suite.Case` into one measured
:class:`~benchkit.results.RunResult`.

A case that cannot run here (device absent, precision unsupported) is ``skipped`` with the
reason; a non-finite loss is ``diverged`` at its epoch; any exception, whether the plugin's
or torch's, is ``error`` with its message, and the suite goes on with the next case.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from benchkit.device import Device
from benchkit.errors import BenchkitError, PluginError, describe_exception
from benchkit.precision import Precision
from benchkit.recipe_parts import resolve_recipe
from benchkit.registry import Registry
from benchkit.results import RunResult, summarise_curve
from benchkit.suite import Case
from benchkit.training import FiniteWatch, TraceRecorder, split_loss, train
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
            device = call_factory(self.registry, "device", base, int(index) if index else None)
            if device.unavailable_reason() is None:
                # torch initialises itself lazily (its optimizers import 72 MB of modules on
                # their first step); do it here so that no run's peak memory includes it
                from benchkit.memory import warm_up

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


def call_factory(registry: Registry, kind: str, name: str, *args: Any) -> Any:
    """Call the factory a plugin registered as ``name`` (see :func:`call_plugin`)."""
    return call_plugin(registry, kind, name, "", registry.get(kind, name).factory, *args)


def call_plugin(
    registry: Registry, kind: str, name: str, role: str, fn: Callable[..., Any], *args: Any
) -> Any:
    """Call plugin code. A :class:`BenchkitError` keeps its message (it is meant for the
    user); any other exception is a bug in the plugin, and the error names the plugin and the
    package to report it to."""
    try:
        return fn(*args)
    except BenchkitError:
        raise
    except Exception as exc:
        plugin = registry.plugins[registry.get(kind, name).plugin]
        where = f"{kind} {name!r} of plugin {plugin.describe()}" + (f", {role}" if role else "")
        raise PluginError(f"{where}: {describe_exception(exc)}") from exc


def warmup_epochs(epochs: int) -> int:
    """Epochs left out of the throughput figure: a tenth of the run, 1 to 10 epochs."""
    return min(10, max(1, epochs // 10))


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
        precision = call_factory(registry, "precision", case.precision)
        reason = precision.unsupported_reason(device)
        if reason:
            return _skip(
                result, f"precision {case.precision} unsupported on {case.device}: {reason}"
            )
        _measure(case, registry, device, precision, result, on_progress)
    except Exception as exc:
        result.status, result.status_detail = "error", describe_exception(exc)
    return result


def _skip(result: RunResult, reason: str) -> RunResult:
    result.status, result.status_detail = "skipped", reason
    return result


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


def _measure(
    case: Case,
    registry: Registry,
    device: Device,
    precision: Precision,
    result: RunResult,
    on_progress: ProgressFn | None,
) -> None:
    model_reg = registry.get("model", case.model)
    parts = resolve_recipe(case.recipe, registry)
    device.reset_peak_memory()
    model, data, result.params = prepare(case, registry, device, precision)
    result.train_samples = len(data.train)
    tracer = TraceRecorder(model) if case.trace else None
    outcome = train(
        model,
        data,
        parts,
        precision,
        device,
        case.seed,
        on_progress,
        recorders=[tracer] if tracer else (),
    )

    result.curve = outcome.losses
    result.valid_curve = outcome.valid_losses
    result.lr_curve = outcome.lrs
    result.epoch_seconds = seconds = outcome.epoch_end_seconds
    summarise_curve(result)
    if seconds:
        result.train_seconds = seconds[-1]
        warm = warmup_epochs(len(seconds))
        if len(seconds) > warm:
            span = seconds[-1] - seconds[warm - 1]
            if span > 0:
                result.samples_per_second = result.train_samples * (len(seconds) - warm) / span
    if result.converged_epoch is not None:
        result.time_to_target_seconds = seconds[result.converged_epoch]
    for criterion in case.criteria:
        epoch = criterion.first_epoch(result.curve, result.valid_curve)
        result.criteria[criterion.text] = (epoch, None if epoch is None else seconds[epoch])
    if tracer is not None:
        result.trace = tracer.rows[: len(result.curve)]
    result.metrics.update(precision.stats())

    if outcome.diverged_epoch is not None:
        result.status = "diverged"
        result.diverged_epoch = outcome.diverged_epoch
        _explain_divergence(case, registry, device, result)
    else:
        model.eval()
        if data.test is not None:
            test_loss = split_loss(model, data.test, parts, precision, device)
            result.metrics["test_loss"] = float(test_loss)
        if result.valid_curve:
            result.metrics["valid_loss"] = result.valid_curve[-1]
        if model_reg.evaluate is not None:
            context = EvalContext(device=device, precision=precision)
            with torch.no_grad(), precision.autocast(device):
                values = call_plugin(
                    registry,
                    "model",
                    case.model,
                    "evaluate",
                    model_reg.evaluate,
                    model,
                    data,
                    context,
                )
            _record_evaluation(result, values)
    device.synchronize()
    result.peak_memory_bytes = device.peak_memory_bytes()


def _record_evaluation(result: RunResult, values: dict[str, Any]) -> None:
    """Scalars become result columns; 1-D sequences become ``series.csv`` rows."""
    for name, value in values.items():
        if isinstance(value, torch.Tensor) and value.numel() != 1:
            result.series[name] = value.detach().double().cpu().reshape(-1).tolist()
        elif isinstance(value, list | tuple):
            result.series[name] = [float(v) for v in value]
        else:
            result.metrics[name] = float(value)


def _explain_divergence(case: Case, registry: Registry, device: Device, result: RunResult) -> None:
    """Say how the run failed, not only that it did.

    The run is deterministic, so it is replayed up to the epoch that diverged with a watch on
    gradients and parameters: the normal loop pays nothing for this, and the replay costs at
    most what the run took until it diverged.
    """
    epoch = result.diverged_epoch
    loss = result.curve[epoch]
    result.nonfinite_loss = "nan" if math.isnan(loss) else ("inf" if loss > 0 else "-inf")
    parts = [f"training loss {result.nonfinite_loss} at epoch {epoch}"]
    precision = call_factory(registry, "precision", case.precision)
    watch = FiniteWatch()
    try:
        model, data, _ = prepare(case, registry, device, precision)
        train(
            model,
            data,
            resolve_recipe(case.recipe, registry),
            precision,
            device,
            case.seed,
            recorders=[watch],
            epochs=epoch + 1,
        )
    except Exception as exc:  # the explanation is a bonus; never lose the result over it
        parts.append(f"replay failed: {describe_exception(exc)}")
    else:
        result.grads_nonfinite_epoch = watch.grads_nonfinite_epoch
        result.params_nonfinite_epoch = watch.params_nonfinite_epoch
        if watch.grads_nonfinite_epoch is not None:
            parts.append(f"gradients first non-finite in epoch {watch.grads_nonfinite_epoch}")
        if watch.params_nonfinite_epoch is not None:
            parts.append(
                f"parameters first non-finite after the update of epoch "
                f"{watch.params_nonfinite_epoch}"
            )
        if watch.grads_nonfinite_epoch is None and watch.params_nonfinite_epoch is None:
            parts.append("gradients and parameters stayed finite: the forward pass overflowed")
        parts.extend(_static_causes(case, model))
    result.status_detail = "; ".join(parts)


def _static_causes(case: Case, model: torch.nn.Module) -> list[str]:
    """Known number-format traps of the recipe under the parameters' dtype."""
    dtype = next((p.dtype for p in model.parameters()), torch.float32)
    causes = []
    if case.recipe.optimizer in ("adam", "adamw"):
        eps = float(case.recipe.optimizer_options.get("eps", 1e-8))
        if torch.tensor(eps, dtype=dtype).item() == 0.0:
            name = str(dtype).removeprefix("torch.")
            causes.append(
                f"Adam's eps={eps:g} is 0 in {name}, so a second moment that underflows to 0 "
                "divides by zero"
            )
    return causes
