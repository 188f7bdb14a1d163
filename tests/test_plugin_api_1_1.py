"""Hook API 1.1: a plugin brings its own loss, optimizer and schedule, offers a dataset to a
model another plugin registers, and declares what its metrics mean; registrations that would
only fail at run time fail at load time; ``benchkit show`` says what each name is."""

from __future__ import annotations

import json
import types

import benchkit_plugins.single_neuron as single_neuron
import pandas as pd
import pytest
import torch
from _resultsets import copy_set, edit_meta, edit_results
from torch import nn

import benchkit
import benchkit.registry
from benchkit import Data, Metric, Recipe, Split
from benchkit.cli import main
from benchkit.errors import SuiteError
from benchkit.metric import declared_metrics, read_declarations
from benchkit.registry import PluginHost, PluginInfo
from benchkit.resultset import CURVE_COLUMNS
from benchkit.show import show
from benchkit.suite import parse_suite
from benchkit.testing import assert_ok, check_plugin, isolated_registry, run_quick

CASE = """
[matrix]
devices = ["cpu"]
precisions = ["fp32"]
seeds = [0]

[[cases]]
model = "{model}"
dataset = "{dataset}"
{extra}
"""


def suite_file(tmp_path, model: str, dataset: str, extra: str = ""):
    path = tmp_path / "suite.toml"
    path.write_text(CASE.format(model=model, dataset=dataset, extra=extra))
    return path


def plugin(**hooks) -> object:
    """A plugin (a module named ``Plugin``) whose hooks are the given functions."""
    module = types.ModuleType("Plugin")
    for name, fn in hooks.items():
        setattr(module, name, benchkit.hookimpl(fn))
    return module


def line_points(options: dict) -> Data:
    x = torch.linspace(0, 1, 20).unsqueeze(1)
    return Data(train=Split((x,), 0.7 * x + 0.3), info={"in_features": 1})


# --- losses -----------------------------------------------------------------------------------


def test_hook_benchkit_register_losses_options_reach_the_factory_and_suites_check_them(tmp_path):
    made: list[dict] = []

    def log_cosh(scale: float) -> nn.Module:
        made.append({"scale": scale})

        def loss(prediction, target):
            return torch.log(torch.cosh((prediction - target) / scale)).mean()

        return loss

    def register_losses(register):
        register("log_cosh", log_cosh, options={"scale": 1.0}, description="log cosh")

    def register_models(register):
        recipe = Recipe(loss="log_cosh", loss_options={"scale": 0.5}, lr=0.1, epochs=30)
        register("robust", lambda data, options: nn.Linear(1, 1), datasets={"line": recipe})

    mine = plugin(
        benchkit_register_losses=register_losses, benchkit_register_models=register_models
    )
    registry = isolated_registry(mine, single_neuron)
    assert registry.get("loss", "log_cosh").options == {"scale": 1.0}
    result = run_quick(registry, "robust", "line", epochs=30)
    assert_ok(result)
    assert made == [{"scale": 0.5}]  # the recipe's options over the registered defaults
    assert result.curve[-1] < result.curve[0] / 2

    suite = suite_file(tmp_path, "robust", "line", "recipe = { loss_options = { width = 2 } }")
    with pytest.raises(SuiteError, match=r"loss_options\.width: loss 'log_cosh' has no such "):
        parse_suite(suite, registry)
    suite = suite_file(tmp_path, "robust", "line", 'recipe = { loss = "log_sinh" }')
    with pytest.raises(SuiteError, match=r"unknown loss 'log_sinh'; valid: bce_with_logits, "):
        parse_suite(suite, registry)


def test_an_nn_module_class_is_a_loss_factory_and_a_built_one_is_refused():
    def register_losses(register):
        register("smooth_l1", nn.SmoothL1Loss, options={"beta": 1.0})
        register("built", nn.SmoothL1Loss())

    registry = isolated_registry(plugin(benchkit_register_losses=register_losses))
    info = registry.plugins["Plugin"]
    assert info.status == "failed"
    assert info.error == (
        "benchkit_register_losses: loss 'built': register() takes a factory, got a built "
        "SmoothL1Loss; pass a function or class that builds it, factory(**options) -> a "
        "callable (prediction, target) -> scalar tensor, so that discovering plugins builds "
        "nothing"
    )
    assert registry.names("loss") == sorted(isolated_registry().names("loss"))  # all withdrawn


