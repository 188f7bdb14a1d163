"""Plugin discovery: how benchkit finds plugins, and why one broken plugin never takes the
others down.

Plugins are published in the ``benchkit`` entry-point group (the built-ins too) and loaded one at
a time by :class:`benchkit.registry.PluginHost`. A plugin that fails to import, implements a hook
that does not exist, raises in a hook or registers something invalid is recorded as ``failed``
with its name and the reason; everything it registered is taken back, and the others load.
"""

from __future__ import annotations

import importlib.metadata
import math
import sys
import textwrap
import types

import benchkit_plugins.single_neuron as single_neuron
import pytest
import torch

import benchkit
from benchkit import Recipe
from benchkit.cli import main
from benchkit.errors import PluginError
from benchkit.registry import (
    DISABLE_ENV,
    ENTRY_POINT_GROUP,
    PluginHost,
    PluginInfo,
    Registry,
    load_registry,
)
from benchkit.testing import check_plugin, isolated_registry

BUILTIN_PLUGINS = ("devices", "precisions", "single_neuron", "sine_mlp")

#: (kind, name, the built-in plugin that registers it)
BUILTIN_REGISTRATIONS = [
    *(("device", name, "devices") for name in ("cpu", "cuda", "mps")),
    *(
        ("precision", name, "precisions")
        for name in ("fp32", "fp16", "bf16", "fp64", "amp_fp16", "amp_bf16")
    ),
    *(("dataset", name, "single_neuron") for name in ("single_point", "line", "celsius")),
    ("dataset", "sine", "sine_mlp"),
    ("model", "single_neuron", "single_neuron"),
    ("model", "sine_mlp", "sine_mlp"),
]

RECIPE = Recipe(loss="mse", optimizer="sgd", lr=0.1, epochs=10)


# --- helpers: plugins that exist only for a test ----------------------------------------------


def entry_point(name: str, module: str) -> importlib.metadata.EntryPoint:
    """An entry point as a package's ``[project.entry-points.benchkit]`` table declares it."""
    return importlib.metadata.EntryPoint(name=name, value=module, group=ENTRY_POINT_GROUP)


def module_plugin(name: str, **hooks) -> types.ModuleType:
    """An in-memory plugin module whose hook functions are marked ``@benchkit.hookimpl``."""
    module = types.ModuleType(name)
    for hook_name, function in hooks.items():
        setattr(module, hook_name, benchkit.hookimpl(function))
    return module


def load_plugins(*plugins: tuple[PluginInfo, object]) -> Registry:
    """Add each (info, plugin) to a fresh host, in order, and collect their registrations."""
    host = PluginHost()
    for info, plugin in plugins:
        host.add(plugin, info)
    return host.collect()


def make_dataset(options: dict) -> None:
    """A dataset factory; discovery never calls it."""


def make_model(data, options: dict) -> None:
    """A model factory; discovery never calls it."""


class OnesPlugin:
    """A well-behaved plugin: one dataset and one model that fits it."""

    @benchkit.hookimpl
    def benchkit_register_datasets(self, register):
        register("ones", make_dataset, options={"n": 8}, description="eight ones")

    @benchkit.hookimpl
    def benchkit_register_models(self, register):
        register("ones_model", make_model, datasets={"ones": RECIPE})


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    """``write(module, source)`` puts a plugin module on ``sys.path`` and returns its name."""
    monkeypatch.syspath_prepend(tmp_path)
    written: list[str] = []

    def write(module: str, source: str) -> str:
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
        written.append(module)
        return module

    yield write
    for module in written:
        sys.modules.pop(module, None)


GOOD_PLUGIN = """\
    import benchkit

    @benchkit.hookimpl
    def benchkit_register_datasets(register):
        register("ones", lambda options: None)
"""


# --- the built-ins ----------------------------------------------------------------------------


def test_builtin_plugins_load_through_the_entry_point_group():
    registry = load_registry()
    for name in BUILTIN_PLUGINS:
        info = registry.plugins[name]
        assert info.status == "ok", info.error
        assert info.error == ""
        assert info.package == "benchkit"
        assert info.version == benchkit.__version__
        assert info.module == f"benchkit_plugins.{name}"


@pytest.mark.parametrize(("kind", "name", "plugin"), BUILTIN_REGISTRATIONS)
def test_each_builtin_registration_names_its_plugin(benchkit_registry, kind, name, plugin):
    # benchkit_registry (from benchkit.testing) is load_registry(), once per test session.
    registry = benchkit_registry
    assert registry.get(kind, name).plugin == plugin
    assert name in registry.plugins[plugin].registered[kind]


