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

import json
import os
import shutil
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchkit.errors import BenchkitError
from benchkit.run_result import RunResult, warmup_epochs

SCHEMA_VERSION = 1

KEY_COLUMNS = ["model", "dataset", "precision", "device", "seed", "variant", "mode"]
#: What a key column holds in a result set written before it existed.
KEY_DEFAULTS = {"mode": "eager"}
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
    "peak_memory_bytes",
    "params",
    "train_samples",
    "batch_size",
    "optimizer",
    "lr",
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


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def default_out(name: str) -> Path:
    """``results/NAME-TIMESTAMP``, numbered when that folder exists already."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path("results") / f"{name}-{stamp}"
    n = 1
    while out.exists():
        n += 1
        out = Path("results") / f"{name}-{stamp}-{n}"
    return out


def new_result_folder(out: Path | None, suite_name: str) -> Path:
    """The folder a new result set of ``suite_name`` goes to: ``out``, or :func:`default_out`.

    :raises BenchkitError: ``out`` already holds a result set, or is a file.
    """
    if out is None:
        return default_out(suite_name)
    if (out / "results.csv").exists():
        raise BenchkitError(
            f"{out} already holds a result set; pass another --out or remove it first"
        )
    if out.exists() and not out.is_dir():
        raise BenchkitError(f"--out {out} is a file, not a folder")
    return out


def results_frame(results: list[RunResult]) -> pd.DataFrame:
    """``results.csv`` as a DataFrame, metric columns after the fixed ones."""
    frame = pd.DataFrame([result_row(r) for r in results])
    if frame.empty:
        return pd.DataFrame(columns=RESULT_COLUMNS)
    metric_cols = [c for c in frame.columns if c not in RESULT_COLUMNS]
    frame = frame[RESULT_COLUMNS + metric_cols]
    for col in _NULLABLE_INT:
        frame[col] = frame[col].astype("Int64")
    return frame


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


class ResultSetWriter:
    """Owns one result set folder while a suite runs: every file of it is written here.

    A convergence suite hands over each finished :class:`RunResult` (:meth:`add`):
    ``results.csv`` is rewritten at once, ``curves.csv`` and the optional tables
    (:data:`EXTRA_TABLES`) at most every ``curves_every_seconds`` and on :meth:`close`, so long
    suites do not spend their time rewriting curves. A throughput or memory suite hands over
    its whole table as it grows (:meth:`set_rows`). All files are always whole.

    ``header`` is what the run stage knows about the suite (``kind``, ``suite``,
    ``environment``, ``plugins``, ``started_at``); :meth:`meta` adds the schema version and the
    state, so ``run.json`` has one shape for every kind of suite.
    """

    def __init__(
        self, out_dir: Path, header: dict[str, Any], curves_every_seconds: float = 5.0
    ) -> None:
        self.out_dir = out_dir
        self.header = dict(header)
        self.results: list[RunResult] = []
        self.rows: pd.DataFrame | None = None
        self.curves_every_seconds = curves_every_seconds
        self._curves_written = 0.0
        out_dir.mkdir(parents=True, exist_ok=True)
        self._write_meta(finished=False)

    @property
    def runs(self) -> int:
        """Runs (convergence) or measurements (throughput, memory) written so far."""
        return len(self.rows) if self.rows is not None else len(self.results)

    def path(self, name: str) -> Path:
        """Where a file of the set lives, for tools that write it themselves (pytest-benchmark's
        ``benchmark.json``)."""
        return self.out_dir / name

    def add(self, result: RunResult) -> None:
        """Record a finished run and persist it."""
        self.results.append(result)
        self._write_results()
        if time.monotonic() - self._curves_written >= self.curves_every_seconds:
            self._write_curves()

    def set_rows(self, frame: pd.DataFrame) -> None:
        """Replace ``results.csv`` of a throughput or memory suite with ``frame``."""
        self.rows = frame
        atomic_write_text(self.out_dir / "results.csv", frame.to_csv(index=False))

    def set_environment(self, key: str, value: Any) -> None:
        """Add a fact learnt while running (pytest-benchmark's machine info) to ``run.json``."""
        self.header.setdefault("environment", {})[key] = value

    def write_table(self, name: str, frame: pd.DataFrame) -> None:
        """Write another table of the result set (``claims.csv``, ``crossover.csv``)."""
        atomic_write_text(self.out_dir / name, frame.to_csv(index=False))

    def close(self, interrupted: bool = False) -> None:
        """Write everything that is still pending and mark the set finished (or interrupted)."""
        if self.rows is None:
            self._write_results()
            self._write_curves()
        self._write_meta(finished=not interrupted, interrupted=interrupted)

    def meta(self, finished: bool, interrupted: bool = False) -> dict[str, Any]:
        """``run.json``: the same keys for every kind of suite."""
        meta = {
            "schema_version": SCHEMA_VERSION,
            "kind": self.header.get("kind", "convergence"),
            **self.header,
            "finished": finished,
            "interrupted": interrupted,
            "runs": self.runs,
        }
        if finished or interrupted:
            meta["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        return meta

    def _write_results(self) -> None:
        text = results_frame(self.results).to_csv(index=False)
        atomic_write_text(self.out_dir / "results.csv", text)

    def _write_curves(self) -> None:
        text = curves_frame(self.results).to_csv(index=False)
        atomic_write_text(self.out_dir / "curves.csv", text)
        for name, make in EXTRA_TABLES.items():
            frame = make(self.results)
            if len(frame) or (self.out_dir / name).exists():
                atomic_write_text(self.out_dir / name, frame.to_csv(index=False))
        self._curves_written = time.monotonic()

    def _write_meta(self, finished: bool, interrupted: bool = False) -> None:
        text = json.dumps(self.meta(finished, interrupted), indent=2, default=str) + "\n"
        atomic_write_text(self.out_dir / "run.json", text)


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

    @property
    def label(self) -> str:
        """A short name for tables: the folder or file name."""
        return self.path.name or str(self.path)


def row_label(row: pd.Series, key_columns: list[str]) -> str:
    """The ``run_id`` where there is one, else the key values joined by ``/``."""
    run_id = row.get("run_id")
    if isinstance(run_id, str) and run_id:
        return run_id
    return "/".join(str(row[c]) for c in key_columns if str(row[c]))


def row_fingerprint(result_set: ResultSet, row: pd.Series) -> dict[str, str]:
    """What must match for two runs' timings and last bits to be comparable: the torch
    build, the CPU and its vector capability, torch's thread count, and the row's device."""
    fp = dict(result_set.environment)
    name = row.get("device_name")
    if isinstance(name, str) and name:
        fp["device_name"] = name
    return fp


def load(path: str | Path) -> ResultSet:
    """Read a result set folder, or a pytest-benchmark JSON file.

    :raises BenchkitError: the path is missing or is neither kind, or its schema version is
        one this benchkit does not know.
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
    except json.JSONDecodeError as exc:
        raise BenchkitError(f"{path}: not valid JSON: {exc}") from None


def _read_csv(path: Path, text_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path)
        # Text columns as written: "nan" in nonfinite_loss is a word, not a missing number.
        text = [c for c in text_columns if c in frame.columns]
        if text:
            words = pd.read_csv(path, usecols=text, dtype=str, keep_default_na=False)
            frame[text] = words[text]
        return frame
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise BenchkitError(f"{path}: cannot read: {exc}") from None
    except pd.errors.EmptyDataError:
        raise BenchkitError(f"{path}: empty file") from None


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
    if version not in KNOWN_SCHEMA_VERSIONS:
        known = ", ".join(map(str, KNOWN_SCHEMA_VERSIONS))
        raise BenchkitError(
            f"{folder / 'run.json'}: schema version {version!r} is not one this benchkit "
            f"reads ({known}); compare result sets written by the same benchkit version"
        )
    rows = _read_csv(folder / "results.csv", ("variant", "status_detail", "nonfinite_loss"))
    for column, value in KEY_DEFAULTS.items():
        if column not in rows.columns:  # written before the column existed
            at = list(rows.columns).index("variant") + 1 if "variant" in rows else len(rows.columns)
            rows.insert(at, column, value)
    missing = [c for c in [*KEY_COLUMNS, "status"] if c not in rows.columns]
    if missing:
        raise BenchkitError(f"{folder / 'results.csv'}: missing columns {', '.join(missing)}")
    rows = _normalise_keys(rows, KEY_COLUMNS)
    if (folder / "criteria.csv").is_file():
        rows = _with_criteria(rows, _read_csv(folder / "criteria.csv"))
    curves = _read_csv(folder / "curves.csv") if (folder / "curves.csv").is_file() else None
    env = meta.get("environment") or {}
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
        if not info.get("benchkit") or "run_id" not in info or not isinstance(stats, dict):
            continue
        label = f"{info['run_id']}/{info['kind']}" if info.get("kind") else str(info["run_id"])
        data = [float(x) for x in stats.get("data") or [] if float(x) > 0]
        if data:
            step[label] = data
            if info.get("batch_size"):
                speed[label] = [float(info["batch_size"]) / x for x in data]
        elif "median" in stats:
            summaries[label] = Summary(
                float(stats["median"]), float(stats.get("iqr", 0.0)), int(stats.get("rounds", 1))
            )
    result_set.repeats_from = "rounds"


def _normalise_keys(rows: pd.DataFrame, key_columns: list[str]) -> pd.DataFrame:
    rows = rows.copy()
    for col in key_columns:
        values = rows[col]
        if col == "seed":
            rows[col] = values.map(lambda v: str(int(v)) if pd.notna(v) else "")
        else:
            rows[col] = values.fillna("").astype(str)
    return rows


def criterion_metric(criterion: str) -> str:
    """The metric name of the epochs to a criterion: ``epochs_to[loss <= 1e-08]``."""
    return f"epochs_to[{criterion}]"


def _with_criteria(rows: pd.DataFrame, criteria: pd.DataFrame) -> pd.DataFrame:
    """One column per criterion of ``criteria.csv``: the first epoch each run met it."""
    if not {"run_id", "criterion", "epoch"} <= set(criteria.columns) or criteria.empty:
        return rows
    wide = criteria.pivot_table(
        index="run_id", columns="criterion", values="epoch", aggfunc="first", dropna=False
    )
    wide.columns = [criterion_metric(str(c)) for c in wide.columns]
    return rows.merge(wide, how="left", left_on="run_id", right_index=True)


def _rollout(folder: Path) -> pd.DataFrame | None:
    """Actual and predicted rollout values per run and step: from ``series.csv`` (series
    named ``NAME_actual`` and ``NAME_predicted``) or ``rollout.csv`` (``run_id, step, actual,
    predicted``)."""
    if (folder / "rollout.csv").is_file():
        table = _read_csv(folder / "rollout.csv")
        if {"run_id", "step", "actual", "predicted"} <= set(table.columns):
            return table[["run_id", "step", "actual", "predicted"]]
    if not (folder / "series.csv").is_file():
        return None
    series = _read_csv(folder / "series.csv")
    if not {"run_id", "series", "step", "value"} <= set(series.columns):
        return None
    names = series["series"].astype(str)
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
    text = (meta.get("suite") or {}).get("text")
    if not text:
        return {}
    try:
        table = tomllib.loads(text).get("compare", {})
    except tomllib.TOMLDecodeError:
        return {}
    if not isinstance(table, dict):
        raise BenchkitError(f"{folder / 'run.json'}: the suite's [compare] must be a table")
    return table


def _epoch_throughputs(rows: pd.DataFrame, curves: pd.DataFrame) -> dict[str, list[float]]:
    """Per run, the training samples per second of each epoch after warm-up: the epoch's
    duration is the difference of consecutive ``seconds`` (time from the start of training
    to the end of the epoch)."""
    if not {"run_id", "epoch", "seconds"} <= set(curves.columns):
        return {}
    sizes = dict(
        zip(rows["run_id"], rows.get("train_samples", pd.Series(dtype=float)), strict=False)
    )
    out: dict[str, list[float]] = {}
    for run_id, curve in curves.sort_values(["run_id", "epoch"]).groupby("run_id", sort=False):
        samples = sizes.get(run_id)
        seconds = curve["seconds"].to_numpy(dtype=float)
        if samples is None or pd.isna(samples) or len(seconds) < 2 or np.isnan(seconds).any():
            continue
        durations = np.diff(seconds, prepend=0.0)[warmup_epochs(len(seconds)) :]
        durations = durations[durations > 0]
        if durations.size:
            out[str(run_id)] = list(float(samples) / durations)
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
