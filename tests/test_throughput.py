"""Throughput: FLOP counts, pytest-benchmark JSON into result tables, CPU-versus-GPU views."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn

from benchkit.flops import step_flops
from benchkit.registry import load_registry
from benchkit.resultset import ResultSetWriter
from benchkit.speedup import crossover_table, speedup_table
from benchkit.suite import parse_suite
from benchkit.throughput import results_from_benchmarks, run_throughput

REPO = Path(__file__).resolve().parent.parent


def test_inference_flops_of_a_linear_stack_are_exact():
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 1))
    x = torch.randn(10, 20)
    with torch.no_grad():
        count = step_flops(model, lambda: model(x), backward=False)
    assert count.flops == 2 * 10 * (20 * 64 + 64 * 1)
    assert count.method == "counter"


def test_recurrent_layers_are_counted_once():
    rnn = nn.RNN(4, 50, batch_first=True)  # its matrix products are visible to the counter
    x = torch.randn(8, 20, 4)
    assert step_flops(rnn, lambda: rnn(x), backward=False).method == "counter"
    lstm = nn.LSTM(16, 32, batch_first=True)  # a fused kernel on the CPU: counted analytically
    y = torch.randn(8, 5, 16)
    count = step_flops(lstm, lambda: lstm(y)[0].sum().backward(), backward=True)
    forward = 2 * 4 * (16 * 32 + 32 * 32) * 8 * 5
    assert count.flops >= 3 * forward
    assert count.method in ("counter", "counter+analytic")


def bench(run_id, kind, device, batch, median, flops=1e6, peak=1e9):
    model, dataset, precision, _, seed = run_id.split("/")[:5]
    return {
        "name": f"test_{kind}[{run_id}]",
        "stats": {"median": median, "iqr": median / 10, "min": median * 0.9, "rounds": 7},
        "extra_info": {
            "benchkit": True,
            "run_id": run_id,
            "kind": kind,
            "model": model,
            "dataset": dataset,
            "precision": precision,
            "device": device,
            "device_name": device.upper(),
            "seed": int(seed[4:]),
            "variant": "",
            "batch_size": batch,
            "params": 10,
            "flops_per_call": flops,
            "flops_method": "counter",
            "matmul_dtype": "float32",
            "peak_flops_per_second": peak,
        },
    }


def test_benchmark_json_becomes_a_result_table():
    doc = {
        "benchmarks": [
            bench("m/d/fp32/cpu/seed0", "train_step", "cpu", 100, 0.01),
            {"name": "test_other", "stats": {}, "extra_info": {}},  # not a benchkit benchmark
        ]
    }
    problems = [
        {
            "run_id": "m/d/fp32/cuda/seed0",
            "kind": "train_step",
            # the pytest plugin records the case's key as fields; nothing splits the run_id
            **{"model": "m", "dataset": "d", "precision": "fp32", "device": "cuda", "seed": 0},
            "status": "skipped",
            "reason": "device cuda unavailable: no GPU",
        }
    ]
    frame = results_from_benchmarks(doc, problems)
    assert list(frame["status"]) == ["ok", "skipped"]
    ok = frame.iloc[0]
    assert ok["run_id"] == "m/d/fp32/cpu/seed0/train_step"
    assert ok["samples_per_second"] == pytest.approx(100 / 0.01)
    assert ok["achieved_flops_per_second"] == pytest.approx(1e6 / 0.01)
    assert ok["peak_fraction"] == pytest.approx(1e8 / 1e9)
    assert (ok["step_median_seconds"], ok["rounds"]) == (0.01, 7)
    skipped = frame.iloc[1]
    assert (skipped["device"], skipped["status_detail"]) == (
        "cuda",
        "device cuda unavailable: no GPU",
    )


def sweep(cpu_ms: dict[int, float], gpu_ms: dict[int, float]) -> pd.DataFrame:
    benches = [
        bench(f"m/d/fp32/cpu/seed0/batch{b}", "train_step", "cpu", b, t / 1e3)
        for b, t in cpu_ms.items()
    ]
    benches += [
        bench(f"m/d/fp32/cuda/seed0/batch{b}", "train_step", "cuda", b, t / 1e3)
        for b, t in gpu_ms.items()
    ]
    return results_from_benchmarks({"benchmarks": benches}, [])


def test_speedup_compares_each_device_with_the_cpu_at_the_same_batch():
    frame = sweep({1: 0.1, 1024: 10.0}, {1: 0.5, 1024: 1.0})
    speed = speedup_table(frame).set_index("batch_size")
    assert speed.loc[1, "speedup"] == pytest.approx(0.2)
    assert speed.loc[1024, "speedup"] == pytest.approx(10.0)
    assert set(speed["device"]) == {"cuda"}


def test_crossover_is_where_the_gpu_stays_ahead():
    # the GPU wins at 16, loses at 64 (noise), and wins from 256 on: the crossover is 256
    frame = sweep(
        {1: 0.1, 16: 1.0, 64: 2.0, 256: 8.0, 4096: 100.0},
        {1: 0.5, 16: 0.6, 64: 2.5, 256: 1.0, 4096: 2.0},
    )
    row = crossover_table(frame).iloc[0]
    assert row["crossover_batch_size"] == 256
    assert row["speedup_at_largest"] == pytest.approx(50.0)
    never = crossover_table(sweep({1: 0.1, 16: 1.0}, {1: 0.5, 16: 2.0})).iloc[0]
    assert pd.isna(never["crossover_batch_size"])


def test_the_throughput_suite_runs_through_pytest_benchmark(tmp_path):
    folder = tmp_path / "tp"
    folder.mkdir()
    shutil.copy(REPO / "suites/throughput/test_throughput.py", folder)
    (folder / "suite.toml").write_text(
        '[suite]\nkind = "throughput"\n[matrix]\ndevices = ["cpu", "cuda"]\n'
        'precisions = ["fp32"]\nseeds = [0]\nbatch_sizes = ["recipe", 4]\n'
        '[[cases]]\nmodel = "single_neuron"\ndataset = "celsius"\n'
    )
    suite = parse_suite(folder, load_registry())
    out = tmp_path / "out"
    writer = ResultSetWriter(out, {"kind": "throughput"})
    frame = run_throughput(suite, writer, {}, [], threads=1, quiet=True, max_time=0.01)
    machine = writer.header["environment"]["pytest_benchmark_machine"]
    assert (out / "benchmark.json").exists() and (out / "results.csv").exists()
    raw = json.loads((out / "benchmark.json").read_text())
    assert len(raw["benchmarks"]) == 4  # 2 batch sizes x (train_step, inference) on the CPU
    ok = frame[frame["status"] == "ok"]
    assert sorted(ok["batch_size"].unique()) == [4, 9]  # 9: celsius's full training split
    assert (ok["samples_per_second"] > 0).all() and (ok["flops_per_call"] > 0).all()
    assert set(ok["kind"]) == {"train_step", "inference"}
    if not torch.cuda.is_available():
        assert (frame[frame["device"] == "cuda"]["status"] == "skipped").all()
    assert machine.get("cpu")


def tiny_suite(folder: Path, kind: str) -> Path:
    folder.mkdir()
    if kind == "throughput":
        shutil.copy(REPO / "suites/throughput/test_throughput.py", folder)
    (folder / "suite.toml").write_text(
        f'[suite]\nkind = "{kind}"\n[matrix]\ndevices = ["cpu"]\nprecisions = ["fp32"]\n'
        'seeds = [0]\n[[cases]]\nmodel = "single_neuron"\ndataset = "celsius"\n'
    )
    return folder


def test_benchkit_run_drives_a_throughput_suite_with_a_batch_sweep(tmp_path, capsys):
    from benchkit.cli import main

    suite = tiny_suite(tmp_path / "tp", "throughput")
    out = tmp_path / "out"
    args = [
        "run",
        str(suite),
        "--out",
        str(out),
        "--quiet",
        "--threads",
        "1",
        "--max-time",
        "0.01",
        "--batch-sizes",
        "recipe,64",
    ]
    assert main(args) == 0
    frame = pd.read_csv(out / "results.csv")
    assert sorted(set(frame["batch_size"])) == [9, 64]
    assert set(frame["kind"]) == {"train_step", "inference"}
    meta = json.loads((out / "run.json").read_text())
    assert meta["kind"] == "throughput" and meta["environment"]["pytest_benchmark_machine"]
    raw = json.loads((out / "benchmark.json").read_text())
    assert all(b["stats"].get("data") for b in raw["benchmarks"])  # every round kept
    assert "GFLOP/s" in capsys.readouterr().out
    # the report reads a throughput set too, and plots its training steps
    assert main(["report", str(out), "--out", str(tmp_path / "report")]) == 0
    assert (tmp_path / "report" / "throughput.png").stat().st_size > 10_000


def test_benchkit_run_drives_a_memory_suite(tmp_path, capsys):
    from benchkit.cli import main

    suite = tiny_suite(tmp_path / "mem", "memory")
    out = tmp_path / "out"
    assert main(["run", str(suite), "--out", str(out), "--quiet", "--threads", "1"]) == 0
    frame = pd.read_csv(out / "results.csv")
    assert list(frame["kind"]) == ["train_step", "inference"]
    assert (frame["status"] == "ok").all()
    assert (frame["peak_memory_bytes"] > 0).all()
    assert "train_step MiB" in capsys.readouterr().out
    assert main(["report", str(out), "--out", str(tmp_path / "report")]) == 0
    assert (tmp_path / "report" / "memory.png").stat().st_size > 10_000


def result_set(folder: Path, device: str, device_name: str, speed: float) -> Path:
    folder.mkdir()
    pd.DataFrame(
        [
            {
                "model": "m",
                "dataset": "d",
                "precision": p,
                "device": device,
                "seed": 0,
                "variant": "",
                "device_name": device_name,
                "status": "ok",
                "batch_size": 32,
                "samples_per_second": speed * (2 if p == "bf16" else 1),
            }
            for p in ("fp32", "bf16")
        ]
    ).to_csv(folder / "results.csv", index=False)
    return folder


def test_compare_by_device_across_two_machines(tmp_path, capsys):
    from benchkit.cli import main

    laptop = result_set(tmp_path / "laptop", "cpu", "Intel i5", 1000.0)
    gpu_box = result_set(tmp_path / "gpu", "cuda", "NVIDIA RTX 3050 Laptop GPU", 8000.0)
    assert main(["compare", "--by", "device", str(laptop), str(gpu_box)]) == 0
    out = capsys.readouterr().out
    assert "cuda" in out and "8.0" in out
    speed = pd.read_csv(laptop / "results.csv")
    assert len(speed) == 2


def test_compare_by_device_tells_two_cpus_apart(tmp_path):
    from benchkit.speedup import device_speedup

    a = pd.read_csv(result_set(tmp_path / "a", "cpu", "Intel i5", 1000.0) / "results.csv")
    b = pd.read_csv(result_set(tmp_path / "b", "cpu", "AMD 7950X", 3000.0) / "results.csv")
    speed = device_speedup([a, b])
    assert set(speed["device"]) == {"cpu [AMD 7950X]"}
    assert list(speed["speedup"]) == [pytest.approx(3.0)] * 2


def test_compare_by_device_without_a_second_device_is_a_clear_error(tmp_path, capsys):
    from benchkit.cli import main

    laptop = result_set(tmp_path / "laptop", "cpu", "Intel i5", 1000.0)
    assert main(["compare", "--by", "device", str(laptop)]) == 2
    assert "no model/precision measured on the CPU and on another device" in (
        capsys.readouterr().err
    )


def test_a_case_max_seconds_caps_pytest_benchmarks_time(tmp_path):
    """A throughput case's ``max_seconds`` becomes pytest-benchmark's own ``max_time`` for
    that case (its ``benchmark`` marker); the other cases keep ``--max-time``."""
    from types import SimpleNamespace

    from benchkit import pytest_plugin

    suite = tmp_path / "suite.toml"
    suite.write_text(
        """
[suite]
kind = "throughput"
[matrix]
devices = ["cpu"]
precisions = ["fp32"]
seeds = [0]
[[cases]]
model = "single_neuron"
dataset = "line"
max_seconds = 0.25
[[cases]]
model = "sine_mlp"
dataset = "sine"
"""
    )
    options = {"benchkit_suite": str(suite), "benchkit_filter": [], "benchkit_batch_sizes": None}
    config = SimpleNamespace(getoption=lambda name, default=None: options.get(name, default))
    config.stash = {}
    calls = []
    metafunc = SimpleNamespace(
        fixturenames=["benchkit_case"],
        config=config,
        definition=SimpleNamespace(path=tmp_path / "test_x.py"),
        parametrize=lambda name, params, ids, indirect: calls.append((params, ids)),
    )
    pytest_plugin.pytest_generate_tests(metafunc)
    ((params, ids),) = calls
    marks = {
        run_id: [m.kwargs for m in getattr(p, "marks", ())]
        for run_id, p in zip(ids, params, strict=True)
    }
    assert marks == {
        "single_neuron/line/fp32/cpu/seed0": [{"max_time": 0.25}],
        "sine_mlp/sine/fp32/cpu/seed0": [],
    }
