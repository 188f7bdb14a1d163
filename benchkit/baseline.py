"""Committed baselines: the reference result sets CI compares against.

``results/baselines/baselines.toml`` says how each baseline is made::

    [convergence-cpu]
    suite = "suites/convergence"
    args = ["--device", "cpu", "--threads", "1"]   # passed to `benchkit run`
    keep = ["results.csv", "run.json", "criteria.csv", "claims.csv", "references.csv"]

``benchkit baseline update [NAME ...]`` re-runs each suite in a fresh process (so memory and
timing figures are measured as CI measures them) and replaces the baseline's folder with the
files named in ``keep`` (by default not ``curves.csv``, ``series.csv`` or ``trace.csv``:
megabytes of per-epoch rows whose timings change on every run). A suite run that ends in an
error leaves the old baseline in place. Commit the result deliberately: it is what CI gates on.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from benchkit.errors import BenchkitError
from benchkit.resultset import count_runs, keep_only, replace_result_set

DEFAULT_ROOT = Path("results") / "baselines"
MANIFEST = "baselines.toml"
_KEYS = {"suite", "args", "keep"}
DEFAULT_KEEP = ["results.csv", "run.json", "criteria.csv", "claims.csv", "references.csv"]


@dataclass
class Baseline:
    """One entry of the manifest."""

    name: str
    folder: Path
    suite: str
    args: list[str] = field(default_factory=list)
    keep: list[str] = field(default_factory=lambda: list(DEFAULT_KEEP))

    def command(self, out: Path) -> list[str]:
        """The ``benchkit run`` command line that regenerates it into ``out``."""
        return ["benchkit", "run", self.suite, *self.args, "--quiet", "--out", str(out)]


def read_manifest(root: Path = DEFAULT_ROOT) -> list[Baseline]:
    """The baselines listed in ``root/baselines.toml``.

    :raises BenchkitError: the manifest is missing or malformed.
    """
    path = root / MANIFEST
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BenchkitError(
            f"{path} not found: run from the repository root, or pass --root"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise BenchkitError(f"{path}: not valid TOML: {exc}") from None
    baselines = []
    for name, table in doc.items():
        if not isinstance(table, dict):
            raise BenchkitError(f"{path}: [{name}] must be a table")
        unknown = set(table) - _KEYS
        if unknown:
            raise BenchkitError(
                f"{path}: [{name}]: unknown key {sorted(unknown)[0]!r}; "
                f"valid keys: {', '.join(sorted(_KEYS))}"
            )
        suite, args = table.get("suite"), table.get("args", [])
        if not isinstance(suite, str) or not suite:
            raise BenchkitError(f"{path}: [{name}].suite: expected the suite's path")
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise BenchkitError(f"{path}: [{name}].args: expected an array of strings")
        keep = table.get("keep", DEFAULT_KEEP)
        if not isinstance(keep, list) or not all(isinstance(k, str) for k in keep):
            raise BenchkitError(f"{path}: [{name}].keep: expected an array of file names")
        baselines.append(Baseline(name, root / name, suite, list(args), list(keep)))
    return baselines


def describe(baseline: Baseline) -> str:
    """One line: name, the command that makes it, and what is on disk."""
    held = count_runs(baseline.folder)
    runs = "missing" if held is None else f"{held} runs"
    command = " ".join(baseline.command(baseline.folder)[:-3])
    return f"{baseline.name}: {command}  [{baseline.folder}: {runs}]"


def update(root: Path = DEFAULT_ROOT, names: list[str] | None = None) -> int:
    """Regenerate the named baselines (all when ``names`` is empty); returns the exit code:
    0 when every baseline was replaced, 1 when a suite run failed (its baseline is kept).

    :raises BenchkitError: an unknown name, or a malformed manifest.
    """
    baselines = read_manifest(root)
    known = {b.name: b for b in baselines}
    for name in names or []:
        if name not in known:
            raise BenchkitError(
                f"no baseline {name!r} in {root / MANIFEST}; known: {', '.join(known) or 'none'}"
            )
    code = 0
    for baseline in [known[n] for n in names] if names else baselines:
        code = max(code, _update_one(baseline))
    return code


def _update_one(baseline: Baseline) -> int:
    staging = baseline.folder.with_name(f".{baseline.name}.new")
    shutil.rmtree(staging, ignore_errors=True)
    command = baseline.command(staging)
    print(f"baseline {baseline.name}: {' '.join(command)}", file=sys.stderr)
    # A fresh process, as CI runs it: memory figures depend on what the process did before.
    result = subprocess.run([sys.executable, "-m", "benchkit.cli", *command[1:]], check=False)
    if result.returncode != 0 or not (staging / "results.csv").is_file():
        shutil.rmtree(staging, ignore_errors=True)
        print(
            f"baseline {baseline.name}: not updated (benchkit run exited {result.returncode})",
            file=sys.stderr,
        )
        return 1
    keep_only(staging, baseline.keep)
    replace_result_set(staging, baseline.folder)
    print(f"baseline {baseline.name}: updated {baseline.folder}", file=sys.stderr)
    return 0
