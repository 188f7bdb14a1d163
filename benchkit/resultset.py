"""Result sets: the one module that owns their layout, writes them and reads them back.

A result set is a folder, the contract other tools and CI read:

- ``results.csv``: one row per run (:data:`RESULT_COLUMNS`, then each workload's own metrics)
  for a convergence suite; one row per case and kind (:data:`THROUGHPUT_COLUMNS`,
  :data:`MEMORY_COLUMNS`) for a throughput or memory suite;
- ``curves.csv``: one row per run and epoch (:data:`CURVE_COLUMNS`), joinable on ``run_id``;
  ``lr`` is the epoch's learning rate when the recipe has a schedule, empty otherwise;
- the optional per-run tables :data:`EXTRA_TABLES` (``criteria.csv``, ``trace.csv``,
  ``series.csv``) and per-suite ones (``claims.csv``, ``crossover.csv``; a throughput suite's
  ``benchmark.json`` from pytest-benchmark);
- ``run.json``: one shape for every kind of suite (:meth:`ResultSetWriter.meta`): schema
  version, kind, the suite (path, hash, text), the environment, the plugins, and whether the
  set is finished or was interrupted, with how many runs it holds.

:class:`ResultSetWriter` is the only writer: every file goes to a temporary file in the same
folder that is renamed into place, so a crash or Ctrl-C leaves either the previous complete
table or the new one, never half of one. :func:`load` reads a folder (or a pytest-benchmark
JSON file) into a :class:`ResultSet` for ``benchkit compare`` and ``benchkit report``;
anything a user can get wrong raises :class:`~benchkit.errors.BenchkitError` naming the path.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import math
import os
import shutil
import tempfile
import time
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchkit.errors import BenchkitError, OutputError
from benchkit.run_result import RunResult, epoch_throughputs

SCHEMA_VERSION = 1

KEY_COLUMNS = ["model", "dataset", "precision", "device", "seed", "variant", "mode"]
#: What a key column holds in a result set written before it existed.
KEY_DEFAULTS = {"mode": "eager"}
#: Where a run ran and the fingerprint of the process that ran it (benchkit.executors): labels
#: for compare, never metrics. ``env_*`` override run.json's environment for their row.
PLACEMENT_COLUMNS = [
    "worker",
    "worker_host",
    "host_runs",
    "timings_shared",
    "env_torch",
    "env_cpu",
    "env_cpu_capability",
    "env_torch_threads",
]
#: ``env_*`` column → the run.json environment key it stands for in a row's fingerprint.
ROW_ENVIRONMENT_COLUMNS = {
    "env_torch": "torch",
    "env_cpu": "cpu",
    "env_cpu_capability": "cpu_capability",
    "env_torch_threads": "torch_threads",
}
RESULT_COLUMNS = [
    "run_id",
    "model",
    "dataset",
    "precision",
    "device",
    "device_name",
    "seed",
    "variant",
    "mode",
    "status",
    "status_detail",
    "diverged_epoch",
    "nonfinite_loss",
    "grads_nonfinite_epoch",
    "params_nonfinite_epoch",
    "epochs",
    "target_loss",
    "final_loss",
    "best_loss",
    "converged_epoch",
    "zero_loss_epoch",
    "train_seconds",
    "mode_setup_seconds",
    "time_to_target_seconds",
    "samples_per_second",
    "samples_per_second_iqr",
    "contended",
    "other_cpu_load",
    "peak_memory_bytes",
    "params",
    "train_samples",
    "batch_size",
    "optimizer",
    "lr",
    *PLACEMENT_COLUMNS,
]
# lr: the epoch's learning rate, written when the recipe has a schedule (empty otherwise)
CURVE_COLUMNS = ["run_id", *KEY_COLUMNS, "epoch", "loss", "valid_loss", "seconds", "lr"]
#: The leading columns of every per-case measurement table (throughput, memory).
MEASUREMENT_COLUMNS = [
    "run_id",
    *KEY_COLUMNS,
    "kind",
    "device_name",
    "status",
    "status_detail",
    "batch_size",
    "params",
]
THROUGHPUT_COLUMNS = [
    *MEASUREMENT_COLUMNS,
    "step_median_seconds",
    "step_iqr_seconds",
    "step_min_seconds",
    "rounds",
    "samples_per_second",
    "flops_per_call",
    "flops_method",
    "achieved_flops_per_second",
    "peak_flops_per_second",
    "peak_fraction",
    "matmul_dtype",
    # the mode's one-off work, how the step was timed, and the roofline (benchkit.roofline)
    "mode_setup_seconds",
    "calls_per_block",
    "bytes_per_call",
    "arithmetic_intensity",
    "memory_bandwidth_bytes_per_second",
    "bound",
    "peak_note",
]
MEMORY_COLUMNS = [*MEASUREMENT_COLUMNS, "peak_memory_bytes", "method"]
#: Columns that hold words; every other column of a results table holds numbers.
TEXT_COLUMNS = (
    "run_id",
    "model",
    "dataset",
    "precision",
    "device",
    "variant",
    "device_name",
    "status",
    "status_detail",
    "nonfinite_loss",
    "optimizer",
    "contended",
    "worker",
    "worker_host",
    "timings_shared",
    "env_torch",
    "env_cpu",
    "env_cpu_capability",
    "kind",
    "flops_method",
    "matmul_dtype",
    "method",
    "mode",
    "bound",
    "peak_note",
    "top_operators",
)
#: Columns known to hold numbers: a cell there that is not one is an unreadable value.
NUMERIC_COLUMNS = frozenset(
    c
    for c in [*RESULT_COLUMNS, *THROUGHPUT_COLUMNS, *MEMORY_COLUMNS]
    if c not in TEXT_COLUMNS and c != "seed"
)
# Integer-valued columns that may be empty: written without a trailing ".0".
_NULLABLE_INT = [
    "diverged_epoch",
    "grads_nonfinite_epoch",
    "params_nonfinite_epoch",
    "converged_epoch",
    "zero_loss_epoch",
    "peak_memory_bytes",
    "params",
    "train_samples",
    "batch_size",
    "epochs",
    "host_runs",
    "env_torch_threads",
]


def result_row(result: RunResult) -> dict[str, Any]:
    """The ``results.csv`` row: the fixed columns, then the metrics."""
    row = {c: getattr(result, c) for c in RESULT_COLUMNS}
    row.update(result.metrics)
    return row


def curve_rows(result: RunResult) -> list[dict[str, Any]]:
    """The ``curves.csv`` rows of this run."""
    keys = {c: getattr(result, c) for c in KEY_COLUMNS}
    rows = []
    for epoch, loss in enumerate(result.curve):
        rows.append(
            {
                "run_id": result.run_id,
                **keys,
                "epoch": epoch,
                "loss": loss,
                "valid_loss": result.valid_curve[epoch]
                if epoch < len(result.valid_curve)
                else None,
                "seconds": result.epoch_seconds[epoch]
                if epoch < len(result.epoch_seconds)
                else None,
                "lr": result.lr_curve[epoch] if epoch < len(result.lr_curve) else None,
            }
        )
    return rows


def csv_cell(value: Any) -> str:
    """One value as ``DataFrame.to_csv`` writes it: empty for ``None`` and NaN, ``True`` /
    ``False``, integers plainly, floats as their shortest exact form (``repr``)."""
    kind = type(value)
    if kind is float:
        return repr(value) if value == value else ""  # NaN is written empty
    if kind is str:
        return value
    if kind is int:
        return str(value)
    if value is None or value is pd.NA:
        return ""
    if isinstance(value, bool | np.bool_):
        return "True" if value else "False"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        number = float(value)
        return "" if math.isnan(number) else repr(number)
    return str(value)


def csv_text(
    columns: list[str],
    rows: Iterable[Iterable[Any]],
    header: bool = True,
    formatted: bool = False,
) -> str:
    """CSV text of ``rows`` (sequences in ``columns``' order), formatted as ``to_csv`` would:
    the writer appends a run's rows this way, without building a DataFrame for them.

    :param formatted: the cells are :func:`csv_cell` text already.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(columns)
    if formatted:
        writer.writerows(rows)
    else:
        cell = csv_cell
        writer.writerows([cell(v) for v in row] for row in rows)
    return out.getvalue()


def _keys(result: RunResult) -> list[str]:
    return [csv_cell(result.run_id), *(csv_cell(getattr(result, c)) for c in KEY_COLUMNS)]


def _curve_table(result: RunResult) -> tuple[list[str], list[list[str]]]:
    keys = _keys(result)
    curve, valid, seconds = result.curve, result.valid_curve, result.epoch_seconds
    lrs = result.lr_curve
    cell = csv_cell
    rows = [
        [
            *keys,
            str(epoch),
            cell(curve[epoch]),
            cell(valid[epoch]) if epoch < len(valid) else "",
            cell(seconds[epoch]) if epoch < len(seconds) else "",
            cell(lrs[epoch]) if epoch < len(lrs) else "",
        ]
        for epoch in range(len(curve))
    ]
    return CURVE_COLUMNS, rows


def _series_table(result: RunResult) -> tuple[list[str], list[list[str]]]:
    keys = _keys(result)
    rows = [
        [*keys, name, str(step), csv_cell(value)]
        for name, values in result.series.items()
        for step, value in enumerate(values)
    ]
    return [*_keyed_columns(), "series", "step", "value"], rows


def _frame_table(frame: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    rows = [[csv_cell(v) for v in row] for row in frame.itertuples(index=False, name=None)]
    return [str(c) for c in frame.columns], rows


def _run_tables(result: RunResult) -> dict[str, tuple[list[str], list[list[str]]]]:
    """A run's rows for each per-run table (:data:`RUN_TABLES`), as columns and rows of
    :func:`csv_cell` text."""
    tables = {"curves.csv": _curve_table(result)}
    if result.criteria:
        tables["criteria.csv"] = _frame_table(criteria_frame([result]))
    if result.trace:
        tables["trace.csv"] = _frame_table(trace_frame([result]))
    if result.series:
        tables["series.csv"] = _series_table(result)
    return tables


class _ResultsTable:
    """``results.csv`` as formatted text cells, one row per run, so that adding a run costs
    formatting its own row and joining the lines, not rebuilding a DataFrame of all runs."""

    def __init__(self) -> None:
        self.columns: list[str] = list(RESULT_COLUMNS)
        self.rows: list[dict[str, str]] = []

    def add(self, row: dict[str, Any]) -> None:
        self.columns += [c for c in row if c not in self.columns]
        self.rows.append({c: csv_cell(v) for c, v in row.items()})

    def pop(self) -> None:
        self.rows.pop()

    def text(self) -> str:
        return csv_text(self.columns, ([r.get(c, "") for c in self.columns] for r in self.rows))


def atomic_write_text(path: Path, text: str, durable: bool = True) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename.

    :param durable: flush the file to the disk before the rename (a power cut then leaves the
        old file or the new one); without it the file is only as safe as the page cache, which
        is enough for a killed process.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


#: The lock file a writer holds for the whole run (see :class:`FolderLock`).
LOCK_FILE = ".benchkit.lock"


def output_error(path: Path, exc: OSError, after: str = "") -> OutputError:
    """One line naming ``path`` and what the operating system said, with what to do."""
    cause = exc.strerror or str(exc)
    hint = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is used up",
        errno.EROFS: "pass an --out on a writable file system",
        errno.EACCES: "pass an --out you may write to",
        errno.EPERM: "pass an --out you may write to",
    }.get(exc.errno or 0, "")
    if exc.errno == errno.ENOTDIR:
        parent = next((p for p in [path, *path.parents] if p.is_file()), None)
        hint = f"{parent} is a file, not a folder" if parent else ""
    text = f"cannot write {path}: {cause}"
    return OutputError("; ".join(x for x in (text, hint, after) if x))


def _content(folder: Path) -> list[Path]:
    """What a folder holds besides a writer's lock and temporary files."""
    return [
        p
        for p in folder.iterdir()
        if p.name != LOCK_FILE and not (p.name.startswith(".") and p.name.endswith(".tmp"))
    ]


def is_result_set(folder: Path) -> bool:
    """Whether ``folder`` holds a result set (its ``run.json``)."""
    return (folder / "run.json").is_file()


def _make_folder(path: Path) -> bool:
    """Create ``path`` (and its parents); ``False`` when it exists already.

    :raises OutputError: it cannot be created (permissions, a read-only file system, a path
        under a file).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # a file where a parent folder should be
        raise output_error(path, OSError(errno.ENOTDIR, "Not a directory", str(path))) from None
    except OSError as exc:
        raise output_error(path, exc) from None
    try:
        path.mkdir()
    except FileExistsError:
        if not path.is_dir():
            raise OutputError(f"--out {path} is a file, not a folder") from None
        return False
    except OSError as exc:
        raise output_error(path, exc) from None
    return True


def default_out(name: str, root: Path = Path("results")) -> Path:
    """Create and return ``results/NAME-TIMESTAMP``; when another run took that name in the
    same second, ``NAME-TIMESTAMP-2``, ``-3`` …: the creation itself is the claim, so two runs
    never share a folder.

    :raises OutputError: the folder cannot be created.
    """
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1, 10_000):
        out = root / (f"{name}-{stamp}" if n == 1 else f"{name}-{stamp}-{n}")
        if _make_folder(out):
            return out
    raise OutputError(f"{root}: no free name for {name}-{stamp}; remove old result sets")


def new_result_folder(out: Path | None, suite_name: str) -> Path:
    """The folder a new result set of ``suite_name`` goes to: ``out`` (created if missing; an
    existing one must be empty), or a new :func:`default_out`.

    :raises BenchkitError: ``out`` already holds a result set, holds other files, is a file,
        or cannot be created.
    """
    if out is None:
        return default_out(suite_name)
    if not _make_folder(out):
        check_new_folder(out)
    return out


def check_new_folder(out: Path, locked: bool = False) -> None:
    """Refuse a folder that holds a result set or anything else (ignoring a lock file).

    :param locked: this process holds the folder's lock (the writer's check under it).
    :raises BenchkitError: with what to do.
    """
    holder = None if locked else FolderLock.holder(out)
    if holder is not None:
        raise BenchkitError(
            f"{out} is being written by another benchkit run{holder}; wait for it to finish, "
            "or pass another --out"
        )
    if is_result_set(out) or (out / "results.csv").exists():
        raise BenchkitError(
            f"{out} already holds a result set; pass another --out, remove it first, or "
            f"continue it with --resume {out}"
        )
    try:
        content = _content(out)
    except OSError as exc:
        raise output_error(out, exc) from None
    if content:
        names = ", ".join(sorted(p.name for p in content)[:3])
        raise BenchkitError(
            f"--out {out} is not empty and is not a result set (it holds {names}"
            f"{' …' if len(content) > 3 else ''}); pass a new or empty folder"
        )


class FolderLock:
    """An exclusive lock on a result set folder, held while a writer owns it.

    ``fcntl.flock`` on :data:`LOCK_FILE` where the platform has it: the kernel drops the lock
    when the process ends, however it ends, so a killed run never leaves a stale lock. The
    file holds the owner's process id, for the message a second writer gets.
    """

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK_FILE
        try:
            self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise output_error(self.path, exc) from None
        try:
            import fcntl
        except ImportError:  # no flock (Windows): the lock file itself is the lock
            os.close(self._fd)
            self._fd = None
            self._exclusive_file()
            return
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = self._holder()
            os.close(self._fd)
            self._fd = None
            raise BenchkitError(
                f"{folder} is being written by another benchkit run{holder}; wait for it to "
                "finish, or pass another --out"
            ) from None
        os.ftruncate(self._fd, 0)
        os.write(self._fd, f"{os.getpid()}\n".encode())

    @staticmethod
    def holder(folder: Path) -> str | None:
        """``" (process N)"`` (or ``""``) when a live writer holds ``folder``'s lock, else
        ``None``."""
        path = folder / LOCK_FILE
        try:
            import fcntl

            fd = os.open(path, os.O_RDONLY)
        except (ImportError, OSError):
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            pid = path.read_text().strip() if path.is_file() else ""
            return f" (process {pid})" if pid.isdigit() else ""
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def _holder(self) -> str:
        try:
            pid = self.path.read_text().strip()
        except OSError:
            return ""
        return f" (process {pid})" if pid.isdigit() else ""

    def _exclusive_file(self) -> None:
        self.path.unlink(missing_ok=True)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise BenchkitError(
                f"{self.path.parent} is being written by another benchkit run{self._holder()} "
                f"(or one that crashed: remove {self.path})"
            ) from None
        os.write(fd, f"{os.getpid()}\n".encode())
        os.close(fd)
        self._owned_file = True

    def release(self) -> None:
        """Give the folder up (also happens when the process ends). The lock file goes too:
        by now every file of the set is written, so a writer that locks a new one in the
        same instant still finds the set and refuses it."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()
            os.close(self._fd)
            self._fd = None
        elif getattr(self, "_owned_file", False):
            self.path.unlink(missing_ok=True)
            self._owned_file = False


