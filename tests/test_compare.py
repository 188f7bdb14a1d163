"""``benchkit compare``: each metric judged by its own rule, regressions planted in copies of a
real result set, and every way the input can be wrong."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pandas as pd
import pytest
from _resultsets import (
    copy_set,
    edit_meta,
    edit_results,
    scale_speed,
    set_memory,
    shared_tiny_set,
    steady_timings,
)

from benchkit import resultset, runner
from benchkit.cli import main
from benchkit.compare import RULES, Options, compare, rule_for
from benchkit.resultset import load


@pytest.fixture(scope="session")
def tiny_set(tmp_path_factory):
    """The shared small real result set (see _resultsets.py)."""
    return shared_tiny_set(tmp_path_factory)


@pytest.fixture(scope="session")
def steady_set(tiny_set, tmp_path_factory):
    """The tiny set with quiet-machine timings, for planting slowdowns in."""
    folder = copy_set(tiny_set, tmp_path_factory.mktemp("steady") / "set")
    steady_timings(folder)
    return folder


SINE0 = "sine_mlp/sine/fp32/cpu/seed0"


def run_compare(capsys, *args: object) -> tuple[int, str, str]:
    code = main(["compare", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def findings(base, new, **options) -> list:
    return compare(load(base), load(new), Options(**options)).findings


def test_a_result_set_compared_with_itself_passes(tiny_set, capsys):
    code, out, err = run_compare(capsys, tiny_set, tiny_set)
    assert code == 0, out + err
    assert "PASS: no regression (exit 0)" in out
    assert "environments match" in out
    assert "Changes:\n  none" in out
    got = findings(tiny_set, tiny_set)
    assert {f.verdict for f in got if f.kind in ("deterministic", "status", "memory")} == {"same"}
    # diverged fp16 sine runs are compared too: same status, same diverged epoch
    diverged = [f for f in got if f.key == "sine_mlp/sine/fp16/cpu/seed0"]
    assert {f.metric for f in diverged} >= {"status", "diverged_epoch"}


def _plant_epochs(folder):
    def change(frame):
        frame.loc[frame["run_id"] == SINE0, "converged_epoch"] += 5

    edit_results(folder, change)


def _plant_memory(base, new):
    set_memory(base, 200)
    set_memory(new, 300)


@pytest.mark.parametrize(
    ("plant", "metric", "key"),
    [
        (lambda base, new: _plant_epochs(new), "converged_epoch", SINE0),
        (lambda base, new: scale_speed(new, 0.5), "samples_per_second", "sine_mlp/sine/fp32/cpu"),
        (lambda base, new: scale_speed(new, 0.8), "samples_per_second", "sine_mlp/sine/fp32/cpu"),
        (_plant_memory, "peak_memory_bytes", SINE0),
    ],
    ids=["epochs+5", "throughput-50%", "throughput-20%", "memory+50%"],
)
def test_planted_regressions_are_caught(steady_set, tmp_path, capsys, plant, metric, key):
    base = copy_set(steady_set, tmp_path / "base")
    new = copy_set(steady_set, tmp_path / "new")
    plant(base, new)
    code, out, _ = run_compare(capsys, base, new)
    assert code == 1
    assert "FAIL" in out and "REGRESSED" in out
    regressed = {(f.key, f.metric) for f in findings(base, new) if f.verdict == "regressed"}
    assert (key, metric) in regressed
    assert {m for _, m in regressed} == {metric}


@pytest.mark.parametrize(("factor", "jitter"), [(1.03, 0.0), (0.97, 0.0), (1.0, 0.03)])
def test_three_percent_throughput_noise_is_not_a_regression(
    steady_set, tmp_path, capsys, factor, jitter
):
    new = copy_set(steady_set, tmp_path / "new")
    scale_speed(new, factor, jitter=jitter)
    code, out, _ = run_compare(capsys, steady_set, new)
    assert code == 0, out
    noisy = [f for f in findings(steady_set, new) if f.metric == "samples_per_second"]
    assert noisy and {f.verdict for f in noisy} == {"noise"}


def test_another_process_slowing_some_epochs_is_not_a_regression(steady_set, tmp_path, capsys):
    """Contention slows the epochs it overlaps and leaves the fastest ones alone; a slower
    code path slows every epoch (the planted -20 % above)."""
    new = copy_set(steady_set, tmp_path / "new")
    scale_speed(new, 0.4, share=0.7)
    code, out, _ = run_compare(capsys, steady_set, new)
    assert code == 0, out
    slowed = [f for f in findings(steady_set, new) if f.metric == "samples_per_second"]
    assert {f.verdict for f in slowed} == {"unclear"}
    assert all(f.change < -0.3 and "the fastest repeats moved" in f.note for f in slowed)


def test_deterministic_metrics_are_exact_on_the_same_environment(tiny_set, tmp_path, capsys):
    new = copy_set(tiny_set, tmp_path / "new")

    def last_bit(frame):
        frame.loc[frame["run_id"] == SINE0, "final_loss"] *= 1 + 1e-7

    edit_results(new, last_bit)
    code, out, _ = run_compare(capsys, tiny_set, new)
    assert code == 1
    assert "final_loss" in out and "exact" in out


def test_other_environments_compare_with_a_tolerance_and_say_so(steady_set, tmp_path, capsys):
    new = copy_set(steady_set, tmp_path / "new")

    def other_machine(meta):
        meta["environment"]["cpu"] = "AMD EPYC 7B13"
        meta["environment"]["cpu_capability"] = "AVX2"

    def last_bits(frame):
        frame["device_name"] = "AMD EPYC 7B13"
        frame["final_loss"] *= 1 + 1e-7

    edit_meta(new, other_machine)
    edit_results(new, last_bits)
    scale_speed(new, 0.5)  # other hardware: timings are reported, never gated
    code, out, _ = run_compare(capsys, steady_set, new)
    assert code == 0, out
    assert "environments differ" in out and "cpu_capability: 'AVX512' → 'AVX2'" in out
    assert "cross-environment tolerances" in out and "not gated" in out
    got = findings(steady_set, new)
    assert {f.verdict for f in got if f.metric == "final_loss"} <= {"within", "same"}
    slow = [f for f in got if f.metric == "samples_per_second"]
    assert {f.verdict for f in slow} == {"regressed"} and not any(f.gated for f in slow)

    _plant_epochs(new)  # +5 epochs is past the 2-epoch cross-environment tolerance
    code, out, _ = run_compare(capsys, steady_set, new)
    assert code == 1 and "converged_epoch" in out


def test_rows_on_one_side_are_listed_and_fail_only_under_strict(tiny_set, tmp_path, capsys):
    new = copy_set(tiny_set, tmp_path / "new")
    edit_results(new, lambda frame: frame[frame["run_id"] != SINE0])
    code, out, _ = run_compare(capsys, tiny_set, new)
    assert code == 0
    assert "1 only in baseline" in out and SINE0 in out and "only-baseline" in out
    code, out, _ = run_compare(capsys, tiny_set, new, "--strict")
    assert code == 1 and "failing under --strict" in out
    code, out, _ = run_compare(capsys, new, tiny_set)
    assert code == 0 and "1 only in new" in out


@pytest.mark.parametrize(
    ("before", "after", "verdict", "code"),
    [
        ("ok", "diverged", "regressed", 1),
        ("ok", "error", "regressed", 1),
        ("diverged", "ok", "improved", 0),
        ("ok", "skipped", "changed", 0),
    ],
)
def test_a_status_change_is_judged(tiny_set, tmp_path, capsys, before, after, verdict, code):
    base = copy_set(tiny_set, tmp_path / "base")
    new = copy_set(tiny_set, tmp_path / "new")
    for folder, status in ((base, before), (new, after)):

        def change(frame, status=status):
            frame.loc[frame["run_id"] == SINE0, "status"] = status

        edit_results(folder, change)
    assert run_compare(capsys, base, new)[0] == code
    status = [f for f in findings(base, new) if f.key == SINE0 and f.metric == "status"]
    assert [f.verdict for f in status] == [verdict]


def test_improvements_pass_but_fail_under_strict(tiny_set, tmp_path, capsys):
    new = copy_set(tiny_set, tmp_path / "new")

    def faster_convergence(frame):
        frame.loc[frame["run_id"] == SINE0, "converged_epoch"] -= 3

    edit_results(new, faster_convergence)
    code, out, _ = run_compare(capsys, tiny_set, new)
    assert code == 0 and "improved" in out
    code, out, _ = run_compare(capsys, tiny_set, new, "--strict")
    assert code == 1 and "fails: --strict" in out


def test_thresholds_from_the_command_line_and_the_suite(tiny_set, tmp_path, capsys):
    new = copy_set(tiny_set, tmp_path / "new")
    _plant_epochs(new)
    assert run_compare(capsys, tiny_set, new, "--threshold", "converged_epoch=5")[0] == 0
    assert run_compare(capsys, tiny_set, new, "--report-only", "deterministic")[0] == 0

    def suite_allows_five(meta):
        meta["suite"]["text"] += "\n[compare]\nconverged_epoch = 5\n"

    edit_meta(new, suite_allows_five)
    assert run_compare(capsys, tiny_set, new)[0] == 0
    # the command line wins over the suite
    assert run_compare(capsys, tiny_set, new, "--threshold", "converged_epoch=4")[0] == 1


def test_a_suite_with_a_compare_table_runs(tmp_path):
    from _resultsets import TINY_SUITE, run_suite

    text = TINY_SUITE.replace("[[cases]]", "[compare]\nsamples_per_second = 0.2\n\n[[cases]]", 1)
    out = run_suite(tmp_path / "s", text.replace("seeds = [0, 1, 2]", "seeds = [0]"))
    assert load(out).thresholds == {"samples_per_second": 0.2}


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        ("schema", (), "schema version 99 is not one this benchkit reads"),
        ("disjoint", (), "no rows in common"),
        ("missing", (), "no such result set"),
        ("notaset", (), "not a result set: results.csv is missing"),
        ("badjson", (), "not valid JSON"),
        ("none", ("--threshold", "samples_per_sec=0.1"), "unknown metric 'samples_per_sec'"),
        ("none", ("--threshold", "converged_epoch"), "write METRIC=VALUE"),
        ("none", ("--threshold", "converged_epoch=-1"), "a threshold is a number >= 0"),
        ("none", ("--report-only", "speed"), "--report-only 'speed'"),
    ],
)
def test_bad_input_exits_2_with_one_clear_line(tiny_set, tmp_path, capsys, setup, args, message):
    new = tmp_path / "new"
    if setup == "missing":
        pass
    elif setup == "notaset":
        new.mkdir()
    elif setup == "badjson":
        new = tmp_path / "new.json"
        new.write_text("{not json")
    else:
        copy_set(tiny_set, new)
    if setup == "schema":
        edit_meta(new, lambda meta: meta.update(schema_version=99))
    if setup == "disjoint":
        edit_results(new, lambda frame: frame.__setitem__("seed", frame["seed"] + 10))
    code, out, err = run_compare(capsys, tiny_set, new, *args)
    assert code == 2
    assert err.startswith("benchkit: error: ") and message in err, err
    assert "Traceback" not in err and out == ""


def test_markdown_csv_and_json(tiny_set, tmp_path, capsys):
    new = copy_set(tiny_set, tmp_path / "new")
    _plant_epochs(new)
    code, md, _ = run_compare(capsys, tiny_set, new, "--format", "markdown")
    assert code == 1
    assert md.startswith("### ❌ benchkit compare: 1 regression")
    assert "| run | metric | baseline | new | change | rule | verdict |" in md
    assert f"| {SINE0} | converged_epoch |" in md and "🔴 regressed" in md
    assert "| workload | metric | baseline | new | change | 95 % CI | verdict |" in md

    code, text, _ = run_compare(capsys, tiny_set, new, "--format", "csv")
    table = pd.read_csv(io.StringIO(text))
    assert code == 1
    assert {"key", "metric", "kind", "baseline", "new", "verdict", "gated", "fails"} <= set(
        table.columns
    )
    row = table[(table["key"] == SINE0) & (table["metric"] == "converged_epoch")].iloc[0]
    assert row["verdict"] == "regressed" and row["change"] == 5 and bool(row["fails"])

    code, text, _ = run_compare(capsys, tiny_set, new, "--format", "json")
    doc = json.loads(text)
    assert code == 1 and doc["exit_code"] == 1 and doc["environments_match"] is True
    assert any(
        f["verdict"] == "regressed" and f["metric"] == "converged_epoch" for f in doc["findings"]
    )

    code, md, _ = run_compare(capsys, tiny_set, tiny_set, "--format", "markdown")
    assert code == 0 and md.startswith("### ✅ benchkit compare: no regression")


def test_comparing_is_reproducible(tiny_set, tmp_path):
    new = copy_set(tiny_set, tmp_path / "new")
    scale_speed(new, 0.9, jitter=0.05)
    first = [(f.key, f.metric, f.low, f.high) for f in findings(tiny_set, new)]
    assert first == [(f.key, f.metric, f.low, f.high) for f in findings(tiny_set, new)]


def test_baselines_without_curves_use_seeds_as_repeats(tiny_set, tmp_path):
    base = copy_set(tiny_set, tmp_path / "base")
    (base / "curves.csv").unlink()
    got = compare(load(base), load(tiny_set))
    assert got.repeats == "seeds"
    noisy = [f for f in got.findings if f.kind == "noisy"]
    # three seeds are too few repeats to judge noise: reported, never failing
    assert noisy and {f.verdict for f in noisy} == {"unclear"}


def test_every_rule_is_documented():
    for rule in RULES.values():
        assert rule.kind in ("deterministic", "noisy", "memory") and rule.doc
    assert rule_for("token_accuracy").better == "higher"
    assert rule_for("test_r2").better == "higher"
    assert rule_for("rollout_mse").better == "lower"
    assert rule_for("epochs_to[loss <= 1e-08]").unit == "epochs"
    assert rule_for("weight").better == "none"


def test_the_warm_up_rule_matches_the_runner():
    # one rule, one function: results.csv's figure and compare's repeats start from the same
    assert resultset.epoch_throughputs is runner.epoch_throughputs
    for epochs in range(0, 400):
        assert len(runner.epoch_throughputs([0.1 * (i + 1) for i in range(epochs)], 10)) == (
            max(0, epochs - runner.warmup_epochs(epochs)) if epochs >= 2 else 0
        )


# pytest-benchmark JSON: what `pytest --benchmark-json` writes (pytest-benchmark 5.x).


def _benchmark_file(path, medians, data=True):
    import numpy as np

    rng = np.random.default_rng(0)
    benchmarks = []
    for name, median in medians.items():
        samples = median * (1 + rng.normal(0, 0.02, 50))
        q1, q3 = np.percentile(samples, [25, 75])
        stats = {
            "min": float(samples.min()),
            "max": float(samples.max()),
            "mean": float(samples.mean()),
            "stddev": float(samples.std()),
            "rounds": len(samples),
            "median": float(np.median(samples)),
            "iqr": float(q3 - q1),
            "q1": float(q1),
            "q3": float(q3),
            "ops": float(1 / samples.mean()),
            "total": float(samples.sum()),
            "iterations": 1,
        }
        if data:
            stats["data"] = [float(x) for x in samples]
        benchmarks.append(
            {
                "group": "train_step",
                "name": f"test_step[{name}]",
                "fullname": f"benchmarks/test_speed.py::test_step[{name}]",
                "params": {"precision": name},
                "param": name,
                "extra_info": {"samples": 64},
                "options": {"timer": "perf_counter", "min_rounds": 5},
                "stats": stats,
            }
        )
    doc = {
        "machine_info": {
            "machine": "x86_64",
            "python_version": "3.11.7",
            "cpu": {"brand_raw": "Intel(R) Xeon(R) Processor", "count": 2},
        },
        "commit_info": {"id": "0" * 40, "dirty": False},
        "benchmarks": benchmarks,
        "datetime": "2026-11-25T09:00:00",
        "version": "5.1.0",
    }
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("data", [True, False], ids=["raw-rounds", "summary-only"])
def test_pytest_benchmark_files(tmp_path, capsys, data):
    base = _benchmark_file(tmp_path / "base.json", {"fp32": 0.010, "fp16": 0.012}, data)
    same = _benchmark_file(tmp_path / "same.json", {"fp32": 0.010, "fp16": 0.012}, data)
    slow = _benchmark_file(tmp_path / "slow.json", {"fp32": 0.0125, "fp16": 0.012}, data)
    code, out, _ = run_compare(capsys, base, same)
    assert code == 0, out
    code, out, _ = run_compare(capsys, base, slow)
    assert code == 1
    assert "benchmarks/test_speed.py::test_step[fp32]" in out and "REGRESSED" in out
    got = findings(base, slow)
    assert [(f.metric, f.verdict) for f in got if f.verdict == "regressed"] == [
        ("time", "regressed")
    ]


def test_a_benchmark_file_and_a_result_set_do_not_compare(tiny_set, tmp_path, capsys):
    file = _benchmark_file(tmp_path / "b.json", {"fp32": 0.01})
    code, _, err = run_compare(capsys, tiny_set, file)
    assert code == 2 and "cannot compare a benchkit result" in err


def test_a_real_pytest_benchmark_file_is_read(tmp_path, capsys):
    pytest.importorskip("pytest_benchmark")
    (tmp_path / "test_speed.py").write_text(
        "import pytest\n\n"
        "@pytest.mark.parametrize('n', [10, 1000])\n"
        "def test_sum(benchmark, n):\n"
        "    benchmark(sum, range(n))\n"
    )
    out = tmp_path / "bench.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--benchmark-json",
            str(out),
            "--benchmark-save-data",
            "--benchmark-max-time=0.02",
            "--benchmark-min-rounds=5",
            "test_speed.py",
        ],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    loaded = load(out)
    assert loaded.kind == "pytest-benchmark" and len(loaded.rows) == 2
    assert all(len(v) >= 5 for v in loaded.samples["time"].values())
    code, text, _ = run_compare(capsys, out, out)
    assert code == 0 and "test_speed.py::test_sum[10]" in text


def _throughput_set(folder, step_seconds):
    """A throughput suite's result set: pytest-benchmark's JSON kept as benchmark.json, and
    results.csv converted from it by benchkit.throughput, one row per case and kind."""
    import numpy as np

    from benchkit.throughput import results_from_benchmarks

    rng = np.random.default_rng(1)
    benchmarks = []
    for (kind, batch), median in step_seconds.items():
        run_id = f"sine_mlp/sine/fp32/cpu/seed0/batch{batch}"
        data = median * (1 + rng.normal(0, 0.02, 40))
        q1, q3 = np.percentile(data, [25, 75])
        info = {
            "benchkit": True,
            "run_id": run_id,
            "kind": kind,
            "model": "sine_mlp",
            "dataset": "sine",
            "precision": "fp32",
            "device": "cpu",
            "seed": 0,
            "variant": "",
            "device_name": "Intel(R) Xeon(R) Processor",
            "batch_size": batch,
            "params": 5569,
            "flops_per_call": 1000,
            "peak_flops_per_second": 1e11,
        }
        stats = {
            "median": float(np.median(data)),
            "iqr": float(q3 - q1),
            "min": float(data.min()),
            "rounds": 40,
            "data": [float(x) for x in data],
        }
        benchmarks.append({"name": f"test_{kind}[{run_id}]", "extra_info": info, "stats": stats})
    doc = {"benchmarks": benchmarks, "machine_info": {}, "version": "5.1.0"}
    folder.mkdir()
    (folder / "benchmark.json").write_text(json.dumps(doc))
    results_from_benchmarks(doc, []).to_csv(folder / "results.csv", index=False)
    env = {
        "torch": "2.13.0+cpu",
        "cpu": "Intel(R) Xeon(R) Processor",
        "cpu_capability": "AVX512",
        "torch_threads": 1,
    }
    (folder / "run.json").write_text(json.dumps({"schema_version": 1, "environment": env}))
    return folder


def test_a_throughput_suite_result_set_uses_its_benchmark_rounds(tmp_path, capsys):
    cases = {("train_step", 64): 0.002, ("train_step", 256): 0.004, ("inference", 64): 0.001}
    base = _throughput_set(tmp_path / "base", cases)
    same = _throughput_set(tmp_path / "same", cases)
    slow = _throughput_set(tmp_path / "slow", {**cases, ("train_step", 256): 0.005})
    loaded = load(base)
    assert loaded.repeats_from == "rounds" and len(loaded.rows) == 3
    code, out, _ = run_compare(capsys, base, same)
    assert code == 0, out
    assert "repeats: benchmark rounds" in out
    got = findings(base, slow)
    regressed = {(f.key, f.metric) for f in got if f.verdict == "regressed"}
    key = "sine_mlp/sine/fp32/cpu/batch256/train_step"
    assert (key, "step_median_seconds") in regressed and (key, "samples_per_second") in regressed
    assert run_compare(capsys, base, slow)[0] == 1
