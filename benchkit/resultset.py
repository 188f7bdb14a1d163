"""Result sets as ``benchkit compare`` and ``benchkit report`` read them.

Two sources give the same :class:`ResultSet`:

- a folder written by ``benchkit run`` (``results.csv``, ``run.json``; ``curves.csv`` when
  present: committed baselines leave it out). Rows are keyed by :data:`KEY_COLUMNS`; the
  repeats of a timing are the per-epoch samples after warm-up, taken from ``curves.csv``;
- a pytest-benchmark JSON file (``pytest --benchmark-json``). Rows are keyed by benchmark
  group, name and params; the repeats of ``time`` (seconds per round) are ``stats.data``
  when the file was saved with ``--benchmark-save-data``, else median, IQR and rounds.

Anything a user can get wrong (a missing file, a schema version this benchkit does not know,
a JSON file that is neither) raises :class:`~benchkit.errors.BenchkitError` naming the path.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchkit.errors import BenchkitError
from benchkit.results import KEY_COLUMNS, SCHEMA_VERSION

KNOWN_SCHEMA_VERSIONS = (SCHEMA_VERSION,)
PYTEST_BENCHMARK_KEYS = ["group", "name", "params"]


def warmup_epochs(epochs: int) -> int:
    """Epochs left out of throughput: the same rule as :func:`benchkit.runner.warmup_epochs`
    (repeated here so reading a result set does not import torch; a test keeps them equal)."""
    return min(10, max(1, epochs // 10))


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