def results_frame(results: list[RunResult]) -> pd.DataFrame:
    """``results.csv`` as a DataFrame, metric columns after the fixed ones."""
    frame = pd.DataFrame([result_row(r) for r in results])
    if frame.empty:
        return pd.DataFrame(columns=RESULT_COLUMNS)
    return _ordered(frame)


def _ordered(frame: pd.DataFrame) -> pd.DataFrame:
    """The fixed columns first, then the metrics; nullable integers written as integers."""
    for col in RESULT_COLUMNS:
        if col not in frame.columns:
            frame[col] = None
    metric_cols = [c for c in frame.columns if c not in RESULT_COLUMNS]
    frame = frame[RESULT_COLUMNS + metric_cols]
    for col in _NULLABLE_INT:
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("Int64")
    frame["contended"] = frame["contended"].map(_flag).astype("boolean")
    frame["timings_shared"] = frame["timings_shared"].map(_flag).astype("boolean")
    return frame


def _flag(value: Any) -> bool | None:
    """A yes/no cell as written (``True``, ``False``, empty) or as read back as text."""
    if isinstance(value, bool):
        return value
    text = "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
    return {"true": True, "false": False}.get(text.strip().lower())


def curves_frame(results: list[RunResult]) -> pd.DataFrame:
    """``curves.csv`` as a DataFrame."""
    rows = [row for r in results for row in curve_rows(r)]
    return pd.DataFrame(rows, columns=CURVE_COLUMNS)


