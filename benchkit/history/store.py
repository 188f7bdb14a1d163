"""The history database: result sets over commits, in one SQLite file.

``benchkit history add`` records result sets here; ``benchkit history show`` and
:func:`load` read them back. The file is plain SQLite (the standard library's ``sqlite3``):
one file to cache or upload as a CI artifact, readable by any SQLite client.

Schema (version :data:`SCHEMA_VERSION`; ``PRAGMA user_version`` holds it and ``PRAGMA
application_id`` marks the file as benchkit's, :data:`APPLICATION_ID`):

``result_sets``
    one row per recorded result set: ``commit_sha``, ``parent_sha`` and ``commit_time`` (from
    git where the commit is known to it), ``dirty``, ``started_at``, ``suite``,
    ``suite_sha256``, ``kind``, ``environment`` (fingerprint of the set's environment, see
    ``environments``), ``finished``, ``path`` (where it was read from), ``run_json`` (the
    set's ``run.json``, whole), ``added_at``; times are ISO 8601 in UTC. A set is keyed by
    ``(commit_sha, started_at, suite_sha256, environment)``: adding it again is a no-op.
``environments``
    ``fingerprint`` → ``description`` (JSON): what must match for two timings to be
    comparable (torch build, CPU and its vector capability, torch threads; and, per run, the
    device's name). Fingerprints are the first 12 hex digits of the SHA-256 of the JSON.
``runs``
    one row per run: ``set_id``, ``run_id``, ``workload`` (the key without the seed, e.g.
    ``sine_mlp/sine/fp32/cpu``), ``model``, ``dataset``, ``precision``, ``device``, ``seed``,
    ``variant``, ``device_name``, ``status``, ``status_detail``, ``fingerprint`` (the run's
    environment: the set's plus its device name).
``metrics``
    ``(run, metric)`` → ``value`` (a number) or ``text``: every other column of
    ``results.csv``.
``samples``
    ``(run, metric, position)`` → ``value``: the repeats within a run (per-epoch samples per
    second after warm-up, from ``curves.csv``; benchmark rounds of a throughput suite).
``criteria`` (since version 2)
    ``(run, criterion)`` → ``epoch`` (the first epoch the criterion held; empty: never) and
    ``seconds`` (training time to it), from ``criteria.csv``. :func:`load` shows the epochs
    as ``epochs_to[CRITERION]`` columns, as ``benchkit compare`` names them.

Versions: 1 kept the epochs to each criterion among ``metrics`` (as ``epochs_to[…]``) and
not the seconds; 2 moved them into ``criteria``. Opening an older file migrates it in one
transaction (:data:`MIGRATIONS`); a new file is created at version 1 and migrated, so every
migration runs on every new database.

Writers are safe to run concurrently: each ``add`` is one ``BEGIN IMMEDIATE`` transaction,
and a writer waits up to :data:`BUSY_TIMEOUT_SECONDS` for another to finish. A file that is
not SQLite, another program's SQLite database, one written by a newer benchkit, or a damaged
one raises :class:`~benchkit.errors.BenchkitError` with one line naming the file.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import math
import os
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from benchkit.errors import BenchkitError

#: ``PRAGMA application_id`` of a benchkit history database: "bkhi" in ASCII.
APPLICATION_ID = 0x626B6869
SCHEMA_VERSION = 2
DEFAULT_PATH = Path("results") / "history.sqlite"
#: Environment variable naming the database when ``--db`` is not given (for CI).
ENV_VARIABLE = "BENCHKIT_HISTORY"
BUSY_TIMEOUT_SECONDS = 60.0

SCHEMA_V1 = """
CREATE TABLE environments (
    fingerprint TEXT PRIMARY KEY,
    description TEXT NOT NULL
);
CREATE TABLE result_sets (
    id INTEGER PRIMARY KEY,
    commit_sha TEXT NOT NULL,
    parent_sha TEXT,
    commit_time TEXT,
    dirty INTEGER NOT NULL DEFAULT 0,
    started_at TEXT NOT NULL,
    suite TEXT NOT NULL,
    suite_sha256 TEXT NOT NULL,
    kind TEXT NOT NULL,
    environment TEXT NOT NULL REFERENCES environments(fingerprint),
    finished INTEGER,
    path TEXT,
    run_json TEXT,
    added_at TEXT NOT NULL,
    UNIQUE (commit_sha, started_at, suite_sha256, environment)
);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    set_id INTEGER NOT NULL REFERENCES result_sets(id) ON DELETE CASCADE,
    run_id TEXT NOT NULL,
    workload TEXT NOT NULL,
    model TEXT,
    dataset TEXT,
    precision TEXT,
    device TEXT,
    seed TEXT,
    variant TEXT,
    device_name TEXT,
    status TEXT NOT NULL,
    status_detail TEXT,
    fingerprint TEXT NOT NULL REFERENCES environments(fingerprint)
);
CREATE INDEX runs_by_set ON runs(set_id);
CREATE INDEX runs_by_workload ON runs(workload, fingerprint);
CREATE TABLE metrics (
    run INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    metric TEXT NOT NULL,
    value REAL,
    text TEXT,
    PRIMARY KEY (run, metric)
) WITHOUT ROWID;
CREATE TABLE samples (
    run INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    metric TEXT NOT NULL,
    position INTEGER NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (run, metric, position)
) WITHOUT ROWID;
"""

EPOCHS_TO = "epochs_to["


def _v1_to_v2(connection: sqlite3.Connection) -> None:
    """Criteria get their own table (with the seconds to each, from now on); the epochs
    version 1 kept among the metrics move there."""
    connection.execute(
        """CREATE TABLE criteria (
            run INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            criterion TEXT NOT NULL,
            epoch INTEGER,
            seconds REAL,
            PRIMARY KEY (run, criterion)
        ) WITHOUT ROWID"""
    )
    prefix = len(EPOCHS_TO)
    connection.execute(
        "INSERT INTO criteria (run, criterion, epoch, seconds) "
        f"SELECT run, substr(metric, {prefix + 1}, length(metric) - {prefix + 1}), "
        "CAST(value AS INTEGER), NULL FROM metrics "
        "WHERE substr(metric, 1, ?) = ? AND metric LIKE '%]'",
        (prefix, EPOCHS_TO),
    )
    connection.execute(
        "DELETE FROM metrics WHERE substr(metric, 1, ?) = ? AND metric LIKE '%]'",
        (prefix, EPOCHS_TO),
    )


#: Migrations: ``MIGRATIONS[v]`` turns a version-``v`` database into version ``v + 1``.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _v1_to_v2}

# Columns of results.csv that are labels of the run, not metrics.
_RUN_COLUMNS = ("run_id", "device_name", "status", "status_detail")
_KEYS = ("model", "dataset", "precision", "device", "seed", "variant")


def default_path() -> Path:
    """``$BENCHKIT_HISTORY`` if set, else ``results/history.sqlite``."""
    return Path(os.environ.get(ENV_VARIABLE) or DEFAULT_PATH)


@contextlib.contextmanager
def _guard(path: Path) -> Iterator[None]:
    """Turn SQLite's errors into one line for the user."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        text = str(exc)
        if "locked" in text or "busy" in text:
            raise BenchkitError(
                f"{path}: the history database stayed locked by another writer for "
                f"{BUSY_TIMEOUT_SECONDS:.0f} s; try again when it has finished"
            ) from None
        if "unable to open" in text or "readonly" in text:
            raise BenchkitError(f"{path}: cannot open the history database: {text}") from None
        raise BenchkitError(_damaged(path, text)) from None
    except sqlite3.DatabaseError as exc:
        raise BenchkitError(_damaged(path, str(exc))) from None


