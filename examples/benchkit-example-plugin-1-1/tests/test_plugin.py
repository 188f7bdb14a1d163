"""The 1.1 example plugin's own tests, written with ``benchkit.testing``."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from benchkit.suite import parse_suite
from benchkit.testing import assert_ok, run_quick

from benchkit_example_plugin_1_1 import plugin

SUITE = Path(__file__).resolve().parent.parent / "suites" / "robust"


def test_the_plugin_loads_alone_and_trains_everything_it_registers(benchkit_check_plugin):
    # single_neuron and line are benchkit's own: load their plugin beside ours.
    results = benchkit_check_plugin(plugin, epochs=3, with_plugins=["single_neuron"])
    assert_ok(*results)
    assert sorted((r.model, r.dataset) for r in results) == [
        ("robust_neuron", "line"),
        ("robust_neuron", "line_outliers"),
        ("single_neuron", "line_outliers"),
    ]


def test_the_robust_recipe_ignores_the_outliers_where_mse_does_not(benchkit_isolated):
    registry = benchkit_isolated(plugin, "single_neuron")
    robust = run_quick(registry, "single_neuron", "line_outliers", epochs=300)
    assert_ok(robust)
    assert (robust.optimizer, robust.lr) == ("sign_sgd", 0.01)
    assert robust.metrics["weight"] == pytest.approx(0.7, abs=0.03)
    assert robust.metrics["bias"] == pytest.approx(0.3, abs=0.03)
    mse = {"loss": "mse", "optimizer": "sgd", "lr": 0.1}
    pulled = run_quick(registry, "single_neuron", "line_outliers", epochs=300, recipe=mse)
    assert pulled.metrics["bias"] > 0.4  # five outliers shifted by 2 lift the MSE fit


def test_log_cosh_is_quadratic_near_zero_and_linear_far_out():
    loss = plugin.log_cosh(scale=1.0)
    zero = torch.zeros(1)
    assert float(loss(torch.tensor([0.01]), zero)) == pytest.approx(0.01**2 / 2, rel=1e-3)
    assert float(loss(torch.tensor([1000.0]), zero)) == pytest.approx(1000 - 0.6931, rel=1e-6)


def test_sign_sgd_moves_every_parameter_by_lr():
    weight = torch.nn.Parameter(torch.tensor([1.0, -1.0]))
    optimizer = plugin.sign_sgd([weight], lr=0.1, momentum=0.0)
    weight.grad = torch.tensor([1e-6, -50.0])
    optimizer.step()
    assert weight.tolist() == pytest.approx([0.9, -0.9])


def test_the_model_declares_inlier_share_higher_is_better(benchkit_registry):
    model = benchkit_registry.get("model", "robust_neuron")
    assert model.metrics["inlier_share"].better == "higher"
    offered = benchkit_registry.get("model", "single_neuron")
    assert offered.offered_by == {"line_outliers": "robust_line"}


def test_the_suite_names_only_what_is_installed(benchkit_registry):
    suite = parse_suite(SUITE, benchkit_registry)
    assert {(c.model, c.dataset) for c in suite.cases} == {
        ("robust_neuron", "line_outliers"),
        ("single_neuron", "line_outliers"),
        ("robust_neuron", "line"),
    }
