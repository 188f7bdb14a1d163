"""The ``benchkit`` command line.

Exit codes: 0 when every run finished (ok, diverged, timeout or skipped: those are results), 1
when a run ended in error, 2 when the command itself could not proceed (a bad suite file, an
unknown name, a missing file, a data file a run could not read, a result set that cannot be
written, a plugin failure under ``--strict-plugins``), 3 when benchkit itself failed (a bug:
one line, and ``--debug`` shows the traceback). Ctrl-C, SIGTERM and SIGHUP end a run with
``128 + N`` (130, 143, 129), keeping the finished runs. docs/failure-modes.md lists every
failure and its code.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import benchkit
from benchkit.errors import BenchkitError
from benchkit.history import commands as history_commands

if TYPE_CHECKING:
    from benchkit.registry import Registry
    from benchkit.runner import Executor
    from benchkit.suite import Suite

EXIT_OK, EXIT_RUN_ERROR, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


def _csv_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, one sub-command per verb."""
    parser = argparse.ArgumentParser(
        prog="benchkit",
        description="Benchmark small PyTorch models: convergence, precision and device "
        "comparisons as result tables.",
    )
    parser.add_argument("--version", action="version", version=f"benchkit {benchkit.__version__}")
    _add_debug(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run a suite and write a result set")
    run.add_argument("suite", help="suite folder (suites/convergence) or .toml file")
    run.add_argument("--out", type=Path, help="result folder (default: results/SUITE-TIMESTAMP)")
    for flag, what in (
        ("--model", "models"),
        ("--dataset", "datasets"),
        ("--precision", "precisions"),
        ("--device", "devices (cuda:1 runs the suite's cuda cases there)"),
        ("--mode", "execution modes (eager, compile, cudagraphs)"),
    ):
        run.add_argument(
            flag, type=_csv_list, default=[], help=f"only these {what}, comma-separated"
        )
    run.add_argument("--seeds", help="only these seeds: 0,1,2 or 0-2")
    run.add_argument(
        "--threads",
        type=int,
        help="CPU threads for torch (default: torch's own, fewer when other processes keep "
        "cores busy at the start; the choice is recorded in run.json)",
    )
    run.add_argument(
        "--batch-sizes",
        metavar="recipe,1,16,..",
        help="sweep these batch sizes instead of the suite's ('recipe': the recipe's own)",
    )
    run.add_argument(
        "--max-time",
        type=float,
        metavar="S",
        help="seconds: a training run stops there (status timeout, its curve kept); memory "
        "suites: each probe's limit; throughput suites: the time pytest-benchmark spends per "
        "benchmark (default 0.5)",
    )
    run.add_argument(
        "--resume",
        type=Path,
        metavar="DIR",
        help="continue the interrupted result set DIR: runs it holds are skipped, new ones "
        "added (refused if DIR was made from another suite text or environment)",
    )
    run.add_argument(
        "--force",
        action="store_true",
        help="with --resume: continue even if the suite text or the environment differ",
    )
    run.add_argument("--quiet", action="store_true", help="print only the final table")
    run.add_argument(
        "--strict-plugins", action="store_true", help="fail if any plugin failed to load"
    )
    _add_executor_arguments(run)

    _add_profile_parser(sub)
    plugins = sub.add_parser("plugins", help="list installed plugins and what they registered")
    plugins.add_argument(
        "--strict-plugins", action="store_true", help="exit 2 if any plugin failed to load"
    )
    _add_show_parsers(plugins, sub)
    _add_new_plugin_parser(sub)
    _add_compare_parser(sub)
    _add_report_parser(sub)
    _add_baseline_parser(sub)
    history_commands.add_parsers(sub, _csv_list)
    for command in sub.choices.values():
        _add_debug(command)
    return parser


def _add_executor_arguments(run: argparse.ArgumentParser) -> None:
    """How the runs are carried out (docs/scaling-out.md). Each flag sets the executor option
    of the same name; an executor that does not take it refuses it."""
    group = run.add_argument_group("executors (docs/scaling-out.md)")
    group.add_argument(
        "--executor",
        default="serial",
        help="serial (default: one run after another here), dask (a Dask cluster), or one "
        "a plugin registers",
    )
    group.add_argument(
        "--workers", type=int, help="dask: start a local cluster of N single-threaded workers"
    )
    group.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="dask: use the cluster of this scheduler (tcp://HOST:PORT; default: "
        "$BENCHKIT_SCHEDULER)",
    )
    group.add_argument(
        "--share-hosts",
        action="store_true",
        default=None,
        help="dask: let runs share a host (faster; their timings are marked shared and never gate)",
    )
    group.add_argument(
        "--retries", type=int, help="dask: run a run whose worker died again, up to N times"
    )
    group.add_argument(
        "--executor-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set another option of the executor (a TOML value: 2, 0.5, true, 'text'); repeatable",
    )
    group.add_argument(
        "--gpu-workers",
        type=int,
        help="dask, --workers: how many of them get the GPU=1 resource (default: 1 where "
        "CUDA is present, else 0)",
    )


