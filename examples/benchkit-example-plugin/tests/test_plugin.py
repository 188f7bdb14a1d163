"""The example plugin's own tests, written with the helpers benchkit ships for plugin authors
(``benchkit.testing``, a pytest plugin that is active wherever benchkit is installed)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from benchkit.suite import parse_suite
from benchkit.testing import run_quick

from benchkit_example_plugin import plugin

SUITE = Path(__file__).resolve().parent.parent / "suites" / "example"


def test_the_plugin_loads_alone_and_each_model_trains(benchkit_check_plugin):
    # celsius belongs to benchkit's built-in single_neuron plugin: load it beside ours.
    results = benchkit_check_plugin(plugin, epochs=3, with_plugins=["single_neuron"])
    assert sorted((r.model, r.dataset) for r in results) == [
        ("thermometer_mlp", "celsius"),
        ("thermometer_mlp", "thermometer_noisy"),
    ]
    for result in results:
        assert result.params == 2 * 13 + 13 + 1  # Linear(1, 13) and Linear(13, 1)
        assert result.curve[-1] < result.curve[0]
        assert result.metrics["valid_mae_celsius"] > 0


def test_the_books_recipe_brings_the_loss_down(benchkit_isolated):
    registry = benchkit_isolated(plugin, "single_neuron")
    result = run_quick(registry, "thermometer_mlp", "celsius", epochs=1000)
    assert result.status == "ok"
    assert (result.optimizer, result.lr) == ("sgd", 1e-3)
    assert result.final_loss < result.curve[0] / 10


def test_the_noisy_thermometer_keeps_the_readings_and_is_seeded():
    options = {"samples": 40, "noise": 1.8}
    torch.manual_seed(0)
    first = plugin.thermometer_noisy(options)
    torch.manual_seed(0)
    again = plugin.thermometer_noisy(options)
    assert torch.equal(first.train.inputs[0], again.train.inputs[0])
    assert (len(first.train), len(first.valid)) == (41, 10)  # 51 samples, a fifth held out

    every = torch.cat([first.train.inputs[0], first.valid.inputs[0]]).flatten()
    readings = 0.1 * torch.tensor(plugin.UNKNOWN_UNIT)
    assert all(torch.isclose(every, r).any() for r in readings)


def test_the_fitted_law_is_the_books():
    slope, intercept = plugin.linear_law()
    # The book's fit on inputs scaled by 0.1: w = 5.3671, b = -17.3012.
    assert slope == pytest.approx(0.53671, abs=1e-4)
    assert intercept == pytest.approx(-17.3012, abs=1e-2)


def test_benchkit_finds_the_installed_plugin_through_its_entry_point(benchkit_registry):
    info = benchkit_registry.plugins["thermometer"]
    assert info.status == "ok", info.error
    assert info.package == "benchkit-example-plugin"
    assert info.registered == {"dataset": ["thermometer_noisy"], "model": ["thermometer_mlp"]}


def test_the_suite_names_only_what_is_installed(benchkit_registry):
    suite = parse_suite(SUITE, benchkit_registry)
    assert {(c.model, c.dataset) for c in suite.cases} == {
        ("thermometer_mlp", "celsius"),
        ("thermometer_mlp", "thermometer_noisy"),
    }
