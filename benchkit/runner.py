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
with the next case. A run that reaches its time limit (``--max-time``, or the case's
``max_seconds``) stops after the epoch it is in and is ``timeout``, keeping its curve.

:func:`run_suite` also owns what makes the numbers and the result set trustworthy: the CPU
thread policy (:mod:`benchkit.threads`), whether each run shared the CPU (``contended``),
Ctrl-C, SIGTERM and SIGHUP (:mod:`benchkit.interrupts`: finished runs kept, the set marked
interrupted), and resuming a set (runs it holds are skipped).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import pandas as pd
import torch

from benchkit import threads
from benchkit.cases import DeviceCache, build_mode, limit_reason, prepare
from benchkit.device import Device
from benchkit.environment import stamp_run
from benchkit.errors import BenchkitError, PluginError, describe_exception
from benchkit.interrupts import Interrupted, deferred, handle_interrupts
from benchkit.mode import Mode
from benchkit.precision import Precision
from benchkit.recipe_parts import resolve_recipe
from benchkit.registry import Registry, call_factory, call_plugin
from benchkit.resultset import PROVIDER_KINDS, ResultSetWriter
from benchkit.run_result import (
    RunResult,
    epoch_throughputs,
    median_and_iqr,
    summarise_curve,
    warmup_epochs,
)
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


class Executor(Protocol):
    """How a suite's cases are run (registered through ``benchkit_register_executors``; the
    API for writing one is :mod:`benchkit.executors`)."""

    name: str

    def results(
        self,
        cases: Sequence[Case],
        registry: Registry,
        devices: DeviceCache,
        progress: Progress | None = None,
    ) -> Iterator[RunResult]:
        """Run ``cases`` and yield each one's result as it finishes, in any order."""


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
            stamp_run(result)  # this process, alone on its host as far as the suite goes
            if progress:
                progress.finish(result)
            yield result


#: Seconds pytest-benchmark spends per benchmark of a throughput suite without ``--max-time``.
THROUGHPUT_MAX_TIME = 0.5


def warn(text: str) -> None:
    """Print a warning line on stderr."""
    print(f"benchkit: warning: {text}", file=sys.stderr, flush=True)


@dataclass
class RunOptions:
    """How ``benchkit run`` was asked to run a suite, beyond which cases."""

    threads: int | None = None
    quiet: bool = False
    #: convergence: each run's time limit; throughput: seconds pytest-benchmark spends per
    #: benchmark (default :data:`THROUGHPUT_MAX_TIME`); memory: each probe's time limit
    max_time: float | None = None
    #: a batch-size sweep replacing the suite's (``None`` in it: the recipe's own)
    batch_sizes: list[int | None] | None = None
    #: the command line's filters (models, datasets, precisions, devices, seeds, modes)
    filters: dict[str, Sequence[Any]] = field(default_factory=dict)
    #: the thread policy's decision (:func:`apply_thread_policy`); made by run_suite if None
    thread_choice: threads.ThreadChoice | None = None
    #: where warnings go (one line each); stderr by default
    warn: Callable[[str], None] = warn
    #: throughput suites: show pytest's tracebacks of failing cases (else one line each)
    debug: bool = False


def check_max_time(value: float | None, flag: str = "--max-time") -> None:
    """A time limit is a finite number of seconds above 0.

    :raises BenchkitError: otherwise.
    """
    if value is not None and not (math.isfinite(value) and value > 0):
        raise BenchkitError(f"{flag} must be a number of seconds above 0, got {value:g}")


def apply_thread_policy(
    requested: int | None, source: str = "--threads", probe: bool = True
) -> threads.ThreadChoice:
    """Choose torch's CPU thread count (:func:`benchkit.threads.choose_threads`) and set it.

    :param requested: ``--threads``, or the count a resumed set was made with.
    :param probe: watch the CPU for a moment first (the start-up contention check).
    """
    default = torch.get_num_threads()
    load = threads.measure_load() if probe else None
    choice = threads.choose_threads(requested, default, load, source)
    if choice.threads != default:
        torch.set_num_threads(choice.threads)
    return choice


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

    @property
    def input_errors(self) -> list[RunResult]:
        """Runs that failed on input the user can fix, such as a missing data file (the
        command's exit code 2)."""
        return [r for r in self.results if r.input_error]