def test_a_model_registration_carries_its_recipe_per_dataset(benchkit_registry):
    registration = benchkit_registry.get("model", "sine_mlp")
    assert registration.datasets == {
        "sine": Recipe(loss="mse", optimizer="adam", lr=1e-3, epochs=1000)
    }
    assert registration.options == {"hidden": 64}
    assert callable(registration.factory)
    assert callable(registration.evaluate)


# --- a plugin that fails to import ------------------------------------------------------------


def test_a_plugin_that_fails_to_import_is_recorded_and_the_others_load(plugin_dir):
    good = plugin_dir("bk_test_good_import", GOOD_PLUGIN)
    host = PluginHost()
    host.load_entry_points(
        [entry_point("missing", "some_missing_module_xyz"), entry_point("good", good)],
        disabled=(),
    )
    registry = host.collect()

    missing = registry.plugins["missing"]
    assert missing.status == "failed"
    assert missing.module == "some_missing_module_xyz"
    assert missing.error.startswith("import failed: ModuleNotFoundError: ")
    assert "some_missing_module_xyz" in missing.error
    assert missing.registered == {}
    assert [p.name for p in registry.failures()] == ["missing"]

    assert registry.plugins["good"].status == "ok"
    assert registry.get("dataset", "ones").plugin == "good"


def test_an_import_error_says_where_in_the_plugin_it_happened(plugin_dir):
    module = plugin_dir(
        "bk_test_raises_on_import",
        """\
        import benchkit

        raise RuntimeError("set MY_TOKEN first")
        """,
    )
    host = PluginHost()
    host.load_entry_points([entry_point("needs_token", module)], disabled=())
    info = host.collect().plugins["needs_token"]
    assert info.status == "failed"
    assert info.error == (
        "import failed: RuntimeError: set MY_TOKEN first (at bk_test_raises_on_import.py:3)"
    )


# --- hooks that do not exist, or do not fit their spec ----------------------------------------


def test_a_misspelled_hook_name_fails_that_plugin_only():
    def benchkit_register_model(register):  # the spec says benchkit_register_models
        register("typo_model", make_model, datasets={"ones": RECIPE})

    typo = module_plugin("typo", benchkit_register_model=benchkit_register_model)
    registry = load_plugins(
        (PluginInfo(name="before"), OnesPlugin()),
        (PluginInfo(name="typo"), typo),
        (PluginInfo(name="after"), single_neuron),
    )

    info = registry.plugins["typo"]
    assert info.status == "failed"
    assert info.error == (
        "unknown hook 'benchkit_register_model' (did you mean benchkit_register_models?); "
        "the hooks are benchkit_register_devices, benchkit_register_precisions, "
        "benchkit_register_modes, benchkit_register_losses, benchkit_register_optimizers, "
        "benchkit_register_schedules, benchkit_register_datasets, benchkit_register_models, "
        "benchkit_register_executors"
    )
    assert "typo_model" not in registry.names("model")
    assert registry.plugins["before"].status == "ok"
    assert registry.plugins["after"].status == "ok"
    assert registry.names("model") == ["ones_model", "single_neuron"]


def test_a_hook_with_an_argument_the_spec_lacks_fails_that_plugin():
    def benchkit_register_models(register, config):
        register("needs_config", make_model, datasets={"ones": RECIPE})

    odd = module_plugin("odd", benchkit_register_models=benchkit_register_models)
    registry = load_plugins((PluginInfo(name="odd"), odd), (PluginInfo(name="ones"), OnesPlugin()))

    assert registry.plugins["odd"].status == "failed"
    assert "config" in registry.plugins["odd"].error
    assert registry.names("model") == ["ones_model"]


def test_a_hook_function_without_the_hookimpl_marker_fails_loudly():
    # pluggy only calls functions marked @benchkit.hookimpl; an unmarked one would be ignored
    # in silence, so the plugin fails and says what to add.
    plain = types.ModuleType("plain")
    plain.benchkit_register_datasets = lambda register: register("unseen", make_dataset)
    registry = load_plugins((PluginInfo(name="plain"), plain))
    assert registry.plugins["plain"].status == "failed"
    assert registry.plugins["plain"].error == (
        "benchkit_register_datasets is not marked with @benchkit.hookimpl, so benchkit would "
        "never call it; add the decorator"
    )
    assert "unseen" not in registry.names("dataset")


