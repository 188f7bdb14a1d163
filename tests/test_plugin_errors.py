"""What a user sees when a third-party plugin goes wrong: every message names the plugin and
the package it came from, and one broken plugin never takes the others down.

Each test installs real (if tiny) distributions: a ``*.dist-info`` folder with ``METADATA`` and
``entry_points.txt`` beside the plugin modules, on ``sys.path``, which is all
``importlib.metadata`` needs to find a package's entry points. benchkit then loads them exactly
as it loads a package installed with pip.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

import benchkit
from benchkit.cli import main
from benchkit.registry import DISABLE_ENV, api_version_problem, load_registry
from benchkit.testing import isolated_registry

VERSION = benchkit.__version__
API = benchkit.API_VERSION
HOOK_NAMES = (
    "the hooks are benchkit_register_devices, benchkit_register_precisions, "
    "benchkit_register_modes, benchkit_register_losses, benchkit_register_optimizers, "
    "benchkit_register_schedules, benchkit_register_datasets, benchkit_register_models, "
    "benchkit_register_executors"
)

SUITE = """\
[suite]
name = "errors"

[matrix]
devices = ["cpu"]
precisions = ["fp32"]
seeds = [0]

[[cases]]
model = "single_neuron"
dataset = "single_point"
recipe = { epochs = 3 }
"""


@pytest.fixture
def install(tmp_path, monkeypatch):
    """``install(package, version, {entry_point_name: module_source})``: a distribution on
    ``sys.path`` whose ``benchkit`` entry points are those modules."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv(DISABLE_ENV, raising=False)
    modules: list[str] = []

    def install(package: str, version: str, plugins: dict[str, str]) -> None:
        stem = package.replace("-", "_")
        dist = site / f"{stem}-{version}.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n"
        )
        lines = ["[benchkit]"]
        for name, source in plugins.items():
            module = f"{stem}_{name}"
            (site / f"{module}.py").write_text(textwrap.dedent(source))
            lines.append(f"{name} = {module}")
            modules.append(module)
        (dist / "entry_points.txt").write_text("\n".join(lines) + "\n")

    yield install
    for module in modules:
        sys.modules.pop(module, None)


@pytest.fixture
def suite(tmp_path) -> Path:
    """A one-run suite file on the built-in single neuron."""
    path = tmp_path / "errors.toml"
    path.write_text(SUITE)
    return path


def run(suite: Path, out: Path, *flags: str) -> int:
    return main(["run", str(suite), "--out", str(out), "--quiet", *flags])


def listing(capsys) -> str:
    """``benchkit plugins``' output."""
    assert main(["plugins"]) == 0
    return capsys.readouterr().out


# --- a plugin that fails to import ------------------------------------------------------------

BROKEN_IMPORT = """\
    import benchkit
    import a_dependency_nobody_installed
"""


def test_an_import_error_names_the_plugin_and_its_package_everywhere(
    install, suite, tmp_path, capsys
):
    install("bk-broken-import", "0.3", {"broken_import": BROKEN_IMPORT})

    out = listing(capsys)
    assert (
        "broken_import  [failed]  bk-broken-import 0.3  (bk_broken_import_broken_import)\n" in out
    )
    assert (
        "    error: import failed: ModuleNotFoundError: No module named "
        "'a_dependency_nobody_installed' (at bk_broken_import_broken_import.py:2)\n"
    ) in out
    assert f"single_neuron  [ok]  benchkit {VERSION}" in out

    # benchkit run warns, names the plugin and package, and runs the suite all the same
    assert run(suite, tmp_path / "out") == 0
    err = capsys.readouterr().err
    assert (
        "benchkit: warning: plugin broken_import (bk-broken-import 0.3) failed: import failed: "
        "ModuleNotFoundError: No module named 'a_dependency_nobody_installed'"
    ) in err
    assert pd.read_csv(tmp_path / "out" / "results.csv")["status"].tolist() == ["ok"]


