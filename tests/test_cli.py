"""The command line end to end on a small suite."""

from __future__ import annotations

import json
import textwrap

import pandas as pd
import pytest

import benchkit.runner
from benchkit.cli import main

SMALL_SUITE = """
[suite]
name = "small"

[matrix]
devices = ["cpu"]
precisions = ["fp32", "fp16"]
seeds = [0, 1]

[[cases]]
model = "single_neuron"
dataset = "single_point"
target_loss = 1e-6
recipe = { epochs = 40 }

[[cases]]
model = "sine_mlp"
dataset = "sine"
target_loss = 0.5
recipe = { epochs = 3 }
"""


@pytest.fixture
def small_suite(tmp_path):
    folder = tmp_path / "suites" / "small"
    folder.mkdir(parents=True)
    (folder / "suite.toml").write_text(SMALL_SUITE)
    return folder


def test_run_writes_the_result_set_and_prints_the_table(small_suite, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["run", str(small_suite), "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    results = pd.read_csv(out / "results.csv")
    assert len(results) == 8
    assert set(results["status"]) <= {"ok", "diverged"}
    for column in (
        "device_name",
        "converged_epoch",
        "zero_loss_epoch",
        "samples_per_second",
        "peak_memory_bytes",
        "params",
        "rollout_mse",
    ):
        assert column in results.columns
    curves = pd.read_csv(out / "curves.csv")
    assert set(curves["run_id"]) == set(results["run_id"])
    meta = json.loads((out / "run.json").read_text())
    assert meta["suite"]["name"] == "small"
    assert meta["environment"]["command"][:2] == ["benchkit", "run"]
    assert meta["environment"]["torch"]
    assert "suite small: 8 runs" in captured.out
    assert "single_point" in captured.out and "converged@" in captured.out
    # progress goes to stderr, one line per run, no carriage returns when not a terminal
    assert captured.err.count("\n") == 8 and "\r" not in captured.err


def test_filters_narrow_and_quiet_silences_progress(small_suite, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(
        [
            "run",
            str(small_suite),
            "--out",
            str(out),
            "--model",
            "single_neuron",
            "--precision",
            "fp32",
            "--seeds",
            "1",
            "--quiet",
        ]
    )
    assert code == 0
    assert capsys.readouterr().err == ""
    results = pd.read_csv(out / "results.csv")
    assert list(results["run_id"]) == ["single_neuron/single_point/fp32/cpu/seed1"]


def test_default_out_is_a_new_timestamped_folder_under_results(small_suite, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["run", str(small_suite), "--quiet", "--model", "single_neuron", "--seeds", "0"]
    assert main(args) == 0
    assert main(args) == 0
    folders = sorted(p.name for p in (tmp_path / "results").iterdir())
    assert len(folders) == 2 and all(f.startswith("small-") for f in folders)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "suites/nope"], "suite 'suites/nope' not found"),
        (["run", "SUITE", "--model", "lstm9"], "--model lstm9 matches nothing"),
        (["run", "SUITE", "--device", "tpu"], "--device tpu matches nothing"),
        (["run", "SUITE", "--seeds", "x"], "--seeds 'x'"),
    ],
)
def test_user_errors_exit_2_with_one_clear_line(small_suite, tmp_path, capsys, args, message):
    args = [str(small_suite) if a == "SUITE" else a for a in args]
    code = main([*args, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("benchkit: error: ") and message in err
    assert "Traceback" not in err


def test_existing_result_set_is_never_overwritten(small_suite, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["run", str(small_suite), "--out", str(out), "--quiet", "--seeds", "0"]
    assert main(args) == 0
    assert main(args) == 2
    assert "already holds a result set" in capsys.readouterr().err


def test_a_run_error_exits_1_and_the_suite_goes_on(small_suite, tmp_path, monkeypatch, capsys):
    real = benchkit.runner._measure

    def flaky(case, *args, **kwargs):
        if case.model == "sine_mlp" and case.seed == 0:
            raise RuntimeError("plugin blew up")
        return real(case, *args, **kwargs)

    monkeypatch.setattr(benchkit.runner, "_measure", flaky)
    out = tmp_path / "out"
    code = main(["run", str(small_suite), "--out", str(out), "--quiet"])
    assert code == 1
    results = pd.read_csv(out / "results.csv")
    assert (results["status"] == "error").sum() == 2
    assert len(results) == 8
    assert "plugin blew up" in capsys.readouterr().out


def test_interrupt_keeps_the_finished_runs(small_suite, tmp_path, monkeypatch, capsys):
    real = benchkit.runner.run_case
    calls = []

    def interrupted_on_third(case, *args, **kwargs):
        calls.append(case)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(case, *args, **kwargs)

    monkeypatch.setattr(benchkit.runner, "run_case", interrupted_on_third)
    out = tmp_path / "out"
    code = main(["run", str(small_suite), "--out", str(out), "--quiet"])
    assert code == 130
    results = pd.read_csv(out / "results.csv")
    assert len(results) == 2
    assert len(pd.read_csv(out / "curves.csv")) == 80
    assert json.loads((out / "run.json").read_text())["interrupted"] is True
    assert "kept 2 finished runs" in capsys.readouterr().err


def test_suite_file_named_without_extension(tmp_path, capsys):
    (tmp_path / "quick.toml").write_text(textwrap.dedent(SMALL_SUITE))
    code = main(
        [
            "run",
            str(tmp_path / "quick"),
            "--out",
            str(tmp_path / "o"),
            "--quiet",
            "--model",
            "single_neuron",
            "--seeds",
            "0",
            "--precision",
            "fp32",
        ]
    )
    assert code == 0