def suite_header(
    suite: Suite,
    registry: Registry,
    devices: DeviceCache,
    argv: Sequence[str],
    cases: Sequence[Case] = (),
) -> dict[str, Any]:
    """What ``run.json`` records about a run of ``suite`` before it starts (the writer adds the
    schema version and the state): the suite, its text and hash, the environment, the plugins
    and which plugin provided each case's model, dataset, precision and device, and what the
    metrics of the models in ``cases`` mean (for compare)."""
    from benchkit.environment import capture
    from benchkit.metric import declared_metrics

    providers: dict[str, dict[str, str]] = {kind: {} for kind in PROVIDER_KINDS}
    for case in suite.cases:
        for kind in PROVIDER_KINDS:
            name = getattr(case, kind)
            name = name.partition(":")[0] if kind == "device" else name
            entry = registry.entries.get(kind, {}).get(name)
            if entry is not None:
                providers[kind][name] = entry.plugin
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
        "providers": providers,
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
    executor: Executor | None = None,
) -> SuiteOutcome:
    """Run ``cases`` of ``suite`` and write them through ``writer``; return what was measured.

    Runs the writer already holds (a resumed set) are skipped. Ctrl-C, SIGTERM and SIGHUP
    (:class:`~benchkit.interrupts.Interrupted`, a ``KeyboardInterrupt``) close the result set
    as interrupted, with every finished run kept, and propagate; so does a write error
    (:class:`~benchkit.errors.OutputError`).

    :raises BenchkitError: ``options.max_time`` is not above 0.
    """
    options = options or RunOptions()
    check_max_time(options.max_time)
    started = time.perf_counter()
    choice = options.thread_choice or apply_thread_policy(options.threads)
    _record_threads(writer, choice, len(cases), options)
    with handle_interrupts():
        if suite.kind == "throughput":
            return _run_throughput(suite, cases, writer, options, choice, started)
        if suite.kind == "memory":
            return _run_memory(suite, cases, devices, writer, options, choice, started)
        limited = [_with_limit(c, options.max_time) for c in cases]
        return _run_convergence(
            suite, limited, registry, devices, writer, progress, executor, options, started
        )


def _record_threads(
    writer: ResultSetWriter, choice: threads.ThreadChoice, planned: int, options: RunOptions
) -> None:
    writer.set_environment("torch_threads", choice.threads)
    writer.set_environment("threads", choice.record())
    writer.header["planned_runs"] = planned
    writer.header["contention"] = {"busy_at_start": choice.busy_at_start, "contended_runs": 0}
    if choice.busy_at_start:
        options.warn(threads.busy_warning(choice))


def _with_limit(case: Case, max_time: float | None) -> Case:
    """The case with its time limit: the smaller of its ``max_seconds`` and ``--max-time``."""
    limits = [x for x in (case.max_seconds, max_time) if x is not None]
    return replace(case, max_seconds=min(limits)) if limits else case


def _run_throughput(
    suite: Suite,
    cases: Sequence[Case],
    writer: ResultSetWriter,
    options: RunOptions,
    choice: threads.ThreadChoice,
    started: float,
) -> SuiteOutcome:
    from benchkit.speedup import crossover_table
    from benchkit.throughput import run_throughput

    if writer.runs:
        raise BenchkitError(
            "--resume continues convergence and memory suites; a throughput suite is timed in "
            "one pytest session, so run it again into a new folder"
        )
    max_time = THROUGHPUT_MAX_TIME if options.max_time is None else options.max_time
    frame = _closing(
        writer,
        lambda: run_throughput(
            suite,
            writer,
            options.filters,
            options.batch_sizes or [],
            choice.threads,
            options.quiet,
            max_time,
            options.debug,
        ),
    )
    crossover = crossover_table(frame)
    if len(crossover):
        writer.write_table("crossover.csv", crossover)
    return SuiteOutcome(
        suite, list(cases), frame, time.perf_counter() - started, crossover=crossover
    )


def _run_memory(
    suite: Suite,
    cases: Sequence[Case],
    devices: DeviceCache,
    writer: ResultSetWriter,
    options: RunOptions,
    choice: threads.ThreadChoice,
    started: float,
) -> SuiteOutcome:
    from benchkit.memory import run_memory

    done = writer.finished
    todo = [
        _with_limit(c, options.max_time)
        for c in cases
        if not {f"{c.run_id}/train_step", f"{c.run_id}/inference"} <= done
    ]
    _closing(
        writer,
        lambda: run_memory(todo, suite, writer, devices, choice.threads, options.quiet),
    )
    return SuiteOutcome(suite, list(cases), writer.frame(), time.perf_counter() - started)


def _closing(writer: ResultSetWriter, body: Callable[[], Any]) -> Any:
    """Run ``body``; close the writer whatever happens: finished, or interrupted (by a signal,
    or by an error, with every run written so far kept)."""
    try:
        result = body()
    except KeyboardInterrupt as exc:
        reason = exc.signal_name if isinstance(exc, Interrupted) else "SIGINT"
        writer.close(interrupted=True, reason=reason)
        raise
    except BaseException as exc:
        writer.close(interrupted=True, reason=describe_exception(exc))
        raise
    writer.close()
    return result