# --- a hook name with a typo ------------------------------------------------------------------


def test_a_misspelled_hook_names_the_plugin_its_package_and_the_real_hook_names(install, capsys):
    install(
        "bk-typo",
        "0.2",
        {
            "typo": """\
                import benchkit

                @benchkit.hookimpl
                def benchkit_register_model(register):
                    raise AssertionError("never called")
            """
        },
    )
    out = listing(capsys)
    assert "typo  [failed]  bk-typo 0.2  (bk_typo_typo)\n" in out
    error = load_registry().plugins["typo"].error
    assert error.startswith(
        "unknown hook 'benchkit_register_model' (did you mean benchkit_register_models?)"
    )
    assert error.endswith(HOOK_NAMES)


# --- a registration with a missing field ------------------------------------------------------


def test_a_model_without_datasets_names_the_model_the_plugin_and_its_package(install, capsys):
    install(
        "bk-incomplete",
        "1.0",
        {
            "incomplete": """\
                import benchkit
                from torch import nn

                @benchkit.hookimpl
                def benchkit_register_models(register):
                    register("half_model", lambda data, options: nn.Linear(1, 1))
            """
        },
    )
    registry = load_registry()
    info = registry.plugins["incomplete"]
    assert (info.status, info.package, info.version) == ("failed", "bk-incomplete", "1.0")
    assert info.error == (
        "benchkit_register_models: model 'half_model': register() needs "
        "datasets={dataset_name: Recipe(...)} naming at least one dataset the model fits"
    )
    assert "half_model" not in registry.names("model")

    assert main(["plugins", "--strict-plugins"]) == 2
    assert (
        "  incomplete (bk-incomplete 1.0): benchkit_register_models: model 'half_model': "
        "register() needs datasets="
    ) in capsys.readouterr().err


# --- two plugins registering the same name ----------------------------------------------------

REGISTERS_SHARED = """\
    import benchkit
    from benchkit import Recipe
    from torch import nn

    @benchkit.hookimpl
    def benchkit_register_models(register):
        register(
            "shared_model",
            lambda data, options: nn.Linear(1, 1),
            datasets={"single_point": Recipe(lr=0.1, epochs=3)},
        )
"""


def test_a_name_two_packages_register_names_both_plugins_and_packages(install, capsys):
    install("bk-first", "1.0", {"first": REGISTERS_SHARED})
    install("bk-second", "2.5", {"second": REGISTERS_SHARED})

    registry = load_registry()
    assert registry.get("model", "shared_model").plugin == "first"  # loaded in name order
    assert registry.plugins["second"].error == (
        "benchkit_register_models: model 'shared_model' registered by both "
        "first (bk-first 1.0) and second (bk-second 2.5)"
    )
    out = listing(capsys)
    assert "first  [ok]  bk-first 1.0" in out
    assert "second  [failed]  bk-second 2.5" in out


SHADOWS_LINE = """\
    import benchkit

    @benchkit.hookimpl
    def benchkit_register_datasets(register):
        register("line", lambda options: None)
"""


def test_a_package_that_reuses_a_built_in_name_is_told_which_package_has_it(install):
    install("bk-shadow", "0.1", {"theirs": SHADOWS_LINE})  # loads after single_neuron
    registry = load_registry()
    assert registry.get("dataset", "line").plugin == "single_neuron"
    assert registry.plugins["theirs"].error == (
        "benchkit_register_datasets: dataset 'line' registered by both "
        f"single_neuron (benchkit {VERSION}) and theirs (bk-shadow 0.1)"
    )


def test_a_package_cannot_knock_out_a_built_in_plugin_by_loading_first(install):
    install("bk-shadow", "0.1", {"aardvark": SHADOWS_LINE})  # sorts before single_neuron
    registry = load_registry()
    assert registry.plugins["single_neuron"].status == "ok", registry.plugins["single_neuron"].error
    assert registry.get("dataset", "line").plugin == "single_neuron"
    assert registry.plugins["aardvark"].status == "failed"


