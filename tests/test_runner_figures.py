"""What the runner records about a run besides its curve: the case's fields, how plugin code is
called and its errors named, what evaluate returns, and how a divergence is explained."""

from __future__ import annotations

import torch
from torch import nn

import benchkit
from benchkit import Data, Device, Recipe, Split
from benchkit.runner import (
    DeviceCache,
    _static_causes,
    call_factory,
    prepare,
    run_case,
    warmup_epochs,
)
from benchkit.suite import Case
from benchkit.testing import isolated_registry

SEEN: dict[str, object] = {}


def _line(options):
    x = torch.linspace(0, 1, 8).unsqueeze(1)
    return Data(
        train=Split((x,), 2 * x + 1),
        test=Split((x[:3],), 2 * x[:3] + 1),
        info={"in_features": 1},
    )


def _noisy(options):
    x = torch.rand(6, 1)  # depends on the seed
    return Data(train=Split((x,), x), info={"in_features": 1})


def _evaluate(model, data, context):
    SEEN["training"] = model.training
    SEEN["grad"] = torch.is_grad_enabled()
    SEEN["autocast"] = torch.is_autocast_enabled("cpu")
    return {
        "curve": torch.tensor([1.0, 2.0, 3.0]),
        "listed": [1, 2],
        "tupled": (0.5,),
        "scalar_tensor": torch.tensor(3.5),
        "number": 2,
    }


def _failing_evaluate(model, data, context):
    raise RuntimeError("evaluate bug")


class Fake(Device):
    """A device whose availability a test sets."""

    def __init__(self, index):
        SEEN.setdefault("indices", []).append(index)
        self.index = index

    @property
    def torch_device(self):
        return torch.device("cpu")

    def unavailable_reason(self):
        return SEEN.get("fake_reason")

    def display_name(self):
        return f"fake #{self.index}"

    def environment(self):
        return {"slots": 2}


class RunnerPlugin:
    """A dataset with a test split, one whose data depends on the seed, and models whose
    evaluate records how it was called."""

    @benchkit.hookimpl
    def benchkit_register_datasets(self, register):
        register("r_line", _line)
        register("r_noisy", _noisy)

    @benchkit.hookimpl
    def benchkit_register_models(self, register):
        recipe = Recipe(loss="mse", optimizer="sgd", lr=0.1, epochs=3, batch_size=4)
        datasets = {"r_line": recipe, "r_noisy": recipe}
        register("r_linear", lambda data, options: nn.Linear(1, 1), datasets=datasets)
        register(
            "r_evaluated",
            lambda data, options: nn.Sequential(nn.Linear(1, 1), nn.Dropout(0.5)),
            datasets=datasets,
            evaluate=_evaluate,
        )
        register(
            "r_failing",
            lambda data, options: nn.Linear(1, 1),
            datasets=datasets,
            evaluate=_failing_evaluate,
        )

    @benchkit.hookimpl
    def benchkit_register_devices(self, register):
        register("fake", Fake)


REGISTRY = isolated_registry(RunnerPlugin())


def case(model="r_linear", dataset="r_line", precision="fp32", device="cpu", **fields) -> Case:
    recipe = REGISTRY.get("model", model).datasets[dataset]
    return Case(model, dataset, precision, device, fields.pop("seed", 0), recipe, **fields)


def test_a_run_carries_its_case_and_recipe():
    c = case(seed=2, variant='{"lr": 0.1}', target_loss=0.5)
    result = run_case(c, REGISTRY, DeviceCache(REGISTRY))
    assert result.status == "ok", result.status_detail
    assert (result.run_id, result.model, result.dataset, result.precision) == (
        "r_linear/r_line/fp32/cpu/seed2",
        "r_linear",
        "r_line",
        "fp32",
    )
    assert (result.device, result.seed, result.variant, result.target_loss) == (
        "cpu",
        2,
        '{"lr": 0.1}',
        0.5,
    )
    assert (result.optimizer, result.lr, result.batch_size) == ("sgd", 0.1, 4)
    assert (result.train_samples, result.params, result.epochs) == (8, 2, 3)