def _damaged(path: Path, why: str) -> str:
    return (
        f"{path}: not a readable benchkit history database ({why}); restore it from a "
        "backup or CI artifact, or pass --db with a new path"
    )


class HistoryStore:
    """An open history database. Use :func:`open_store` (or as a context manager)."""

    def __init__(self, path: Path, connection: sqlite3.Connection):
        self.path = path
        self.connection = connection

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection."""
        self.connection.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that takes the database's write lock at once (``BEGIN
        IMMEDIATE``), so two writers never interleave; rolled back on any error."""
        with _guard(self.path):
            self.connection.execute("BEGIN IMMEDIATE")
            try:
                yield self.connection
            except BaseException:
                self.connection.execute("ROLLBACK")
                raise
            self.connection.execute("COMMIT")

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> pd.DataFrame:
        """The rows of a read-only query as a DataFrame."""
        with _guard(self.path):
            cursor = self.connection.execute(sql, params)
            names = [d[0] for d in cursor.description]
            return pd.DataFrame(cursor.fetchall(), columns=names)

    def schema_version(self) -> int:
        """The schema version stored in the file."""
        with _guard(self.path):
            return int(self.connection.execute("PRAGMA user_version").fetchone()[0])


def open_store(path: str | Path | None = None, create: bool = True) -> HistoryStore:
    """Open (and with ``create``, create or migrate) the history database at ``path``.

    :param path: the file; default :func:`default_path`.
    :param create: make a new database when there is none (``history add``); without it a
        missing file is an error (``history show``).
    :raises BenchkitError: the path is a folder, missing (without ``create``), not SQLite,
        another program's database, written by a newer benchkit, or damaged.
    """
    path = Path(path) if path is not None else default_path()
    if path.is_dir():
        raise BenchkitError(f"{path} is a folder; --db takes the database file's path")
    if not path.exists():
        if not create:
            raise BenchkitError(
                f"{path}: no history database; record result sets first with "
                "`benchkit history add RESULTS --db PATH`"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
    with _guard(path):
        connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
    store = HistoryStore(path, connection)
    try:
        with _guard(path):
            connection.execute("PRAGMA foreign_keys = ON")
            _prepare(store, create)
    except BaseException:
        connection.close()
        raise
    return store


def _identity(connection: sqlite3.Connection) -> tuple[int, int, int]:
    app = int(connection.execute("PRAGMA application_id").fetchone()[0])
    version = int(connection.execute("PRAGMA user_version").fetchone()[0])
    tables = int(connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0])
    return app, version, tables


