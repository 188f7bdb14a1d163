"""The runner measures one case: loss figures, statuses, timing, memory, determinism."""

from __future__ import annotations

import math
import sys

import pytest
import torch

from benchkit import runner
from benchkit.run_result import warmup_epochs
from benchkit.testing import run_quick


def test_single_point_figures_follow_from_the_curve(toy_registry):
    result = run_quick(toy_registry, "single_neuron", "single_point", epochs=100, target_loss=1e-6)
    assert result.status == "ok", result.status_detail
    assert result.epochs == len(result.curve) == 100
    assert result.params == 2
    assert result.final_loss == result.curve[-1] == 0.0
    assert result.best_loss == min(result.curve) == 0.0
    # x = y = 1, SGD lr 0.1: the residual shrinks by 0.6 per step, the MSE by 0.36, from
    # 0.2219 at epoch 0: 1.05e-6 at epoch 12, 3.8e-7 at 13; float32 reaches 0 at epoch 34.
    assert result.curve[12] > 1e-6 >= result.curve[13]
    assert result.converged_epoch == 13
    assert result.curve[33] > 0.0 == result.curve[34]
    assert result.zero_loss_epoch == 34
    assert result.curve[1] / result.curve[0] == pytest.approx(0.36, rel=1e-3)
    assert result.metrics["weight"] + result.metrics["bias"] == pytest.approx(1.0, abs=1e-6)


def test_a_target_the_curve_hits_exactly_counts_as_reached(toy_registry):
    """``converged_epoch`` is the first epoch whose loss is <= the target: a loss equal to
    the target counts (a run is deterministic, so a second run's epoch 12 is the first's)."""
    first = run_quick(toy_registry, "single_neuron", "single_point", epochs=20)
    target = first.curve[12]
    again = run_quick(toy_registry, "single_neuron", "single_point", epochs=20, target_loss=target)
    assert again.curve[12] == target
    assert again.converged_epoch == 12
    assert again.time_to_target_seconds == again.epoch_seconds[12]


def test_a_target_never_reached_leaves_converged_epoch_empty(toy_registry):
    result = run_quick(toy_registry, "single_neuron", "single_point", epochs=5, target_loss=1e-6)
    assert min(result.curve) > 1e-6
    assert result.converged_epoch is None and result.time_to_target_seconds is None
    assert result.zero_loss_epoch is None


def test_epoch_zero_is_the_loss_before_the_first_update(toy_registry):
    # Seed 0 builds weight -0.0075, bias 0.5364: prediction 0.5289 for x = 1, target 1.
    result = run_quick(toy_registry, "single_neuron", "single_point", epochs=1)
    torch.manual_seed(0)
    model = torch.nn.Linear(1, 1)
    expected = (model(torch.tensor([[1.0]])) - 1.0).pow(2).item()
    assert result.curve[0] == expected


def test_half_precision_neuron_starts_where_the_source_says(toy_registry):
    registry = toy_registry
    torch.manual_seed(0)
    data = registry.get("dataset", "single_point").factory({})
    torch.manual_seed(0)
    model = registry.get("model", "single_neuron").factory(data, {})
    half = registry.get("precision", "fp16").factory().prepare_model(model)
    assert round(half.weight.item(), 4) == -0.0075
    assert round(half.bias.item(), 4) == 0.5366


def test_timing_throughput_and_memory_are_measured(toy_registry):
    result = run_quick(toy_registry, "toy_linear", "toy_ramp", epochs=30, target_loss=1.0)
    assert result.status == "ok"
    assert len(result.epoch_seconds) == 30
    assert result.epoch_seconds == sorted(result.epoch_seconds)
    assert result.train_seconds == result.epoch_seconds[-1] > 0
    assert result.converged_epoch is not None
    assert result.time_to_target_seconds == result.epoch_seconds[result.converged_epoch]
    assert result.train_samples == 64
    assert result.device_name  # the CPU's model name
    if sys.platform.startswith("linux"):  # resident-set growth, from /proc/self/status
        assert isinstance(result.peak_memory_bytes, int) and result.peak_memory_bytes >= 0