_EXECUTOR_OPTIONS = ("workers", "scheduler", "share_hosts", "retries", "gpu_workers")


def _add_profile_parser(sub: argparse._SubParsersAction) -> None:
    profile = sub.add_parser(
        "profile",
        help="where a step's time goes: compute, optimizer, overhead, idle (torch.profiler)",
        description="Run a few steps of each case under torch.profiler and print, per case, "
        "the shares of the step spent in compute kernels, the optimizer step, framework "
        "overhead and (GPU) idle gaps, against the compute floor (FLOPs / peak). The table is "
        "written as a result set (see benchkit/profiling.py).",
    )
    profile.add_argument("suite", help="suite folder or .toml file (its cases are profiled)")
    profile.add_argument("--out", type=Path, help="result folder (default: results/profile-TIME)")
    for flag, what in (
        ("--model", "models"),
        ("--dataset", "datasets"),
        ("--precision", "precisions"),
        ("--device", "devices"),
        ("--mode", "execution modes"),
    ):
        profile.add_argument(
            flag, type=_csv_list, default=[], help=f"only these {what}, comma-separated"
        )
    profile.add_argument("--seeds", default="0", help="only these seeds (default: 0)")
    profile.add_argument(
        "--kind",
        type=_csv_list,
        default=["train_step"],
        help="train_step, inference or both, comma-separated (default: train_step)",
    )
    profile.add_argument("--steps", type=int, default=10, help="profiled steps (default 10)")
    profile.add_argument(
        "--trace", action="store_true", help="also write each case's Chrome trace (traces/)"
    )
    profile.add_argument("--threads", type=int, help="CPU threads for torch (1 on a busy machine)")
    profile.add_argument("--quiet", action="store_true", help="print only the final table")


def _add_debug(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the full traceback of an error instead of one line",
    )


def _add_show_parsers(plugins: argparse.ArgumentParser, sub: argparse._SubParsersAction) -> None:
    plugins.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="also each registration's description, options, recipes and metrics",
    )
    show = sub.add_parser(
        "show",
        help="what a model, dataset, loss, optimizer, schedule, precision or device is",
        description="Print the plugin that registered NAME, its description, its options with "
        "their defaults, the recipe per pairing and the declared metrics.",
    )
    show.add_argument("name", metavar="NAME", help="a registered name, e.g. single_neuron")


def _add_new_plugin_parser(sub: argparse._SubParsersAction) -> None:
    new_plugin = sub.add_parser(
        "new-plugin",
        help="create a plugin package to start from (model, dataset, suite, tests)",
        description="Write NAME/: pyproject.toml with the benchkit entry point, a plugin module "
        "registering a small dataset and a model that fits it, a suite, and tests using "
        "benchkit.testing. An existing folder is never overwritten. The guide is "
        "docs/writing-plugins.md.",
    )
    new_plugin.add_argument(
        "name",
        metavar="NAME",
        help="distribution name, e.g. benchkit-my-models (package benchkit_my_models)",
    )
    new_plugin.add_argument(
        "--dir",
        type=Path,
        default=Path("."),
        help="folder to create the package in (default: the current one)",
    )


