"""The ``benchkit history`` and ``benchkit ab`` commands: their arguments, and what
:mod:`benchkit.cli` calls with them parsed. Each returns the exit code; errors a user can
cause raise :class:`~benchkit.errors.BenchkitError` (exit 2)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchkit.errors import BenchkitError

EXIT_OK, EXIT_INTERRUPTED = 0, 130


def add_parsers(sub: argparse._SubParsersAction, csv_list: Callable[[str], list[str]]) -> None:
    """Add the ``history`` and ``ab`` commands to ``benchkit``'s parser; ``csv_list`` reads a
    comma-separated filter as the other commands do."""
    _add_history_parser(sub, csv_list)
    _add_ab_parser(sub, csv_list)


def _add_history_parser(
    sub: argparse._SubParsersAction, csv_list: Callable[[str], list[str]]
) -> None:
    history = sub.add_parser(
        "history", help="record result sets by commit (add); a metric over commits, its steps"
    )
    verbs = history.add_subparsers(dest="history_command", required=True, metavar="VERB")
    add = verbs.add_parser("add", help="record result sets in the history database")
    add.add_argument("results", nargs="+", help="result set folders (or pytest-benchmark JSON)")
    add.add_argument("--commit", help="record under this commit (sets made outside git)")
    add.add_argument("--repo", type=Path, help="git repository to ask for commit times")
    show = verbs.add_parser(
        "show", help="a metric over commits per workload and environment, with its steps"
    )
    show.add_argument("--metric", default="samples_per_second", help="(default: %(default)s)")
    for flag in ("--model", "--dataset", "--precision", "--device"):
        show.add_argument(flag, type=csv_list, default=[], help="only these, comma-separated")
    show.add_argument("--suite", help="only this suite (its name)")
    show.add_argument("--include-dirty", action="store_true", help="sets from dirty trees too")
    show.add_argument("--out", type=Path, help="folder for history.md/.html and the PNGs")
    show.add_argument("--format", choices=("table", "markdown"), default="table")
    for verb in (add, show):
        verb.add_argument(
            "--db",
            type=Path,
            help="database (default: $BENCHKIT_HISTORY or results/history.sqlite)",
        )


def _add_ab_parser(sub: argparse._SubParsersAction, csv_list: Callable[[str], list[str]]) -> None:
    ab = sub.add_parser(
        "ab",
        help="run two revisions interleaved on this machine; exit 1 if HEAD regressed",
        description="Check out BASE and HEAD into temporary worktrees, run SUITE alternately "
        "for --rounds rounds (`benchkit run --threads 1` of each revision) and compare the "
        "per-round ratios. Exit 0: no regression; 1: a regression; 2: bad input. See "
        "docs/history.md.",
    )
    ab.add_argument("base", help="the revision to compare against (origin/main, a hash)")
    ab.add_argument("head", help="the revision to judge (HEAD)")
    ab.add_argument("suite", help="suite folder or .toml file (inside the repo: each side's)")
    for flag in ("--model", "--dataset", "--precision", "--device"):
        ab.add_argument(flag, type=csv_list, default=[], help="only these, comma-separated")
    ab.add_argument("--seeds", help="only these seeds: 0,1,2 or 0-2")
    ab.add_argument(
        "--rounds", type=int, default=6, help="rounds (default 6; 6 or more for a 95 %% interval)"
    )
    ab.add_argument(
        "--metric", type=csv_list, default=[], help="timings to pair (default samples_per_second)"
    )
    ab.add_argument(
        "--threshold",
        action="append",
        default=[],
        metavar="METRIC=VALUE",
        help="as for compare; repeatable",
    )
    ab.add_argument("--format", choices=("table", "markdown", "json"), default="table")
    ab.add_argument("--out", type=Path, help="folder for the rounds (default results/ab-…)")
    ab.add_argument(
        "--env",
        choices=("auto", "reuse", "venv"),
        default="auto",
        help="reuse this environment, or a venv per revision (default: auto)",
    )
    ab.add_argument("--torch", help="torch requirement for --env venv (default: this torch)")
    ab.add_argument("--keep-worktrees", action="store_true", help="leave the checkouts")


def run(args: argparse.Namespace) -> int:
    """Dispatch ``history add``, ``history show`` and ``ab``."""
    if args.command == "ab":
        return ab(args)
    if args.history_command == "add":
        return history_add(args)
    return history_show(args)


def history_add(args: argparse.Namespace) -> int:
    """Record each result set; one line per set."""
    from benchkit.history.store import add, default_path, open_store

    db = args.db or default_path()
    added = 0
    with open_store(db) as store:
        for source in args.results:
            outcome = add(store, source, commit=args.commit, repo=args.repo)
            added += outcome.added
            print(outcome.describe())
        total = store.query("SELECT count(*) AS n FROM result_sets")["n"][0]
    print(f"history {db}: {added} added, {total} result sets in all")
    return EXIT_OK


def history_show(args: argparse.Namespace) -> int:
    """Series and steps of one metric; the report folder's files."""
    from benchkit.history.series import build_series, select
    from benchkit.history.show import HistoryView, render_markdown, render_text, write
    from benchkit.history.store import default_path, load

    db = args.db or default_path()
    filters = {
        "model": args.model,
        "dataset": args.dataset,
        "precision": args.precision,
        "device": args.device,
    }
    rows = select(load(db), args.metric, filters, args.suite, args.include_dirty)
    view = HistoryView(str(db), args.metric, build_series(rows, args.metric))
    out = args.out or Path("results") / f"history-{time.strftime('%Y%m%d-%H%M%S')}"
    index = write(view, out)
    if args.format == "markdown":
        sys.stdout.write(render_markdown(view))
        print(f"history: {index} ({index.with_suffix('.html')})", file=sys.stderr)
    else:
        sys.stdout.write(render_text(view))
        print(f"\nwritten: {index}, {index.with_suffix('.html')} and a PNG per series")
    return EXIT_OK


