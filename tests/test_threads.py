"""The CPU thread policy, contention, and the one throughput figure."""

from __future__ import annotations

import json
import math
import statistics

import pandas as pd
import pytest

import benchkit.threads as threads
from benchkit.cli import main
from benchkit.resultset import load
from benchkit.run_result import epoch_throughputs, median_and_iqr
from benchkit.threads import (
    CpuLoad,
    CpuTimes,
    assess,
    choose_threads,
    epoch_spread,
    measure_load,
    other_load,
    read_cpu_times,
)

SUITE = """
[matrix]
devices = ["cpu"]
precisions = ["fp32"]
seeds = [0, 1]

[[cases]]
model = "sine_mlp"
dataset = "sine"
recipe = { epochs = 40 }
"""


# -- the policy ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("busy", "threads_"),
    [(0.0, 2), (0.2, 2), (0.6, 1), (1.0, 1), (2.0, 1)],
    ids=["quiet", "background", "half-busy", "one-busy", "two-busy"],
)
def test_threads_are_the_idle_cores_at_most_torchs_own(busy, threads_):
    choice = choose_threads(None, 2, CpuLoad(2, busy, "test"))
    assert choice.threads == threads_
    assert choice.source == ("torch default" if threads_ == 2 else "idle cores")
    assert choice.busy_at_start == (busy >= 0.5)


def test_threads_never_exceed_torchs_own_count():
    assert choose_threads(None, 4, CpuLoad(16, 0.0, "test")).threads == 4


def test_threads_flag_wins_and_is_recorded():
    choice = choose_threads(3, 2, CpuLoad(2, 2.0, "test"))
    assert choice.threads == 3 and choice.record()["chosen_by"] == "--threads"


def test_an_unknown_load_keeps_torchs_default():
    choice = choose_threads(None, 2, CpuLoad(2, None, "unknown"))
    assert choice.threads == 2 and "could not be measured" in choice.reason