def _prepare(store: HistoryStore, create: bool) -> None:
    """Check the file is ours; create the schema in an empty one; migrate an older one."""
    app, version, tables = _identity(store.connection)
    if app == APPLICATION_ID and version == SCHEMA_VERSION:
        return
    _check_identity(store.path, app, version, tables, create)
    with store.transaction() as connection:
        # Another process may have created or migrated it while we waited for the lock.
        app, version, tables = _identity(connection)
        _check_identity(store.path, app, version, tables, create)
        if app == 0 and tables == 0:
            _execute_script(connection, SCHEMA_V1)
            version = 1
            connection.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        while version < SCHEMA_VERSION:
            MIGRATIONS[version](connection)
            version += 1
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _execute_script(connection: sqlite3.Connection, script: str) -> None:
    """Run ``;``-separated statements inside the open transaction (``executescript`` would
    commit it first)."""
    for statement in script.split(";"):
        if statement.strip():
            connection.execute(statement)


def _check_identity(path: Path, app: int, version: int, tables: int, create: bool) -> None:
    if app == 0 and tables == 0:
        if not create:
            raise BenchkitError(
                f"{path}: the history database is empty; record result sets first with "
                "`benchkit history add`"
            )
        return
    if app != APPLICATION_ID:
        raise BenchkitError(
            f"{path}: not a benchkit history database (an SQLite file of another program); "
            "pass --db with another path"
        )
    if version > SCHEMA_VERSION:
        raise BenchkitError(
            f"{path}: written by a newer benchkit (history schema {version}, this one reads "
            f"up to {SCHEMA_VERSION}); upgrade benchkit"
        )
    if version < 1:
        raise BenchkitError(_damaged(path, f"schema version {version}"))


