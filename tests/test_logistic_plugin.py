"""The lecture's logistic regression on admissions: the data, the penalty that makes its optimum
scikit-learn's, and a recipe that reaches that optimum (checked against an independent Newton
solve in float64, since scikit-learn is not a dependency)."""

from __future__ import annotations

from pathlib import Path

import benchkit_plugins.logistic_regression as logistic
import pytest
import torch

from benchkit import Recipe
from benchkit.errors import BenchkitError
from benchkit.suite import parse_suite
from benchkit.testing import assert_ok, check_plugin, isolated_registry, run_quick

CONVERGENCE = Path(__file__).resolve().parents[1] / "suites" / "convergence"


def optimum(table: torch.Tensor, c: float | None = 1.0) -> torch.Tensor:
    """(coef_gre, coef_gpa, intercept) minimising scikit-learn's objective on the raw features,
    ``||w||² / 2 + C Σ log loss`` (intercept unpenalised; ``c=None``: no penalty), by Newton's
    method in float64."""
    y, x = table[:, 0], table[:, 1:]
    design = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)
    penalty = torch.tensor([1.0, 1.0, 0.0], dtype=x.dtype) if c is not None else torch.zeros(3)
    scale = 1.0 if c is None else c
    w = torch.zeros(3, dtype=x.dtype)
    for _ in range(50):
        p = torch.sigmoid(design @ w)
        gradient = scale * design.T @ (p - y) + penalty * w
        hessian = scale * (design.T * (p * (1 - p))) @ design + torch.diag(penalty)
        w = w - torch.linalg.solve(hessian, gradient)
    return w


def learned(result) -> torch.Tensor:
    m = result.metrics
    return torch.tensor([m["coef_gre"], m["coef_gpa"], m["intercept"]], dtype=torch.float64)


@pytest.fixture(scope="module")
def registry():
    return isolated_registry(logistic)


def test_the_synthetic_table_is_400_applicants_in_the_sources_ranges_and_seeded():
    table = logistic.synthetic_table(0)
    assert table.shape == (400, 3)
    admit, gre, gpa = table.T
    assert set(admit.tolist()) == {0.0, 1.0}
    assert gre.min() >= 200 and gre.max() <= 800 and (gre % 20 == 0).all()
    assert gpa.min() >= 2.26 and gpa.max() <= 4.0
    assert 0.2 < admit.mean() < 0.45  # the logistic law at the features' means gives 0.31
    assert torch.equal(table, logistic.synthetic_table(0))
    assert not torch.equal(table, logistic.synthetic_table(1))


def test_every_run_seed_trains_on_the_same_table(registry):
    factory = registry.get("dataset", "admissions").factory
    options = dict(registry.get("dataset", "admissions").options)
    torch.manual_seed(1)
    first = factory(options)
    torch.manual_seed(2)
    second = factory(options)
    assert torch.equal(first.train.target, second.train.target)
    inputs = first.train.inputs[0]
    assert inputs.mean(0).abs().max() < 1e-5  # standardised
    assert (inputs.std(0, unbiased=False) - 1).abs().max() < 1e-5


def test_the_recipe_reaches_scikit_learns_penalised_optimum_from_every_seed(registry):
    target = optimum(logistic.synthetic_table(0))
    for seed in (0, 1, 2):
        result = run_quick(registry, "logistic_regression", "admissions", epochs=100, seed=seed)
        assert_ok(result)
        assert torch.allclose(learned(result), target, rtol=1e-5, atol=0)
        assert result.converged_epoch is None  # run_quick sets no target
    assert (result.optimizer, result.lr) == ("sgd", 2.0)