# --- optimizers -------------------------------------------------------------------------------


class SignSGD(torch.optim.Optimizer):
    """Steps by the sign of the gradient."""

    def __init__(self, params, lr: float) -> None:
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad.sign(), alpha=-group["lr"])


def test_hook_benchkit_register_optimizers_gets_params_lr_and_options(tmp_path):
    calls: list[tuple[int, float | None, dict]] = []

    def sign_sgd(params, lr, **options):
        params = list(params)
        calls.append((len(params), lr, options))
        return SignSGD(params, lr=options["scale"] * (lr or 1e-2))

    def register_optimizers(register):
        register("sign_sgd", sign_sgd, options={"scale": 1.0}, description="signSGD")

    mine = plugin(benchkit_register_optimizers=register_optimizers)
    registry = isolated_registry(mine, single_neuron)
    recipe = {"optimizer": "sign_sgd", "optimizer_options": {"scale": 0.5}, "lr": 0.02}
    result = run_quick(registry, "single_neuron", "line", epochs=40, recipe=recipe)
    assert_ok(result)
    assert calls == [(2, 0.02, {"scale": 0.5})]  # weight and bias
    assert result.optimizer == "sign_sgd"
    assert result.curve[-1] < result.curve[0]

    suite = suite_file(
        tmp_path,
        "single_neuron",
        "line",
        'recipe = { optimizer = "sign_sgd", optimizer_options = { scale = "big" } }',
    )
    with pytest.raises(SuiteError, match=r"optimizer_options\.scale: expected number"):
        parse_suite(suite, registry)


def test_an_optimizer_factory_that_returns_no_optimizer_is_an_error_naming_it():
    def register_optimizers(register):
        register("nothing", lambda params, lr: None)

    registry = isolated_registry(
        plugin(benchkit_register_optimizers=register_optimizers), single_neuron
    )
    result = run_quick(registry, "single_neuron", "line", recipe={"optimizer": "nothing"})
    assert result.status == "error"
    assert result.status_detail == (
        "optimizer 'nothing': the factory returned NoneType, not a torch.optim.Optimizer"
    )


# --- schedules --------------------------------------------------------------------------------