# --- a plugin whose factory raises at run time ------------------------------------------------

FLAKY = """\
    import benchkit
    from benchkit import Data, Recipe, Split
    import torch
    from torch import nn

    def broken_model(data, options):
        raise RuntimeError("weights file is corrupt")

    def broken_data(options):
        raise ValueError("bad row 3")

    @benchkit.hookimpl
    def benchkit_register_datasets(register):
        register("flaky_data", broken_data)

    @benchkit.hookimpl
    def benchkit_register_models(register):
        recipe = Recipe(lr=0.1, epochs=3)
        register("flaky_model", broken_model, datasets={"single_point": recipe})
        register(
            "steady_model",
            lambda data, options: nn.Linear(1, 1),
            datasets={"flaky_data": recipe, "single_point": recipe},
        )
"""

FLAKY_CASES = """
[[cases]]
model = "flaky_model"
dataset = "single_point"

[[cases]]
model = "steady_model"
dataset = "flaky_data"

[[cases]]
model = "steady_model"
dataset = "single_point"
"""


@pytest.fixture
def flaky_results(install, suite, tmp_path, capsys):
    install("bk-flaky", "1.4", {"flaky": FLAKY})
    suite.write_text(SUITE + FLAKY_CASES)
    code = run(suite, tmp_path / "out")
    capsys.readouterr()
    return code, pd.read_csv(tmp_path / "out" / "results.csv").set_index(["model", "dataset"])


def test_a_factory_that_raises_is_an_error_row_and_the_suite_goes_on(flaky_results):
    code, results = flaky_results
    assert code == 1
    assert results["status"].to_dict() == {
        ("single_neuron", "single_point"): "ok",
        ("flaky_model", "single_point"): "error",
        ("steady_model", "flaky_data"): "error",
        ("steady_model", "single_point"): "ok",
    }
    detail = results["status_detail"]
    # the exception, and where in the plugin it was raised
    assert (
        "RuntimeError: weights file is corrupt (at bk_flaky_flaky.py:7)"
        in detail["flaky_model", "single_point"]
    )
    assert "ValueError: bad row 3 (at bk_flaky_flaky.py:10)" in detail["steady_model", "flaky_data"]


def test_a_factory_that_raises_names_its_plugin_and_package(flaky_results):
    _, results = flaky_results
    detail = results["status_detail"]
    assert "flaky (bk-flaky 1.4)" in detail["flaky_model", "single_point"]
    assert "flaky (bk-flaky 1.4)" in detail["steady_model", "flaky_data"]


# --- --strict-plugins and BENCHKIT_DISABLE_PLUGINS --------------------------------------------


def test_strict_plugins_makes_a_load_failure_fatal_before_anything_runs(
    install, suite, tmp_path, capsys
):
    install("bk-broken-import", "0.3", {"broken_import": BROKEN_IMPORT})
    assert run(suite, tmp_path / "out", "--strict-plugins") == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "benchkit: error: plugins failed to load (--strict-plugins):\n"
        "  broken_import (bk-broken-import 0.3): import failed: ModuleNotFoundError"
    )
    assert err.rstrip().endswith(f"list them in {DISABLE_ENV} to skip them.")
    assert not (tmp_path / "out").exists()


def test_benchkit_disable_plugins_skips_the_named_plugins_without_importing_them(
    install, suite, tmp_path, monkeypatch, capsys
):
    install("bk-broken-import", "0.3", {"broken_import": BROKEN_IMPORT})
    install("bk-typo", "0.2", {"typo": "raise SystemExit('imported although disabled')\n"})
    monkeypatch.setenv(DISABLE_ENV, "broken_import, typo")

    out = listing(capsys)
    assert "broken_import  [disabled]  bk-broken-import 0.3" in out
    assert "typo  [disabled]  bk-typo 0.2" in out
    assert "bk_typo_typo" not in sys.modules
    assert main(["plugins", "--strict-plugins"]) == 0
    assert run(suite, tmp_path / "out", "--strict-plugins") == 0