def test_the_penalty_is_scikit_learns_and_none_fits_the_maximum_likelihood(registry):
    table = logistic.synthetic_table(0)
    plain = run_quick(
        registry,
        "logistic_regression",
        "admissions",
        epochs=100,
        model_options={"penalty": "none"},
    )
    assert_ok(plain)
    assert torch.allclose(learned(plain), optimum(table, c=None), rtol=1e-4, atol=0)
    weak = run_quick(
        registry, "logistic_regression", "admissions", epochs=100, model_options={"C": 1e6}
    )
    assert torch.allclose(learned(weak), learned(plain), rtol=1e-4, atol=0)
    assert not torch.allclose(optimum(table), optimum(table, c=None), rtol=1e-2, atol=0)


def test_accuracy_is_measured_on_the_fitted_table(registry):
    result = run_quick(registry, "logistic_regression", "admissions", epochs=100)
    table = logistic.synthetic_table(0)
    w = optimum(table)
    predicted = (table[:, 1:] @ w[:2] + w[2]) > 0
    assert result.metrics["accuracy"] == pytest.approx(
        float((predicted == (table[:, 0] > 0.5)).double().mean()), abs=1e-6
    )


def write(tmp_path, text: str) -> str:
    path = tmp_path / "admissions.csv"
    path.write_text(text)
    return str(path)


def test_a_csv_file_replaces_the_synthetic_table(registry, tmp_path):
    rows = logistic.synthetic_table(3)
    text = "admit,gre,gpa,rank\n" + "".join(
        f"{int(a)},{int(g)},{p:.2f},2\n" for a, g, p in rows.tolist()
    )
    path = write(tmp_path, text)
    data = logistic.admissions({"path": path, "sample_seed": 0})
    assert torch.equal(data.train.target.flatten(), rows[:, 0].float())
    result = run_quick(
        registry, "logistic_regression", "admissions", epochs=100, options={"path": path}
    )
    assert torch.allclose(learned(result), optimum(rows), rtol=1e-5, atol=0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "admissions: {path}: no such file (options.path names a CSV file with columns "),
        ("admit,gre\n1,500\n", "admissions: {path}: no column 'gpa' (columns found: admit, gre)"),
        ("admit,gre,gpa\n1,500,3.1\n0,n/a,3.0\n", "line 3: gre value 'n/a' is not a number"),
        ("admit,gre,gpa\n1,500,3.1\n2,600,3.0\n", "line 3: admit is 2; write 0 or 1"),
        ("admit,gre,gpa\n", "admissions: {path}: no rows below the header"),
        ("admit,gre,gpa\n1,500,3.1\n0,500,3.5\n", "every row has the same gre: nothing to fit"),
    ],
)
def test_a_bad_csv_file_is_named_with_what_is_wrong(tmp_path, text, message):
    path = str(tmp_path / "missing.csv") if text is None else write(tmp_path, text)
    with pytest.raises(BenchkitError) as caught:
        logistic.admissions({"path": path, "sample_seed": 0})
    assert message.format(path=path) in str(caught.value)


def test_the_plugin_passes_the_author_checks_and_declares_its_metrics(registry):
    (result,) = check_plugin(logistic, epochs=3)
    assert (result.model, result.dataset, result.params) == (
        "logistic_regression",
        "admissions",
        3,
    )
    metrics = registry.get("model", "logistic_regression").metrics
    assert metrics["accuracy"].better == "higher"
    assert {metrics[m].better for m in ("coef_gre", "coef_gpa", "intercept")} == {"none"}
    assert registry.get("model", "logistic_regression").datasets["admissions"] == Recipe(
        loss="bce_with_logits", optimizer="sgd", lr=2.0, epochs=100
    )


def test_the_convergence_suite_runs_admissions_to_its_target(benchkit_registry):
    suite = parse_suite(CONVERGENCE, benchkit_registry)
    cases = [c for c in suite.cases if c.dataset == "admissions"]
    assert len(cases) == 27 and {c.target_loss for c in cases} == {0.641}
    registry = isolated_registry(logistic)
    result = run_quick(registry, "logistic_regression", "admissions", epochs=100, target_loss=0.641)
    assert result.converged_epoch is not None and result.converged_epoch < 20