def fingerprint(description: dict[str, Any]) -> str:
    """A short, stable name for an environment: 12 hex digits of the SHA-256 of its JSON."""
    text = json.dumps(description, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class SetInfo:
    """What keys a result set in the history: its commit, time, suite and environment."""

    commit: str
    dirty: bool
    started_at: str
    suite: str
    suite_sha256: str
    kind: str
    finished: bool | None
    commit_time: str | None = None
    parent: str | None = None


@dataclass(frozen=True)
class AddOutcome:
    """The result of :func:`add`: whether the set was new, and what it was keyed by."""

    path: Path
    added: bool
    info: SetInfo
    runs: int
    environment: str

    def describe(self) -> str:
        """One line for the terminal."""
        what = "added" if self.added else "already recorded (nothing added)"
        dirty = " (dirty tree)" if self.info.dirty else ""
        return (
            f"{what}: {self.path}: suite {self.info.suite}, commit {self.info.commit[:12]}"
            f"{dirty}, {self.runs} runs, environment {self.environment}"
        )


def _git(repo: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=repo, capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def commit_facts(commit: str, repo: Path) -> tuple[str, str | None, str | None]:
    """The full hash, committer time (ISO 8601) and first parent of ``commit`` as the git
    repository at ``repo`` knows it; the hash as given and ``None`` where git does not."""
    full = _git(repo, "rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}")
    if not full:
        return commit, None, None
    shown = _git(repo, "show", "-s", "--format=%cI%n%P", full) or ""
    lines = shown.splitlines()
    when = lines[0] if lines else None
    parents = lines[1].split() if len(lines) > 1 else []
    return full, when or None, parents[0] if parents else None


def utc(text: str | None) -> str | None:
    """An ISO 8601 time in UTC (``2026-01-31T10:00:00+00:00``), so times from machines in
    other zones sort as text; a time without a zone is taken as UTC; anything else as given."""
    if not text:
        return text
    try:
        moment = datetime.datetime.fromisoformat(str(text))
    except ValueError:
        return str(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC).isoformat(timespec="seconds")


def set_info(result_set: Any, commit: str | None = None, repo: Path | None = None) -> SetInfo:
    """The history key of a result set read by :func:`benchkit.resultset.load`.

    :param commit: record it under this commit instead of the one in its ``run.json`` (for
        sets made outside a git checkout).
    :param repo: the git repository to ask for the commit's time and parent (default: the
        current directory); without one they stay empty and sets are ordered by start time.
    :raises BenchkitError: no commit is known, or the set has no start time.
    """
    meta = result_set.meta or {}
    if result_set.kind == "pytest-benchmark":
        git = meta.get("commit_info") or {}
        recorded, dirty = git.get("id"), bool(git.get("dirty"))
        started = meta.get("datetime")
        suite, sha, kind, finished = "pytest-benchmark", "", "pytest-benchmark", True
        git_time = git.get("time")
    else:
        git = (meta.get("environment") or {}).get("git") or {}
        recorded, dirty = git.get("commit"), bool(git.get("dirty"))
        started = meta.get("started_at")
        suite_meta = meta.get("suite") or {}
        suite = str(suite_meta.get("name") or "")
        sha = str(suite_meta.get("sha256") or "")
        kind = str(meta.get("kind") or "convergence")
        finished = meta.get("finished")
        git_time = None
    where = result_set.path
    if commit:
        recorded, dirty = commit, False
    if not recorded:
        raise BenchkitError(
            f"{where}: no git commit is recorded (it ran outside a git checkout); pass "
            "--commit SHA to record it under one"
        )
    if not started:
        raise BenchkitError(f"{where}: no start time recorded; is this a complete result set?")
    full, when, parent = commit_facts(str(recorded), repo or Path.cwd())
    return SetInfo(
        commit=full,
        dirty=dirty,
        started_at=str(utc(str(started))),
        suite=suite,
        suite_sha256=sha,
        kind=kind,
        finished=None if finished is None else bool(finished),
        commit_time=utc(when or git_time),
        parent=parent,
    )


def workload_labels(result_set: Any) -> list[str]:
    """Per row, the workload it measures: the key without the seed (``model/dataset/
    precision/device[/variant]``), plus the ``kind`` of a throughput or memory row and, where
    that still repeats within a seed, the batch size."""
    rows = result_set.rows
    columns = [c for c in result_set.group_columns if c != "seed"]
    labels = ["/".join(str(v) for v in values if str(v)) for values in rows[columns].to_numpy()]
    if "kind" in rows.columns:
        labels = [
            f"{x}/{k}" if isinstance(k, str) and k else x
            for x, k in zip(labels, rows["kind"], strict=True)
        ]
    seeds = rows["seed"].astype(str).tolist() if "seed" in rows.columns else [""] * len(rows)
    if "batch_size" in rows.columns and len(set(zip(labels, seeds, strict=True))) < len(rows):
        labels = [
            f"{x}/batch{int(b)}" if pd.notna(b) else x
            for x, b in zip(labels, rows["batch_size"], strict=True)
        ]
    if len(set(zip(labels, seeds, strict=True))) < len(rows):
        labels = [str(r) for r in rows["run_id"]]
    return labels


def _metric_items(row: pd.Series, skip: set[str]) -> list[tuple[str, float | None, str | None]]:
    items = []
    for metric, value in row.items():
        if metric in skip or str(metric).startswith(EPOCHS_TO):
            continue
        if isinstance(value, str):
            if value:
                items.append((str(metric), None, value))
        elif isinstance(value, bool):
            items.append((str(metric), float(value), None))
        elif value is not None and not pd.isna(value):
            number = float(value)
            if math.isfinite(number):
                items.append((str(metric), number, None))
            else:
                items.append((str(metric), None, str(number)))
    return items


def add(
    store: HistoryStore,
    source: str | Path,
    commit: str | None = None,
    repo: Path | None = None,
) -> AddOutcome:
    """Record the result set at ``source`` (a folder from ``benchkit run`` or a
    pytest-benchmark JSON file); a set already recorded is left as it is.

    :raises BenchkitError: the set cannot be read, has no commit, or the database cannot be
        written.
    """
    from benchkit.resultset import load as load_result_set
    from benchkit.resultset import row_fingerprint

    result_set = load_result_set(source)
    info = set_info(result_set, commit, repo)
    set_env = dict(result_set.environment)
    set_fp = fingerprint(set_env)
    rows = result_set.rows
    labels = workload_labels(result_set)
    skip = {*result_set.key_columns, *_RUN_COLUMNS, "kind"}
    run_json = json.dumps(result_set.meta, default=str) if result_set.kind == "benchkit" else None
    with store.transaction() as db:
        db.execute(
            "INSERT OR IGNORE INTO environments (fingerprint, description) VALUES (?, ?)",
            (set_fp, json.dumps(set_env, sort_keys=True)),
        )
        cursor = db.execute(
            "INSERT OR IGNORE INTO result_sets (commit_sha, parent_sha, commit_time, dirty, "
            "started_at, suite, suite_sha256, kind, environment, finished, path, run_json, "
            "added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                info.commit,
                info.parent,
                info.commit_time,
                int(info.dirty),
                info.started_at,
                info.suite,
                info.suite_sha256,
                info.kind,
                set_fp,
                None if info.finished is None else int(info.finished),
                str(result_set.path),
                run_json,
                time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            ),
        )
        if cursor.rowcount == 0:
            return AddOutcome(result_set.path, False, info, len(rows), set_fp)
        set_id = cursor.lastrowid
        run_ids: dict[str, int] = {}
        for (_, row), workload in zip(rows.iterrows(), labels, strict=True):
            row_env = row_fingerprint(result_set, row)
            row_fp = fingerprint(row_env)
            db.execute(
                "INSERT OR IGNORE INTO environments (fingerprint, description) VALUES (?, ?)",
                (row_fp, json.dumps(row_env, sort_keys=True)),
            )
            keys = [_text(row.get(k)) for k in _KEYS]
            run = db.execute(
                "INSERT INTO runs (set_id, run_id, workload, model, dataset, precision, device, "
                "seed, variant, device_name, status, status_detail, fingerprint) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    set_id,
                    str(row["run_id"]),
                    workload,
                    *keys,
                    _text(row.get("device_name")),
                    str(row["status"]),
                    _text(row.get("status_detail")),
                    row_fp,
                ),
            ).lastrowid
            run_ids[str(row["run_id"])] = run
            db.executemany(
                "INSERT INTO metrics (run, metric, value, text) VALUES (?, ?, ?, ?)",
                [(run, *item) for item in _metric_items(row, skip)],
            )
        criteria = _criteria(result_set)
        db.executemany(
            "INSERT INTO criteria (run, criterion, epoch, seconds) VALUES (?, ?, ?, ?)",
            [
                (run_ids[run_id], *item)
                for run_id, items in criteria.items()
                if run_id in run_ids
                for item in items
            ],
        )
        for metric, per_run in result_set.samples.items():
            for label, values in per_run.items():
                if label not in run_ids:
                    continue
                db.executemany(
                    "INSERT INTO samples (run, metric, position, value) VALUES (?, ?, ?, ?)",
                    [
                        (run_ids[label], metric, i, float(v))
                        for i, v in enumerate(values)
                        if math.isfinite(float(v))
                    ],
                )
    return AddOutcome(result_set.path, True, info, len(rows), set_fp)


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, str) or pd.isna(value):
        return None
    return float(value)


