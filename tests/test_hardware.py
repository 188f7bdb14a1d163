"""Closer to the hardware: blocked timing, honest peaks, the roofline, device limits as skips,
one-line failures, and ``benchkit profile``."""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

import benchkit_plugins.single_neuron as single_neuron
import pandas as pd
import pytest
import torch
from torch import nn

import benchkit
from benchkit import Data, Recipe, Split
from benchkit.cases import DeviceCache, PreparedCase
from benchkit.cli import main
from benchkit.peaks import device_peak, fingerprint, raise_peak
from benchkit.registry import load_registry
from benchkit.resultset import ResultSetWriter
from benchkit.roofline import NEAR, bound, step_bytes
from benchkit.roofline_plot import roofline
from benchkit.suite import Case, parse_suite
from benchkit.summary import throughput_summary
from benchkit.testing import isolated_registry, run_quick
from benchkit.throughput import results_from_benchmarks, run_throughput

REPO = Path(__file__).resolve().parent.parent


# --- timing in blocks: one wait for the device per block -----------------------------------


class CountingCpu(benchkit.Device):
    """The CPU, counting how often benchkit waits for it; each wait costs a millisecond, as a
    GPU's synchronisation costs something."""

    name = "counting"

    def __init__(self) -> None:
        self.syncs = 0

    @property
    def torch_device(self) -> torch.device:
        return torch.device("cpu")

    def synchronize(self) -> None:
        self.syncs += 1
        time.sleep(1e-3)


class CountingPlugin:
    @benchkit.hookimpl
    def benchkit_register_devices(self, register):
        register("counting", lambda index: CountingCpu())


@pytest.fixture
def prepared():
    registry = isolated_registry(single_neuron, CountingPlugin())
    recipe = registry.get("model", "single_neuron").datasets["celsius"]
    case = Case("single_neuron", "celsius", "fp32", "counting", 0, recipe)
    return PreparedCase.build(case, registry, DeviceCache(registry))


def test_a_block_of_calls_waits_for_the_device_once(prepared):
    prepared.device.syncs = 0
    per_call = prepared.block("train_step", 50)
    assert prepared.device.syncs == 1
    assert 0 < per_call < 1e-3 + 0.05  # the 1 ms wait is shared by the 50 calls


def test_blocks_are_sized_as_blocked_autorange_sizes_them(prepared):
    prepared.device.syncs = 0
    number = prepared.block_size("train_step", min_run_time=0.02)
    tried = round(math.log10(number)) + 1  # 1, 10, 100, ...
    assert number == 10 ** (tried - 1) and number > 1  # a 1 ms wait needs many calls per block
    assert prepared.device.syncs == 5 + tried  # five empty blocks for the wait, one per try


class FakeBenchmark:
    """pytest-benchmark's ``pedantic`` loop, recording the waits of each timed round."""

    _max_time = 0.05
    _min_rounds = 5

    def __init__(self, device: CountingCpu) -> None:
        self.device = device
        self.extra_info: dict = {}
        self.rounds: list[tuple[int, int]] = []

    def pedantic(self, target, iterations, rounds, warmup_rounds):
        for i in range(warmup_rounds + rounds):
            before = self.device.syncs
            for _ in range(iterations):
                target()
            if i >= warmup_rounds:
                self.rounds.append((iterations, self.device.syncs - before))
        if iterations > 1:
            target()  # pytest-benchmark makes one more call after looped rounds


def test_benchmark_times_blocks_with_one_wait_each_and_reports_per_call(prepared):
    fake = FakeBenchmark(prepared.device)
    number = prepared.benchmark(fake, "train_step")
    assert number > 1 and fake.extra_info["calls_per_block"] == number
    assert len(fake.rounds) >= 5
    assert all(rounds == (number, 1) for rounds in fake.rounds)


# --- peaks: the best of several products, cached per machine, raised by a faster case ------


