"""Faults a result set survives, and exit codes that mean what the README says.

Each test here is a row of docs/failure-modes.md (tests/test_failure_modes.py keeps the two
in step). The signal tests run ``benchkit run`` in a child process and stop it for real.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import benchkit.resultset
import benchkit.runner
from benchkit.cli import main
from benchkit.resultset import ResultSetWriter, default_out, load

FAST_SUITE = """
[suite]
name = "fast"

[matrix]
devices = ["cpu"]
precisions = ["fp32"]
seeds = [0, 1, 2]

[[cases]]
model = "single_neuron"
dataset = "line"
target_loss = 0.01
criteria = ["loss <= 0.1", "loss <= 0.01"]
recipe = { epochs = 30 }

[[cases]]
model = "sine_mlp"
dataset = "sine"
target_loss = 0.1
recipe = { epochs = 12 }
"""

# Runs long enough (a second or so each) to stop the suite between two of them.
SLOW_SUITE = """
[suite]
name = "slow"

[matrix]
devices = ["cpu"]
precisions = ["fp32"]
seeds = [0, 1, 2, 3, 4, 5, 6, 7]

[[cases]]
model = "sine_mlp"
dataset = "sine"
target_loss = 0.01
criteria = ["loss <= 0.1"]
recipe = { epochs = 150 }
"""

# Columns that do not depend on timing, memory or the machine's load.
DETERMINISTIC = [
    "run_id",
    "status",
    "epochs",
    "final_loss",
    "best_loss",
    "converged_epoch",
    "zero_loss_epoch",
    "params",
    "train_samples",
]


def write_suite(folder: Path, text: str = FAST_SUITE) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "suite.toml"
    path.write_text(text)
    return path


def run(*args: str) -> int:
    return main(["run", *map(str, args), "--quiet"])


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err, "no message on stderr"
    assert "Traceback" not in "\n".join(err)
    return err[-1]


def assert_consistent(out: Path) -> pd.DataFrame:
    """Every run in results.csv has its whole curve and its criteria rows, and nothing else
    in the tables counts (load() reads it without complaint)."""
    results = pd.read_csv(out / "results.csv")
    loaded = load(out)
    curves = loaded.curves
    assert curves is not None
    for _, row in results.iterrows():
        curve = curves[curves["run_id"] == row["run_id"]]
        assert len(curve) == row["epochs"], row["run_id"]
        assert list(curve["epoch"]) == list(range(row["epochs"]))
    assert set(curves["run_id"]) == set(results["run_id"])
    return results


# -- the folder: exclusive, locked, never someone else's ----------------------------------


def test_a_second_writer_of_the_same_folder_is_refused_with_exit_2(tmp_path, capsys):
    suite = write_suite(tmp_path / "s")
    out = tmp_path / "out"
    first = ResultSetWriter(out, {"kind": "convergence"})
    try:
        assert run(suite, "--out", out) == 2
        line = error_line(capsys)
        assert line.startswith("benchkit: error: ") and "being written by another" in line
        assert str(os.getpid()) in line
    finally:
        first.close()
    assert not (out / "results.csv").exists()  # the refused run wrote nothing


def test_default_folders_are_unique_even_within_one_second(tmp_path, monkeypatch):
    monkeypatch.setattr(time, "strftime", lambda fmt, *a: "20250101-120000")
    first = default_out("suite", tmp_path)
    second = default_out("suite", tmp_path)
    assert first != second and first.is_dir() and second.is_dir()
    assert second.name == "suite-20250101-120000-2"


def test_two_default_runs_in_one_second_keep_both_result_sets(tmp_path, monkeypatch):
    suite = write_suite(tmp_path / "s")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(time, "strftime", lambda fmt, *a: "20250101-120000")
    args = [suite, "--model", "single_neuron", "--seeds", "0"]
    assert run(*args) == 0
    assert run(*args) == 0
    sets = sorted((tmp_path / "results").iterdir())
    assert [p.name for p in sets] == ["fast-20250101-120000", "fast-20250101-120000-2"]
    assert all(len(pd.read_csv(p / "results.csv")) == 1 for p in sets)


def test_a_non_empty_out_that_is_not_a_result_set_is_refused(tmp_path, capsys):
    suite = write_suite(tmp_path / "s")
    out = tmp_path / "mine"
    out.mkdir()
    (out / "curves.csv").write_text("my own data\n")
    assert run(suite, "--out", out) == 2
    line = error_line(capsys)
    assert "is not empty and is not a result set" in line and "curves.csv" in line
    assert (out / "curves.csv").read_text() == "my own data\n"
    assert not (out / "run.json").exists()


def test_an_empty_out_folder_is_used(tmp_path):
    suite = write_suite(tmp_path / "s")
    out = tmp_path / "empty"
    out.mkdir()
    assert run(suite, "--out", out, "--model", "single_neuron", "--seeds", "0") == 0
    assert len(pd.read_csv(out / "results.csv")) == 1
    assert not (out / benchkit.resultset.LOCK_FILE).exists()


# -- output errors: exit 2, one line naming the path and the cause --------------------------


def test_out_under_a_file_exits_2_naming_the_file(tmp_path, capsys):
    suite = write_suite(tmp_path / "s")
    afile = tmp_path / "passwd"
    afile.write_text("x\n")
    assert run(suite, "--out", afile / "x") == 2
    line = error_line(capsys)
    assert str(afile / "x") in line and f"{afile} is a file, not a folder" in line


@pytest.mark.skipif(not Path("/sys").is_dir(), reason="needs a folder no one may write to")
def test_out_where_writing_is_not_permitted_exits_2(tmp_path, capsys):
    suite = write_suite(tmp_path / "s")
    assert run(suite, "--out", "/sys/benchkit-results") == 2
    line = error_line(capsys)
    assert "cannot write /sys/benchkit-results" in line
    assert "you may write to" in line or "writable" in line


def test_a_read_only_file_system_exits_2_naming_the_path(tmp_path, capsys, monkeypatch):
    suite = write_suite(tmp_path / "s")
    out = tmp_path / "ro" / "out"
    real_mkdir = Path.mkdir

    def read_only(self, *args, **kwargs):
        if self == out:
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only)
    assert run(suite, "--out", out) == 2
    line = error_line(capsys)
    assert f"cannot write {out}: Read-only file system" in line


def _full_disk_after(monkeypatch, appends: int) -> None:
    """The disk fills up in the middle of the ``appends``-th append (half of it written)."""
    calls = []
    real = benchkit.resultset._write_all

    def write_all(fd, data):
        calls.append(len(data))
        if len(calls) == appends:
            os.write(fd, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd, data)

    monkeypatch.setattr(benchkit.resultset, "_write_all", write_all)


def test_a_full_disk_exits_2_and_every_kept_run_has_its_curve(tmp_path, capsys, monkeypatch):
    suite = write_suite(tmp_path / "s")
    out = tmp_path / "out"
    _full_disk_after(monkeypatch, appends=5)  # runs 1-2: curves, criteria; run 3 fails
    assert run(suite, "--out", out) == 2
    line = error_line(capsys)
    assert "No space left on device" in line and "the disk is full" in line
    assert f"the 2 runs written before it are kept in {out}" in line
    assert f"--resume {out}" in line
    results = assert_consistent(out)
    assert len(results) == 2
    meta = json.loads((out / "run.json").read_text())
    assert meta["interrupted"] is True and meta["runs"] == 2
    # the half-written rows were cut off again
    assert (out / "curves.csv").read_bytes().endswith(b"\n")


def test_a_full_disk_on_the_results_table_keeps_the_previous_one(tmp_path, capsys, monkeypatch):
    suite = write_suite(tmp_path / "s")
    out = tmp_path / "out"
    real = benchkit.resultset.atomic_write_text
    writes = []

    def atomic(path, text, durable=True):
        if path.name == "results.csv":
            writes.append(path)
            if len(writes) == 3:
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, text, durable)

    monkeypatch.setattr(benchkit.resultset, "atomic_write_text", atomic)
    assert run(suite, "--out", out) == 2
    assert f"cannot write {out / 'results.csv'}: No space left on device" in error_line(capsys)
    assert len(assert_consistent(out)) == 2


# -- signals: finished runs kept, the set marked interrupted -----------------------------


def _start(tmp_path: Path, text: str = SLOW_SUITE) -> tuple[subprocess.Popen, Path]:
    suite = write_suite(tmp_path / "s", text)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "benchkit.cli", "run", str(suite), "--out", str(out)]
    proc = subprocess.Popen(
        [*cmd, "--threads", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    return proc, out


def _wait_for_runs(proc: subprocess.Popen, out: Path, runs: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"benchkit ended early: {proc.communicate()}")
        path = out / "results.csv"
        if path.exists() and path.read_text().count("\n") > runs:
            return
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"no {runs} runs within {timeout} s")


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_and_sighup_keep_finished_runs_and_mark_the_set(tmp_path, sig, code):
    proc, out = _start(tmp_path)
    _wait_for_runs(proc, out, 2)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert f"interrupted ({signal.Signals(sig).name})" in err
    assert "Traceback" not in err
    results = assert_consistent(out)
    assert 2 <= len(results) < 8
    meta = json.loads((out / "run.json").read_text())
    assert meta["interrupted"] is True and meta["finished"] is False
    assert meta["interrupted_by"] == signal.Signals(sig).name
    assert meta["runs"] == len(results) and meta["planned_runs"] == 8
    assert f"kept {len(results)} finished runs in {out}" in err and "--resume" in err


@pytest.mark.slow
def test_sigkill_leaves_every_kept_run_with_its_curve_and_resume_completes_it(tmp_path):
    proc, out = _start(tmp_path)
    _wait_for_runs(proc, out, 3)
    proc.kill()
    proc.communicate(timeout=60)
    kept = assert_consistent(out)
    assert 3 <= len(kept) < 8
    # the lock died with the process: the set can be resumed at once
    assert run(tmp_path / "s", "--resume", out, "--threads", "1") == 0
    results = assert_consistent(out)
    assert len(results) == 8 and results["run_id"].is_unique
    assert list(results["run_id"][: len(kept)]) == list(kept["run_id"])
    criteria = pd.read_csv(out / "criteria.csv")
    assert len(criteria) == 8 and criteria["run_id"].is_unique


# -- --resume ------------------------------------------------------------------------------


def _interrupt_at(monkeypatch, case_number: int) -> None:
    real = benchkit.runner.run_case
    calls = []

    def run_case(case, *args, **kwargs):
        calls.append(case)
        if len(calls) == case_number:
            raise KeyboardInterrupt
        return real(case, *args, **kwargs)

    monkeypatch.setattr(benchkit.runner, "run_case", run_case)


def test_an_interrupted_then_resumed_set_equals_an_uninterrupted_one(tmp_path, monkeypatch, capsys):
    suite = write_suite(tmp_path / "s")
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert run(suite, "--out", whole, "--threads", "1") == 0
    with monkeypatch.context() as patch:
        _interrupt_at(patch, 4)
        assert run(suite, "--out", parts, "--threads", "1") == 130
    assert len(pd.read_csv(parts / "results.csv")) == 3
    assert "--resume" in capsys.readouterr().err
    assert run(suite, "--resume", parts) == 0
    a, b = pd.read_csv(whole / "results.csv"), pd.read_csv(parts / "results.csv")
    pd.testing.assert_frame_equal(a[DETERMINISTIC], b[DETERMINISTIC])
    for name in ("curves.csv", "criteria.csv", "series.csv"):
        ta, tb = pd.read_csv(whole / name), pd.read_csv(parts / name)
        cols = [c for c in ta.columns if c != "seconds"]
        pd.testing.assert_frame_equal(ta[cols], tb[cols], obj=name)
    meta = json.loads((parts / "run.json").read_text())
    assert meta["finished"] is True and meta["runs"] == 6 and len(meta["resumed"]) == 1
    assert main(["compare", str(whole), str(parts), "--strict", "--report-only", "noisy"]) == 0


def test_resume_refuses_another_suite_text_unless_forced(tmp_path, monkeypatch, capsys):
    suite = write_suite(tmp_path / "s")
    out = tmp_path / "out"
    with monkeypatch.context() as patch:
        _interrupt_at(patch, 2)
        assert run(suite, "--out", out, "--threads", "1") == 130
    suite.write_text(FAST_SUITE.replace("target_loss = 0.01", "target_loss = 0.02"))
    capsys.readouterr()
    assert run(suite, "--resume", out) == 2
    line = error_line(capsys)
    assert "refused" in line and "another suite text" in line and "--force" in line
    assert run(suite, "--resume", out, "--force") == 0
    assert len(pd.read_csv(out / "results.csv")) == 6


def test_resume_refuses_another_environment_unless_forced(tmp_path, monkeypatch, capsys):
    suite = write_suite(tmp_path / "s")
    out = tmp_path / "out"
    with monkeypatch.context() as patch:
        _interrupt_at(patch, 2)
        assert run(suite, "--out", out, "--threads", "1") == 130
    meta = json.loads((out / "run.json").read_text())
    meta["environment"]["torch"] = "1.0.0"
    (out / "run.json").write_text(json.dumps(meta))
    capsys.readouterr()
    assert run(suite, "--resume", out) == 2
    assert "with torch '1.0.0'" in error_line(capsys)
    assert run(suite, "--resume", out, "--force") == 0


def test_resume_of_a_folder_that_is_not_a_result_set_exits_2(tmp_path, capsys):
    suite = write_suite(tmp_path / "s")
    (tmp_path / "nothing").mkdir()
    assert run(suite, "--resume", tmp_path / "nothing") == 2
    assert "not a result set" in error_line(capsys)


# -- last resort ---------------------------------------------------------------------------


def test_an_unexpected_error_is_one_line_pointing_to_debug(tmp_path, capsys, monkeypatch):
    suite = write_suite(tmp_path / "s")

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(benchkit.runner, "suite_header", broken)
    assert run(suite, "--out", tmp_path / "o") == 3
    line = error_line(capsys)
    assert line.startswith("benchkit: internal error: ZeroDivisionError: a bug")
    assert "--debug" in line
    with pytest.raises(ZeroDivisionError):
        main(["run", str(suite), "--out", str(tmp_path / "o2"), "--debug"])


# -- time limits ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "-1", "nan"])
def test_max_time_must_be_above_zero(tmp_path, capsys, value):
    suite = write_suite(tmp_path / "s")
    assert run(suite, "--out", tmp_path / "o", f"--max-time={value}") == 2
    assert "--max-time must be a number of seconds above 0" in error_line(capsys)
    assert not (tmp_path / "o").exists()


def test_max_time_stops_a_convergence_run_as_timeout_with_its_curve(tmp_path):
    text = FAST_SUITE.replace("recipe = { epochs = 30 }", "recipe = { epochs = 100000000 }")
    suite = write_suite(tmp_path / "s", text)
    out = tmp_path / "o"
    started = time.monotonic()
    code = run(suite, "--out", out, "--model", "single_neuron", "--seeds", "0", "--max-time", "1")
    assert code == 0
    assert time.monotonic() - started < 60
    row = pd.read_csv(out / "results.csv").iloc[0]
    assert row["status"] == "timeout" and "time limit of 1 s" in row["status_detail"]
    curve = pd.read_csv(out / "curves.csv")
    assert 0 < len(curve) == row["epochs"] < 100000000
    assert curve["seconds"].iloc[-1] >= 0.5


def test_a_case_max_seconds_stops_the_run(tmp_path):
    text = FAST_SUITE.replace(
        "recipe = { epochs = 30 }", "recipe = { epochs = 100000000 }\nmax_seconds = 0.5"
    )
    suite = write_suite(tmp_path / "s", text)
    out = tmp_path / "o"
    assert run(suite, "--out", out, "--model", "single_neuron", "--seeds", "0") == 0
    row = pd.read_csv(out / "results.csv").iloc[0]
    assert row["status"] == "timeout" and "0.5 s" in row["status_detail"]
    assert len(pd.read_csv(out / "curves.csv")) == row["epochs"] > 0


def test_a_bad_max_seconds_is_a_suite_error(tmp_path, capsys):
    text = FAST_SUITE.replace(
        "recipe = { epochs = 30 }", "recipe = { epochs = 30 }\nmax_seconds = -2"
    )
    suite = write_suite(tmp_path / "s", text)
    assert run(suite, "--out", tmp_path / "o") == 2
    assert "cases[0].max_seconds: expected seconds > 0" in error_line(capsys)


# -- input the user can fix ----------------------------------------------------------------


def test_a_missing_data_file_exits_2_naming_the_file(tmp_path, capsys):
    text = """
