"""The hook API reads as its own reference, and every hook is exercised."""

from __future__ import annotations

import inspect
from pathlib import Path

import benchkit_plugins.devices as devices
import benchkit_plugins.precisions as precisions
import benchkit_plugins.sine_mlp as sine_mlp
import benchkit_plugins.single_neuron as single_neuron
import pytest
import torch

import benchkit
from benchkit import hookspecs
from benchkit.errors import SuiteError
from benchkit.registry import HOOK_FOR_KIND
from benchkit.suite import parse_suite
from benchkit.testing import isolated_registry, run_quick

HOOKS = [
    name
    for name, _ in inspect.getmembers(hookspecs, inspect.isfunction)
    if name.startswith("benchkit_")
]
README = Path(__file__).resolve().parent.parent / "README.md"


def test_there_is_a_hook_per_kind():
    assert sorted(HOOKS) == [
        "benchkit_register_datasets",
        "benchkit_register_devices",
        "benchkit_register_executors",
        "benchkit_register_losses",
        "benchkit_register_models",
        "benchkit_register_modes",
        "benchkit_register_optimizers",
        "benchkit_register_precisions",
        "benchkit_register_schedules",
    ]
    assert sorted(HOOK_FOR_KIND.values()) == sorted(HOOKS)


@pytest.mark.parametrize("name", HOOKS)
def test_each_hook_is_documented(name):
    hook = getattr(hookspecs, name)
    doc = inspect.getdoc(hook) or ""
    assert "register(" in doc, f"{name}: say what register() accepts"
    assert ":param register:" in doc
    assert list(inspect.signature(hook).parameters) == ["register"]
    assert hook.__annotations__.get("return") in (None, "None")


@pytest.mark.parametrize("name", HOOKS)
def test_each_hook_is_implemented_by_a_built_in_plugin(benchkit_registry, name):
    kind = next(k for k, hook in HOOK_FOR_KIND.items() if hook == name)
    builtin = {p.name for p in benchkit_registry.plugins.values() if p.package == "benchkit"}
    providers = {r.plugin for r in benchkit_registry.entries[kind].values()}
    assert providers & builtin, f"no built-in plugin implements {name}"


@pytest.mark.parametrize("name", HOOKS)
def test_each_hook_is_named_in_the_readme(name):
    assert name in README.read_text()


# --- each hook's own test: the contract docs/writing-plugins.md states -------------------------
# Convention (tests/test_plugin_docs.py enforces it): every hook has a test named
# test_hook_<hook name>_...


class AliasCpu(benchkit.Device):
    """The CPU under another name, remembering the index the suite gave it."""

    def __init__(self, index: int | None) -> None:
        self.index = index

    @property
    def torch_device(self) -> torch.device:
        return torch.device("cpu")

    def display_name(self) -> str:
        return f"alias cpu #{self.index}"


class Absent(benchkit.Device):
    name = "absent"

    def unavailable_reason(self) -> str | None:
        return "not in this machine"


def test_hook_benchkit_register_devices_builds_each_device_once_and_runs_on_it():
    built: list[int | None] = []

    class Plugin:
        @benchkit.hookimpl
        def benchkit_register_devices(self, register):
            register("alias", lambda index: built.append(index) or AliasCpu(index))
            register("absent", lambda index: Absent(), description="never present")

    registry = isolated_registry(Plugin(), single_neuron)
    assert registry.plugins["Plugin"].registered == {"device": ["alias", "absent"]}
    assert registry.get("device", "absent").description == "never present"

    result = run_quick(registry, "single_neuron", "single_point", device="alias:3")
    assert (result.status, result.device_name) == ("ok", "alias cpu #3")
    assert built == [3]  # the suite's index, once

    absent = run_quick(registry, "single_neuron", "single_point", device="absent")
    assert absent.status == "skipped"  # reported, never moved to another device
    assert absent.status_detail == "device absent unavailable: not in this machine"


def test_hook_benchkit_register_precisions_builds_a_fresh_precision_per_run():
    made: list[benchkit.Precision] = []

    class Counting(benchkit.Precision):
        dtype = torch.float64

        def __init__(self) -> None:
            self.steps = 0

        def backward_step(self, loss, optimizer) -> None:
            assert loss.dtype == torch.float64
            self.steps += 1
            super().backward_step(loss, optimizer)

        def stats(self) -> dict[str, int]:
            return {"counted_steps": self.steps}

    class GpuOnly(benchkit.Precision):
        def unsupported_reason(self, device) -> str | None:
            return "needs a GPU" if device.torch_device.type == "cpu" else None

    class Plugin:
        @benchkit.hookimpl
        def benchkit_register_precisions(self, register):
            register("counting", lambda: made.append(Counting()) or made[-1])
            register("gpu_only", GpuOnly)

    registry = isolated_registry(Plugin(), single_neuron)
    first = run_quick(registry, "single_neuron", "line", precision="counting", epochs=4)
    second = run_quick(registry, "single_neuron", "line", precision="counting", epochs=4)
    assert len(made) == 2  # one instance per run: per-run state starts afresh
    assert first.metrics["counted_steps"] == second.metrics["counted_steps"] == 4
    assert first.curve == second.curve

    skipped = run_quick(registry, "single_neuron", "line", precision="gpu_only")
    assert skipped.status == "skipped"
    assert skipped.status_detail == "precision gpu_only unsupported on cpu: needs a GPU"