# --- hooks that raise -------------------------------------------------------------------------


def test_a_hook_that_raises_fails_its_plugin_and_takes_back_what_it_registered():
    def benchkit_register_datasets(register):
        register("half_done", make_dataset)
        raise RuntimeError("could not find the data folder")

    broken = module_plugin("broken", benchkit_register_datasets=benchkit_register_datasets)
    registry = load_plugins(
        (PluginInfo(name="broken", package="broken-pkg", version="0.3"), broken),
        (PluginInfo(name="ones"), OnesPlugin()),
    )

    info = registry.plugins["broken"]
    assert info.status == "failed"
    assert info.error.startswith(
        "benchkit_register_datasets: RuntimeError: could not find the data folder (at "
        "test_plugin_loading.py:"
    )
    assert info.registered == {}
    assert registry.names("dataset") == ["ones"]
    assert registry.plugins["ones"].status == "ok"


def test_a_plugins_registrations_count_all_or_nothing_across_its_hooks():
    # The datasets hook runs (and succeeds) before the models hook raises: both are dropped.
    class HalfBroken:
        @benchkit.hookimpl
        def benchkit_register_datasets(self, register):
            register("orphan", make_dataset)

        @benchkit.hookimpl
        def benchkit_register_models(self, register):
            raise ValueError("model zoo offline")

    registry = load_plugins((PluginInfo(name="half"), HalfBroken()))
    assert registry.plugins["half"].status == "failed"
    assert registry.plugins["half"].error.startswith(
        "benchkit_register_models: ValueError: model zoo offline"
    )
    assert registry.plugins["half"].registered == {}
    assert registry.names("dataset") == []


# --- register() checks each registration as it arrives ----------------------------------------


@pytest.mark.parametrize(
    ("register_models", "message"),
    [
        pytest.param(
            lambda register: register("mlp", make_model),
            "model 'mlp': register() needs datasets={dataset_name: Recipe(...)} naming at "
            "least one dataset the model fits",
            id="missing-datasets",
        ),
        pytest.param(
            lambda register: register("mlp", make_model, datasets={}),
            "model 'mlp': register() needs datasets=",
            id="empty-datasets",
        ),
        pytest.param(
            lambda register: register("mlp", make_model, datasets={"ones": {"lr": 0.1}}),
            "model 'mlp': datasets['ones'] must be a benchkit.Recipe, got dict",
            id="not-a-recipe",
        ),
        pytest.param(
            lambda register: register("mlp", None, datasets={"ones": RECIPE}),
            "model 'mlp': register() takes a factory, got NoneType; pass a function or class "
            "that builds it, factory(data, options) -> torch.nn.Module",
            id="not-callable",
        ),
        pytest.param(
            lambda register: register("mlp", torch.nn.Linear(1, 1), datasets={"ones": RECIPE}),
            "model 'mlp': register() takes a factory, got a built Linear; pass a function or "
            "class that builds it, factory(data, options) -> torch.nn.Module",
            id="built-module-not-factory",
        ),
        pytest.param(
            lambda register: register("mlp", make_model, datasets={"ones": RECIPE}, dataset="x"),
            "model 'mlp': unknown register() argument(s) dataset; "
            "valid: datasets, description, evaluate, metrics, options",
            id="unknown-keyword",
        ),
        pytest.param(
            lambda register: register("mlp", make_model, datasets={"ones": RECIPE}, evaluate=1),
            "model 'mlp': evaluate must be a function (model, data, context) -> dict, got int",
            id="evaluate-not-callable",
        ),
        pytest.param(
            lambda register: register("mlp", make_model, datasets={"ones": RECIPE}, options=["n"]),
            "model 'mlp': options must be a dict of each option's default, such as "
            "options={'points': 100}, got list",
            id="options-not-a-dict",
        ),
        pytest.param(
            lambda register: register("my mlp", make_model, datasets={"ones": RECIPE}),
            "model name 'my mlp' must be a string of letters, digits, _ . -",
            id="bad-name",
        ),
    ],
)
def test_an_invalid_model_registration_fails_the_plugin_naming_the_model(register_models, message):
    bad = module_plugin("bad", benchkit_register_models=register_models)
    registry = load_plugins((PluginInfo(name="bad"), bad), (PluginInfo(name="ones"), OnesPlugin()))

    info = registry.plugins["bad"]
    assert info.status == "failed"
    assert info.error.startswith(f"benchkit_register_models: {message}")
    assert registry.names("model") == ["ones_model"]