def _criteria(result_set: Any) -> dict[str, list[tuple[str, int | None, float | None]]]:
    """Per run, each criterion with the first epoch it held and the seconds to it: from
    ``criteria.csv`` where the set has one, else from the ``epochs_to[…]`` columns."""
    out: dict[str, list[tuple[str, int | None, float | None]]] = {}
    table = result_set.path / "criteria.csv" if result_set.path.is_dir() else None
    if table is not None and table.is_file():
        frame = pd.read_csv(table)
        if {"run_id", "criterion", "epoch"} <= set(frame.columns):
            for row in frame.itertuples(index=False):
                epoch = _number(row.epoch)
                seconds = _number(getattr(row, "seconds", None))
                out.setdefault(str(row.run_id), []).append(
                    (str(row.criterion), None if epoch is None else int(epoch), seconds)
                )
            return out
    columns = [c for c in result_set.rows.columns if str(c).startswith(EPOCHS_TO)]
    for _, row in result_set.rows.iterrows():
        for column in columns:
            epoch = _number(row[column])
            criterion = str(column)[len(EPOCHS_TO) : -1]
            out.setdefault(str(row["run_id"]), []).append(
                (criterion, None if epoch is None else int(epoch), None)
            )
    return out


def _text(value: Any) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return str(value)