def test_hook_benchkit_register_schedules_spans_the_recipe_and_lr_lands_in_curves(
    tmp_path, monkeypatch, capsys
):
    seen: list[int] = []

    def halving(optimizer, epochs, **options):
        seen.append(epochs)
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=options["every"], gamma=0.5)

    def register_schedules(register):
        register("halving", halving, options={"every": 2})

    registry = isolated_registry(
        plugin(benchkit_register_schedules=register_schedules), single_neuron
    )
    monkeypatch.setattr(benchkit.registry, "load_registry", lambda strict=False: registry)
    suite = suite_file(
        tmp_path,
        "single_neuron",
        "line",
        'recipe = { epochs = 5, schedule = "halving" }\n\n'
        '[[cases]]\nmodel = "single_neuron"\ndataset = "celsius"\nrecipe = { epochs = 3 }',
    )
    out = tmp_path / "out"
    assert main(["run", str(suite), "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    assert seen == [5]
    curves = pd.read_csv(out / "curves.csv")
    assert list(curves.columns) == CURVE_COLUMNS
    line = curves[curves["dataset"] == "line"]
    assert line["lr"].tolist() == [0.01, 0.01, 0.005, 0.005, 0.0025]
    assert curves[curves["dataset"] == "celsius"]["lr"].isna().all()  # no schedule: empty


# --- pairings from either side ----------------------------------------------------------------

LINE_L1 = Recipe(loss="l1", optimizer="sgd", lr=0.05, epochs=50)


def offering(recipe: Recipe = LINE_L1, model: str = "single_neuron") -> object:
    def register_datasets(register):
        register("line_l1", line_points, recipes={model: recipe}, description="20 points")

    return plugin(benchkit_register_datasets=register_datasets)


def test_a_dataset_offers_itself_to_a_model_another_plugin_registers(tmp_path):
    registry = isolated_registry(single_neuron, offering())
    model = registry.get("model", "single_neuron")
    assert model.datasets["line_l1"] == LINE_L1
    assert model.offered_by == {"line_l1": "Plugin"}
    assert registry.plugins["benchkit_plugins.single_neuron"].registered["model"] == [
        "single_neuron"
    ]
    (case,) = parse_suite(suite_file(tmp_path, "single_neuron", "line_l1"), registry).cases
    assert case.recipe == LINE_L1
    result = run_quick(registry, "single_neuron", "line_l1", epochs=50)
    assert_ok(result)
    assert result.final_loss < 0.05
    # the model's own plugin is loaded after the dataset's: the offer still pairs them
    later = isolated_registry(offering(), single_neuron)
    assert "line_l1" in later.get("model", "single_neuron").datasets


def test_a_pairing_both_sides_name_differently_fails_the_dataset_plugin_naming_both():
    def register_models(register):
        register(
            "mine",
            lambda data, options: nn.Linear(1, 1),
            datasets={"line_l1": Recipe(lr=0.1, epochs=9)},
        )

    host = PluginHost()
    host.add(plugin(benchkit_register_models=register_models), PluginInfo("models", "pkg-m", "1"))
    host.add(offering(LINE_L1, "mine"), PluginInfo("data", "pkg-d", "2"))
    registry = host.collect()
    assert registry.plugins["models"].status == "ok"
    info = registry.plugins["data"]
    assert info.status == "failed"
    assert info.error == (
        "benchkit_register_datasets: dataset 'line_l1' offers model 'mine' "
        "Recipe(loss='l1', optimizer='sgd', lr=0.05, epochs=50), but model 'mine' of models "
        "(pkg-m 1) names dataset 'line_l1' with Recipe(loss='mse', optimizer='sgd', lr=0.1, "
        "epochs=9); offer the same recipe, or none (a suite's recipe table overrides fields)"
    )
    assert registry.names("dataset") == []
    assert registry.get("model", "mine").offered_by == {}

    same = PluginHost()
    same.add(plugin(benchkit_register_models=register_models), PluginInfo("models"))
    same.add(offering(Recipe(lr=0.1, epochs=9), "mine"), PluginInfo("data"))
    assert same.collect().failures() == []  # the same recipe from both sides is no conflict


def test_an_offer_to_a_model_nobody_registered_is_kept_for_show():
    registry = isolated_registry(offering(model="absent_model"))
    assert registry.failures() == []
    assert "absent_model" in show(registry, "line_l1")


def test_check_plugin_trains_the_models_a_dataset_offers_itself_to():
    (result,) = check_plugin(offering(), epochs=3, with_plugins=["single_neuron"])
    assert (result.model, result.dataset, result.status) == ("single_neuron", "line_l1", "ok")
    with pytest.raises(pytest.fail.Exception, match="offers itself to model 'absent_model'"):
        check_plugin(offering(model="absent_model"))


# --- declared metrics -------------------------------------------------------------------------


def test_metric_values_are_checked_when_written():
    assert Metric(better="higher").kind == "deterministic"
    with pytest.raises(ValueError, match="Metric\\(better='up'\\): write one of 'higher'"):
        Metric(better="up")
    with pytest.raises(ValueError, match="Metric\\(kind='timing'\\): write one of"):
        Metric(kind="timing")


def recall_plugin() -> object:
    def register_models(register):
        def recall(model, data, context):
            return {"admit_recall": float(model.weight.flatten()[0]) ** 0, "spread": 1.0}

        register(
            "recall_model",
            lambda data, options: nn.Linear(1, 1),
            datasets={"line": Recipe(lr=0.1, epochs=3)},
            evaluate=recall,
            metrics={"admit_recall": Metric(better="higher", description="share found")},
        )

    return plugin(benchkit_register_models=register_models)


def test_run_json_records_the_declared_metrics_and_compare_judges_by_them(
    tmp_path, monkeypatch, capsys
):
    registry = isolated_registry(recall_plugin(), single_neuron)
    monkeypatch.setattr(benchkit.registry, "load_registry", lambda strict=False: registry)
    out = tmp_path / "base"
    suite = suite_file(tmp_path, "recall_model", "line")
    assert main(["run", str(suite), "--out", str(out), "--quiet"]) == 0
    meta = json.loads((out / "run.json").read_text())
    assert meta["metrics"] == {
        "recall_model": {
            "admit_recall": {
                "better": "higher",
                "kind": "deterministic",
                "description": "share found",
            }
        }
    }
    assert declared_metrics(registry, ["recall_model", "recall_model"]) == meta["metrics"]

    def drop(frame):
        frame["admit_recall"] = 0.5
        frame["spread"] = 0.5

    new = copy_set(out, tmp_path / "new")
    edit_results(new, drop)
    capsys.readouterr()
    assert main(["compare", str(out), str(new)]) == 1  # declared higher-is-better: dropped
    text = capsys.readouterr().out
    assert "admit_recall" in text and "REGRESSED" in text

    # undeclared, the same drop is only a change: the name says nothing about a direction
    for side in (out, new):
        edit_meta(side, lambda meta: meta.pop("metrics"))
    assert main(["compare", str(out), str(new)]) == 0
    capsys.readouterr()


def test_a_noisy_declared_metric_is_pooled_over_seeds_not_compared_exactly():
    meta = {"metrics": {"m": {"t": {"better": "lower", "kind": "noisy"}, "bad": {"kind": "x"}}}}
    assert read_declarations(meta) == {"m": {"t": Metric(better="lower", kind="noisy")}}
    from benchkit.compare import rule_for

    assert rule_for("t", Metric(better="lower", kind="noisy")).kind == "noisy"
    assert rule_for("t").kind == "deterministic"  # undeclared: from the name
    assert rule_for("final_loss", Metric(better="higher")).better == "lower"  # benchkit's own


@pytest.mark.parametrize(
    ("register_models", "message"),
    [
        pytest.param(
            lambda register: register(
                "m", lambda d, o: nn.Linear(1, 1), datasets={"line": Recipe()}, metrics=["acc"]
            ),
            "model 'm': metrics must be a dict such as {'accuracy': "
            "benchkit.Metric(better='higher')}, got list",
            id="metrics-not-a-dict",
        ),
        pytest.param(
            lambda register: register(
                "m",
                lambda d, o: nn.Linear(1, 1),
                datasets={"line": Recipe()},
                metrics={"acc": "higher"},
            ),
            "model 'm': metrics['acc'] must be a benchkit.Metric, such as "
            "benchkit.Metric(better='higher'), got str",
            id="metric-not-a-Metric",
        ),
        pytest.param(
            lambda register: register(
                "m", lambda d, o: nn.Linear(1, 1), datasets={"line": Recipe(loss=nn.MSELoss())}
            ),
            "TypeError: Recipe(loss=...) takes the name of a registered loss, got a callable; "
            "register it with the benchkit_register_losses hook (register('my_loss', factory)) "
            "and write loss='my_loss'",
            id="recipe-with-a-callable-loss",
        ),
        pytest.param(
            lambda register: register(
                "m",
                lambda d, o: nn.Linear(1, 1),
                datasets={"line": Recipe(optimizer=torch.optim.Adam)},
            ),
            "TypeError: Recipe(optimizer=...) takes the name of a registered optimizer, got a "
            "callable; register it with the benchkit_register_optimizers hook",
            id="recipe-with-an-optimizer-class",
        ),
        pytest.param(
            lambda register: register(
                "m", lambda d, o: nn.Linear(1, 1), datasets={"line": Recipe()}, options=3
            ),
            "model 'm': options must be a dict of each option's default, such as "
            "options={'points': 100}, got int",
            id="options-not-a-dict",
        ),
        pytest.param(
            lambda register: register("m", nn.Linear(1, 1), datasets={"line": Recipe()}),
            "model 'm': register() takes a factory, got a built Linear; pass a function or "
            "class that builds it, factory(data, options) -> torch.nn.Module",
            id="built-model",
        ),
    ],
)
def test_registrations_that_would_fail_every_run_fail_at_load_time(
    register_models, message, capsys
):
    registry = isolated_registry(plugin(benchkit_register_models=register_models))
    info = registry.plugins["Plugin"]
    assert info.status == "failed"
    assert message in info.error
    assert info.error.startswith("benchkit_register_models: ")
    assert registry.names("model") == []


# --- benchkit show, plugins --verbose, assert_ok ----------------------------------------------


def test_benchkit_show_prints_a_models_recipes_per_dataset_and_its_metrics(capsys):
    assert main(["show", "single_neuron"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(
        "model single_neuron, from plugin single_neuron (benchkit "
        f"{benchkit.__version__})\n"
        "    one weight, one bias: nn.Linear(1, 1), or the lecture's randn neuron\n"
    )
    assert "    recipes per dataset:\n        celsius       Recipe(loss='mse'" in text
    assert "        line          Recipe(loss='l1', optimizer='sgd', lr=0.01, epochs=500)" in text
    assert "    metrics:\n        bias    no direction, deterministic" in text


def test_benchkit_show_covers_every_kind(capsys):
    for name, first in [
        ("admissions", "dataset admissions, from plugin logistic_regression"),
        ("bce_with_logits", "loss bce_with_logits, from plugin losses"),
        ("sgd", "optimizer sgd, from plugin optimizers"),
        ("onecycle", "schedule onecycle, from plugin schedules"),
        ("amp_fp16", "precision amp_fp16, from plugin precisions"),
        ("cuda", "device cuda, from plugin devices"),
    ]:
        assert main(["show", name]) == 0
        assert capsys.readouterr().out.startswith(first)
    assert main(["show", "sgd"]) == 0
    assert "recipes using it: logistic_regression/admissions" in capsys.readouterr().out
    assert main(["show", "onecycle"]) == 0
    assert "max_lr = None, pct_start = 0.3" in capsys.readouterr().out


def test_benchkit_show_an_unknown_name_exits_2_with_close_names(capsys):
    assert main(["show", "single_nueron"]) == 2
    assert capsys.readouterr().err == (
        "benchkit: error: nothing is registered as 'single_nueron'; did you mean "
        "single_neuron, single_point? (`benchkit plugins` lists every name)\n"
    )


def test_benchkit_plugins_verbose_lists_every_registration_in_full(capsys):
    assert main(["plugins"]) == 0
    short = capsys.readouterr().out
    assert "losses  [ok]  benchkit" in short
    assert "    losses: mse, l1, huber, cross_entropy, bce_with_logits, nll\n" in short
    assert main(["plugins", "--verbose"]) == 0
    text = capsys.readouterr().out
    assert "    loss huber, from plugin losses" in text
    assert "        options: delta = 1.0" in text
    assert "    model logistic_regression, from plugin logistic_regression" in text
    assert "            accuracy   higher is better, deterministic" in text


def test_assert_ok_shows_why_a_run_failed():
    registry = isolated_registry(single_neuron)
    good = run_quick(registry, "single_neuron", "line")
    bad = run_quick(registry, "single_neuron", "line", recipe={"loss": "hinge"})
    assert_ok(good)
    with pytest.raises(AssertionError) as caught:
        assert_ok(good, bad)
    assert str(caught.value) == (
        "1 of 2 run(s) did not end ok:\nsingle_neuron/line/fp32/cpu/seed0: error: recipe "
        "Recipe(loss='hinge', optimizer='sgd', lr=0.01, epochs=3): unknown loss 'hinge'; "
        "valid: bce_with_logits, cross_entropy, huber, l1, mse, nll"
    )


def test_check_plugin_trains_the_reference_model_with_a_plugins_unused_parts():
    def register_schedules(register):
        register("broken", lambda optimizer, epochs: object())

    with pytest.raises(pytest.fail.Exception, match="schedule 'broken', which no model of the"):
        check_plugin(plugin(benchkit_register_schedules=register_schedules))