def test_datasets_and_devices_accept_only_their_own_keywords():
    def benchkit_register_datasets(register):
        register("ones", make_dataset, datasets={"x": RECIPE})

    bad = module_plugin("bad", benchkit_register_datasets=benchkit_register_datasets)
    error = load_plugins((PluginInfo(name="bad"), bad)).plugins["bad"].error
    assert error == (
        "benchkit_register_datasets: dataset 'ones': unknown register() argument(s) datasets; "
        "valid: description, options, recipes"
    )


def test_a_name_registered_by_two_plugins_stays_with_the_first():
    def first_models(register):
        register("x", make_model, datasets={"ones": RECIPE})

    def second_models(register):
        register("x", make_model, datasets={"ones": RECIPE})

    def second_datasets(register):
        register("second_only", make_dataset)

    registry = load_plugins(
        (
            PluginInfo(name="A", package="pkg-a", version="1.0"),
            module_plugin("a", benchkit_register_models=first_models),
        ),
        (
            PluginInfo(name="B", package="pkg-b", version="2.0"),
            module_plugin(
                "b",
                benchkit_register_models=second_models,
                benchkit_register_datasets=second_datasets,
            ),
        ),
    )

    assert registry.get("model", "x").plugin == "A"
    assert registry.plugins["A"].status == "ok"
    assert registry.plugins["B"].status == "failed"
    assert registry.plugins["B"].error == (
        "benchkit_register_models: model 'x' registered by both A (pkg-a 1.0) and B (pkg-b 2.0)"
    )
    # B counts all or nothing: its dataset went with it.
    assert registry.names("dataset") == []


def test_a_plugin_cannot_shadow_a_builtin_name():
    def benchkit_register_datasets(register):
        register("line", make_dataset)

    shadow = module_plugin("shadow", benchkit_register_datasets=benchkit_register_datasets)
    registry = isolated_registry(single_neuron, shadow)
    assert registry.get("dataset", "line").plugin == "benchkit_plugins.single_neuron"
    assert registry.plugins["shadow"].error == (
        "benchkit_register_datasets: dataset 'line' registered by both "
        "benchkit_plugins.single_neuron and shadow"
    )


# --- skipping plugins -------------------------------------------------------------------------


def test_benchkit_disable_plugins_skips_the_named_plugins(monkeypatch):
    monkeypatch.setenv(DISABLE_ENV, "sine_mlp, single_neuron")
    registry = load_registry()

    for name in ("sine_mlp", "single_neuron"):
        assert registry.plugins[name].status == "disabled"
        assert registry.plugins[name].error == "listed in BENCHKIT_DISABLE_PLUGINS"
        assert registry.plugins[name].registered == {}
    assert "sine_mlp" not in registry.names("model")
    assert "line" not in registry.names("dataset")
    assert registry.plugins["devices"].status == "ok"
    assert registry.failures() == []


def test_a_disabled_plugin_is_never_imported():
    host = PluginHost()
    host.load_entry_points(
        [entry_point("missing", "some_missing_module_xyz")], disabled=["missing"]
    )
    assert host.collect().plugins["missing"].status == "disabled"


# --- strict loading and lookups ---------------------------------------------------------------


def test_check_strict_lists_every_failed_plugin():
    def raises(register):
        raise RuntimeError("boom")

    load_plugins((PluginInfo(name="ones"), OnesPlugin())).check_strict()  # nothing failed

    host = PluginHost()
    host.add(module_plugin("b1", benchkit_register_datasets=raises), PluginInfo(name="b1"))
    host.load_entry_points([entry_point("b2", "some_missing_module_xyz")], disabled=())
    registry = host.collect()
    with pytest.raises(PluginError) as caught:
        registry.check_strict()
    message = str(caught.value)
    assert message.startswith("plugins failed to load (--strict-plugins):\n")
    assert "\n  b1: benchkit_register_datasets: RuntimeError: boom" in message
    assert "\n  b2: import failed: ModuleNotFoundError" in message
    assert message.endswith(f"list them in {DISABLE_ENV} to skip them.")


def test_load_registry_strict_passes_with_the_builtins():
    assert load_registry(strict=True).failures() == []