def test_evaluate_runs_on_the_trained_model_in_eval_mode_without_gradients():
    SEEN.clear()
    result = run_case(case("r_evaluated"), REGISTRY, DeviceCache(REGISTRY))
    assert result.status == "ok", result.status_detail
    assert (SEEN["training"], SEEN["grad"], SEEN["autocast"]) == (False, False, False)
    autocast = run_case(case("r_evaluated", precision="amp_bf16"), REGISTRY, DeviceCache(REGISTRY))
    assert autocast.status == "ok" and SEEN["autocast"] is True


def test_what_evaluate_returns_becomes_metrics_and_series():
    result = run_case(case("r_evaluated"), REGISTRY, DeviceCache(REGISTRY))
    assert result.series == {"curve": [1.0, 2.0, 3.0], "listed": [1.0, 2.0], "tupled": [0.5]}
    assert all(isinstance(v, float) for values in result.series.values() for v in values)
    assert result.metrics["scalar_tensor"] == 3.5 and result.metrics["number"] == 2.0
    assert isinstance(result.metrics["number"], float)
    # the test split's loss, with dropout off (eval mode): twice the same figure
    again = run_case(case("r_evaluated"), REGISTRY, DeviceCache(REGISTRY))
    assert result.metrics["test_loss"] == again.metrics["test_loss"]


def test_a_failing_evaluate_is_an_error_naming_the_plugin_and_the_role():
    result = run_case(case("r_failing"), REGISTRY, DeviceCache(REGISTRY))
    assert result.status == "error"
    assert result.status_detail.startswith(
        "model 'r_failing' of plugin RunnerPlugin, evaluate: RuntimeError: evaluate bug (at "
    )


def test_a_failing_factory_is_an_error_naming_the_plugin_without_a_role():
    registry = isolated_registry(RunnerPlugin())

    class Broken:
        @benchkit.hookimpl
        def benchkit_register_datasets(self, register):
            register("r_broken", lambda options: 1 / 0)

    registry = isolated_registry(RunnerPlugin(), Broken())
    recipe = REGISTRY.get("model", "r_linear").datasets["r_line"]
    c = Case("r_linear", "r_broken", "fp32", "cpu", 0, recipe)
    result = run_case(c, registry, DeviceCache(registry))
    assert result.status == "error"
    assert result.status_detail.startswith(
        "dataset 'r_broken' of plugin Broken: ZeroDivisionError: division by zero (at "
    )


def test_devices_are_built_once_with_their_index_and_describe_themselves(monkeypatch):
    import benchkit.cases

    warmed = []
    monkeypatch.setattr(benchkit.cases, "warm_up", lambda device: warmed.append(device))
    SEEN.clear()
    cache = DeviceCache(REGISTRY)
    first = cache.get("fake:1")
    assert cache.get("fake:1") is first and first.index == 1
    assert cache.get("fake").index is None
    assert SEEN["indices"] == [1, None]
    assert warmed == [torch.device("cpu")] * 2
    assert cache.environment() == {
        "fake:1": {"available": True, "name": "fake #1", "slots": 2},
        "fake": {"available": True, "name": "fake #None", "slots": 2},
    }
    SEEN["fake_reason"] = "unplugged"
    absent = DeviceCache(REGISTRY)
    absent.get("fake:0")
    assert warmed == [torch.device("cpu")] * 2  # an absent device is not warmed up
    assert absent.environment() == {"fake:0": {"available": False, "reason": "unplugged"}}
    result = run_case(case(device="fake:0"), REGISTRY, absent)
    assert (result.status, result.status_detail) == (
        "skipped",
        "device fake:0 unavailable: unplugged",
    )
    SEEN.pop("fake_reason")


def test_a_precision_the_device_cannot_run_still_names_the_device(monkeypatch):
    monkeypatch.setattr(Fake, "dtype_unsupported_reason", lambda self, dtype: "no", raising=False)
    result = run_case(case(device="fake:3", precision="fp16"), REGISTRY, DeviceCache(REGISTRY))
    assert result.status == "skipped" and result.device_name == "fake #3"


def test_prepare_seeds_the_data_and_the_model_and_counts_parameters():
    device = call_factory(REGISTRY, "device", "cpu", None)
    precision = call_factory(REGISTRY, "precision", "fp64")
    model, data, params = prepare(case(dataset="r_noisy", seed=5), REGISTRY, device, precision)
    torch.manual_seed(5)
    expected_x = torch.rand(6, 1)
    torch.manual_seed(5)
    expected_model = nn.Linear(1, 1)
    assert torch.equal(data.train.inputs[0], expected_x.double())
    assert data.train.inputs[0].dtype == torch.float64 and data.info == {"in_features": 1}
    assert torch.equal(model.weight, expected_model.weight.double())
    assert params == 2


