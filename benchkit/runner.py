"""The run stage: a suite's cases in, a result set out.

:func:`run_suite` takes the cases of a parsed suite and a
:class:`~benchkit.resultset.ResultSetWriter`, runs every case through an executor
(:class:`SerialExecutor`: one after another in this process), hands each finished run to the
writer, and, for suites with claims, answers them. A throughput suite's cases run as
pytest-benchmark tests (:mod:`benchkit.throughput`), a memory suite's in fresh processes
(:mod:`benchkit.memory`); the writer is the same.

:func:`run_case` turns one :class:`~benchkit.suite.Case` into one measured
:class:`~benchkit.run_result.RunResult`. A case that cannot run here (device absent, precision
unsupported) is ``skipped`` with the reason; a non-finite loss is ``diverged`` at its epoch; any
exception, whether the plugin's or torch's, is ``error`` with its message, and the suite goes on
with the next case.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pandas as pd
import torch

from benchkit.cases import DeviceCache, build_mode, limit_reason, prepare
from benchkit.device import Device
from benchkit.errors import describe_exception
from benchkit.mode import Mode
from benchkit.precision import Precision
from benchkit.recipe_parts import resolve_recipe
from benchkit.registry import Registry, call_factory, call_plugin
from benchkit.resultset import (
    ResultSetWriter,
    criteria_frame,
    curves_frame,
    results_frame,
    series_frame,
    trace_frame,
)
from benchkit.run_result import RunResult, summarise_curve, warmup_epochs
from benchkit.suite import Case, Suite
from benchkit.training import FiniteWatch, TraceRecorder, split_loss, train
from benchkit.workload import EvalContext

ProgressFn = Callable[[int, float], None]


class Progress(Protocol):
    """What the run stage tells whoever shows progress (:class:`benchkit.progress.Progress`)."""

    def start(self, index: int, case: Case) -> None:
        """Case number ``index`` (from 1) starts."""

    def epoch(self, epoch: int, loss: float) -> None:
        """An epoch of the running case finished with this loss (may be NaN when unread)."""

    def finish(self, result: RunResult) -> None:
        """The running case finished."""


class SerialExecutor:
    """Runs the cases one after another in this process: the default executor."""

    name = "serial"

    def results(
        self,
        cases: Sequence[Case],
        registry: Registry,
        devices: DeviceCache,
        progress: Progress | None = None,
    ) -> Iterator[RunResult]:
        """Yield each case's result as it finishes, in the cases' order."""
        for index, case in enumerate(cases, 1):
            if progress:
                progress.start(index, case)
            result = run_case(case, registry, devices, progress.epoch if progress else None)
            if progress:
                progress.finish(result)
            yield result


@dataclass
class RunOptions:
    """How ``benchkit run`` was asked to run a suite, beyond which cases."""

    threads: int | None = None
    quiet: bool = False
    #: throughput suites: seconds pytest-benchmark spends per benchmark
    max_time: float = 0.5
    #: a batch-size sweep replacing the suite's (``None`` in it: the recipe's own)
    batch_sizes: list[int | None] | None = None
    #: the command line's filters (models, datasets, precisions, devices, seeds, modes)
    filters: dict[str, Sequence[Any]] = field(default_factory=dict)
    #: throughput suites: show pytest's tracebacks of failing cases (else one line each)
    debug: bool = False


@dataclass
class SuiteOutcome:
    """What a suite run produced: the result table, and the per-suite tables beside it."""

    suite: Suite
    cases: list[Case]
    frame: pd.DataFrame
    seconds: float
    results: list[RunResult] = field(default_factory=list)
    claims: pd.DataFrame | None = None
    references: pd.DataFrame | None = None
    crossover: pd.DataFrame | None = None

    @property
    def errored(self) -> bool:
        """Whether any run ended in error (the command's exit code 1)."""
        return bool((self.frame["status"] == "error").any()) if len(self.frame) else False


def suite_header(
    suite: Suite,
    registry: Registry,
    devices: DeviceCache,
    argv: Sequence[str],
    cases: Sequence[Case] = (),
) -> dict[str, Any]:
    """What ``run.json`` records about a run of ``suite`` before it starts (the writer adds the
    schema version and the state): the suite, its text and hash, the environment, the plugins,
    and what the metrics of the models in ``cases`` mean (for compare)."""
    from benchkit.environment import capture
    from benchkit.metric import declared_metrics

    return {
        "kind": suite.kind,
        "suite": {
            "name": suite.name,
            "path": str(suite.path),
            "sha256": suite.sha256,
            "description": suite.description,
            "text": suite.text,
        },
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "environment": capture(suite.path, list(argv), devices.environment()),
        "plugins": {
            p.name: {"package": p.package, "version": p.version, "status": p.status}
            for p in registry.plugins.values()
        },
        "metrics": declared_metrics(registry, [c.model for c in cases]),
    }


def run_suite(
    suite: Suite,
    cases: Sequence[Case],
    registry: Registry,
    devices: DeviceCache,
    writer: ResultSetWriter,
    options: RunOptions | None = None,
    progress: Progress | None = None,
    executor: SerialExecutor | None = None,
) -> SuiteOutcome:
    """Run ``cases`` of ``suite`` and write them through ``writer``; return what was measured.

    Ctrl-C (``KeyboardInterrupt``) closes the result set as interrupted, with every finished
    run kept, and propagates.
    """
    options = options or RunOptions()
    started = time.perf_counter()
    if suite.kind == "throughput":
        from benchkit.speedup import crossover_table
        from benchkit.throughput import run_throughput

        frame = _closing(
            writer,
            lambda: run_throughput(
                suite,
                writer,
                options.filters,
                options.batch_sizes or [],
                options.threads,
                options.quiet,
                options.max_time,
                options.debug,
            ),
        )
        crossover = crossover_table(frame)
        if len(crossover):
            writer.write_table("crossover.csv", crossover)
        return SuiteOutcome(
            suite, list(cases), frame, time.perf_counter() - started, crossover=crossover
        )
    if suite.kind == "memory":
        from benchkit.memory import run_memory

        frame = _closing(
            writer,
            lambda: run_memory(cases, suite, writer, devices, options.threads, options.quiet),
        )
        return SuiteOutcome(suite, list(cases), frame, time.perf_counter() - started)
    return _run_convergence(suite, cases, registry, devices, writer, progress, executor, started)


def _closing(writer: ResultSetWriter, body: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    interrupted = False
    try:
        return body()
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        writer.close(interrupted=interrupted)


def _run_convergence(
    suite: Suite,
    cases: Sequence[Case],
    registry: Registry,
    devices: DeviceCache,
    writer: ResultSetWriter,
    progress: Progress | None,
    executor: SerialExecutor | None,
    started: float,
) -> SuiteOutcome:
    executor = executor or SerialExecutor()
    tables: dict[str, pd.DataFrame] = {}

    def loop() -> pd.DataFrame:
        for result in executor.results(cases, registry, devices, progress):
            writer.add(result)
        frame = results_frame(writer.results)
        if suite.claims:
            from benchkit.claims import evaluate_claims

            tables["claims"] = evaluate_claims(suite.claims, frame, criteria_frame(writer.results))
            writer.write_table("claims.csv", tables["claims"])
        if suite.references:
            from benchkit.references import evaluate_references

            tables["references"] = evaluate_references(
                suite.references,
                frame,
                curves_frame(writer.results),
                trace=trace_frame(writer.results),
                series=series_frame(writer.results),
            )
            writer.write_table("references.csv", tables["references"])
        return frame

    frame = _closing(writer, loop)
    return SuiteOutcome(
        suite,
        list(cases),
        frame,
        time.perf_counter() - started,
        results=writer.results,
        claims=tables.get("claims"),
        references=tables.get("references"),
    )


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
        mode=case.mode,
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
        mode = build_mode(registry, case)
        reason = mode.unsupported_reason(device, precision)
        if reason:
            where = f"{case.device} in {case.precision}"
            return _skip(result, f"mode {case.mode} unsupported on {where}: {reason}")
        _measure(case, registry, device, precision, result, on_progress, mode)
    except Exception as exc:
        limit = limit_reason(case, registry, devices, exc)
        if limit:
            return _skip(result, limit)
        result.status, result.status_detail = "error", describe_exception(exc)
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
    mode: Mode | None = None,
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
        mode=mode,
    )

    result.curve = outcome.losses
    result.valid_curve = outcome.valid_losses
    result.lr_curve = outcome.lrs
    result.epoch_seconds = seconds = outcome.epoch_end_seconds
    result.mode_setup_seconds = outcome.setup_seconds or None  # empty: no one-off work
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
            mode=build_mode(registry, case),
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
