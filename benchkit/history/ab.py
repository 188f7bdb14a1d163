"""``benchkit ab BASE HEAD SUITE``: run two revisions interleaved on this machine and compare
them round by round.

Comparing a pull request with a baseline made on another day mostly measures the machine:
shared CI runners drift by more than the changes worth catching. Here both revisions run in
the same job, alternately, and each round's HEAD/BASE ratio cancels whatever the machine was
doing during that round (:mod:`benchkit.history.paired`).

How a revision is run
---------------------
Both revisions are checked out with ``git worktree add --detach`` into a temporary folder, and
each round runs ``benchkit run SUITE --threads 1 --quiet`` *of that revision* as a
subprocess, in its worktree, with the filters given. A ``SUITE`` path inside the repository
is taken from each revision's own tree (a suite the change edits runs as each side has it).
BASE needs no ``ab`` command of its own: it only has to have ``benchkit run``.

Which Python runs it (``--env``):

- ``reuse`` (what ``auto`` picks when it can): the current environment's interpreter and
  packages, with each revision's own source put first on ``PYTHONPATH`` (links to its
  ``benchkit/`` and ``plugins/`` as the packages ``benchkit`` and ``benchkit_plugins``, read
  from its ``pyproject.toml``). So each side runs its own core, plugins and suites, and
  shares torch, numba and pandas. This is sound only when installing the revisions would give
  the same environment: ``auto`` picks it when ``pyproject.toml`` (dependencies, entry
  points, packages) is identical in BASE and HEAD, and the installed benchkit declares the
  same entry points (plugins are found through them) and has every dependency installed;
- ``venv`` (what ``auto`` picks otherwise, e.g. a change that adds a plugin entry point or a
  dependency): a fresh virtual environment per revision in the temporary folder, with
  ``pip install TORCH -e WORKTREE`` (``--torch``, default ``torch==`` the running torch's
  version: the same build for both sides). This takes minutes per revision (pip installs
  every dependency).

The output folder
-----------------
``OUT/round-NN-base`` and ``OUT/round-NN-head`` are the rounds' result sets (ordinary
result sets: ``benchkit compare`` and ``history add`` read them), ``OUT/logs/`` what each
run printed, ``OUT/ab.json`` the revisions, the environment mode and the finished rounds,
rewritten after every round. Rounds alternate which side runs first (BASE then HEAD in odd
rounds, HEAD then BASE in even ones) so a machine that slows down or speeds up steadily
favours neither side. Ctrl-C (or SIGTERM, as CI sends when it cancels a job) stops after
cleaning up: the finished rounds are kept and compared; the round that was cut short is not
used (its runs stay in its folder).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchkit.errors import BenchkitError

SIDES = ("base", "head")
PACKAGING_FILES = ("pyproject.toml", "setup.py", "setup.cfg")
# Entry-point groups the installed benchkit must declare as the revisions do.
ENTRY_POINT_GROUPS = ("benchkit", "pytest11")
# What a round runs in the revision's interpreter: its own `benchkit run`, with Ctrl-C
# handled even where ab was started with SIGINT ignored (a background job of a script).
RUN_SNIPPET = (
    "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from benchkit.cli import main; sys.exit(main(sys.argv[1:]))"
)


@dataclass
class Revision:
    """One side: the revision as given, its commit, its worktree and how to run it."""

    side: str
    rev: str
    sha: str
    tree: Path
    python: str = sys.executable
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Plan:
    """What ``benchkit ab`` will do."""

    repo: Path
    base: Revision
    head: Revision
    suite: str
    filters: list[str]
    rounds: int
    out: Path
    mode: str
    reason: str


def git(repo: Path, *args: str, check: bool = True) -> str:
    """Run git in ``repo``; its stdout, stripped.

    :raises BenchkitError: git fails (with ``check``), naming the command and git's message.
    """
    try:
        out = subprocess.run(
            ["git", *args], cwd=repo, capture_output=True, text=True, timeout=300, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise BenchkitError(f"cannot run git: {exc}") from None
    if check and out.returncode != 0:
        message = (out.stderr.strip() or out.stdout.strip()).splitlines()
        raise BenchkitError(f"git {' '.join(args)}: {message[-1] if message else 'failed'}")
    return out.stdout.strip()


def repository_root(where: Path) -> Path:
    """The top of the git working tree around ``where``.

    :raises BenchkitError: not inside a git repository.
    """
    try:
        return Path(git(where, "rev-parse", "--show-toplevel"))
    except BenchkitError:
        raise BenchkitError(
            f"{where} is not inside a git repository; `benchkit ab` checks out revisions of one"
        ) from None


def resolve(repo: Path, rev: str) -> str:
    """The full commit hash of ``rev``.

    :raises BenchkitError: git does not know ``rev``.
    """
    sha = git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
    if not sha:
        raise BenchkitError(f"{rev!r} is not a commit of {repo} (try `git fetch`, or a hash)")
    return sha


def _pyproject(tree: Path) -> dict[str, Any]:
    path = tree / "pyproject.toml"
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def _declared_entry_points(project: dict[str, Any]) -> dict[str, dict[str, str]]:
    table = (project.get("project") or {}).get("entry-points") or {}
    return {g: dict(table.get(g) or {}) for g in ENTRY_POINT_GROUPS}


def _installed_entry_points() -> dict[str, dict[str, str]] | None:
    try:
        dist = importlib.metadata.distribution("benchkit")
    except importlib.metadata.PackageNotFoundError:
        return None
    out: dict[str, dict[str, str]] = {g: {} for g in ENTRY_POINT_GROUPS}
    for ep in dist.entry_points:
        if ep.group in out:
            out[ep.group][ep.name] = ep.value
    return out


def _requirement_name(spec: str) -> str:
    name = spec.split(";")[0].strip()
    for stop in "<>=!~[ (":
        name = name.split(stop)[0]
    return name.strip()


def _missing_dependencies(project: dict[str, Any]) -> list[str]:
    missing = []
    for spec in (project.get("project") or {}).get("dependencies") or []:
        name = _requirement_name(str(spec))
        try:
            importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
    return missing


def choose_environment(repo: Path, base: str, head: str, tree: Path, mode: str) -> tuple[str, str]:
    """``("reuse" | "venv", why)`` for ``--env mode`` (``auto``, ``reuse`` or ``venv``).

    :raises BenchkitError: ``reuse`` was asked for and cannot work (no benchkit installed
        here).
    """
    if mode == "venv":
        return "venv", "asked for (--env venv)"
    changed = git(repo, "diff", "--name-only", base, head, "--", *PACKAGING_FILES)
    project = _pyproject(tree)
    installed = _installed_entry_points()
    if mode == "reuse":
        if installed is None:
            raise BenchkitError("--env reuse: benchkit is not installed in this environment")
        return "reuse", "asked for (--env reuse)"
    if changed:
        return "venv", f"{', '.join(changed.split())} differs between the revisions"
    if installed is None:
        return "venv", "benchkit is not installed in this environment"
    if installed != _declared_entry_points(project):
        return "venv", (
            "the installed benchkit declares other entry points than the revisions' "
            "pyproject.toml (reinstall with `pip install -e .`, or let ab make venvs)"
        )
    missing = _missing_dependencies(project)
    if missing:
        return "venv", f"dependencies missing here: {', '.join(missing)}"
    return "reuse", "pyproject.toml is the same in both revisions and matches this environment"


def _package_dirs(tree: Path) -> dict[str, Path]:
    """The top-level packages a revision installs, and the folder each comes from."""
    tool = (_pyproject(tree).get("tool") or {}).get("setuptools") or {}
    mapping = tool.get("package-dir") or {}
    names = [p for p in tool.get("packages") or [] if "." not in str(p)] or ["benchkit"]
    return {name: tree / str(mapping.get(name, name)) for name in names}


def shim_environment(tree: Path, shim: Path) -> dict[str, str]:
    """Environment variables that make the current interpreter import the revision at
    ``tree``: a folder of links (package name → the revision's source folder) first on
    ``PYTHONPATH``."""
    shim.mkdir(parents=True, exist_ok=True)
    for name, source in _package_dirs(tree).items():
        link = shim / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(source, target_is_directory=True)
    path = os.pathsep.join(x for x in (str(shim), os.environ.get("PYTHONPATH", "")) if x)
    return {"PYTHONPATH": path}


def default_torch() -> str:
    """``torch==VERSION`` of the running torch, without its local build tag."""
    version = importlib.metadata.version("torch").split("+")[0]
    return f"torch=={version}"


def make_venv(tree: Path, where: Path, torch_spec: str, log: Path) -> str:
    """A virtual environment at ``where`` with ``torch_spec`` and the revision at ``tree``
    installed (editable); returns its interpreter.

    :raises BenchkitError: venv or pip failed (the tail of its output is in ``log``).
    """
    python = where / "bin" / "python"
    steps = [
        [sys.executable, "-m", "venv", str(where)],
        [str(python), "-m", "pip", "install", "--quiet", torch_spec, "-e", str(tree)],
    ]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as out:
        for cmd in steps:
            out.write(f"$ {' '.join(cmd)}\n")
            out.flush()
            done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False)
            if done.returncode != 0:
                raise BenchkitError(
                    f"making the environment for {tree.name} failed: {' '.join(cmd[:4])} … "
                    f"exited {done.returncode}; see {log}"
                )
    return str(python)


@contextlib.contextmanager
def worktrees(repo: Path, shas: Sequence[str], keep: bool = False) -> Iterator[list[Path]]:
    """Check out each commit into a temporary worktree; remove them afterwards (also on
    Ctrl-C), unless ``keep``."""
    work = Path(tempfile.mkdtemp(prefix="benchkit-ab-"))
    trees: list[Path] = []
    try:
        for side, sha in zip(SIDES, shas, strict=True):
            tree = work / side
            git(repo, "worktree", "add", "--detach", "--quiet", str(tree), sha)
            trees.append(tree)
        yield trees
    finally:
        if not keep:
            for tree in trees:
                git(repo, "worktree", "remove", "--force", str(tree), check=False)
            shutil.rmtree(work, ignore_errors=True)
            git(repo, "worktree", "prune", check=False)


def round_order(number: int) -> tuple[str, str]:
    """Which side runs first in round ``number`` (1-based): BASE in odd rounds, HEAD in even."""
    return SIDES if number % 2 == 1 else (SIDES[1], SIDES[0])


def round_folder(out: Path, number: int, side: str) -> Path:
    """Where round ``number``'s result set of ``side`` is written."""
    return out / f"round-{number:02d}-{side}"


def run_side(revision: Revision, plan: Plan, number: int) -> Path:
    """Run the suite once for ``revision``; returns its result set folder.

    :raises BenchkitError: the run could not proceed (exit 2 or a crash), with its log.
    :raises KeyboardInterrupt: Ctrl-C; the child is given time to keep its finished runs.
    """
    folder = round_folder(plan.out, number, revision.side)
    log = plan.out / "logs" / f"{folder.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        revision.python,
        "-c",
        RUN_SNIPPET,
        "run",
        plan.suite,
        "--out",
        str(folder.resolve()),
        "--threads",
        "1",
        "--quiet",
        *plan.filters,
    ]
    env = {**os.environ, **revision.env}
    with log.open("w", encoding="utf-8") as out:
        out.write(f"$ (cd {revision.tree}) {' '.join(cmd)}\n")
        out.flush()
        child = subprocess.Popen(cmd, cwd=revision.tree, env=env, stdout=out, stderr=out)
        try:
            code = child.wait()
        except KeyboardInterrupt:
            _stop(child)
            raise
    if code in (130, -signal.SIGINT):
        raise KeyboardInterrupt
    if code not in (0, 1) or not (folder / "results.csv").is_file():
        tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        last = tail[-1] if tail else "no output"
        raise BenchkitError(
            f"round {number}: `benchkit run` of {revision.side} ({revision.rev}) exited {code}: "
            f"{last} (log: {log})"
        )
    return folder