def _add_compare_parser(sub: argparse._SubParsersAction) -> None:
    compare = sub.add_parser(
        "compare",
        help="compare two result sets; exit 1 on a regression",
        description="Compare a new result set with a baseline, each metric by its own rule "
        "(see benchkit/compare.py). Exit 0: no regression; 1: a regression; 2: bad input.",
    )
    compare.add_argument("baseline", help="result set folder, or pytest-benchmark JSON file")
    compare.add_argument(
        "new",
        nargs="?",
        help="result set folder, or pytest-benchmark JSON file (optional with --by device)",
    )
    compare.add_argument(
        "--by",
        choices=("device",),
        help="device: the speed-up of each device over the CPU per model, precision (and kind "
        "and batch), within one result set or across two from different machines",
    )
    compare.add_argument(
        "--format",
        choices=("table", "markdown", "csv", "json"),
        default="table",
        help="output format (default: table)",
    )
    compare.add_argument(
        "--threshold",
        action="append",
        default=[],
        metavar="METRIC=VALUE",
        help="override a metric's threshold (or a kind's: noisy=0.15); METRIC.cross=VALUE sets "
        "a deterministic metric's tolerance across environments; repeatable",
    )
    compare.add_argument(
        "--report-only",
        type=_csv_list,
        default=[],
        metavar="KIND,..",
        help="kinds (status, deterministic, noisy, memory) or metrics shown but never failing",
    )
    compare.add_argument(
        "--strict",
        action="store_true",
        help="also fail on any deterministic change (improvements too) and on rows present on "
        "one side only: for gating on a committed baseline",
    )
    compare.add_argument("--all", action="store_true", help="list identical checks too")


def _add_report_parser(sub: argparse._SubParsersAction) -> None:
    report = sub.add_parser(
        "report", help="write a report (Markdown, PNG plots, one HTML page) of result sets"
    )
    report.add_argument("results", nargs="+", help="result set folders")
    report.add_argument("--out", type=Path, help="report folder (default: results/report-TIME)")


