"""Mutation testing of benchkit's measuring core, with the score per module.

    python tools/mutation.py run [MODULE ...] [--max-children N] [--fail-under PCT] [--not-killed]
    python tools/mutation.py score [MODULE ...] [--survivors] [--fail-under PCT]

``run`` runs ``mutmut run`` on the mutants of the named modules (all of :data:`SCOPE` by
default) and then prints the scores; ``score`` prints them from the last run's records in
``mutants/``; ``run --not-killed`` re-runs only the mutants the last run did not kill (while
strengthening tests). ``tox -e mutation`` calls ``run``. The files mutmut mutates, and which
tests it runs, are configured in ``pyproject.toml`` under ``[tool.mutmut]``; this file says
which of their functions are in scope: whole modules (``benchkit/run_result.py`` holds the
curve summaries), except that the built-in plugins contribute only their ``evaluate``
functions (the seed workloads' metrics) and the helpers those call.

A mutant counts as killed when a test failed (or timed out) with it in place. Every other
outcome (survived, no tests, suspicious, not checked) counts against the score, so the score
is killed / all mutants in scope.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import subprocess
import sys
from pathlib import Path

#: Module label → mutmut mutant-name patterns of the functions in scope.
SCOPE: dict[str, list[str]] = {
    "run_result (curve summaries)": ["benchkit.run_result.*"],
    "runner": ["benchkit.runner.*"],
    "compare": ["benchkit.compare.*"],
    "claims": ["benchkit.claims.*"],
    "criteria": ["benchkit.criteria.*"],
    "stats": ["benchkit.stats.*"],
    "single_neuron (evaluate)": ["plugins.single_neuron.x_learned_parameters__mutmut_*"],
    "sine_mlp (evaluate)": ["plugins.sine_mlp.x_rollout__mutmut_*"],
    "rnn (evaluate)": ["plugins.rnn.x_forecast_metrics__mutmut_*"],
    "lstm_seq2seq (evaluate)": [
        "plugins.lstm_seq2seq.x_quality__mutmut_*",
        "plugins.lstm_seq2seq.x_greedy_decode__mutmut_*",
        "plugins.lstm_seq2seq.x_references__mutmut_*",
    ],
}
KILLED_CODES = {1, 3, 36, 24, -24, 152, 255}  # mutmut's killed and timeout exit codes
SURVIVED_CODE = 0


def _select(names: list[str]) -> dict[str, list[str]]:
    if not names:
        return SCOPE
    chosen = {}
    for name in names:
        hits = [label for label in SCOPE if label.split()[0] == name or label == name]
        if not hits:
            valid = ", ".join(label.split()[0] for label in SCOPE)
            raise SystemExit(f"mutation: unknown module {name!r}; valid: {valid}")
        chosen.update({label: SCOPE[label] for label in hits})
    return chosen


def _records(root: Path) -> dict[str, int | None]:
    """Every mutant's exit code, from mutmut's ``*.meta`` files under ``mutants/``."""
    codes: dict[str, int | None] = {}
    for meta in sorted((root / "mutants").rglob("*.py.meta")):
        codes.update(json.loads(meta.read_text())["exit_code_by_key"])
    return codes


def scores(
    scope: dict[str, list[str]], root: Path = Path(".")
) -> list[tuple[str, int, int, list[str]]]:
    """Per module: (label, killed, total, surviving mutant names)."""
    codes = _records(root)
    out = []
    for label, patterns in scope.items():
        names = [n for n in codes if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
        killed = [n for n in names if codes[n] in KILLED_CODES]
        alive = sorted(set(names) - set(killed))
        out.append((label, len(killed), len(names), alive))
    return out


def print_scores(
    scope: dict[str, list[str]], survivors: bool, fail_under: float | None, root: Path = Path(".")
) -> int:
    """Print the table; returns 1 when a module scored under ``fail_under`` or has no mutants."""
    rows = scores(scope, root)
    width = max(len(label) for label, *_ in rows)
    print(f"{'module':<{width}}  killed / total   score")
    status = 0
    for label, killed, total, alive in rows:
        pct = 100.0 * killed / total if total else 0.0
        flag = ""
        if fail_under is not None and (not total or pct < fail_under):
            flag, status = f"  < {fail_under:g} %", 1
        print(f"{label:<{width}}  {killed:>6} / {total:<6} {pct:6.1f} %{flag}")
        if survivors:
            codes = _records(root)
            for name in alive:
                print(f"    {name}  (exit {codes[name]})")
    return status


def main(argv: list[str] | None = None) -> int:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="tools/mutation.py", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["run", "score"])
    parser.add_argument("modules", nargs="*", help="module labels (default: all)")
    parser.add_argument("--max-children", type=int, default=2)
    parser.add_argument("--survivors", action="store_true", help="list the mutants not killed")
    parser.add_argument("--fail-under", type=float, default=None, metavar="PCT")
    parser.add_argument(
        "--not-killed", action="store_true", help="run: only the mutants the last run left alive"
    )
    args = parser.parse_args(argv)
    scope = _select(args.modules)
    if args.command == "run":
        patterns = [p for ps in scope.values() for p in ps]
        if args.not_killed:
            patterns = [name for *_, alive in scores(scope) for name in alive]
            if not patterns:
                return print_scores(scope, args.survivors, args.fail_under)
        cmd = [sys.executable, "-m", "mutmut", "run", "--max-children", str(args.max_children)]
        code = subprocess.call([*cmd, *patterns])
        if code:
            return code
    return print_scores(scope, args.survivors, args.fail_under)


if __name__ == "__main__":
    sys.exit(main())
