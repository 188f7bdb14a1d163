"""The ``benchkit`` command line.

Exit codes: 0 when every run finished (ok, diverged or skipped: those are results), 1 when a
run ended in error, 2 when the command itself could not proceed (a bad suite file, an unknown
name, a missing file, a plugin failure under ``--strict-plugins``).
"""

from __future__ import annotations

import argparse
import sys
import time
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
    run.add_argument("--quiet", action="store_true", help="print only the final table")
    run.add_argument(
        "--strict-plugins", action="store_true", help="fail if any plugin failed to load"
    )

    plugins = sub.add_parser("plugins", help="list installed plugins and what they registered")
    plugins.add_argument(
        "--strict-plugins", action="store_true", help="exit 2 if any plugin failed to load"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``benchkit`` script; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args, ["benchkit", *(sys.argv[1:] if argv is None else argv)])
        return _plugins(args)
    except BenchkitError as exc:
        print(f"benchkit: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("benchkit: interrupted", file=sys.stderr)
        return 130


def _default_out(suite_name: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path("results") / f"{suite_name}-{stamp}"
    n = 1
    while out.exists():
        n += 1
        out = Path("results") / f"{suite_name}-{stamp}-{n}"
    return out


def _check_out(out: Path) -> None:
    if (out / "results.csv").exists():
        raise BenchkitError(
            f"{out} already holds a result set; pass another --out or remove it first"
        )
    if out.exists() and not out.is_dir():
        raise BenchkitError(f"--out {out} is a file, not a folder")


def _run(args: argparse.Namespace, argv: list[str]) -> int:
    from benchkit.environment import capture
    from benchkit.progress import Progress
    from benchkit.registry import load_registry
    from benchkit.results import ResultWriter, results_frame
    from benchkit.runner import DeviceCache, run_case
    from benchkit.suite import filter_cases, parse_seeds, parse_suite
    from benchkit.summary import summary_table

    if args.threads is not None:
        if args.threads < 1:
            raise BenchkitError(f"--threads must be at least 1, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    registry = load_registry(strict=args.strict_plugins)
    for info in registry.failures():
        print(f"benchkit: warning: plugin {info.describe()} failed: {info.error}", file=sys.stderr)
    suite = parse_suite(args.suite, registry)
    cases = filter_cases(
        suite.cases,
        models=args.model,
        datasets=args.dataset,
        precisions=args.precision,
        devices=args.device,
        seeds=parse_seeds(args.seeds) if args.seeds else (),
    )
    out = args.out or _default_out(suite.name)
    _check_out(out)
    devices = DeviceCache(registry)
    for name in dict.fromkeys(c.device for c in cases):
        devices.get(name)
    meta = {
        "suite": {
            "name": suite.name,
            "path": str(suite.path),
            "sha256": suite.sha256,
            "description": suite.description,
            "text": suite.text,
        },
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "environment": capture(suite.path, argv, devices.environment()),
        "plugins": {
            p.name: {"package": p.package, "version": p.version, "status": p.status}
            for p in registry.plugins.values()
        },
    }
    writer = ResultWriter(out, meta)
    progress = Progress(len(cases), quiet=args.quiet)
    started = time.perf_counter()
    interrupted = False
    try:
        for index, case in enumerate(cases, 1):
            progress.start(index, case)
            writer.add(run_case(case, registry, devices, progress.epoch))
            progress.finish(writer.results[-1])
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        writer.close(interrupted=interrupted)
        if interrupted:
            print(f"benchkit: kept {len(writer.results)} finished runs in {out}", file=sys.stderr)
    frame = results_frame(writer.results)
    elapsed = time.perf_counter() - started
    print(f"\nsuite {suite.name}: {len(cases)} runs in {elapsed:.1f} s → {out}")
    print(summary_table(frame))
    return EXIT_RUN_ERROR if (frame["status"] == "error").any() else EXIT_OK


def _plugins(args: argparse.Namespace) -> int:
    from benchkit.registry import load_registry

    registry = load_registry()
    for info in sorted(registry.plugins.values(), key=lambda p: p.name):
        where = " ".join(x for x in (info.package, info.version) if x)
        print(f"{info.name}  [{info.status}]  {where}  ({info.module})")
        for kind, names in sorted(info.registered.items()):
            print(f"    {kind}s: {', '.join(names)}")
        if info.error:
            print(f"    error: {info.error}")
    if args.strict_plugins:
        registry.check_strict()  # raises: the caller turns it into exit 2
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