def _add_baseline_parser(sub: argparse._SubParsersAction) -> None:
    baseline = sub.add_parser(
        "baseline", help="list or regenerate the committed baselines (results/baselines/)"
    )
    verbs = baseline.add_subparsers(dest="baseline_command", required=True, metavar="VERB")
    update = verbs.add_parser("update", help="re-run the suite of each baseline and replace it")
    update.add_argument("names", nargs="*", help="baselines to update (default: all)")
    verbs.add_parser("list", help="list the baselines and how each is made")
    for verb in verbs.choices.values():
        _add_debug(verb)
        verb.add_argument(
            "--root",
            type=Path,
            default=None,
            help="folder holding baselines.toml (default: results/baselines)",
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``benchkit`` script; returns the exit code."""
    args = build_parser().parse_args(argv)
    debug = getattr(args, "debug", False)
    try:
        return _dispatch(args, argv)
    except KeyboardInterrupt as exc:
        signal_name = getattr(exc, "signal_name", "SIGINT")
        print(f"benchkit: interrupted ({signal_name})", file=sys.stderr)
        return getattr(exc, "exit_code", 130)
    except BrokenPipeError:
        # the reader went away (`benchkit run ... | head`): stop quietly, results are on disk
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except BenchkitError as exc:
        if debug:
            raise
        print(f"benchkit: error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        if debug:
            raise
        # a file or folder the operating system refused: name it and the cause
        where = exc.filename or ""
        cause = exc.strerror or str(exc)
        print(f"benchkit: error: {where + ': ' if where else ''}{cause}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:
        if debug:
            raise
        from benchkit.errors import describe_exception

        print(
            f"benchkit: internal error: {_one_line(describe_exception(exc))}; this is a bug in "
            "benchkit or a plugin: run the command again with --debug for the traceback",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


def _one_line(text: str) -> str:
    """Messages are one line: a multi-line one (the --strict-plugins list) keeps its lines
    only where it means to."""
    return text if "\n  " in text else " ".join(text.split())


def _dispatch(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    if args.command == "run":
        return _run(args, ["benchkit", *(sys.argv[1:] if argv is None else argv)])
    if args.command == "new-plugin":
        return _new_plugin(args)
    if args.command == "profile":
        return _profile(args, ["benchkit", *(sys.argv[1:] if argv is None else argv)])
    if args.command == "compare":
        return _compare(args)
    if args.command == "report":
        return _report(args)
    if args.command == "baseline":
        return _baseline(args)
    if args.command == "show":
        return _show(args)
    if args.command in ("history", "ab"):
        return history_commands.run(args)
    return _plugins(args)


def _run(args: argparse.Namespace, argv: list[str]) -> int:
    from benchkit.cases import DeviceCache
    from benchkit.executors import executor_runs_here, executor_session
    from benchkit.progress import Progress
    from benchkit.registry import load_registry
    from benchkit.resultset import (
        ResultSetWriter,
        check_new_folder,
        new_result_folder,
        read_resumable_meta,
        resume_problems,
    )
    from benchkit.runner import (
        RunOptions,
        apply_thread_policy,
        check_max_time,
        run_suite,
        suite_header,
        warn,
    )
    from benchkit.suite import filter_cases, parse_batch_sizes, parse_seeds, parse_suite
    from benchkit.summary import outcome_text

    if args.threads is not None and args.threads < 1:
        raise BenchkitError(f"--threads must be at least 1, got {args.threads}")
    check_max_time(args.max_time)
    if args.force and not args.resume:
        raise BenchkitError("--force goes with --resume DIR")
    if args.resume and args.out:
        raise BenchkitError("--resume DIR writes into DIR; leave out --out")
    registry = load_registry(strict=args.strict_plugins)
    for info in registry.failures():
        warn(f"plugin {info.describe()} failed: {info.error}")
    for text in registry.warnings:
        warn(text)
    sizes = parse_batch_sizes(args.batch_sizes) if args.batch_sizes else None
    suite = parse_suite(args.suite, registry, batch_sizes=sizes)
    filters = {
        "models": args.model,
        "datasets": args.dataset,
        "precisions": args.precision,
        "devices": args.device,
        "seeds": parse_seeds(args.seeds) if args.seeds else [],
        "modes": args.mode,
    }
    cases = filter_cases(suite.cases, **filters)
    if args.resume and suite.kind == "throughput":
        raise BenchkitError(
            "--resume continues convergence and memory suites; a throughput suite is timed in "
            "one pytest session, so run it again into a new folder"
        )
    old = read_resumable_meta(args.resume) if args.resume else None
    threads = args.threads
    source = "--threads"
    if old is not None and threads is None:
        recorded = (old.get("environment") or {}).get("torch_threads")
        if isinstance(recorded, int) and recorded >= 1:
            threads, source = recorded, "resume (the thread count the set was made with)"
    choice = apply_thread_policy(threads, source)
    executor = _executor(args, registry, suite, sizes)
    devices = DeviceCache(registry)
    # the devices runs use here (an executor whose runs happen elsewhere builds its own there)
    for name in dict.fromkeys(c.device for c in cases) if executor_runs_here(executor) else ():
        # a broken device plugin is not fatal: each of its runs records the error
        with contextlib.suppress(BenchkitError):
            devices.get(name)
    header = suite_header(suite, registry, devices, argv, cases)
    if old is not None:
        problems = resume_problems(old, header)
        if problems and not args.force:
            raise BenchkitError(
                f"--resume {args.resume}: refused, the set was made {'; '.join(problems)}; "
                "pass --force to continue it anyway, or start a new set"
            )
    elif args.out is not None and args.out.is_dir():
        check_new_folder(args.out)  # refused now, not after a cluster has started
    with executor_session(executor):  # a cluster starts (its workers are checked) here
        if hasattr(executor, "describe"):
            header["executor"] = executor.describe()
        out = args.resume if old is not None else new_result_folder(args.out, suite.name)
        writer = ResultSetWriter(out, header, resume=old is not None)
        options = RunOptions(
            args.threads,
            args.quiet,
            args.max_time,
            sizes,
            filters,
            choice,
            debug=getattr(args, "debug", False),  # throughput: pytest's tracebacks
        )
        try:
            outcome = run_suite(
                suite,
                cases,
                registry,
                devices,
                writer,
                options,
                progress=Progress(len(cases), quiet=args.quiet),
                executor=executor,
            )
        except KeyboardInterrupt:
            print(
                f"benchkit: kept {writer.runs} finished runs in {out}; continue with: "
                f"benchkit run {args.suite} --resume {out}",
                file=sys.stderr,
            )
            raise
    print(outcome_text(outcome, out))
    if outcome.input_errors:
        bad = outcome.input_errors
        runs = f"{len(bad)} runs" if len(bad) > 1 else "1 run"
        raise BenchkitError(
            f"{runs} could not read the input the suite gave (first: {bad[0].run_id}: "
            f"{bad[0].status_detail}); fix the suite's options or files"
        )
    return EXIT_RUN_ERROR if outcome.errored else EXIT_OK


def _executor(
    args: argparse.Namespace, registry: Registry, suite: Suite, sizes: list[int | None] | None
) -> Executor:
    """The executor ``--executor`` names, with the options its flags set."""
    from benchkit.executors import ExecutorContext, build_executor, option_values

    options = option_values(args.executor_option)
    options.update(
        (key, getattr(args, key)) for key in _EXECUTOR_OPTIONS if getattr(args, key) is not None
    )
    context = ExecutorContext(suite, args.threads, sizes, args.quiet)
    return build_executor(registry, args.executor, options, context)


def _profile(args: argparse.Namespace, argv: list[str]) -> int:
    from benchkit.profiling import profile_suite, profile_summary
    from benchkit.registry import load_registry
    from benchkit.resultset import new_result_folder
    from benchkit.suite import filter_cases, parse_seeds, parse_suite

    kinds = ("train_step", "inference")
    unknown = [k for k in args.kind if k not in kinds]
    if unknown or not args.kind:
        raise BenchkitError(f"--kind {','.join(args.kind)}: write {' or '.join(kinds)}")
    if args.steps < 1:
        raise BenchkitError(f"--steps must be at least 1, got {args.steps}")
    if args.threads is not None:
        if args.threads < 1:
            raise BenchkitError(f"--threads must be at least 1, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    registry = load_registry()
    suite = parse_suite(args.suite, registry)
    cases = filter_cases(
        suite.cases,
        models=args.model,
        datasets=args.dataset,
        precisions=args.precision,
        devices=args.device,
        seeds=parse_seeds(args.seeds),
        modes=args.mode,
    )
    out = new_result_folder(args.out, f"profile-{suite.name}")
    frame = profile_suite(
        suite, cases, registry, out, argv, args.kind, args.steps, args.trace, args.quiet
    )
    print(f"\nprofile of {suite.name}: {len(frame)} cases → {out}")
    print(profile_summary(frame))
    return EXIT_RUN_ERROR if (frame["status"] == "error").any() else EXIT_OK


def _plugins(args: argparse.Namespace) -> int:
    from benchkit.registry import load_registry
    from benchkit.runner import warn
    from benchkit.show import plugins_listing

    registry = load_registry()
    for text in registry.warnings:
        warn(text)
    print(plugins_listing(registry, verbose=args.verbose))
    if args.strict_plugins:
        registry.check_strict()  # raises: the caller turns it into exit 2
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    from benchkit.registry import load_registry
    from benchkit.show import show

    sys.stdout.write(show(load_registry(), args.name))
    return EXIT_OK


def _new_plugin(args: argparse.Namespace) -> int:
    from benchkit.scaffold import create_plugin, next_steps

    print(next_steps(create_plugin(args.name, args.dir)))
    return EXIT_OK


def _compare(args: argparse.Namespace) -> int:
    if args.by == "device":
        from benchkit.speedup import device_speedup_text

        print(device_speedup_text([p for p in (args.baseline, args.new) if p]))
        return EXIT_OK
    if args.new is None:
        raise BenchkitError("compare needs BASELINE and NEW (or --by device with one set)")
    from benchkit.compare import Options, compare, parse_threshold_args
    from benchkit.compare_output import render
    from benchkit.resultset import load

    options = Options(
        thresholds=parse_threshold_args(args.threshold),
        report_only=set(args.report_only),
        strict=args.strict,
    )
    comparison = compare(load(args.baseline), load(args.new), options)
    sys.stdout.write(render(comparison, args.format, show_all=args.all))
    return comparison.exit_code


def _report(args: argparse.Namespace) -> int:
    from benchkit.report import write_report
    from benchkit.resultset import default_out, load

    out = args.out or default_out("report")
    result_sets = [load(path) for path in args.results]
    index = write_report(result_sets, out)
    print(f"report: {index} ({index.with_suffix('.html')})")
    return EXIT_OK


def _baseline(args: argparse.Namespace) -> int:
    from benchkit.baseline import DEFAULT_ROOT, describe, read_manifest, update

    root = args.root or DEFAULT_ROOT
    if args.baseline_command == "list":
        for baseline in read_manifest(root):
            print(describe(baseline))
        return EXIT_OK
    return update(root, args.names)


if __name__ == "__main__":
    sys.exit(main())