def test_the_peak_is_measured_once_per_machine_and_cached(tmp_path):
    device = benchkit.Device()
    first = device_peak(device, torch.float32, tmp_path, budget=0.005, bandwidth_bytes=2**22)
    assert first.source == "measured" and first.flops_per_second > 1e8
    assert first.bandwidth_bytes_per_second > 1e8
    assert len(first.shape.split("x")) == 3
    again = device_peak(device, torch.float32, tmp_path)
    assert again.source == "cached"
    assert (again.flops_per_second, again.bandwidth_bytes_per_second) == (
        first.flops_per_second,
        first.bandwidth_bytes_per_second,
    )
    doc = json.loads((tmp_path / "peaks.json").read_text())
    assert list(doc) == [fingerprint(device)]
    assert f"{torch.get_num_threads()} threads" in fingerprint(device)


def test_a_faster_case_raises_the_cached_peak(tmp_path):
    device = benchkit.Device()
    peak = device_peak(device, torch.float32, tmp_path, budget=0.005, bandwidth_bytes=2**22)
    rate = 2 * peak.flops_per_second
    raise_peak(peak.fingerprint, "float32", rate, "m/d/fp32/cpu/seed0", tmp_path)
    raised = device_peak(device, torch.float32, tmp_path)
    assert raised.flops_per_second == 2 * peak.flops_per_second
    assert raised.raised_from == peak.flops_per_second
    assert raised.shape == "raised by m/d/fp32/cpu/seed0"


def bench(run_id, median, flops, moved, peak=1e9, bandwidth=3e9):
    model, dataset, precision, device, seed = run_id.split("/")
    return {
        "name": f"test_train_step[{run_id}]",
        "stats": {"median": median, "iqr": 0.0, "min": median, "rounds": 5},
        "extra_info": {
            "benchkit": True,
            "run_id": run_id,
            "kind": "train_step",
            "model": model,
            "dataset": dataset,
            "precision": precision,
            "device": device,
            "device_name": "CPU",
            "seed": int(seed[4:]),
            "variant": "",
            "mode": "eager",
            "batch_size": 10,
            "params": 10,
            "flops_per_call": flops,
            "flops_method": "counter",
            "bytes_per_call": moved,
            "matmul_dtype": "float16",
            "peak_flops_per_second": peak,
            "memory_bandwidth_bytes_per_second": bandwidth,
            "calls_per_block": 10,
        },
    }


def test_no_fraction_of_peak_exceeds_one_the_faster_case_raises_it_and_says_so():
    doc = {
        "benchmarks": [
            # 2 GFLOP/s > the probe's 1 GFLOP/s; 0.5 FLOP/B x 3 GB/s: a memory roof of 1.5
            bench("fast/d/fp16/cpu/seed0", median=1e-3, flops=2e6, moved=4e6),
            # 0.5 GFLOP/s at 5 FLOP/B: under the compute roof (now 2 GFLOP/s), far from it
            bench("slow/d/fp16/cpu/seed0", median=1e-3, flops=5e5, moved=1e5),
        ]
    }
    frame = results_from_benchmarks(doc, []).set_index("model")
    assert (frame["peak_fraction"] <= 1.0).all()
    assert frame.loc["fast", "peak_fraction"] == 1.0
    assert frame.loc["slow", "peak_fraction"] == pytest.approx(0.25)
    assert (frame["peak_flops_per_second"] == 2e9).all()
    assert frame.loc["fast", "peak_note"].startswith("peak raised from 1 to 2 GFLOP/s")
    assert pd.isna(frame.loc["slow", "peak_note"])
    assert frame.loc["fast", "calls_per_block"] == 10
    assert frame.loc["fast", "arithmetic_intensity"] == pytest.approx(0.5)
    assert frame.loc["fast", "bound"] == "memory"
    assert frame.loc["slow", "bound"] == "overhead"


# --- the roofline ------------------------------------------------------------------------------