@pytest.mark.parametrize(
    ("epochs", "seconds", "expected"),
    [
        # 30 epochs: warm-up 3. Three slow epochs end at 10, 20, 30 s, then 27 epochs of
        # 0.5 s: 64 samples x 27 epochs / 13.5 s. Counting the warm-up would give 44.1.
        (30, [10.0, 20.0, 30.0] + [30.0 + 0.5 * k for k in range(1, 28)], 128.0),
        # 5 epochs: warm-up 1 (a tenth, at least one): 64 x 4 / (9 - 1).
        (5, [1.0, 3.0, 5.0, 7.0, 9.0], 32.0),
        # 200 epochs: warm-up capped at 10: 64 x 190 / (200 - 10) s.
        (200, [float(k) for k in range(1, 201)], 64.0),
        # spans under a second: 64 x 2 / 0.2 s
        (3, [0.1, 0.2, 0.3], 640.0),
    ],
    ids=["warm-up-3", "warm-up-1", "warm-up-capped-10", "sub-second"],
)
def test_throughput_leaves_the_warm_up_epochs_out(
    toy_registry, monkeypatch, epochs, seconds, expected
):
    original = runner.train

    def train_on_a_fixed_clock(*args, **kwargs):
        outcome = original(*args, **kwargs)
        outcome.epoch_end_seconds = list(seconds)
        return outcome

    monkeypatch.setattr(runner, "train", train_on_a_fixed_clock)
    result = run_quick(toy_registry, "toy_linear", "toy_ramp", epochs=epochs, target_loss=1e9)
    assert result.train_samples == 64
    assert result.samples_per_second == pytest.approx(expected, rel=1e-12)
    assert result.train_seconds == seconds[-1]
    assert result.converged_epoch == 0 and result.time_to_target_seconds == seconds[0]


def test_one_epoch_or_a_zero_span_gives_no_throughput(toy_registry, monkeypatch):
    original = runner.train
    clock: list[float] = []

    def train_on_a_fixed_clock(*args, **kwargs):
        outcome = original(*args, **kwargs)
        outcome.epoch_end_seconds = list(clock)
        return outcome

    monkeypatch.setattr(runner, "train", train_on_a_fixed_clock)
    clock[:] = [2.0]  # the only epoch is the warm-up
    assert run_quick(toy_registry, "toy_linear", "toy_ramp", epochs=1).samples_per_second is None
    clock[:] = [2.0, 2.0, 2.0]  # a clock too coarse to see the epochs after warm-up
    result = run_quick(toy_registry, "toy_linear", "toy_ramp", epochs=3)
    assert result.status == "ok", result.status_detail
    assert result.samples_per_second is None and result.train_seconds == 2.0


def test_peak_memory_is_the_devices_figure_for_this_run(toy_registry, monkeypatch):
    """The runner resets the device's peak before it builds anything, and reads it after."""
    from benchkit_plugins.devices import CpuDevice

    events: list[str] = []
    original = runner.train

    def train(*args, **kwargs):
        events.append("train")
        return original(*args, **kwargs)

    def reset(self):
        events.append("reset")

    def peak(self):
        events.append("peak")
        return 12345

    monkeypatch.setattr(runner, "train", train)
    monkeypatch.setattr(CpuDevice, "reset_peak_memory", reset)
    monkeypatch.setattr(CpuDevice, "peak_memory_bytes", peak)
    result = run_quick(toy_registry, "toy_linear", "toy_ramp", epochs=2)
    assert result.peak_memory_bytes == 12345
    assert events == ["reset", "train", "peak"]


def test_progress_is_reported_per_epoch_with_its_loss(toy_registry):
    from benchkit.cases import DeviceCache
    from benchkit.runner import run_case
    from benchkit.suite import Case

    recipe = (
        toy_registry.get("model", "toy_linear").datasets["toy_ramp"].with_overrides({"epochs": 4})
    )
    seen: list[tuple[int, float]] = []
    case = Case("toy_linear", "toy_ramp", "fp32", "cpu", 0, recipe, options={"n": 64})
    result = run_case(
        case, toy_registry, DeviceCache(toy_registry), lambda e, loss: seen.append((e, loss))
    )
    assert seen and seen[-1] == (3, result.curve[3])


def test_a_validation_criterion_reads_the_validation_curve(toy_registry):
    from benchkit.cases import DeviceCache
    from benchkit.criteria import parse_criterion
    from benchkit.runner import run_case
    from benchkit.suite import Case

    recipe = (
        toy_registry.get("model", "toy_linear").datasets["toy_ramp"].with_overrides({"epochs": 6})
    )
    criterion = parse_criterion("valid_loss <= 1e9")
    case = Case(
        "toy_linear", "toy_ramp", "fp32", "cpu", 0, recipe, options={"n": 64}, criteria=(criterion,)
    )
    result = run_case(case, toy_registry, DeviceCache(toy_registry))
    assert result.criteria["valid_loss <= 1e+09"] == (0, result.epoch_seconds[0])