def test_get_an_unknown_name_lists_the_valid_ones():
    registry = isolated_registry(single_neuron)
    with pytest.raises(PluginError, match=r"^unknown model 'mlp'; valid: single_neuron$"):
        registry.get("model", "mlp")
    with pytest.raises(PluginError, match=r"^unknown dataset 'lin'; valid: celsius, line, "):
        registry.get("dataset", "lin")
    empty = isolated_registry(builtins=False)
    with pytest.raises(PluginError, match=r"^unknown device 'cpu'; valid: none registered$"):
        empty.get("device", "cpu")


# --- benchkit.testing: helpers for plugin authors ---------------------------------------------


def test_isolated_registry_holds_one_plugin_plus_the_builtin_basics():
    registry = isolated_registry(single_neuron)
    assert set(registry.plugins) == {
        "devices",
        "precisions",
        "modes",
        "losses",
        "optimizers",
        "schedules",
        "benchkit_plugins.single_neuron",
    }
    assert registry.names("model") == ["single_neuron"]
    assert registry.names("dataset") == ["celsius", "line", "single_point"]
    assert "cpu" in registry.names("device")
    assert "fp32" in registry.names("precision")


def test_isolated_registry_without_builtins_holds_only_the_plugin():
    registry = isolated_registry(OnesPlugin(), builtins=False)
    assert list(registry.plugins) == ["OnesPlugin"]
    assert registry.names("device") == []
    assert registry.names("model") == ["ones_model"]


def test_the_benchkit_isolated_fixture_is_isolated_registry(benchkit_isolated):
    registry = benchkit_isolated(single_neuron)
    assert registry.names("model") == ["single_neuron"]


def test_check_plugin_runs_every_model_on_every_dataset_it_fits():
    results = check_plugin(single_neuron, epochs=2)
    assert sorted((r.model, r.dataset) for r in results) == [
        ("single_neuron", "celsius"),
        ("single_neuron", "line"),
        ("single_neuron", "single_point"),
    ]
    for result in results:
        assert result.status == "ok", result.status_detail
        assert (result.device, result.precision) == ("cpu", "fp32")
        assert result.epochs == 2
        assert all(math.isfinite(v) for v in result.curve)


# --- benchkit plugins -------------------------------------------------------------------------


@pytest.fixture
def with_broken_plugin(monkeypatch):
    """The installed entry points plus one whose module does not exist."""
    real_entry_points = importlib.metadata.entry_points
    broken = entry_point("broken", "some_missing_module_xyz")

    def entry_points(**selection):
        return [*real_entry_points(**selection), broken]

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)


def test_benchkit_plugins_lists_each_plugin_and_what_it_registered(capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    version = benchkit.__version__
    for name in BUILTIN_PLUGINS:
        assert f"{name}  [ok]  benchkit {version}  (benchkit_plugins.{name})\n" in out
    assert "\n    devices: cpu, cuda, mps\n" in out
    assert "\n    precisions: fp32, fp16, bf16, fp64, amp_fp16, amp_bf16\n" in out
    assert "\n    datasets: single_point, line, celsius\n    models: single_neuron\n" in out
    assert "\n    datasets: sine\n    models: sine_mlp\n" in out
    assert "error:" not in out


def test_benchkit_plugins_shows_a_broken_plugin_and_its_error(with_broken_plugin, capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "broken  [failed]" in out
    assert "(some_missing_module_xyz)\n    error: import failed: ModuleNotFoundError" in out
    assert "single_neuron  [ok]" in out


def test_strict_plugins_makes_a_broken_plugin_exit_2(with_broken_plugin, capsys):
    assert main(["plugins", "--strict-plugins"]) == 2
    captured = capsys.readouterr()
    assert "broken  [failed]" in captured.out
    assert captured.err.startswith(
        "benchkit: error: plugins failed to load (--strict-plugins):\n"
        "  broken: import failed: ModuleNotFoundError"
    )


# --- regressions found in review ----------------------------------------------------------------


def test_a_second_plugin_with_the_same_name_does_not_unload_the_first():
    registry = isolated_registry(OnesPlugin(), OnesPlugin())  # both named "OnesPlugin"
    assert registry.names("model") == ["ones_model"]


def test_two_packages_with_the_same_plugin_name_are_not_silently_merged(plugin_dir):
    first = plugin_dir("bk_test_same_name_a", GOOD_PLUGIN)
    second = plugin_dir("bk_test_same_name_b", GOOD_PLUGIN.replace('"ones"', '"twos"'))
    host = PluginHost()
    host.load_entry_points([entry_point("same", first), entry_point("same", second)], disabled=())
    registry = host.collect()
    assert any(second in (p.module + p.error) for p in registry.plugins.values())