def _run_convergence(
    suite: Suite,
    cases: Sequence[Case],
    registry: Registry,
    devices: DeviceCache,
    writer: ResultSetWriter,
    progress: Progress | None,
    executor: Executor | None,
    options: RunOptions,
    started: float,
) -> SuiteOutcome:
    executor = executor or SerialExecutor()
    tables: dict[str, pd.DataFrame] = {}
    done = writer.finished
    todo = [c for c in cases if c.run_id not in done]
    warned = [bool(writer.header.get("contention", {}).get("busy_at_start"))]

    def loop() -> pd.DataFrame:
        for result in executor.results(todo, registry, devices, progress):
            with deferred():  # a signal waits until the run is written
                writer.add(result)
            _note_contention(writer, result, options, warned)
        frame = writer.frame()
        if suite.claims:
            from benchkit.claims import evaluate_claims

            tables["claims"] = evaluate_claims(suite.claims, frame, writer.table("criteria.csv"))
            writer.write_table("claims.csv", tables["claims"])
        if suite.references:
            from benchkit.references import evaluate_references

            tables["references"] = evaluate_references(
                suite.references,
                frame,
                writer.table("curves.csv"),
                trace=writer.table("trace.csv"),
                series=writer.table("series.csv"),
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


def _note_contention(
    writer: ResultSetWriter, result: RunResult, options: RunOptions, warned: list[bool]
) -> None:
    """Count contended runs in ``run.json``; warn once, at the first, unless the machine was
    already reported busy at the start."""
    if not result.contended:
        return
    record = writer.header.setdefault("contention", {})
    record["contended_runs"] = record.get("contended_runs", 0) + 1
    if not warned[0]:
        warned[0] = True
        options.warn(
            f"run {result.run_id} shared the CPU with other processes "
            f"({result.contention}); it and any "
            "later such runs are marked contended: benchkit compare shows their timings but "
            "does not gate on them. For timings to compare, run on a quiet machine."
        )


def run_case(
    case: Case, registry: Registry, devices: DeviceCache, on_progress: ProgressFn | None = None
) -> RunResult:
    """Run one case and measure it; never raises for a problem with the case itself.

    The case's ``max_seconds`` (the run stage folds ``--max-time`` into it) limits the run,
    counted from here. Whether other processes shared the CPU is judged around the run
    (``contended``), so every executor records it where the run happened.
    """
    deadline = None if case.max_seconds is None else time.perf_counter() + case.max_seconds
    result = case_result(case)
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
        before = threads.read_cpu_times()
        _measure(case, registry, device, precision, result, on_progress, deadline, mode)
        _assess_contention(result, before, threads.read_cpu_times())
    except PluginError as exc:  # a plugin's bug, named with its plugin and package
        result.status, result.status_detail = "error", describe_exception(exc)
    except BenchkitError as exc:
        # what a plugin raised for a problem the user can fix (a missing or malformed data
        # file, a bad option): the command exits 2 once the suite is done
        result.status, result.status_detail = "error", describe_exception(exc)
        result.input_error = True
    except Exception as exc:
        limit = limit_reason(case, registry, devices, exc)
        if limit:
            return _skip(result, limit)
        result.status, result.status_detail = "error", describe_exception(exc)
    return result


def case_result(case: Case) -> RunResult:
    """The row of ``case`` before anything is measured: its key and its recipe's setup."""
    return RunResult(
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


def _assess_contention(
    result: RunResult, before: threads.CpuTimes | None, after: threads.CpuTimes | None
) -> None:
    seconds = result.epoch_seconds
    durations = [b - a for a, b in zip([0.0, *seconds[:-1]], seconds, strict=False)]
    verdict = threads.assess(durations[warmup_epochs(len(seconds)) :], before, after)
    result.contended = verdict.contended
    result.other_cpu_load = verdict.other_load
    result.contention = "; ".join(verdict.reasons)


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
    deadline: float | None = None,
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
        deadline=deadline,
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
        # the statistic compare uses: the median of the per-epoch rates after warm-up
        rates = epoch_throughputs(seconds, result.train_samples)
        result.samples_per_second, result.samples_per_second_iqr = median_and_iqr(rates)
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
    elif outcome.timed_out:
        result.status = "timeout"
        result.status_detail = (
            f"stopped at its time limit of {case.max_seconds:g} s after epoch "
            f"{len(result.curve) - 1} of {case.recipe.epochs} (--max-time or the case's "
            "max_seconds); the curve so far is kept, the quality metrics are not measured"
        )
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