def test_validation_loss_is_recorded_every_epoch(toy_registry):
    result = run_quick(toy_registry, "toy_linear", "toy_ramp", epochs=7)
    assert len(result.valid_curve) == 7
    assert result.metrics["valid_loss"] == result.valid_curve[-1]


def test_test_split_gives_a_test_loss_metric(toy_registry):
    """``test_loss`` is the recipe's loss (L1 for line) of the trained model on the test split
    (the last 10 points), not on the 40 it trained on."""
    result = run_quick(toy_registry, "single_neuron", "line", epochs=5)
    w, b = result.metrics["weight"], result.metrics["bias"]
    x = torch.arange(0, 1, 0.02).unsqueeze(1)
    y = 0.7 * x + 0.3
    test_mae = (w * x[40:] + b - y[40:]).abs().mean().item()
    train_mae = (w * x[:40] + b - y[:40]).abs().mean().item()
    assert result.metrics["test_loss"] == pytest.approx(test_mae, rel=1e-6)
    assert abs(test_mae - train_mae) > 0.01  # the two splits tell apart


def test_non_finite_loss_stops_the_run_as_diverged(toy_registry):
    result = run_quick(toy_registry, "toy_exploding", "toy_ramp", epochs=500)
    assert result.status == "diverged"
    assert result.diverged_epoch is not None
    assert result.epochs == result.diverged_epoch + 1 < 500
    assert not math.isfinite(result.curve[-1])
    assert all(math.isfinite(v) for v in result.curve[:-1])
    assert f"epoch {result.diverged_epoch}" in result.status_detail


def test_an_exception_becomes_an_error_row(toy_registry):
    result = run_quick(toy_registry, "toy_raising", "toy_ramp")
    assert result.status == "error"
    assert "RuntimeError: model factory bug" in result.status_detail


def test_a_user_facing_plugin_error_keeps_its_message(toy_registry):
    result = run_quick(toy_registry, "toy_linear", "toy_broken")
    assert result.status == "error"
    assert result.status_detail == "toy dataset: file data.csv is missing"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the report of an absent GPU")
def test_an_absent_device_is_skipped_with_its_reason_not_replaced(toy_registry):
    result = run_quick(toy_registry, "toy_linear", "toy_ramp", device="cuda")
    assert result.status == "skipped"
    assert result.status_detail.startswith("device cuda unavailable: ")
    assert result.curve == [] and result.device_name == ""


def test_a_precision_the_device_cannot_run_is_skipped(toy_registry, monkeypatch):
    from benchkit_plugins.devices import CpuDevice

    monkeypatch.setattr(
        CpuDevice, "dtype_unsupported_reason", lambda self, dtype: "no half here", raising=False
    )
    result = run_quick(toy_registry, "toy_linear", "toy_ramp", precision="fp16")
    assert result.status == "skipped"
    assert result.status_detail == "precision fp16 unsupported on cpu: no half here"


@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16", "fp64"])
def test_same_seed_same_curve_bit_for_bit(toy_registry, precision):
    kwargs = dict(epochs=40, precision=precision, seed=3)
    first = run_quick(toy_registry, "single_neuron", "celsius", **kwargs)
    second = run_quick(toy_registry, "single_neuron", "celsius", **kwargs)
    assert first.status == second.status == "ok"
    assert first.curve == second.curve
    assert first.valid_curve == second.valid_curve


def test_the_sine_mlp_curve_reproduces_and_seeds_differ(toy_registry):
    import benchkit_plugins.sine_mlp as sine_mlp

    from benchkit.testing import isolated_registry

    registry = isolated_registry(sine_mlp)
    a = run_quick(registry, "sine_mlp", "sine", epochs=15, seed=0)
    b = run_quick(registry, "sine_mlp", "sine", epochs=15, seed=0)
    c = run_quick(registry, "sine_mlp", "sine", epochs=15, seed=1)
    assert a.curve == b.curve
    assert a.metrics["rollout_mse"] == b.metrics["rollout_mse"]
    assert a.curve != c.curve


def test_celsius_split_depends_on_the_seed(toy_registry):
    factory = toy_registry.get("dataset", "celsius").factory
    torch.manual_seed(0)
    a = factory({})
    torch.manual_seed(1)
    b = factory({})
    assert len(a.train) == 9 and len(a.valid) == 2
    assert not torch.equal(a.valid.target, b.valid.target)


@pytest.mark.parametrize(("epochs", "warm"), [(1, 1), (10, 1), (100, 10), (3000, 10)])
def test_warmup_is_a_tenth_within_bounds(epochs, warm):
    assert warmup_epochs(epochs) == warm