_RUNS_SQL = """
SELECT r.id AS run, s.id AS set_id, s.commit_sha AS "commit", s.parent_sha AS parent,
       s.commit_time, s.dirty, s.started_at, s.suite, s.suite_sha256, s.kind,
       s.environment AS set_environment, s.finished, s.path AS set_path,
       r.run_id, r.workload, r.model, r.dataset, r.precision, r.device, r.seed, r.variant,
       r.device_name, r.status, r.status_detail, r.fingerprint
FROM runs r JOIN result_sets s ON s.id = r.set_id
ORDER BY coalesce(s.commit_time, s.started_at), s.started_at, s.id, r.id
"""


def _wide(runs: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    if metrics.empty:
        return runs
    metrics = metrics.assign(
        v=metrics["value"].astype(object).where(metrics["value"].notna(), metrics["text"])
    )
    wide = metrics.pivot(index="run", columns="metric", values="v")
    for column in wide.columns:
        values = wide[column].dropna()
        if all(isinstance(v, float | int) for v in values):
            wide[column] = pd.to_numeric(wide[column])
    wide = wide[sorted(wide.columns, key=lambda m: (m.startswith("epochs_to["), m))]
    return runs.merge(wide, how="left", left_on="run", right_index=True)


def load(db: str | Path | None = None) -> pd.DataFrame:
    """The whole history as one DataFrame: one row per recorded run, oldest commit first.

    Columns: the run's result set (``commit``, ``parent``, ``commit_time``, ``dirty``,
    ``started_at``, ``suite``, ``suite_sha256``, ``kind``, ``set_environment``,
    ``finished``, ``set_path``, ``set_id``), the run (``run_id``, ``workload``, ``model``,
    ``dataset``, ``precision``, ``device``, ``seed``, ``variant``, ``device_name``,
    ``status``, ``status_detail``, ``fingerprint``) and one column per metric (numbers, or
    text for metrics such as ``optimizer``); ``run`` is the run's id in the database.

    :param db: the database file; default ``$BENCHKIT_HISTORY`` or ``results/history.sqlite``.
    :raises BenchkitError: no database there, or one that cannot be read.
    """
    with open_store(db, create=False) as store:
        runs = store.query(_RUNS_SQL)
        metrics = store.query(
            "SELECT run, metric, value, text FROM metrics UNION ALL "
            f"SELECT run, '{EPOCHS_TO}' || criterion || ']', epoch, NULL FROM criteria"
        )
    return _wide(runs, metrics)


def load_criteria(db: str | Path | None = None) -> pd.DataFrame:
    """Per run and criterion, the first epoch it held and the training seconds to it:
    ``run``, ``commit``, ``started_at``, ``suite``, ``workload``, ``seed``, ``fingerprint``,
    ``criterion``, ``epoch``, ``seconds`` (empty epoch: never met)."""
    with open_store(db, create=False) as store:
        return store.query(
            'SELECT c.run, s.commit_sha AS "commit", s.started_at, s.suite, r.workload, '
            "r.seed, r.fingerprint, c.criterion, c.epoch, c.seconds FROM criteria c "
            "JOIN runs r ON r.id = c.run JOIN result_sets s ON s.id = r.set_id "
            "ORDER BY c.run, c.criterion"
        )


def load_samples(db: str | Path | None = None) -> pd.DataFrame:
    """The repeats within runs (``samples``), one row per sample: ``run``, ``commit``,
    ``started_at``, ``suite``, ``workload``, ``seed``, ``fingerprint``, ``metric``,
    ``position``, ``value``."""
    with open_store(db, create=False) as store:
        return store.query(
            'SELECT m.run, s.commit_sha AS "commit", s.started_at, s.suite, r.workload, '
            "r.seed, r.fingerprint, m.metric, m.position, m.value FROM samples m "
            "JOIN runs r ON r.id = m.run JOIN result_sets s ON s.id = r.set_id "
            "ORDER BY m.run, m.metric, m.position"
        )