def _stop(child: subprocess.Popen) -> None:
    """Stop a round's ``benchkit run`` so that it keeps the runs it finished: a Ctrl-C at a
    terminal reached it too, so give it a moment; otherwise (SIGTERM to ``ab`` alone, as CI
    cancels a job) send it SIGINT; kill it if it does not stop."""
    for signal_first in (None, signal.SIGINT):
        if signal_first is not None and child.poll() is None:
            child.send_signal(signal_first)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=2 if signal_first is None else 30)
    if child.poll() is None:
        child.kill()
        child.wait()


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C while the rounds run, so the worktrees are removed and the
    finished rounds compared."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def write_manifest(plan: Plan, finished: list[int], state: str) -> None:
    """``OUT/ab.json``: the revisions, the environment mode and the finished rounds."""
    doc = {
        "base": {"rev": plan.base.rev, "commit": plan.base.sha},
        "head": {"rev": plan.head.rev, "commit": plan.head.sha},
        "suite": plan.suite,
        "filters": plan.filters,
        "rounds_planned": plan.rounds,
        "rounds_finished": finished,
        "environment": {"mode": plan.mode, "why": plan.reason},
        "state": state,
        "updated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    text = json.dumps(doc, indent=2) + "\n"
    tmp = plan.out / "ab.json.tmp"
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(plan.out / "ab.json")


def execute(plan: Plan, progress: bool = True) -> tuple[list[int], bool]:
    """Run the rounds; returns the finished rounds and whether Ctrl-C cut the run short."""
    finished: list[int] = []
    write_manifest(plan, finished, "running")
    sides = {"base": plan.base, "head": plan.head}
    try:
        for number in range(1, plan.rounds + 1):
            for side in round_order(number):
                started = time.perf_counter()
                if progress:
                    print(
                        f"benchkit ab: round {number}/{plan.rounds}: {side} ({sides[side].rev}) …",
                        file=sys.stderr,
                        flush=True,
                    )
                run_side(sides[side], plan, number)
                if progress:
                    print(
                        f"benchkit ab: round {number}/{plan.rounds}: {side} done in "
                        f"{time.perf_counter() - started:.1f} s",
                        file=sys.stderr,
                        flush=True,
                    )
            finished.append(number)
            write_manifest(plan, finished, "running")
    except KeyboardInterrupt:
        write_manifest(plan, finished, "interrupted")
        return finished, True
    write_manifest(plan, finished, "finished")
    return finished, False


def default_out(base: str, head: str) -> Path:
    """``results/ab-BASE-HEAD-TIMESTAMP`` (short hashes)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("results") / f"ab-{base[:7]}-{head[:7]}-{stamp}"


def rounds_ok(rounds: int) -> None:
    """:raises BenchkitError: fewer than one round."""
    if rounds < 1:
        raise BenchkitError(f"--rounds must be at least 1, got {rounds}")