def _suite_argument(suite: str, repo: Path) -> str:
    """A suite path inside the repository, relative to its root (so each worktree uses its
    own); anything else as an absolute path."""
    path = (Path.cwd() / suite).resolve()
    try:
        return str(path.relative_to(repo.resolve()))
    except ValueError:
        return str(path)


def _filters(args: argparse.Namespace) -> list[str]:
    out: list[str] = []
    for flag in ("model", "dataset", "precision", "device"):
        values = getattr(args, flag)
        if values:
            out += [f"--{flag}", ",".join(values)]
    if args.seeds:
        out += ["--seeds", args.seeds]
    return out


def ab(args: argparse.Namespace) -> int:
    """Check out BASE and HEAD, run the rounds, compare them in pairs."""
    from benchkit.compare import parse_threshold_args
    from benchkit.history import ab as runner
    from benchkit.history.ab_report import analyse, describe_out, render

    runner.rounds_ok(args.rounds)
    thresholds = parse_threshold_args(args.threshold)
    repo = runner.repository_root(Path.cwd())
    base_sha, head_sha = runner.resolve(repo, args.base), runner.resolve(repo, args.head)
    out = args.out or runner.default_out(base_sha, head_sha)
    if (out / "ab.json").exists():
        raise BenchkitError(f"{out} already holds an A/B run; pass another --out")
    out.mkdir(parents=True, exist_ok=True)
    suite = _suite_argument(args.suite, repo)
    with (
        runner.terminate_as_interrupt(),
        runner.worktrees(repo, [base_sha, head_sha], keep=args.keep_worktrees) as trees,
    ):
        mode, why = runner.choose_environment(repo, base_sha, head_sha, trees[1], args.env)
        revisions = []
        for side, rev, sha, tree in zip(
            runner.SIDES, (args.base, args.head), (base_sha, head_sha), trees, strict=True
        ):
            revision = runner.Revision(side, rev, sha, tree)
            if mode == "reuse":
                revision.env = runner.shim_environment(tree, tree.parent / f"shim-{side}")
            else:
                print(f"benchkit ab: making a venv for {side} ({rev}) …", file=sys.stderr)
                revision.python = runner.make_venv(
                    tree,
                    tree.parent / f"venv-{side}",
                    args.torch or runner.default_torch(),
                    out / "logs" / f"venv-{side}.log",
                )
            revisions.append(revision)
        plan = runner.Plan(repo, *revisions, suite, _filters(args), args.rounds, out, mode, why)
        print(
            f"benchkit ab: {args.base} ({base_sha[:10]}) vs {args.head} ({head_sha[:10]}), "
            f"{suite}, {args.rounds} round{'s' * (args.rounds != 1)}; environment: {mode} "
            f"({why})",
            file=sys.stderr,
        )
        finished, interrupted = runner.execute(plan)
    base_label = f"{args.base} ({base_sha[:10]})"
    head_label = f"{args.head} ({head_sha[:10]})"
    if interrupted and not finished:
        print(
            f"benchkit ab: interrupted before a round finished; {describe_out(out)}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    comparison = analyse(out, finished, base_label, head_label, args.metric, thresholds)
    comparison.notes.insert(0, f"environment: {mode} ({why}); {describe_out(out)}")
    if interrupted:
        comparison.interrupted = True
        comparison.notes.insert(0, f"interrupted: {len(finished)} of {args.rounds} rounds finished")
    sys.stdout.write(render(comparison, args.format))
    return comparison.exit_code