def _keyed(result: RunResult) -> dict[str, Any]:
    return {"run_id": result.run_id, **{c: getattr(result, c) for c in KEY_COLUMNS}}


def criteria_frame(results: list[RunResult]) -> pd.DataFrame:
    """``criteria.csv``: per run and criterion, the first epoch it was met and the time."""
    rows = [
        {**_keyed(r), "criterion": name, "epoch": epoch, "seconds": seconds}
        for r in results
        for name, (epoch, seconds) in r.criteria.items()
    ]
    frame = pd.DataFrame(rows, columns=[*_keyed_columns(), "criterion", "epoch", "seconds"])
    frame["epoch"] = frame["epoch"].astype("Int64")
    return frame


def trace_frame(results: list[RunResult]) -> pd.DataFrame:
    """``trace.csv``: per traced run and epoch, prediction, loss, parameters and gradients."""
    rows = [
        {**_keyed(r), "epoch": epoch, "loss": r.curve[epoch], **values}
        for r in results
        for epoch, values in enumerate(r.trace)
    ]
    return pd.DataFrame(rows)


def series_frame(results: list[RunResult]) -> pd.DataFrame:
    """``series.csv``: sequences a workload's evaluation returned (e.g. the rollout)."""
    rows = [
        {**_keyed(r), "series": name, "step": step, "value": value}
        for r in results
        for name, values in r.series.items()
        for step, value in enumerate(values)
    ]
    return pd.DataFrame(rows, columns=[*_keyed_columns(), "series", "step", "value"])


def _keyed_columns() -> list[str]:
    return ["run_id", *KEY_COLUMNS]


#: Optional per-run tables, written when a run produced rows for them.
EXTRA_TABLES = {
    "criteria.csv": criteria_frame,
    "trace.csv": trace_frame,
    "series.csv": series_frame,
}
#: The per-run tables, appended run by run before the run's ``results.csv`` row is written.
RUN_TABLES = {"curves.csv": curves_frame, **EXTRA_TABLES}


