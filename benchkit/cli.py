"""The ``benchkit`` command line.

Exit codes: 0 when every run finished (ok, diverged or skipped: those are results), 1 when a
run ended in error, 2 when the command itself could not proceed (a bad suite file, an unknown
name, a missing file, a plugin failure under ``--strict-plugins``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import benchkit
from benchkit.errors import BenchkitError

EXIT_OK, EXIT_RUN_ERROR, EXIT_USAGE = 0, 1, 2


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
        help="CPU threads for torch (default: torch's own; 1 is steadier on a busy machine)",
    )
    run.add_argument(
        "--batch-sizes",
        metavar="recipe,1,16,..",
        help="sweep these batch sizes instead of the suite's ('recipe': the recipe's own)",
    )
    run.add_argument(
        "--max-time",
        type=float,
        default=0.5,
        help="throughput suites: seconds pytest-benchmark spends per benchmark (default 0.5)",
    )
    run.add_argument("--quiet", action="store_true", help="print only the final table")
    run.add_argument(
        "--debug",
        action="store_true",
        help="throughput suites: show the traceback of a failing case (else one line each)",
    )
    run.add_argument(
        "--strict-plugins", action="store_true", help="fail if any plugin failed to load"
    )

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
    return parser


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
        verb.add_argument(
            "--root",
            type=Path,
            default=None,
            help="folder holding baselines.toml (default: results/baselines)",
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``benchkit`` script; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
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
        return _plugins(args)
    except BenchkitError as exc:
        print(f"benchkit: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("benchkit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`benchkit run ... | head`): stop quietly, results are on disk
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


def _run(args: argparse.Namespace, argv: list[str]) -> int:
    from benchkit.cases import DeviceCache
    from benchkit.progress import Progress
    from benchkit.registry import load_registry
    from benchkit.resultset import ResultSetWriter, new_result_folder
    from benchkit.runner import RunOptions, run_suite, suite_header
    from benchkit.suite import filter_cases, parse_batch_sizes, parse_seeds, parse_suite
    from benchkit.summary import outcome_text

    if args.threads is not None:
        if args.threads < 1:
            raise BenchkitError(f"--threads must be at least 1, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    registry = load_registry(strict=args.strict_plugins)
    for info in registry.failures():
        print(f"benchkit: warning: plugin {info.describe()} failed: {info.error}", file=sys.stderr)
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
    out = new_result_folder(args.out, suite.name)
    devices = DeviceCache(registry)
    for name in dict.fromkeys(c.device for c in cases):
        # a broken device plugin is not fatal: each of its runs records the error
        with contextlib.suppress(BenchkitError):
            devices.get(name)
    writer = ResultSetWriter(out, suite_header(suite, registry, devices, argv, cases))
    options = RunOptions(args.threads, args.quiet, args.max_time, sizes, filters, args.debug)
    try:
        outcome = run_suite(
            suite,
            cases,
            registry,
            devices,
            writer,
            options,
            progress=Progress(len(cases), quiet=args.quiet),
        )
    except KeyboardInterrupt:
        print(f"benchkit: kept {writer.runs} finished runs in {out}", file=sys.stderr)
        raise
    print(outcome_text(outcome, out))
    return EXIT_RUN_ERROR if outcome.errored else EXIT_OK


def _profile(args: argparse.Namespace, argv: list[str]) -> int:
    from benchkit.cases import DeviceCache
    from benchkit.profiling import profile_summary, run_profile
    from benchkit.registry import load_registry
    from benchkit.resultset import ResultSetWriter, new_result_folder
    from benchkit.runner import suite_header
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
    devices = DeviceCache(registry)
    header = {**suite_header(suite, registry, devices, argv), "kind": "profile"}
    writer = ResultSetWriter(out, header)
    interrupted = False
    try:
        frame = run_profile(
            cases, registry, devices, writer, args.kind, args.steps, args.trace, args.quiet
        )
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        writer.set_environment("devices", devices.environment())
        writer.close(interrupted=interrupted)
    print(f"\nprofile of {suite.name}: {len(frame)} cases → {out}")
    print(profile_summary(frame))
    return EXIT_RUN_ERROR if (frame["status"] == "error").any() else EXIT_OK


def _plugins(args: argparse.Namespace) -> int:
    from benchkit.registry import load_registry
    from benchkit.show import plugins_listing

    registry = load_registry()
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