def test_the_choice_and_its_reason_go_to_run_json_and_a_busy_machine_is_said_once(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(threads, "measure_load", lambda seconds=0: CpuLoad(2, 1.0, "test"))
    import torch

    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    calls = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    (tmp_path / "s.toml").write_text(SUITE)
    out = tmp_path / "o"
    assert main(["run", str(tmp_path / "s.toml"), "--out", str(out), "--quiet"]) == 0
    meta = json.loads((out / "run.json").read_text())
    record = meta["environment"]["threads"]
    assert record["threads"] == 1 and record["chosen_by"] == "idle cores"
    assert "1.0 of 2 cores busy" in record["reason"] and record["busy_at_start"] is True
    assert meta["environment"]["torch_threads"] == 1
    assert meta["contention"]["busy_at_start"] is True
    assert calls == [1]
    err = capsys.readouterr().err
    assert err.count("benchkit: warning: the CPU is busy") == 1
    assert "using 1 torch thread instead of 2" in err and "quiet machine" in err


# -- reading the machine -------------------------------------------------------------------


def _stat(busy_ticks: list[int], idle_ticks: list[int]) -> str:
    lines = ["cpu  0 0 0 0 0 0 0 0 0 0"]
    for i, (b, idle) in enumerate(zip(busy_ticks, idle_ticks, strict=True)):
        lines.append(f"cpu{i} {b} 0 0 {idle} 0 0 0 0 0 0")
    return "\n".join(lines) + "\nprocs_running 1\n"


@pytest.mark.real_load
def test_the_start_probe_reads_other_processes_busy_time(tmp_path, monkeypatch):
    stat = tmp_path / "stat"
    readings = iter([_stat([100, 100], [100, 100]), _stat([125, 100], [100, 125])])
    monkeypatch.setattr(threads, "_STAT", stat)
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(threads.time, "sleep", lambda s: stat.write_text(next(readings)))
    stat.write_text(next(readings))
    load = measure_load(0.25)
    # cpu0 was busy the whole time, cpu1 idle: one core's worth of other work
    assert load.cores == 2 and load.busy == pytest.approx(1.0, abs=0.05)
    assert load.method.startswith("/proc/stat")


def test_this_process_own_cpu_time_is_not_counted_as_others():
    start = CpuTimes(busy=10.0, total=100.0, own=1.0, wall=0.0, cores=2)
    end = CpuTimes(busy=11.6, total=102.0, own=1.8, wall=1.0, cores=2)
    # 1.6 s of busy time on 2 cores over 1 s; 0.8 s of it was this process
    assert other_load(start, end) == pytest.approx(0.8)


@pytest.mark.real_load
def test_the_real_machine_can_be_read():
    load = measure_load(0.05)
    assert load.cores >= 1
    assert load.busy is None or 0 <= load.busy <= load.cores
    times = read_cpu_times()
    assert times is None or times.total > 0


# -- judging a run (with the real thresholds: marked real_load) ---------------------------


@pytest.mark.real_load
def test_steady_epochs_on_a_quiet_machine_are_not_contended():
    quiet = assess([0.010 + 0.0005 * (i % 3) for i in range(100)], None, None)
    assert not quiet.contended and quiet.spread < 1.2


@pytest.mark.real_load
def test_epochs_slowed_now_and_then_are_contended():
    slowed = [0.010 if i % 4 else 0.045 for i in range(100)]
    verdict = assess(slowed, None, None)
    assert verdict.contended and "epoch times spread" in verdict.reasons[0]


@pytest.mark.real_load
def test_other_processes_using_a_core_make_a_run_contended():
    start = CpuTimes(busy=0.0, total=0.0, own=0.0, wall=0.0, cores=2)
    end = CpuTimes(busy=2.0, total=2.0, own=1.0, wall=1.0, cores=2)
    verdict = assess([0.01] * 50, start, end)
    assert verdict.contended and verdict.other_load == pytest.approx(1.0)
    assert "other processes used 1.0 of 2 cores" in verdict.reasons[0]


@pytest.mark.real_load
def test_a_run_too_short_for_the_load_figure_is_judged_by_its_epochs_only():
    start = CpuTimes(busy=0.0, total=0.0, own=0.0, wall=0.0, cores=2)
    end = CpuTimes(busy=0.2, total=0.2, own=0.05, wall=0.1, cores=2)
    assert not assess([0.01] * 50, start, end).contended


def test_too_few_epochs_say_nothing_about_spread():
    assert epoch_spread([0.01, 0.5] * 5) is None


def test_contended_runs_are_marked_in_results_and_run_json(tmp_path, capsys, monkeypatch):
    clock = iter(range(0, 10_000))

    def busy_reading():
        t = next(clock)
        # every reading: the cores were fully busy, this process used half of it
        return CpuTimes(busy=2.0 * t, total=2.0 * t, own=1.0 * t, wall=1.0 * t, cores=2)

    monkeypatch.setattr(threads, "read_cpu_times", busy_reading)
    (tmp_path / "s.toml").write_text(SUITE)
    out = tmp_path / "o"
    assert main(["run", str(tmp_path / "s.toml"), "--out", str(out), "--quiet"]) == 0
    results = pd.read_csv(out / "results.csv")
    assert list(results["contended"]) == [True, True]
    assert list(results["other_cpu_load"]) == [1.0, 1.0]
    meta = json.loads((out / "run.json").read_text())
    assert meta["contention"]["contended_runs"] == 2
    err = capsys.readouterr().err
    assert err.count("shared the CPU with other processes") == 1  # warned once


# -- one throughput figure -----------------------------------------------------------------


def test_samples_per_second_is_the_median_compare_uses_with_its_iqr(tmp_path):
    (tmp_path / "s.toml").write_text(SUITE)
    out = tmp_path / "o"
    assert main(["run", str(tmp_path / "s.toml"), "--out", str(out), "--quiet"]) == 0
    results = pd.read_csv(out / "results.csv")
    repeats = load(out).samples["samples_per_second"]
    for _, row in results.iterrows():
        rates = repeats[row["run_id"]]
        assert len(rates) == 40 - 4  # a tenth of the epochs is warm-up
        assert row["samples_per_second"] == statistics.median(rates)
        q1, _, q3 = statistics.quantiles(rates, n=4, method="inclusive")
        assert row["samples_per_second_iqr"] == pytest.approx(q3 - q1)


def test_the_throughput_statistic_leaves_out_warm_up_and_empty_epochs():
    seconds = [1.0, 1.5, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0]
    rates = epoch_throughputs(seconds, 10)
    assert rates == [10 / 0.5] * 10  # epoch 0 is warm-up; epoch 2 took no time on this clock
    assert median_and_iqr(rates) == (20.0, 0.0)
    assert median_and_iqr([]) == (None, None)
    assert median_and_iqr([7.0]) == (7.0, 0.0)  # one epoch after warm-up: no spread
    # a clock that lost an epoch's end: no rate is trusted, not just that epoch's
    assert epoch_throughputs([*seconds[:5], math.nan, *seconds[6:]], 10) == []
    # numpy's default percentiles (linear) of 1, 2, 4, 8, 16: q1 = 2, q3 = 8
    assert median_and_iqr([1.0, 2.0, 4.0, 8.0, 16.0]) == (4.0, 6.0)