def test_bytes_of_a_linear_stack_follow_the_documented_estimate():
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 1))
    x, y = torch.randn(10, 20), torch.randn(10, 1)
    params = (20 * 64 + 64 + 64 + 1) * 4
    acts = (10 * 64 + 10 * 64 + 10 * 1) * 4
    forward = lambda: model(x)  # noqa: E731
    sgd = torch.optim.SGD(model.parameters(), lr=0.1)
    inference = step_bytes(model, sgd, (x,), y, forward, train=False)
    assert inference.total == params + x.numel() * 4 + acts
    train = step_bytes(model, sgd, (x,), y, forward, train=True)
    assert train.total == 2 * params + (x.numel() + y.numel()) * 4 + 3 * acts + params + 3 * params
    adam = torch.optim.Adam(model.parameters())
    with_state = step_bytes(model, adam, (x,), y, forward, train=True)
    assert with_state.total - train.total == 4 * params  # two state tensors, read and written


@pytest.mark.parametrize(
    ("achieved", "intensity", "expected"),
    [
        (90e9, 1000.0, "compute"),  # peak 100 GFLOP/s is the roof at high intensity
        (9e9, 1.0, "memory"),  # 1 FLOP/B x 10 GB/s = 10 GFLOP/s roof
        (NEAR * 10e9 * 0.99, 1.0, "overhead"),  # under half the memory roof
        (1e9, 1000.0, "overhead"),
        (float("nan"), 1.0, ""),
    ],
)
def test_the_bound_is_the_roof_a_step_is_near(achieved, intensity, expected):
    assert bound(achieved, 100e9, intensity, 10e9) == expected


def roofline_rows(device: str, name: str, peak: float, bandwidth: float) -> list[dict]:
    return [
        {
            "model": model,
            "precision": "fp32",
            "mode": mode,
            "device": device,
            "device_name": name,
            "kind": kind,
            "status": "ok",
            "arithmetic_intensity": intensity,
            "achieved_flops_per_second": rate,
            "peak_flops_per_second": peak,
            "memory_bandwidth_bytes_per_second": bandwidth,
            "matmul_dtype": "float32",
        }
        for model, mode, kind, intensity, rate in (
            ("sine_mlp", "eager", "train_step", 9.0, peak / 20),
            ("sine_mlp", "compile", "train_step", 9.0, peak / 10),
            ("lstm_seq2seq", "eager", "inference", 200.0, peak / 5),
        )
    ]


def test_the_roofline_puts_cpu_and_gpu_side_by_side():
    rows = roofline_rows("cpu", "Xeon", 1.6e11, 6e9)
    rows += roofline_rows("cuda", "RTX 3050", 9e12, 1.9e11)
    fig = roofline(pd.DataFrame(rows))
    assert fig is not None
    axes = fig.get_axes()
    assert [ax.get_title() for ax in axes] == ["cpu: Xeon", "cuda: RTX 3050"]
    for ax in axes:
        assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
        labels = {t.get_text() for t in ax.texts}
        assert "sine_mlp/fp32/compile" in labels and "lstm_seq2seq/fp32/eager" in labels
        assert any("float32 roof" in t.get_text() for t in ax.get_legend().get_texts())
    assert roofline(pd.DataFrame([{"status": "ok", "model": "m"}])) is None


# --- known device limits are skips ---------------------------------------------------------


class LstmPlugin:
    """A tiny LSTM, and a model whose own code fails under float16."""

    @benchkit.hookimpl
    def benchkit_register_datasets(self, register):
        def seq(options):
            x = torch.randn(8, 5, 4)
            return Data(train=Split((x,), x.sum(dim=2, keepdim=True)))

        register("toy_seq", seq)

    @benchkit.hookimpl
    def benchkit_register_models(self, register):
        class Tiny(nn.Module):
            def __init__(self, picky: bool) -> None:
                super().__init__()
                self.lstm = nn.LSTM(4, 8, batch_first=True)
                self.head = nn.Linear(8, 1)
                self.picky = picky

            def forward(self, x):
                if self.picky and torch.is_autocast_enabled("cpu"):
                    raise RuntimeError("my model does not do autocast")
                return self.head(self.lstm(x)[0])

        recipe = Recipe(loss="mse", optimizer="adam", lr=1e-2, epochs=2)
        register("toy_lstm", lambda d, o: Tiny(False), datasets={"toy_seq": recipe})
        register("picky_lstm", lambda d, o: Tiny(True), datasets={"toy_seq": recipe})