def test_hook_benchkit_register_datasets_gets_its_options_right_after_the_seed(tmp_path):
    seen: list[tuple[dict, float]] = []

    class Plugin:
        @benchkit.hookimpl
        def benchkit_register_datasets(self, register):
            def probe(options):
                seen.append((dict(options), float(torch.rand(1))))
                x = torch.linspace(0, 1, options["n"]).unsqueeze(1)
                return benchkit.Data(train=benchkit.Split((x,), options["scale"] * x))

            register("probe", probe, options={"n": 4, "scale": 1.0})

        @benchkit.hookimpl
        def benchkit_register_models(self, register):
            register(
                "probe_model",
                lambda data, options: torch.nn.Linear(1, 1),
                datasets={"probe": benchkit.Recipe(lr=0.1, epochs=2)},
            )

    registry = isolated_registry(Plugin())
    result = run_quick(registry, "probe_model", "probe", seed=5, options={"n": 6})
    torch.manual_seed(5)
    assert seen == [({"n": 6, "scale": 1.0}, float(torch.rand(1)))]
    assert result.train_samples == 6

    suite = tmp_path / "probe.toml"
    suite.write_text(
        '[[cases]]\nmodel = "probe_model"\ndataset = "probe"\ndevices = ["cpu"]\n'
        'precisions = ["fp32"]\nseeds = [0]\noptions = { size = 3 }\n'
    )
    with pytest.raises(SuiteError, match=r"cases\[0\]\.options\.size: .*valid: n, scale"):
        parse_suite(suite, registry)


def test_hook_benchkit_register_models_trains_with_its_recipe_options_and_evaluate():
    calls: list[tuple[dict, dict]] = []

    def build(data, options):
        calls.append((dict(data.info), dict(options)))
        return torch.nn.Sequential(
            torch.nn.Linear(1, options["hidden"]),
            torch.nn.Tanh(),
            torch.nn.Linear(options["hidden"], 1),
        )

    def evaluate(model, data, context):
        assert not model.training and not torch.is_grad_enabled()
        probe = context.prepare(torch.zeros(2, 1))
        return {"at_zero": float(model(probe)[0, 0]), "outputs": model(probe).flatten()}

    class Plugin:
        @benchkit.hookimpl
        def benchkit_register_models(self, register):
            register(
                "probe_mlp",
                build,
                datasets={"line": benchkit.Recipe(loss="l1", optimizer="adam", lr=0.01, epochs=9)},
                evaluate=evaluate,
                options={"hidden": 4},
            )

    registry = isolated_registry(Plugin(), single_neuron)  # line is single_neuron's
    result = run_quick(registry, "probe_mlp", "line", epochs=3, model_options={"hidden": 5})
    assert result.status == "ok", result.status_detail
    # line's info says how its source initialised its model (single_neuron reads it)
    assert calls == [({"in_features": 1, "source_init": "randn"}, {"hidden": 5})]
    assert (result.optimizer, result.lr, result.epochs) == ("adam", 0.01, 3)
    assert result.params == 5 + 5 + 5 + 1
    # scalars: results.csv columns (line's test points also validate, as the lecture's do)
    assert set(result.metrics) == {"test_loss", "valid_loss", "at_zero"}
    assert len(result.series["outputs"]) == 2  # a 1-D tensor: series.csv rows


def test_every_built_in_plugin_passes_the_author_checks(benchkit_check_plugin):
    # The helper third-party authors use, on benchkit's own plugins (rnn and lstm_seq2seq have
    # theirs in test_rnn_plugin.py and test_seq2seq_plugin.py).
    runs = {
        module.__name__.rsplit(".", 1)[1]: benchkit_check_plugin(module)
        for module in (devices, precisions, single_neuron, sine_mlp)
    }
    by_device = {r.device: r.status for r in runs["devices"]}
    assert by_device.keys() == {"cpu", "cuda", "mps"}  # absent ones skipped with their reason
    assert by_device["cpu"] == "ok"
    assert {r.precision for r in runs["precisions"]} == {
        "fp32",
        "fp16",
        "bf16",
        "fp64",
        "amp_fp16",
        "amp_bf16",
    }
    assert {r.dataset for r in runs["single_neuron"]} == {"single_point", "line", "celsius"}
    assert [r.dataset for r in runs["sine_mlp"]] == ["sine"]
