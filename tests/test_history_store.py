"""The history database: recording result sets, reading them back, and refusing files that
are not ours."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from _resultsets import copy_set, edit_meta, shared_tiny_set

from benchkit.errors import BenchkitError
from benchkit.history import add, load, load_samples, open_store
from benchkit.history.store import APPLICATION_ID, SCHEMA_VERSION
from benchkit.resultset import load as load_result_set


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    return shared_tiny_set(tmp_path_factory)


def at_commit(src: Path, dst: Path, commit: str, started: str) -> Path:
    """A copy of ``src`` that says it was run at ``commit``, starting at ``started``."""
    copy_set(src, dst)

    def change(meta: dict) -> None:
        meta["environment"]["git"] = {"commit": commit, "dirty": False}
        meta["started_at"] = started

    edit_meta(dst, change)
    return dst


def test_a_result_set_reads_back_as_one_frame(tiny_set, tmp_path):
    db = tmp_path / "history.sqlite"
    src = at_commit(tiny_set, tmp_path / "a", "a" * 40, "2026-01-01T10:00:00+0000")
    with open_store(db) as store:
        outcome = add(store, src)
    assert outcome.added and outcome.runs == len(pd.read_csv(src / "results.csv"))
    frame = load(db)
    results = pd.read_csv(src / "results.csv")
    assert len(frame) == len(results)
    assert set(frame["commit"]) == {"a" * 40}
    assert set(frame["suite"]) == {"tiny"}
    merged = frame.merge(results, on="run_id", suffixes=("", "_csv"))
    assert (merged["samples_per_second"] == merged["samples_per_second_csv"]).all()
    assert (merged["status"] == merged["status_csv"]).all()
    # the workload is the key without the seed (the variant: the suite's recipe overrides)
    assert any(w.startswith("sine_mlp/sine/fp32/cpu/") for w in frame["workload"])
    samples = load_samples(db)
    assert set(samples["metric"]) == {"samples_per_second"}  # per epoch, from curves.csv
    expected = load_result_set(src).samples["samples_per_second"]
    assert len(samples) == sum(len(v) for v in expected.values())


def test_adding_the_same_set_twice_is_a_no_op(tiny_set, tmp_path):
    db = tmp_path / "history.sqlite"
    src = at_commit(tiny_set, tmp_path / "a", "b" * 40, "2026-01-01T10:00:00+0000")
    with open_store(db) as store:
        assert add(store, src).added
        before = {t: store.query(f"SELECT count(*) AS n FROM {t}")["n"][0] for t in TABLES}
        again = add(store, src)
        after = {t: store.query(f"SELECT count(*) AS n FROM {t}")["n"][0] for t in TABLES}
    assert not again.added
    assert "already recorded" in again.describe()
    assert before == after


TABLES = ("result_sets", "runs", "metrics", "samples", "environments")


def test_sets_are_ordered_by_commit_then_start(tiny_set, tmp_path):
    db = tmp_path / "history.sqlite"
    with open_store(db) as store:
        # added newest first; no git knows these commits, so the start time orders them
        for i in (3, 1, 2):
            src = at_commit(tiny_set, tmp_path / f"s{i}", f"{i}" * 40, f"2026-01-0{i}T10:00:00")
            add(store, src)
    assert list(dict.fromkeys(load(db)["commit"])) == [f"{i}" * 40 for i in (1, 2, 3)]


def test_a_set_without_a_commit_needs_one_given(tiny_set, tmp_path):
    src = copy_set(tiny_set, tmp_path / "nogit")
    edit_meta(src, lambda meta: meta["environment"].update(git=None))
    with open_store(tmp_path / "h.sqlite") as store:
        with pytest.raises(BenchkitError, match="--commit"):
            add(store, src)
        assert add(store, src, commit="c" * 40).info.commit == "c" * 40


def test_a_foreign_sqlite_file_is_refused(tmp_path):
    db = tmp_path / "other.sqlite"
    with sqlite3.connect(db) as other:
        other.execute("CREATE TABLE invoices (id INTEGER)")
    with pytest.raises(BenchkitError, match="not a benchkit history database"):
        open_store(db)
    with sqlite3.connect(db) as other:  # untouched
        assert other.execute("SELECT name FROM sqlite_master").fetchall() == [("invoices",)]


def test_a_file_that_is_not_sqlite_is_refused(tmp_path):
    db = tmp_path / "history.sqlite"
    db.write_text("results,are,not,here\n" * 100)
    with pytest.raises(BenchkitError, match="not a readable benchkit history database"):
        open_store(db)


def test_a_damaged_database_is_refused_in_one_line(tiny_set, tmp_path):
    db = tmp_path / "history.sqlite"
    src = at_commit(tiny_set, tmp_path / "a", "d" * 40, "2026-01-01T10:00:00+0000")
    with open_store(db) as store:
        add(store, src)
    data = bytearray(db.read_bytes())
    page = 4096
    for offset in range(page, len(data), page):  # scribble over every page but the header
        data[offset : offset + 64] = b"\xff" * 64
    db.write_bytes(bytes(data))
    with pytest.raises(BenchkitError) as caught:
        load(db)
    assert "not a readable benchkit history database" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_database_from_a_newer_benchkit_is_refused(tmp_path):
    db = tmp_path / "history.sqlite"
    open_store(db).close()
    with sqlite3.connect(db) as raw:
        raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(BenchkitError, match="newer benchkit"):
        open_store(db)


def test_a_new_database_is_marked_as_ours(tmp_path):
    db = tmp_path / "history.sqlite"
    open_store(db).close()
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_reading_needs_an_existing_database(tmp_path):
    with pytest.raises(BenchkitError, match="history add"):
        load(tmp_path / "missing.sqlite")
    assert not (tmp_path / "missing.sqlite").exists()


WRITER = textwrap.dedent(
    """
    import sys
    from benchkit.history import add, open_store
    db, *sets = sys.argv[1:]
    for path in sets:
        with open_store(db) as store:
            add(store, path)
    """
)


def test_two_processes_writing_at_once_lose_nothing(tiny_set, tmp_path):
    db = tmp_path / "history.sqlite"
    shared = at_commit(tiny_set, tmp_path / "shared", "e" * 40, "2026-01-01T09:00:00")
    sets = {
        name: [
            at_commit(tiny_set, tmp_path / f"{name}{i}", f"{name}{i}" * 20, f"2026-01-0{i + 1}")
            for i in range(3)
        ]
        for name in ("a", "b")
    }
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(db), str(shared), *map(str, paths)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for paths in sets.values()
    ]
    for writer in writers:
        _, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err
    frame = load(db)
    runs = len(pd.read_csv(tiny_set / "results.csv"))
    assert frame["set_id"].nunique() == 7  # 3 + 3 + the shared one, once
    assert len(frame) == 7 * runs


def test_a_pytest_benchmark_file_is_keyed_by_its_commit_info(tmp_path):
    import json

    doc = {
        "machine_info": {"machine": "x86_64", "cpu": {"brand_raw": "A CPU"}},
        "commit_info": {"id": "f" * 40, "time": "2026-01-02T03:04:05+01:00", "dirty": False},
        "datetime": "2026-01-02T04:00:00",
        "benchmarks": [
            {
                "group": "g",
                "name": "test_a",
                "fullname": "t.py::test_a",
                "stats": {"median": 0.01, "iqr": 0.001, "rounds": 3, "data": [0.01, 0.011, 0.009]},
            }
        ],
    }
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(doc))
    with open_store(tmp_path / "h.sqlite") as store:
        outcome = add(store, path)
        assert outcome.added and not add(store, path).added
    frame = load(tmp_path / "h.sqlite")
    assert frame[["commit", "commit_time", "suite", "workload", "time"]].values.tolist() == [
        ["f" * 40, "2026-01-02T02:04:05+00:00", "pytest-benchmark", "g/t.py::test_a", 0.01]
    ]
    assert load_samples(tmp_path / "h.sqlite")["value"].tolist() == [0.01, 0.011, 0.009]