def _onednn_refuses_fp16_lstm() -> bool:
    lstm = nn.LSTM(4, 8, batch_first=True)
    try:
        with torch.autocast("cpu", dtype=torch.float16):
            out = lstm(torch.randn(2, 3, 4))[0]
        out.float().sum().backward()
    except RuntimeError:
        return True
    return False


def test_a_precision_torch_cannot_run_here_is_skipped_with_the_reason():
    if not _onednn_refuses_fp16_lstm():
        pytest.skip("this CPU's torch trains an LSTM under autocast float16")
    registry = isolated_registry(LstmPlugin())
    result = run_quick(registry, "toy_lstm", "toy_seq", precision="amp_fp16")
    assert result.status == "skipped"
    assert result.status_detail.startswith(
        "precision amp_fp16 cannot run toy_lstm on cpu in torch "
    )
    assert "could not create a primitive descriptor" in result.status_detail
    assert result.status_detail.endswith("it runs in fp32 eager")
    # the same failure raised by the model's own code is the model's bug, not a limit
    picky = run_quick(registry, "picky_lstm", "toy_seq", precision="amp_fp16")
    assert picky.status == "error" and "my model does not do autocast" in picky.status_detail


def tiny_throughput(folder: Path, case: str) -> Path:
    folder.mkdir()
    shutil.copy(REPO / "suites/throughput/test_throughput.py", folder)
    (folder / "suite.toml").write_text(
        '[suite]\nkind = "throughput"\n[matrix]\ndevices = ["cpu"]\nprecisions = ["fp32"]\n'
        f"seeds = [0]\n[[cases]]\n{case}\n"
    )
    return folder


@pytest.mark.parametrize("debug", [False, True])
def test_a_failing_throughput_case_is_one_line_without_debug(tmp_path, capfd, debug):
    missing = tmp_path / "missing.csv"
    folder = tiny_throughput(
        tmp_path / "tp", f'model = "rnn"\ndataset = "prices"\noptions = {{ path = "{missing}" }}'
    )
    writer = ResultSetWriter(tmp_path / "out", {"kind": "throughput"})
    frame = run_throughput(
        parse_suite(folder, load_registry()), writer, {}, [], 1, False, 0.01, debug=debug
    )
    printed = capfd.readouterr().out
    assert list(frame["status"]) == ["error", "error"]
    assert all("\n" not in detail for detail in frame["status_detail"])
    assert ("\nE   " in printed) is debug  # pytest's traceback lines
    if not debug:  # one line per case (cut to the terminal's width by pytest)
        lines = [line for line in printed.splitlines() if "rnn/prices/fp32/cpu/seed0" in line]
        assert len(lines) == 2 and all(line.startswith("ERROR ") for line in lines)
        assert str(missing) in throughput_summary(frame)  # benchkit's own line says why


# --- benchkit profile ----------------------------------------------------------------------


def test_profile_splits_each_step_and_writes_a_result_set(tmp_path, capsys):
    suite = tmp_path / "suite.toml"
    suite.write_text(
        '[matrix]\ndevices = ["cpu"]\nprecisions = ["fp32"]\nseeds = [0]\n'
        'modes = ["eager", "cudagraphs"]\n[[cases]]\nmodel = "sine_mlp"\ndataset = "sine"\n'
    )
    out = tmp_path / "profile"
    args = ["profile", str(suite), "--steps", "3", "--out", str(out), "--quiet", "--trace"]
    assert main([*args, "--threads", "1", "--kind", "train_step,inference"]) == 0
    printed = capsys.readouterr().out
    assert "floor ms" in printed and "overhead" in printed
    frame = pd.read_csv(out / "results.csv").set_index("run_id")
    train = frame.loc["sine_mlp/sine/fp32/cpu/seed0/train_step"]
    assert train["status"] == "ok" and train["steps"] == 3
    shares = train[["compute_share", "optimizer_share", "overhead_share"]]
    assert shares.sum() == pytest.approx(1.0)
    assert (shares[["compute_share", "optimizer_share"]] > 0).all()
    assert 0 < train["floor_seconds"] < train["step_seconds"]
    assert "aten::" in train["top_operators"]
    inference = frame.loc["sine_mlp/sine/fp32/cpu/seed0/inference"]
    assert inference["optimizer_share"] == 0
    graphed = frame.loc["sine_mlp/sine/fp32/cpu/seed0/cudagraphs/train_step"]
    if not torch.cuda.is_available():
        assert graphed["status"] == "skipped"
    meta = json.loads((out / "run.json").read_text())
    assert meta["kind"] == "profile" and meta["finished"]
    trace = out / "traces" / "sine_mlp_sine_fp32_cpu_seed0_train_step.json"
    assert "traceEvents" in json.loads(trace.read_text())
    assert main(["report", str(out), "--out", str(tmp_path / "report")]) == 0
    report = (tmp_path / "report" / "report.md").read_text()
    assert "top operators" in report and "aten::" in report  # read back as words


