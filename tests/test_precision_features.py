"""Mixed precision, criteria, traces and divergence forensics through the runner."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from benchkit.cases import DeviceCache
from benchkit.cli import main
from benchkit.criteria import parse_criterion
from benchkit.errors import SuiteError
from benchkit.registry import load_registry
from benchkit.runner import run_case
from benchkit.suite import Case, parse_suite
from benchkit.testing import run_quick


@pytest.fixture(scope="module")
def registry():
    return load_registry()


def case(registry, model, dataset, precision="fp32", epochs=30, **kwargs) -> Case:
    recipe = registry.get("model", model).datasets[dataset].with_overrides({"epochs": epochs})
    return Case(
        model,
        dataset,
        precision,
        "cpu",
        0,
        recipe,
        options=dict(registry.get("dataset", dataset).options),
        model_options=dict(registry.get("model", model).options),
        **kwargs,
    )


@pytest.mark.parametrize("precision", ["amp_fp16", "amp_bf16"])
def test_autocast_precisions_train_with_float32_parameters(registry, precision):
    result = run_quick(registry, "sine_mlp", "sine", precision=precision, epochs=20)
    assert result.status == "ok", result.status_detail
    assert result.curve[-1] < result.curve[0]
    if precision == "amp_fp16":
        assert result.metrics["scaler_steps"] == 20
        assert_skips_halved_the_scale(result.metrics)
    else:
        assert "scaler_steps" not in result.metrics


def assert_skips_halved_the_scale(metrics: dict[str, float]) -> None:
    """GradScaler starts at 2**16, halves its scale at every skipped step and doubles it only
    after 2000 clean ones: over a short run, skipped steps = log2(65536 / final scale)."""
    skipped = metrics["scaler_skipped_steps"]
    assert skipped == int(skipped) and 0 <= skipped <= metrics["scaler_steps"]
    assert metrics["scaler_final_scale"] == 65536 / 2**skipped


def test_grad_scaler_skipped_steps_are_counted(registry):
    # Celsius gradients times the initial scale 65536 overflow float16: the scaler skips
    # those steps and halves its scale until they fit.
    result = run_quick(registry, "single_neuron", "celsius", precision="amp_fp16", epochs=50)
    assert result.metrics["scaler_steps"] == 50
    assert result.metrics["scaler_skipped_steps"] > 0
    assert_skips_halved_the_scale(result.metrics)


def test_pure_fp16_adam_divergence_is_explained(registry):
    result = run_case(case(registry, "sine_mlp", "sine", "fp16"), registry, DeviceCache(registry))
    assert result.status == "diverged"
    assert result.nonfinite_loss == "nan"
    # eps = 0 divides 0 by 0 at the first update: NaN parameters after epoch 0, then NaN
    # gradients and loss in epoch 1
    assert (result.params_nonfinite_epoch, result.grads_nonfinite_epoch) == (0, 1)
    assert result.diverged_epoch == 1
    assert result.status_detail == (
        "training loss nan at epoch 1; gradients first non-finite in epoch 1; parameters first "
        "non-finite after the update of epoch 0; Adam's eps=1e-08 is 0 in float16, so a second "
        "moment that underflows to 0 divides by zero"
    )


def test_a_forward_overflow_is_told_apart_from_broken_parameters(registry, toy_registry):
    result = run_quick(toy_registry, "toy_exploding", "toy_ramp", epochs=50)
    assert result.status == "diverged"
    assert result.nonfinite_loss == "inf"
    assert result.status_detail.startswith(f"training loss inf at epoch {result.diverged_epoch}")


def test_criteria_record_first_epoch_and_time(registry):
    criteria = tuple(parse_criterion(t) for t in ("loss <= 1e-6", "loss == 0", "loss <= -1"))
    c = case(registry, "single_neuron", "single_point", epochs=60, criteria=criteria)
    result = run_case(c, registry, DeviceCache(registry))
    zero_epoch, zero_seconds = result.criteria["loss == 0"]
    assert zero_epoch == result.zero_loss_epoch
    assert zero_seconds == result.epoch_seconds[zero_epoch]
    assert result.criteria["loss <= -1"] == (None, None)


def test_trace_is_the_step_by_step_table(registry):
    c = case(registry, "single_neuron", "single_point", "fp16", epochs=5, trace=True)
    result = run_case(c, registry, DeviceCache(registry))
    assert len(result.trace) == 5
    first = result.trace[0]
    assert list(first) == [
        "prediction",
        "weight",
        "bias",
        "weight_grad",
        "bias_grad",
        "weight_after",
        "bias_after",
    ]
    # the source's seed-0 half-precision neuron, before its first update
    assert round(first["weight"], 4) == -0.0075 and round(first["bias"], 4) == 0.5366
    assert first["prediction"] == pytest.approx(first["weight"] + first["bias"], abs=1e-3)
    # MSE on x = y = 1: d/dw = d/db = 2 (prediction - 1)
    assert first["weight_grad"] == first["bias_grad"]
    assert first["weight_grad"] == pytest.approx(2 * (first["prediction"] - 1), rel=1e-2)
    # the next row's weight is this row's after an SGD step of lr 0.1
    assert result.trace[1]["weight"] == pytest.approx(
        first["weight"] - 0.1 * first["weight_grad"], abs=1e-3
    )
    # the after-step columns are the next row's before-step values, exactly
    for row, following in zip(result.trace[:-1], result.trace[1:], strict=True):
        assert (row["weight_after"], row["bias_after"]) == (following["weight"], following["bias"])
    # the float16 notebook's first row: weight and bias after the step (docs/workloads.md)
    assert (round(first["weight_after"], 6), round(first["bias_after"], 6)) == (0.086609, 0.630859)


def test_rollout_series_are_kept(registry):
    result = run_quick(registry, "sine_mlp", "sine", epochs=3)
    assert len(result.series["rollout_predicted"]) == 100
    # the actual values are the series' own, series[1520:1620], computed here from its formula
    t = torch.linspace(0, 80, 2000)
    series = (torch.sin(t) + 0.1 * torch.sin(3 * t)).double()
    assert result.series["rollout_actual"] == series[1520:1620].tolist()
    predicted = torch.tensor(result.series["rollout_predicted"], dtype=torch.float64)
    assert torch.mean((predicted - series[1520:1620]) ** 2).item() == pytest.approx(
        result.metrics["rollout_mse"], rel=1e-12
    )


CLAIM_SUITE = """
[suite]
name = "mini-precision"
criteria = ["loss <= 1e-6", "loss == 0"]