[matrix]
devices = ["cpu"]
precisions = ["fp32"]
seeds = [0]

[[cases]]
model = "rnn"
dataset = "prices"
options = { path = "no-such-prices.csv" }
recipe = { epochs = 2 }
"""
    suite = write_suite(tmp_path / "s", text)
    out = tmp_path / "o"
    assert run(suite, "--out", out) == 2
    line = error_line(capsys)
    assert "could not read the input" in line and "no-such-prices.csv: no such file" in line
    row = pd.read_csv(out / "results.csv").iloc[0]
    assert row["status"] == "error" and "no such file" in row["status_detail"]


def test_an_unknown_name_in_disable_plugins_is_warned_about(tmp_path, capsys, monkeypatch):
    suite = write_suite(tmp_path / "s")
    monkeypatch.setenv("BENCHKIT_DISABLE_PLUGINS", "sine_mpl")
    code = run(suite, "--out", tmp_path / "o", "--model", "single_neuron", "--seeds", "0")
    assert code == 0
    err = capsys.readouterr().err
    assert "BENCHKIT_DISABLE_PLUGINS names 'sine_mpl' (did you mean 'sine_mlp'?)" in err


def test_an_unknown_device_names_the_disabled_plugin_that_provides_it(
    tmp_path, capsys, monkeypatch
):
    suite = write_suite(tmp_path / "s")
    monkeypatch.setenv("BENCHKIT_DISABLE_PLUGINS", "devices")
    assert run(suite, "--out", tmp_path / "o") == 2
    line = error_line(capsys)
    assert "unknown device 'cpu'" in line
    assert "plugin devices (benchkit" in line and "BENCHKIT_DISABLE_PLUGINS disables" in line


def test_threads_below_one_is_refused(tmp_path, capsys):
    suite = write_suite(tmp_path / "s")
    assert run(suite, "--out", tmp_path / "o", "--threads", "0") == 2
    assert "--threads must be at least 1" in error_line(capsys)


def test_a_report_that_cannot_be_written_exits_2(tmp_path, capsys):
    suite = write_suite(tmp_path / "s")
    out = tmp_path / "o"
    assert run(suite, "--out", out, "--model", "single_neuron", "--seeds", "0") == 0
    afile = tmp_path / "file"
    afile.write_text("x")
    assert main(["report", str(out), "--out", str(afile / "report")]) == 2
    line = error_line(capsys)
    assert line.startswith("benchkit: error: ") and str(afile) in line