class Span:
    """A profiler event's time range, in microseconds."""

    def __init__(self, start: float, end: float) -> None:
        self.start, self.end = start, end

    def elapsed_us(self) -> float:
        return self.end - self.start


class Event:
    """The fields of torch.profiler's FunctionEvent that the breakdown reads."""

    def __init__(self, name, start, end, self_us=0.0, device_us=0.0, children=(), cuda=False):
        from torch.autograd import DeviceType

        self.name, self.time_range = name, Span(start, end)
        self.self_cpu_time_total, self.device_time_total = self_us, device_us
        self.device_type = DeviceType.CUDA if cuda else DeviceType.CPU
        self.cpu_children, self.cpu_parent = list(children), None
        for child in self.cpu_children:
            child.cpu_parent = self


def profiled_step(start: float, gpu: bool) -> list[Event]:
    """One 1000 us step: 300 us in aten::mm, 200 us of optimizer (50 us of it in an aten op
    that counts as optimizer, not compute), 40 us in a view (overhead), the rest Python."""
    adam_op = Event("aten::_foreach_add_", start + 600, start + 650, self_us=50)
    optimizer = Event(
        "Optimizer.step#Adam.step", start + 500, start + 700, device_us=120, children=[adam_op]
    )
    mm = Event("aten::mm", start + 100, start + 400, self_us=300)
    view = Event("aten::view", start + 450, start + 490, self_us=40)
    step = Event("benchkit.step", start, start + 1000, children=[mm, view, optimizer])
    events = [step, mm, view, optimizer, adam_op]
    if gpu:  # kernels: 100..400 and 300..500 overlap; the optimizer's 120 us; idle the rest
        events += [
            Event("gemm", start + 100, start + 400, cuda=True),
            Event("gemm", start + 300, start + 500, cuda=True),
            Event("adam", start + 600, start + 720, cuda=True),
        ]
    return events


def test_the_breakdown_splits_a_cpu_step_into_compute_optimizer_and_overhead():
    from benchkit.profiling import breakdown

    parts = breakdown(profiled_step(0, gpu=False) + profiled_step(5000, gpu=False), steps=2)
    assert parts.step == pytest.approx(1000e-6)
    assert parts.compute == pytest.approx(300e-6)  # aten::mm; the view is overhead
    assert parts.optimizer == pytest.approx(200e-6)  # the whole optimizer range
    assert parts.overhead == pytest.approx(500e-6)
    assert parts.idle is None
    assert parts.top.startswith("aten::mm 30%")


def test_the_breakdown_of_a_gpu_step_counts_kernels_once_and_the_gaps_as_idle():
    from benchkit.profiling import breakdown

    parts = breakdown(profiled_step(0, gpu=True), steps=1)
    busy = 400 + 120  # 100..500 (two overlapping gemms) and the optimizer's kernel
    assert parts.step == pytest.approx(1000e-6)  # the host's step: longer than the kernels
    assert parts.optimizer == pytest.approx(120e-6)
    assert parts.compute == pytest.approx((busy - 120) * 1e-6)
    assert parts.idle == pytest.approx((1000 - busy) * 1e-6)
    assert parts.compute + parts.optimizer + parts.idle == pytest.approx(parts.step)