def test_warm_up_bounds():
    assert [warmup_epochs(n) for n in (0, 19, 20, 99, 101, 150)] == [1, 1, 2, 9, 10, 10]


def test_a_diverged_run_is_not_evaluated_and_says_the_forward_pass_overflowed():
    class Exploding:
        @benchkit.hookimpl
        def benchkit_register_models(self, register):
            def build(data, options):
                model = nn.Linear(1, 1)
                with torch.no_grad():
                    model.weight.fill_(1e30)
                return model

            recipe = Recipe(loss="mse", optimizer="sgd", lr=0.1, epochs=5)
            register("r_exploding", build, datasets={"r_line": recipe}, evaluate=_evaluate)

    registry = isolated_registry(RunnerPlugin(), Exploding())
    recipe = registry.get("model", "r_exploding").datasets["r_line"]
    c = Case("r_exploding", "r_line", "fp32", "cpu", 0, recipe)
    result = run_case(c, registry, DeviceCache(registry))
    assert (result.status, result.diverged_epoch, result.nonfinite_loss) == ("diverged", 0, "inf")
    assert result.status_detail == (
        "training loss inf at epoch 0; gradients and parameters stayed finite: the forward "
        "pass overflowed"
    )
    assert result.metrics == {} and result.series == {}
    assert (result.grads_nonfinite_epoch, result.params_nonfinite_epoch) == (None, None)


def test_a_replay_that_fails_keeps_the_result_and_says_so():
    calls = []

    class Flaky:
        @benchkit.hookimpl
        def benchkit_register_models(self, register):
            def build(data, options):
                calls.append(1)
                if len(calls) > 1:
                    raise RuntimeError("second build")
                model = nn.Linear(1, 1)
                with torch.no_grad():
                    model.weight.fill_(1e30)
                return model

            recipe = Recipe(loss="mse", optimizer="sgd", lr=0.1, epochs=5)
            register("r_flaky", build, datasets={"r_line": recipe})

    registry = isolated_registry(RunnerPlugin(), Flaky())
    recipe = registry.get("model", "r_flaky").datasets["r_line"]
    result = run_case(
        Case("r_flaky", "r_line", "fp32", "cpu", 0, recipe), registry, DeviceCache(registry)
    )
    assert result.status == "diverged"
    assert result.status_detail.startswith(
        "training loss inf at epoch 0; replay failed: model 'r_flaky' of plugin Flaky: "
        "RuntimeError: second build"
    )


def _half(model: nn.Module) -> nn.Module:
    return model.half()


def test_adams_epsilon_underflowing_in_float16_is_named():
    adam = Recipe(optimizer="adam")
    c = Case("m", "d", "fp16", "cpu", 0, adam)
    message = (
        "Adam's eps=1e-08 is 0 in float16, so a second moment that underflows to 0 divides by zero"
    )
    assert _static_causes(c, _half(nn.Linear(1, 1))) == [message]
    adamw = Case("m", "d", "fp16", "cpu", 0, Recipe(optimizer="adamw"))
    assert _static_causes(adamw, _half(nn.Linear(1, 1))) == [message]
    big_eps = Recipe(optimizer="adam", optimizer_options={"eps": 1e-3})
    assert _static_causes(Case("m", "d", "fp16", "cpu", 0, big_eps), _half(nn.Linear(1, 1))) == []
    tiny_eps = Recipe(optimizer="adam", optimizer_options={"eps": 1e-42})
    assert _static_causes(
        Case("m", "d", "bf16", "cpu", 0, tiny_eps), nn.Linear(1, 1).bfloat16()
    ) == [
        "Adam's eps=1e-42 is 0 in bfloat16, so a second moment that underflows to 0 divides by zero"
    ]
    assert _static_causes(c, nn.Linear(1, 1)) == []  # float32 holds 1e-8
    assert _static_causes(c, nn.ReLU()) == []  # no parameters: float32
    sgd = Case("m", "d", "fp16", "cpu", 0, Recipe(optimizer="sgd"))
    assert _static_causes(sgd, _half(nn.Linear(1, 1))) == []