class ResultSetWriter:
    """Owns one result set folder while a suite runs: every file of it is written here.

    The writer holds the folder's :class:`FolderLock` from its creation to :meth:`close`, so a
    second writer is refused. A convergence suite hands over each finished
    :class:`RunResult` (:meth:`add`), and the run is written as one step that either happens
    whole or not at all:

    1. its rows are appended to ``curves.csv`` and the other per-run tables
       (:data:`RUN_TABLES`) and flushed to the disk;
    2. ``results.csv`` is replaced (a temporary file renamed into place) with the run's row
       added: this rename is the moment the run counts as written;
    3. ``run.json`` is replaced with the new count of runs.

    So every run in ``results.csv`` has its curve, criteria, trace and series rows, even after
    a ``kill -9``; what a killed or failed step left after the last complete run is ignored by
    :func:`load` and cut off by ``--resume``. When a write fails (a full disk) the appended
    rows are cut off again, the run is not counted, and :class:`~benchkit.errors.OutputError`
    names the file and the cause. The cost per run is an append of its own rows and a rewrite
    of the small ``results.csv``, not of every curve so far.

    A throughput or memory suite hands over its whole table as it grows (:meth:`set_rows`).

    ``header`` is what the run stage knows about the suite (``kind``, ``suite``,
    ``environment``, ``plugins``, ``started_at``); :meth:`meta` adds the schema version and the
    state, so ``run.json`` has one shape for every kind of suite. With ``resume=True`` the
    folder must hold a result set: its runs are kept (:attr:`finished` names them), and new
    runs are added to it.
    """

    def __init__(
        self,
        out_dir: Path,
        header: dict[str, Any],
        curves_every_seconds: float = 0.0,
        resume: bool = False,
        durable: bool = True,
    ) -> None:
        self.out_dir = out_dir
        self.header = dict(header)
        self.results: list[RunResult] = []
        self.rows: pd.DataFrame | None = None
        self.durable = durable
        self.previous = pd.DataFrame()
        self._table = _ResultsTable()
        self._headers: dict[str, str] = {}
        self._meta_written = 0.0
        self._closed = False
        del curves_every_seconds  # per-run tables are appended run by run now
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise output_error(out_dir, exc) from None
        self._lock = FolderLock(out_dir)
        try:
            if resume:
                self._reopen()
            else:
                check_new_folder(out_dir, locked=True)
            self._write_meta(finished=False)
        except BaseException:
            self._lock.release()
            raise

    @property
    def runs(self) -> int:
        """Runs (convergence) or measurements (throughput, memory) written so far, those of a
        resumed set included."""
        if self.rows is not None:
            return len(self.previous) + len(self.rows)
        return len(self.previous) + len(self.results)

    @property
    def finished(self) -> set[str]:
        """``run_id`` of every run the set holds."""
        ids = set(self.previous["run_id"].astype(str)) if "run_id" in self.previous else set()
        ids.update(r.run_id for r in self.results)
        if self.rows is not None and "run_id" in self.rows:
            ids.update(self.rows["run_id"].astype(str))
        return ids

    def path(self, name: str) -> Path:
        """Where a file of the set lives, for tools that write it themselves (pytest-benchmark's
        ``benchmark.json``)."""
        return self.out_dir / name

    def add(self, result: RunResult) -> None:
        """Write a finished run: its per-run rows, then its ``results.csv`` row (see the class
        docs); on a write error nothing of it stays, and :class:`OutputError` is raised."""
        sizes: dict[str, int | None] = {}
        self.results.append(result)
        self._table.add(result_row(result))
        try:
            for name, (columns, rows) in _run_tables(result).items():
                if rows:
                    self._append(name, columns, rows, sizes)
            self._write_results()
        except OSError as exc:
            self._forget_last(sizes)
            raise output_error(
                self._failed_path(exc), exc, self._kept_text("the run being written is not")
            ) from None
        except BaseException:
            self._forget_last(sizes)
            raise
        # run.json's count follows at most once a second (and at close): results.csv is what
        # counts the run, and a rename per run is not free on a busy file system
        if time.monotonic() - self._meta_written >= 1.0:
            with contextlib.suppress(OSError):
                self._write_meta(finished=False, durable=False)

    def frame(self) -> pd.DataFrame:
        """``results.csv`` as written: the runs of a resumed set, then the new ones."""
        if self.rows is not None:
            return self._with_previous(self.rows)
        return self._with_previous(results_frame(self.results), ordered=True)

    def table(self, name: str) -> pd.DataFrame:
        """A per-run table as written so far (``criteria.csv`` …), committed runs only."""
        path = self.out_dir / name
        if not path.is_file():
            return RUN_TABLES[name]([]) if name in RUN_TABLES else pd.DataFrame()
        frame = read_appended_csv(path)
        ids = self.finished
        return frame[frame["run_id"].astype(str).isin(ids)] if "run_id" in frame else frame

    def set_rows(self, frame: pd.DataFrame) -> None:
        """Replace the new rows of a throughput or memory suite's ``results.csv`` with
        ``frame`` (a resumed set's earlier rows stay in front)."""
        self.rows = frame
        self._guarded("results.csv", lambda: self._write_text("results.csv", self.frame()))

    def set_environment(self, key: str, value: Any) -> None:
        """Add a fact learnt while running (pytest-benchmark's machine info) to ``run.json``."""
        self.header.setdefault("environment", {})[key] = value

    def write_table(self, name: str, frame: pd.DataFrame) -> None:
        """Write another table of the result set (``claims.csv``, ``crossover.csv``)."""
        self._guarded(name, lambda: self._write_text(name, frame))

    def close(self, interrupted: bool = False, reason: str = "") -> None:
        """Mark the set finished (or interrupted, with ``reason``: ``SIGTERM`` …) and give up
        the folder's lock. After a failed write it only tries to mark the set, never raises
        for that."""
        if self._closed:
            return
        self._closed = True
        try:
            self._write_meta(finished=not interrupted, interrupted=interrupted, reason=reason)
        except OSError as exc:
            if not interrupted:
                raise output_error(self.out_dir / "run.json", exc) from None
        finally:
            self._lock.release()

    def meta(self, finished: bool, interrupted: bool = False, reason: str = "") -> dict[str, Any]:
        """``run.json``: the same keys for every kind of suite."""
        meta = {
            "schema_version": SCHEMA_VERSION,
            "kind": self.header.get("kind", "convergence"),
            **self.header,
            "finished": finished,
            "interrupted": interrupted,
            "runs": self.runs,
        }
        if interrupted and reason:
            meta["interrupted_by"] = reason
        if finished or interrupted:
            meta["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        return meta

    # -- internals ---------------------------------------------------------------------------

    def _reopen(self) -> None:
        """Take over a result set to resume it: keep its committed runs, cut off whatever a
        killed or failed run left in the per-run tables after them."""
        if not is_result_set(self.out_dir):
            raise BenchkitError(
                f"--resume {self.out_dir}: not a result set (no run.json); pass the folder of "
                "an interrupted `benchkit run`"
            )
        old = _read_json(self.out_dir / "run.json")
        if not isinstance(old, dict):
            raise BenchkitError(f"{self.out_dir / 'run.json'}: expected a JSON object")
        resumed = [*old.get("resumed", []), time.strftime("%Y-%m-%dT%H:%M:%S%z")]
        self.header = {
            **self.header,
            "started_at": old.get("started_at", self.header.get("started_at")),
            "resumed": resumed,
        }
        results = self.out_dir / "results.csv"
        if results.is_file():
            self.previous = _read_csv(results, TEXT_COLUMNS)
            # the kept rows' cells exactly as written
            text = pd.read_csv(results, dtype=str, keep_default_na=False)
            self._table.columns = list(text.columns) + [
                c for c in RESULT_COLUMNS if c not in text.columns
            ]
            self._table.rows = text.to_dict("records")
        ids = set(self.previous["run_id"].astype(str)) if "run_id" in self.previous else set()
        for name in RUN_TABLES:
            path = self.out_dir / name
            if not path.is_file():
                continue
            raw = path.read_bytes()
            table = read_appended_csv(path)
            if "run_id" not in table.columns:
                continue
            kept = table[table["run_id"].astype(str).isin(ids)]
            if len(kept) != len(table) or not raw.endswith(b"\n"):
                self._guarded(name, lambda n=name, k=kept: self._write_text(n, k))

    def _with_previous(self, frame: pd.DataFrame, ordered: bool = False) -> pd.DataFrame:
        if self.previous.empty:
            return frame
        both = pd.concat([self.previous, frame], ignore_index=True) if len(frame) else self.previous
        return _ordered(both.copy()) if ordered else both

    def _write_results(self) -> None:
        atomic_write_text(self.out_dir / "results.csv", self._table.text(), self.durable)

    def _forget_last(self, sizes: dict[str, int | None]) -> None:
        self.results.pop()
        self._table.pop()
        self._cut_back(sizes)

    def _write_text(self, name: str, frame: pd.DataFrame, durable: bool | None = None) -> None:
        durable = self.durable if durable is None else durable
        atomic_write_text(self.out_dir / name, frame.to_csv(index=False), durable)
        self._headers.pop(name, None)

    def _guarded(self, name: str, write: Any) -> None:
        try:
            write()
        except OSError as exc:
            raise output_error(self._failed_path(exc, name), exc, self._kept_text()) from None

    def _append(
        self, name: str, columns: list[str], rows: list[list[str]], sizes: dict[str, int | None]
    ) -> None:
        """Append a run's rows to a per-run table; a table whose columns differ from the new
        rows' (a traced model with other parameters) is rewritten whole instead."""
        path = self.out_dir / name
        header = self._headers.get(name)
        if header is None and path.is_file():
            with open(path, encoding="utf-8") as f:
                header = f.readline().rstrip("\n")
        if header is not None and header != csv_text(columns, [], header=True).rstrip("\n"):
            new = pd.DataFrame(rows, columns=columns)
            self._write_text(name, pd.concat([self.table(name), new], ignore_index=True))
            return
        text = csv_text(columns, rows, header=header is None, formatted=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                sizes[name] = os.fstat(fd).st_size if header is not None else None
                _write_all(fd, text.encode("utf-8"))
                if self.durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            exc.filename = exc.filename or str(path)
            raise
        self._headers[name] = csv_text(columns, [], header=True).rstrip("\n")

    def _cut_back(self, sizes: dict[str, int | None]) -> None:
        """Undo :meth:`_append`s of a run that was not written whole."""
        for name, size in sizes.items():
            path = self.out_dir / name
            self._headers.pop(name, None)
            try:
                if size is None:
                    path.unlink(missing_ok=True)
                else:
                    os.truncate(path, size)
            except OSError:
                pass  # load() and --resume ignore rows of runs results.csv does not hold

    def _failed_path(self, exc: OSError, name: str = "") -> Path:
        if exc.filename:
            path = Path(exc.filename)
            if path.name.startswith(".") and path.name.endswith(".tmp"):
                path = path.with_name(path.name[1:].split(".tmp")[0].rsplit(".", 1)[0])
            return path
        return self.out_dir / name if name else self.out_dir

    def _kept_text(self, prefix: str = "") -> str:
        kept = f"the {self.runs} runs written before it are kept in {self.out_dir}"
        if prefix:
            kept = f"{prefix}; {kept}"
        return f"{kept} (continue with --resume {self.out_dir})" if self.runs else kept

    def _write_meta(
        self,
        finished: bool,
        interrupted: bool = False,
        reason: str = "",
        durable: bool | None = None,
    ) -> None:
        meta = self.meta(finished, interrupted, reason)
        text = json.dumps(meta, indent=2, default=str) + "\n"
        durable = self.durable if durable is None else durable
        atomic_write_text(self.out_dir / "run.json", text, durable)
        self._meta_written = time.monotonic()


#: What a resumed set's environment must share with the one that made it (as compare's
#: fingerprint: the last bits of a result depend on them).
RESUME_FINGERPRINT = ("benchkit", "torch", "python", "cpu", "cpu_capability", "torch_threads")


def read_resumable_meta(folder: Path) -> dict[str, Any]:
    """``run.json`` of the set ``--resume`` names.

    :raises BenchkitError: the folder is not a result set.
    """
    path = folder / "run.json"
    if not path.is_file():
        raise BenchkitError(
            f"--resume {folder}: not a result set (no run.json); pass the folder of an "
            "interrupted `benchkit run`"
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BenchkitError(f"{path}: cannot read: {exc}") from None
    if not isinstance(meta, dict):
        raise BenchkitError(f"{path}: expected a JSON object")
    return meta


def resume_problems(old: dict[str, Any], header: dict[str, Any]) -> list[str]:
    """Why a set with ``run.json`` ``old`` should not be continued by a run whose header is
    ``header``: a different suite text, environment or plugin version (empty: none)."""
    problems = []
    old_suite = old.get("suite") if isinstance(old.get("suite"), dict) else {}
    new_suite = header.get("suite") or {}
    if old_suite.get("sha256") != new_suite.get("sha256"):
        problems.append(
            f"from another suite text ({old_suite.get('path', '?')} sha256 "
            f"{str(old_suite.get('sha256', '?'))[:12]}, now {str(new_suite.get('sha256'))[:12]})"
        )
    old_env = old.get("environment") if isinstance(old.get("environment"), dict) else {}
    new_env = header.get("environment") or {}
    for key in RESUME_FINGERPRINT:
        if str(old_env.get(key, "")) != str(new_env.get(key, "")):
            problems.append(f"with {key} {old_env.get(key)!r}, now {new_env.get(key)!r}")
    before = _providers(old)
    after = _providers({"providers": header.get("providers"), "plugins": header.get("plugins")})
    for key in sorted(before.keys() & after.keys()):
        if before[key] != after[key]:
            problems.append(f"with {key[0]} {key[1]} from {before[key]}, now {after[key]}")
    return problems


def _write_all(fd: int, data: bytes) -> None:
    """``os.write`` until all of ``data`` is written (a write may take only part)."""
    while data:
        data = data[os.write(fd, data) :]


def read_appended_csv(path: Path, text_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """A per-run table as far as it is whole: a line cut short by a killed process or a full
    disk (all of the file after its last newline) is left out.

    :raises BenchkitError: the whole lines cannot be read as CSV.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise BenchkitError(f"{path}: cannot read: {exc.strerror or exc}") from None
    raw = raw.replace(b"\x00", b"")
    whole = raw[: raw.rfind(b"\n") + 1]
    if not whole.strip():
        return pd.DataFrame()
    return _parse_csv(path, whole, text_columns)


def read_table(folder: str | Path, name: str) -> pd.DataFrame:
    """One table of a result set folder, as written.

    :raises BenchkitError: the folder has no such file, or it cannot be read as CSV.
    """
    path = Path(folder) / name
    if not path.is_file():
        raise BenchkitError(f"{folder}: no {name}; pass result set folders")
    return _read_csv(path)


def count_runs(folder: Path) -> int | None:
    """Rows of ``folder/results.csv``, or ``None`` when there is none."""
    results = folder / "results.csv"
    if not results.is_file():
        return None
    return max(0, results.read_text(encoding="utf-8").count("\n") - 1)


def keep_only(folder: Path, names: list[str]) -> None:
    """Remove every file of a result set but ``names`` (a committed baseline keeps the tables
    that gate, not megabytes of per-epoch rows)."""
    for path in folder.iterdir():
        if path.name not in names:
            path.unlink()


def replace_result_set(new: Path, target: Path) -> None:
    """Put the finished result set ``new`` where ``target`` is, by renames: at every moment
    ``target`` is either the old set or the new one (or, between two renames, absent)."""
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    new.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def read_results(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """The raw tables of a convergence result set: results, curves and run.json (no checks;
    :func:`load` is the checked reader)."""
    results = pd.read_csv(folder / "results.csv", keep_default_na=True)
    curves = pd.read_csv(folder / "curves.csv")
    meta = json.loads((folder / "run.json").read_text())
    return results, curves, meta


KNOWN_SCHEMA_VERSIONS = (SCHEMA_VERSION,)
PYTEST_BENCHMARK_KEYS = ["group", "name", "params"]


@dataclass
class Summary:
    """Median, IQR and count of a timing whose raw repeats were not kept."""

    median: float
    iqr: float
    rounds: int


@dataclass
class ResultSet:
    """One side of a comparison, or one input of a report.

    ``rows`` holds one row per run: the key columns, ``status`` and the metrics. ``samples``
    maps a metric to ``{row label: repeats within that run}``; ``summaries`` likewise when
    only a summary was kept. ``environment`` holds the fingerprint fields shared by all rows
    (see :func:`row_fingerprint`). ``thresholds`` is the suite's ``[compare]`` table.
    ``unreadable`` maps a row label to the metrics whose cell could not be read (and the text
    found there); ``providers`` maps a kind and name (``model``, ``sine_mlp``) to the plugin
    and version that provided it, where ``run.json`` records that.
    """

    path: Path
    kind: str
    rows: pd.DataFrame
    key_columns: list[str]
    group_columns: list[str]
    meta: dict[str, Any] = field(default_factory=dict)
    curves: pd.DataFrame | None = None
    samples: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    summaries: dict[str, dict[str, Summary]] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    thresholds: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, pd.DataFrame] = field(default_factory=dict)
    #: What the repeats within a run are: ``epochs`` (curves.csv), ``rounds``
    #: (pytest-benchmark), or ``seeds`` (none: each run is one repeat).
    repeats_from: str = "seeds"
    unreadable: dict[str, dict[str, str]] = field(default_factory=dict)
    providers: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """A short name for tables: the folder or file name."""
        return self.path.name or str(self.path)

    @property
    def suite_text(self) -> str:
        """The suite file's text as recorded in ``run.json`` (empty when not recorded)."""
        suite = self.meta.get("suite") if isinstance(self.meta, dict) else None
        text = suite.get("text") if isinstance(suite, dict) else None
        return text if isinstance(text, str) else ""


def row_label(row: pd.Series, key_columns: list[str]) -> str:
    """The ``run_id`` where there is one, else the key values joined by ``/``."""
    run_id = row.get("run_id")
    if isinstance(run_id, str) and run_id:
        return run_id
    return "/".join(str(row[c]) for c in key_columns if str(row[c]))


def row_fingerprint(result_set: ResultSet, row: pd.Series) -> dict[str, str]:
    """What must match for two runs' timings and last bits to be comparable: the torch
    build, the CPU and its vector capability, torch's thread count, and the row's device.
    A row's own ``env_*`` columns (the process that ran it, e.g. a Dask worker) win over the
    result set's ``run.json``; where they are empty, ``run.json``'s values stand."""
    fp = dict(result_set.environment)
    for column, key in ROW_ENVIRONMENT_COLUMNS.items():
        value = row.get(column)
        if value is None or value == "" or pd.isna(value):
            continue
        text = str(value)
        fp[key] = text.removesuffix(".0") if key == "torch_threads" else text
    name = row.get("device_name")
    if isinstance(name, str) and name:
        fp["device_name"] = name
    return fp


#: The kinds of plugin a run depends on, and the results column that names each.
PROVIDER_KINDS = ("model", "dataset", "precision", "device")


def row_providers(result_set: ResultSet, row: pd.Series) -> dict[str, str]:
    """Per kind, the plugin (with its package and version) that provided this row's model,
    dataset, precision and device, as far as ``run.json`` records it."""
    out = {}
    for kind in PROVIDER_KINDS:
        name = str(row.get(kind, ""))
        if kind == "device":
            name = name.partition(":")[0]
        provider = result_set.providers.get((kind, name))
        if provider:
            out[kind] = provider
    return out


def is_contended(value: Any) -> bool:
    """Whether a ``contended`` cell says the run shared the CPU."""
    return str(value).strip().lower() in ("true", "1", "1.0")


def load(path: str | Path) -> ResultSet:
    """Read a result set folder, or a pytest-benchmark JSON file.

    A damaged table never raises anything but :class:`BenchkitError`: a missing or unreadable
    key column names the file and the column; a cell that should hold a number and does not
    is recorded in :attr:`ResultSet.unreadable` and left empty, so only that row's figure is
    in doubt.

    :raises BenchkitError: the path is missing or is neither kind, its schema version is one
        this benchkit does not know, or a key column is missing or unreadable.
    """
    path = Path(path)
    if not path.exists():
        raise BenchkitError(
            f"{path}: no such result set (a folder from `benchkit run`, or a "
            "pytest-benchmark JSON file)"
        )
    if path.is_file() and path.name in ("results.csv", "run.json", "curves.csv"):
        path = path.parent
    if path.is_dir():
        return _load_folder(path)
    doc = _read_json(path)
    if isinstance(doc, dict) and "benchmarks" in doc:
        return _load_pytest_benchmark(path, doc)
    raise BenchkitError(
        f"{path}: not a result set: expected a folder from `benchkit run` or a "
        "pytest-benchmark JSON file with a 'benchmarks' list"
    )


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise BenchkitError(f"{path}: cannot read: {exc}") from None
    except (json.JSONDecodeError, RecursionError) as exc:
        raise BenchkitError(f"{path}: not valid JSON: {exc}") from None


def _parse_csv(path: Path, data: bytes, text_columns: tuple[str, ...]) -> pd.DataFrame:
    try:
        frame = pd.read_csv(io.BytesIO(data))
        # Text columns as written: "nan" in nonfinite_loss is a word, not a missing number.
        text = [c for c in text_columns if c in frame.columns]
        if text:
            words = pd.read_csv(io.BytesIO(data), usecols=text, dtype=str, keep_default_na=False)
            frame[text] = words[text]
        return frame
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise BenchkitError(f"{path}: cannot read: {_one_line(exc)}") from None
    except pd.errors.EmptyDataError:
        raise BenchkitError(f"{path}: empty file") from None


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def _read_csv(path: Path, text_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BenchkitError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return _parse_csv(path, data, text_columns)


def _read_table(path: Path) -> tuple[pd.DataFrame, dict[int, dict[str, str]]]:
    """A results table with every cell checked: text columns as written, the others as
    numbers. Returns the frame and, per row index, the cells that should have held a number
    and did not (their text)."""
    try:
        raw = pd.read_csv(
            io.BytesIO(path.read_bytes()), dtype=str, keep_default_na=False, index_col=False
        )
    except OSError as exc:
        raise BenchkitError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise BenchkitError(f"{path}: cannot read: {_one_line(exc)}") from None
    except pd.errors.EmptyDataError:
        raise BenchkitError(f"{path}: empty file") from None
    if raw.columns.duplicated().any():
        twice = sorted({str(c) for c in raw.columns[raw.columns.duplicated()]})
        raise BenchkitError(f"{path}: column {twice[0]} appears twice")
    frame = raw.copy()
    bad: dict[int, dict[str, str]] = {}
    for col in raw.columns:
        if col in TEXT_COLUMNS or col == "seed":
            continue
        text = raw[col].str.strip()
        numbers = pd.to_numeric(text.where(text != "", None), errors="coerce")
        failed = numbers.isna() & (text != "") & ~text.str.lower().isin(_MISSING_WORDS)
        if col not in NUMERIC_COLUMNS and failed.all():
            continue  # a column of words a plugin added: left as text
        frame[col] = numbers
        for index in raw.index[failed]:
            bad.setdefault(int(index), {})[str(col)] = str(raw.at[index, col])
    return frame, bad


_MISSING_WORDS = ["nan", "<na>", "na", "n/a", "null", "none", "inf", "-inf", "+inf"]


def _load_folder(folder: Path) -> ResultSet:
    for name in ("results.csv", "run.json"):
        if not (folder / name).is_file():
            raise BenchkitError(
                f"{folder}: not a result set: {name} is missing (a result set folder holds "
                "results.csv and run.json, written by `benchkit run`)"
            )
    meta = _read_json(folder / "run.json")
    if not isinstance(meta, dict):
        raise BenchkitError(f"{folder / 'run.json'}: expected a JSON object")
    version = meta.get("schema_version")
    if version not in KNOWN_SCHEMA_VERSIONS or isinstance(version, bool):
        known = ", ".join(map(str, KNOWN_SCHEMA_VERSIONS))
        raise BenchkitError(
            f"{folder / 'run.json'}: schema version {version!r} is not one this benchkit "
            f"reads ({known}); compare result sets written by the same benchkit version"
        )
    results_path = folder / "results.csv"
    rows, bad = _read_table(results_path)
    for column, value in KEY_DEFAULTS.items():
        if column not in rows.columns:  # written before the column existed
            at = list(rows.columns).index("variant") + 1 if "variant" in rows else len(rows.columns)
            rows.insert(at, column, value)
    missing = [c for c in ["run_id", *KEY_COLUMNS, "status"] if c not in rows.columns]
    if missing:
        raise BenchkitError(
            f"{results_path}: missing key column{'s' * (len(missing) > 1)} "
            f"{', '.join(missing)}; is it a results.csv written by `benchkit run`?"
        )
    rows = _normalise_keys(rows, KEY_COLUMNS, results_path)
    labels = [row_label(row, KEY_COLUMNS) for _, row in rows.iterrows()]
    unreadable = {labels[i]: cells for i, cells in bad.items()}
    if (folder / "criteria.csv").is_file():
        rows = _with_criteria(rows, _read_optional(folder / "criteria.csv"), unreadable)
    curves = _read_optional(folder / "curves.csv") if (folder / "curves.csv").is_file() else None
    if curves is not None and "run_id" in curves.columns:
        # rows a killed or failed run appended after the last complete one
        curves = curves[curves["run_id"].astype(str).isin(set(rows["run_id"]))]
    env = meta.get("environment")
    env = env if isinstance(env, dict) else {}
    result_set = ResultSet(
        path=folder,
        kind="benchkit",
        rows=rows,
        key_columns=list(KEY_COLUMNS),
        group_columns=[c for c in KEY_COLUMNS if c != "seed"],
        meta=meta,
        curves=curves,
        environment={
            k: str(env.get(k, "")) for k in ("torch", "cpu", "cpu_capability", "torch_threads")
        },
        thresholds=_suite_thresholds(meta, folder),
        unreadable=unreadable,
        providers=_providers(meta),
    )
    if curves is not None:
        result_set.samples["samples_per_second"] = _epoch_throughputs(rows, curves)
        result_set.repeats_from = "epochs"
    if (folder / "benchmark.json").is_file():
        _add_benchmark_rounds(result_set, _read_json(folder / "benchmark.json"))
    rollout = _rollout(folder)
    if rollout is not None:
        result_set.extras["rollout"] = rollout
    if (folder / "claims.csv").is_file():
        result_set.extras["claims"] = _read_csv(folder / "claims.csv")
    if (folder / "references.csv").is_file():
        result_set.extras["references"] = _read_csv(folder / "references.csv")
    return result_set


def _read_optional(path: Path) -> pd.DataFrame:
    """A per-run table, as far as it is whole; an unreadable one counts as absent (its
    figures are then missing, which compare and report say) rather than failing the set."""
    try:
        return read_appended_csv(path)
    except BenchkitError:
        return pd.DataFrame()


def _providers(meta: dict[str, Any]) -> dict[tuple[str, str], str]:
    """``run.json``'s ``providers`` (kind → name → plugin) joined with its ``plugins``
    (plugin → package and version): ``{("model", "sine_mlp"): "sine_mlp (benchkit 0.1.0)"}``."""
    providers, plugins = meta.get("providers"), meta.get("plugins")
    if not isinstance(providers, dict) or not isinstance(plugins, dict):
        return {}
    out = {}
    for kind, names in providers.items():
        if not isinstance(names, dict):
            continue
        for name, plugin in names.items():
            info = plugins.get(plugin) if isinstance(plugin, str) else None
            if not isinstance(info, dict):
                continue
            where = " ".join(str(info.get(k) or "") for k in ("package", "version")).strip()
            out[(str(kind), str(name))] = f"{plugin} ({where})" if where else str(plugin)
    return out


def _add_benchmark_rounds(result_set: ResultSet, doc: Any) -> None:
    """A throughput suite's result set keeps pytest-benchmark's JSON beside results.csv: its
    rounds are the repeats of each row's step time (and samples per second)."""
    benchmarks = doc.get("benchmarks") if isinstance(doc, dict) else None
    if not isinstance(benchmarks, list):
        return
    step = result_set.samples.setdefault("step_median_seconds", {})
    speed = result_set.samples.setdefault("samples_per_second", {})
    summaries = result_set.summaries.setdefault("step_median_seconds", {})
    for bench in benchmarks:
        info = bench.get("extra_info") or {} if isinstance(bench, dict) else {}
        stats = bench.get("stats") if isinstance(bench, dict) else None
        if not isinstance(info, dict) or not isinstance(stats, dict):
            continue
        if not info.get("benchkit") or "run_id" not in info:
            continue
        label = f"{info['run_id']}/{info['kind']}" if info.get("kind") else str(info["run_id"])
        try:
            data = [float(x) for x in stats.get("data") or [] if float(x) > 0]
            if data:
                step[label] = data
                if info.get("batch_size"):
                    speed[label] = [float(info["batch_size"]) / x for x in data]
            elif "median" in stats:
                summaries[label] = Summary(
                    float(stats["median"]),
                    float(stats.get("iqr", 0.0)),
                    int(stats.get("rounds", 1)),
                )
        except (TypeError, ValueError, ZeroDivisionError):
            continue  # a damaged benchmark: its timing is not compared
    result_set.repeats_from = "rounds"


def _normalise_keys(rows: pd.DataFrame, key_columns: list[str], path: Path) -> pd.DataFrame:
    """Key columns as text (``seed`` as a whole number written plainly).

    :raises BenchkitError: a seed that is not a whole number, naming the file, column and row.
    """
    rows = rows.copy()
    for col in key_columns:
        values = rows[col].fillna("").astype(str).str.strip()
        if col == "seed":
            numbers = pd.to_numeric(values.where(values != "", None), errors="coerce")
            whole = numbers.notna() & (numbers == numbers.round())
            broken = ~whole & (values != "")
            if broken.any():
                index = int(rows.index[broken][0])
                raise BenchkitError(
                    f"{path}: column seed, line {index + 2}: {values[index]!r} is not a whole "
                    "number; the key columns must be readable to match runs"
                )
            values = numbers.map(lambda v: str(int(v)) if pd.notna(v) else "")
        rows[col] = values
    if "run_id" in rows.columns:
        rows["run_id"] = rows["run_id"].fillna("").astype(str)
    return rows


def criterion_metric(criterion: str) -> str:
    """The metric name of the epochs to a criterion: ``epochs_to[loss <= 1e-08]``."""
    return f"epochs_to[{criterion}]"


def _with_criteria(
    rows: pd.DataFrame, criteria: pd.DataFrame, unreadable: dict[str, dict[str, str]]
) -> pd.DataFrame:
    """One column per criterion of ``criteria.csv``: the first epoch each run met it."""
    if not {"run_id", "criterion", "epoch"} <= set(criteria.columns) or criteria.empty:
        return rows
    criteria = criteria.assign(
        run_id=criteria["run_id"].astype(str), criterion=criteria["criterion"].astype(str)
    )
    raw = criteria["epoch"]
    epochs = pd.to_numeric(raw, errors="coerce")
    for index in criteria.index[epochs.isna() & raw.notna()]:
        metric = criterion_metric(criteria.at[index, "criterion"])
        unreadable.setdefault(criteria.at[index, "run_id"], {})[metric] = str(raw[index])
    criteria = criteria.assign(epoch=epochs)
    wide = criteria.pivot_table(
        index="run_id", columns="criterion", values="epoch", aggfunc="first", dropna=False
    )
    wide.columns = [criterion_metric(str(c)) for c in wide.columns]
    wide = wide.drop(columns=[c for c in wide.columns if c in rows.columns])
    return rows.merge(wide, how="left", left_on="run_id", right_index=True)


def _rollout(folder: Path) -> pd.DataFrame | None:
    """Actual and predicted rollout values per run and step: from ``series.csv`` (series
    named ``NAME_actual`` and ``NAME_predicted``) or ``rollout.csv`` (``run_id, step, actual,
    predicted``)."""
    if (folder / "rollout.csv").is_file():
        table = _read_optional(folder / "rollout.csv")
        if {"run_id", "step", "actual", "predicted"} <= set(table.columns):
            return table[["run_id", "step", "actual", "predicted"]]
    if not (folder / "series.csv").is_file():
        return None
    series = _read_optional(folder / "series.csv")
    if not {"run_id", "series", "step", "value"} <= set(series.columns):
        return None
    series = series.assign(
        value=pd.to_numeric(series["value"], errors="coerce"),
        step=pd.to_numeric(series["step"], errors="coerce"),
    ).dropna(subset=["step"])
    # an empty cell is a missing name, not a float NaN (pandas 3 keeps it missing in astype)
    names = series["series"].map(lambda v: v if isinstance(v, str) else "")
    parts = []
    for prefix in sorted({n.removesuffix("_predicted") for n in names if n.endswith("_predicted")}):
        both = series[names.isin([f"{prefix}_actual", f"{prefix}_predicted"])]
        wide = both.pivot_table(index=["run_id", "step"], columns="series", values="value")
        if wide.shape[1] != 2:
            continue
        wide = wide.rename(
            columns={f"{prefix}_actual": "actual", f"{prefix}_predicted": "predicted"}
        ).reset_index()
        parts.append(wide[["run_id", "step", "actual", "predicted"]])
    return pd.concat(parts, ignore_index=True) if parts else None


def _suite_thresholds(meta: dict[str, Any], folder: Path) -> dict[str, Any]:
    """The ``[compare]`` table of the suite text recorded in run.json, if any."""
    suite = meta.get("suite")
    text = suite.get("text") if isinstance(suite, dict) else None
    if not text or not isinstance(text, str):
        return {}
    try:
        table = tomllib.loads(text).get("compare", {})
    except tomllib.TOMLDecodeError:
        return {}
    if not isinstance(table, dict):
        raise BenchkitError(f"{folder / 'run.json'}: the suite's [compare] must be a table")
    return table


def _epoch_throughputs(rows: pd.DataFrame, curves: pd.DataFrame) -> dict[str, list[float]]:
    """Per run, the training samples per second of each epoch after warm-up
    (:func:`benchkit.run_result.epoch_throughputs`, the list whose median is
    ``samples_per_second``)."""
    if not {"run_id", "epoch", "seconds"} <= set(curves.columns):
        return {}
    curves = curves.assign(
        epoch=pd.to_numeric(curves["epoch"], errors="coerce"),
        seconds=pd.to_numeric(curves["seconds"], errors="coerce"),
        run_id=curves["run_id"].astype(str),
    )
    sizes = dict(
        zip(
            rows["run_id"],
            pd.to_numeric(rows.get("train_samples", pd.Series(dtype=float)), errors="coerce"),
            strict=False,
        )
    )
    out: dict[str, list[float]] = {}
    for run_id, curve in curves.sort_values(["run_id", "epoch"]).groupby("run_id", sort=False):
        samples = sizes.get(run_id)
        if samples is None or pd.isna(samples):
            continue
        rates = epoch_throughputs(curve["seconds"].tolist(), float(samples))
        if rates:
            out[str(run_id)] = rates
    return out


def _load_pytest_benchmark(path: Path, doc: dict[str, Any]) -> ResultSet:
    benchmarks = doc.get("benchmarks")
    if not isinstance(benchmarks, list):
        raise BenchkitError(f"{path}: 'benchmarks' must be a list")
    records, samples, summaries = [], {}, {}
    for i, bench in enumerate(benchmarks):
        stats = bench.get("stats") if isinstance(bench, dict) else None
        if not isinstance(stats, dict) or "median" not in stats or "name" not in bench:
            raise BenchkitError(f"{path}: benchmarks[{i}] has no name or no stats.median")
        params = bench.get("params")
        record = {
            "group": bench.get("group") or "",
            "name": str(bench.get("fullname") or bench["name"]),  # unique across files
            "params": json.dumps(params, sort_keys=True, default=str) if params else "",
            "status": "ok",
            "time": float(stats["median"]),
            "rounds": int(stats.get("rounds", 0)),
        }
        for key, value in (bench.get("extra_info") or {}).items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                record.setdefault(key, value)
        records.append(record)
        label = "/".join(x for x in (record["group"], record["name"]) if x)
        data = stats.get("data")
        if isinstance(data, list) and data:
            samples[label] = [float(v) for v in data]
        else:
            summaries[label] = Summary(
                float(stats["median"]), float(stats.get("iqr", 0.0)), int(stats.get("rounds", 1))
            )
    rows = pd.DataFrame(records)
    if rows.empty:
        rows = pd.DataFrame(columns=[*PYTEST_BENCHMARK_KEYS, "status", "time"])
    labels = [
        "/".join(x for x in (g, n) if x) for g, n in zip(rows["group"], rows["name"], strict=True)
    ]
    rows.insert(0, "run_id", labels)
    machine = doc.get("machine_info") or {}
    cpu = machine.get("cpu") or {}
    return ResultSet(
        path=path,
        kind="pytest-benchmark",
        rows=rows,
        key_columns=list(PYTEST_BENCHMARK_KEYS),
        group_columns=list(PYTEST_BENCHMARK_KEYS),
        meta=doc,
        samples={"time": samples},
        summaries={"time": summaries},
        repeats_from="rounds",
        environment={
            "cpu": str(cpu.get("brand_raw", machine.get("processor", ""))),
            "machine": str(machine.get("machine", "")),
            "python": str(machine.get("python_version", "")),
        },
    )