[matrix]
devices = ["cpu"]
seeds = [0, 1]

[[cases]]
model = "single_neuron"
dataset = "single_point"
precisions = ["fp16", "fp32"]
recipe = { epochs = 60 }
trace = true

[[claims]]
text = "fp32 takes longer to reach zero"
where = { model = "single_neuron" }
a = { precision = "fp32" }
b = { precision = "fp16" }
metric = "epochs_to"
expect = "a > b"
aggregate = "every"
"""


def test_run_writes_claims_criteria_and_trace_and_prints_verdicts(tmp_path, capsys):
    (tmp_path / "suite.toml").write_text(CLAIM_SUITE)
    out = tmp_path / "out"
    assert main(["run", str(tmp_path), "--out", str(out), "--quiet"]) == 0
    stdout = capsys.readouterr().out
    claims = pd.read_csv(out / "claims.csv")
    assert list(claims["criterion"]) == ["loss <= 1e-06", "loss == 0"]
    zero = claims[claims["criterion"] == "loss == 0"].iloc[0]
    assert zero["verdict"] == "holds", zero["explanation"]
    crit = pd.read_csv(out / "criteria.csv")
    assert len(crit) == 4 * 2
    trace = pd.read_csv(out / "trace.csv")
    assert {"epoch", "loss", "prediction", "weight", "bias", "weight_grad", "bias_grad"} <= set(
        trace.columns
    )
    assert len(trace) == 4 * 60
    assert "trace of single_neuron/single_point/fp16/cpu/seed0" in stdout
    assert "trace of single_neuron/single_point/fp16/cpu/seed1" not in stdout
    assert "HOLDS  loss == 0 on cpu" in stdout
    assert json.loads((out / "run.json").read_text())["finished"] is True


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ('criteria = ["loss <= lots"]', "cases[0].criteria[0]: criterion 'loss <= lots'"),
        ('criteria = "loss == 0"', "cases[0].criteria: expected array"),
        ("trace = 1", "cases[0].trace: expected boolean"),
    ],
)
def test_bad_criteria_and_trace_are_suite_errors(tmp_path, registry, snippet, message):
    text = CLAIM_SUITE.replace("trace = true", snippet)
    (tmp_path / "suite.toml").write_text(text)
    with pytest.raises(SuiteError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_suite(tmp_path, registry)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('expect = "a > b"', 'expect = "fp32 > fp16"', "claims[0].expect: expected 'a OP b'"),
        ('aggregate = "every"', 'aggregate = "mode"', "claims[0].aggregate: unknown 'mode'"),
        ('a = { precision = "fp32" }', 'a = { prec = "fp32" }', "claims[0].a.prec: not a filter"),
        (
            'metric = "epochs_to"',
            'metric = "epochs_to"\ncriteria = ["loss <= 1"]',
            "claims[0].criteria: loss <= 1 is not a criterion of the suite's cases",
        ),
        ('text = "fp32 takes longer to reach zero"\n', "", "claims[0].text: missing"),
        (
            'aggregate = "every"',
            'aggregate = "every"\nverdict = "yes"',
            "claims[0].verdict: unknown key",
        ),
    ],
)
def test_bad_claims_are_suite_errors(tmp_path, registry, old, new, message):
    (tmp_path / "suite.toml").write_text(CLAIM_SUITE.replace(old, new))
    with pytest.raises(SuiteError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_suite(tmp_path, registry)


def test_claim_criteria_match_in_any_spelling(tmp_path, registry):
    text = CLAIM_SUITE.replace('aggregate = "every"', 'aggregate = "every"\ncriteria = ["loss==0"]')
    (tmp_path / "suite.toml").write_text(text)
    assert parse_suite(tmp_path, registry).claims[0].criteria == ("loss == 0",)


def test_the_shipped_precision_suite_parses_with_its_claims(registry):
    suite = parse_suite("suites/precision", registry)
    assert [c.id for c in suite.claims] == ["fp32-slower-than-fp16", "amp-matches-fp32"]
    neuron = [c for c in suite.cases if c.model == "single_neuron" and c.device == "cpu"]
    assert {c.precision for c in neuron} == {"fp16", "bf16", "fp32", "fp64"}
    assert all(c.trace for c in neuron)
    assert [c.text for c in neuron[0].criteria] == [
        "loss <= 0.0001",
        "loss <= 1e-06",
        "loss <= 1e-08",
        "loss == 0",
    ]