# --- the hook API version a plugin needs ------------------------------------------------------


def declares(api: str) -> str:
    """A plugin module that declares ``benchkit_api`` and registers a dataset."""
    return f"""\
        import benchkit

        benchkit_api = {api}

        @benchkit.hookimpl
        def benchkit_register_datasets(register):
            register("versioned_data", lambda options: None)
    """


@pytest.mark.parametrize(
    ("declared", "message"),
    [
        pytest.param(
            '"1.99"',
            f"needs benchkit hook API 1.99, this benchkit {VERSION} has {API}; "
            "upgrade benchkit (pip install -U benchkit)",
            id="newer-minor",
        ),
        pytest.param(
            '"2.0"',
            f"needs benchkit hook API 2.0, this benchkit {VERSION} has {API}; "
            "upgrade benchkit (pip install -U benchkit)",
            id="newer-major",
        ),
        pytest.param(
            '"0.9"',
            f"needs benchkit hook API 0.9, this benchkit {VERSION} has {API} (a new major "
            "version, which may break plugins written for 0.x); upgrade the plugin, or install "
            "a benchkit with hook API 0.x",
            id="older-major",
        ),
        pytest.param(
            "1.0",
            "benchkit_api = 1.0 is not a hook API version; write a string 'MAJOR.MINOR' "
            f"such as benchkit_api = '{API}'",
            id="a-number-not-a-string",
        ),
        pytest.param(
            '"1.0.2"',
            "benchkit_api = '1.0.2' is not a hook API version; write a string 'MAJOR.MINOR' "
            f"such as benchkit_api = '{API}'",
            id="three-parts",
        ),
    ],
)
def test_a_plugin_needing_another_hook_api_fails_with_what_to_do(
    install, capsys, declared, message
):
    install("bk-future", "3.1", {"future": declares(declared)})
    registry = load_registry()
    info = registry.plugins["future"]
    assert (info.status, info.error) == ("failed", message)
    assert info.registered == {}
    assert "versioned_data" not in registry.names("dataset")
    assert f"future  [failed]  bk-future 3.1  (bk_future_future)\n    error: {message}\n" in (
        listing(capsys)
    )


def test_a_plugin_declaring_the_installed_api_or_an_older_minor_loads(install, monkeypatch):
    install("bk-current", "1.0", {"current": declares('"1.0"')})  # 1.0 plugins load on 1.1
    registry = load_registry()
    assert registry.plugins["current"].status == "ok"
    assert registry.get("dataset", "versioned_data").plugin == "current"

    monkeypatch.setattr(benchkit, "API_VERSION", "1.3")  # a later benchkit, same major
    assert load_registry().plugins["current"].status == "ok"


@pytest.mark.parametrize(
    ("installed", "needed", "loads"),
    [
        ("1.0", "1.0", True),
        ("1.3", "1.0", True),
        ("1.3", "1.3", True),
        ("1.3", "1.4", False),
        ("1.10", "1.9", True),  # numbers, not strings: 10 > 9
        ("2.0", "1.5", False),
        ("1.5", "2.0", False),
    ],
)
def test_api_version_problem_compares_major_and_minor(monkeypatch, installed, needed, loads):
    monkeypatch.setattr(benchkit, "API_VERSION", installed)
    assert (api_version_problem(needed) == "") is loads
    assert api_version_problem(None) == ""  # a plugin that declares nothing always loads


def test_the_api_check_runs_before_any_hook_is_called():
    class FromTheFuture:
        benchkit_api = "1.99"

        @benchkit.hookimpl
        def benchkit_register_datasets(self, register):
            raise AssertionError("a plugin that cannot load must not be called")

    info = isolated_registry(FromTheFuture()).plugins["FromTheFuture"]
    assert info.status == "failed"
    assert info.error.startswith("needs benchkit hook API 1.99")
