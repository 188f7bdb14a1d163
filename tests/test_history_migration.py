"""A history database written by schema version 1 opens under the current one: migrated in
place, nothing lost, and the criteria in their own table."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from benchkit.history import add, load, load_criteria, open_store
from benchkit.history.store import SCHEMA_VERSION

V1_DUMP = Path(__file__).parent / "data" / "history-v1.sql"
COMMIT = "1234567890abcdef1234567890abcdef12345678"


@pytest.fixture
def v1_database(tmp_path: Path) -> Path:
    db = tmp_path / "history.sqlite"
    with sqlite3.connect(db) as raw:
        raw.executescript(V1_DUMP.read_text())
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == 1
    return db


def test_version_1_migrates_to_the_current_schema(v1_database: Path):
    with sqlite3.connect(v1_database) as raw:
        before = raw.execute(
            "SELECT run, metric, value FROM metrics WHERE metric LIKE 'epochs_to[%' ORDER BY 1, 2"
        ).fetchall()
        metrics_before = raw.execute("SELECT count(*) FROM metrics").fetchone()[0]
    assert before == [(1, "epochs_to[loss <= 0.01]", 4.0), (2, "epochs_to[loss <= 0.01]", 5.0)]

    with open_store(v1_database) as store:
        assert store.schema_version() == SCHEMA_VERSION == 2
        moved = store.query("SELECT count(*) AS n FROM metrics")["n"][0]
    assert moved == metrics_before - len(before)  # the epochs left the metrics table

    criteria = load_criteria(v1_database)
    assert criteria[["run", "criterion", "epoch"]].values.tolist() == [
        [1, "loss <= 0.01", 4],
        [2, "loss <= 0.01", 5],
    ]
    assert criteria["seconds"].isna().all()  # version 1 did not keep them
    frame = load(v1_database)
    assert frame["epochs_to[loss <= 0.01]"].tolist() == [4, 5]
    assert set(frame["commit"]) == {COMMIT}
    assert frame["converged_epoch"].notna().all()


def test_a_migrated_database_takes_new_sets_with_their_seconds(v1_database: Path, tmp_path):
    from _resultsets import run_suite

    src = run_suite(
        tmp_path / "new",
        '[suite]\nname = "migration"\n[matrix]\ndevices = ["cpu"]\nprecisions = ["fp32"]\n'
        'seeds = [0]\n[[cases]]\nmodel = "single_neuron"\ndataset = "single_point"\n'
        'criteria = ["loss <= 0.01"]\nrecipe = { epochs = 20 }\n',
    )
    with open_store(v1_database) as store:
        assert add(store, src, commit="f" * 40).added
    criteria = load_criteria(v1_database)
    new = criteria[criteria["commit"] == "f" * 40]
    assert len(new) == 1 and new["seconds"].notna().all()
    assert len(load(v1_database)) == 3


def test_migrating_twice_is_harmless(v1_database: Path):
    open_store(v1_database).close()
    first = load(v1_database)
    open_store(v1_database).close()
    assert load(v1_database).equals(first)
