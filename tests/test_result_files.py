"""The result set on disk: results.csv, curves.csv, run.json, and atomic writes."""

from __future__ import annotations

import csv
import json

import pandas as pd

from benchkit.resultset import (
    CURVE_COLUMNS,
    RESULT_COLUMNS,
    SCHEMA_VERSION,
    ResultSetWriter,
    RunResult,
    read_results,
)


def _result(seed: int, curve: list[float]) -> RunResult:
    return RunResult(
        run_id=f"m/d/fp32/cpu/seed{seed}",
        model="m",
        dataset="d",
        precision="fp32",
        device="cpu",
        seed=seed,
        epochs=len(curve),
        final_loss=curve[-1],
        converged_epoch=1,
        metrics={"rollout_mse": 0.5},
        curve=curve,
        valid_curve=[v * 2 for v in curve],
        epoch_seconds=[0.1 * (i + 1) for i in range(len(curve))],
    )


def test_writer_persists_every_run_as_whole_files(tmp_path):
    writer = ResultSetWriter(tmp_path, {"suite": {"name": "s"}}, curves_every_seconds=0)
    writer.add(_result(0, [1.0, 0.5]))
    first = pd.read_csv(tmp_path / "results.csv")
    assert list(first["run_id"]) == ["m/d/fp32/cpu/seed0"]
    writer.add(_result(1, [2.0, 1.0, 0.25]))
    writer.close()
    results, curves, meta = read_results(tmp_path)
    assert list(results.columns[: len(RESULT_COLUMNS)]) == RESULT_COLUMNS
    assert "rollout_mse" in results.columns
    assert list(curves.columns) == CURVE_COLUMNS
    assert len(curves) == 5
    assert meta["schema_version"] == SCHEMA_VERSION
    assert meta["finished"] is True and meta["runs"] == 2
    assert not list(tmp_path.glob(".*.tmp")), "temporary files left behind"


def test_curves_join_results_on_run_id(tmp_path):
    writer = ResultSetWriter(tmp_path, {})
    writer.add(_result(0, [1.0, 0.5]))
    writer.close()
    results, curves, _ = read_results(tmp_path)
    joined = curves.merge(results[["run_id", "converged_epoch"]], on="run_id")
    assert len(joined) == 2
    assert list(joined["valid_loss"]) == [2.0, 1.0]
    assert list(joined["epoch"]) == [0, 1]


def test_floats_round_trip_exactly(tmp_path):
    value = 0.1 + 0.2  # not representable in few digits
    writer = ResultSetWriter(tmp_path, {})
    writer.add(_result(0, [value, 1e-300]))
    writer.close()
    _, curves, _ = read_results(tmp_path)
    assert list(curves["loss"]) == [value, 1e-300]


def test_integer_columns_stay_integers_when_empty(tmp_path):
    writer = ResultSetWriter(tmp_path, {})
    row = _result(0, [1.0])
    row.converged_epoch = None
    writer.add(row)
    writer.add(_result(1, [1.0]))
    writer.close()
    with open(tmp_path / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["converged_epoch"] for r in rows] == ["", "1"]
    assert [r["epochs"] for r in rows] == ["1", "1"]


def test_interrupted_set_is_marked(tmp_path):
    writer = ResultSetWriter(tmp_path, {})
    writer.add(_result(0, [1.0]))
    writer.close(interrupted=True)
    meta = json.loads((tmp_path / "run.json").read_text())
    assert meta["interrupted"] is True and meta["finished"] is False


def test_rows_appended_run_by_run_read_as_a_whole_table_would(tmp_path):
    """The writer formats a run's rows itself (cheaper than a DataFrame per run); the text is
    what DataFrame.to_csv writes for the same runs, odd values included."""
    from benchkit.resultset import criteria_frame, curves_frame, results_frame

    odd = [None, float("nan"), float("inf"), 1e-300, 0.1 + 0.2, 1.0, 1e20, -0.0]
    runs = []
    for seed, value in enumerate(odd):
        run = _result(seed, [value if value is not None else 1.0, 0.5])
        run.final_loss = value
        run.status_detail = 'a, "quoted"\nline' if seed % 2 else ""
        run.contended = [None, True, False][seed % 3]
        run.metrics = {"rollout_mse": 0.5} if seed % 2 else {"other": value}
        run.criteria = {"loss <= 0.1": (seed, 0.25), "loss == 0": (None, None)}
        runs.append(run)
    writer = ResultSetWriter(tmp_path, {})
    for run in runs:
        writer.add(run)
    writer.close()
    assert (tmp_path / "results.csv").read_text() == results_frame(runs).to_csv(index=False)
    assert (tmp_path / "curves.csv").read_text() == curves_frame(runs).to_csv(index=False)
    assert (tmp_path / "criteria.csv").read_text() == criteria_frame(runs).to_csv(index=False)
