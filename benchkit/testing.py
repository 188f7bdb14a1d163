"""Test helpers for plugin authors, loaded as a pytest plugin (entry point ``pytest11``).

Functions, usable from any test::

    from benchkit.testing import isolated_registry, run_quick, check_plugin

    def test_my_plugin():
        results = check_plugin(my_package.plugin)   # loads it alone, runs every model briefly
        assert all(r.status == "ok" for r in results)

Fixtures: ``benchkit_registry`` (every installed plugin, as ``benchkit run`` sees them) and
``benchkit_isolated`` (a factory: ``benchkit_isolated(my_plugin)`` → a registry holding only
that plugin plus the built-in devices and precisions).
"""

from __future__ import annotations

import importlib.metadata
import math
from typing import Any

import pytest

from benchkit.errors import PluginError
from benchkit.registry import ENTRY_POINT_GROUP, PluginHost, PluginInfo, Registry, load_registry
from benchkit.results import RunResult
from benchkit.runner import DeviceCache, run_case
from benchkit.suite import Case

#: Built-in plugins every isolated registry gets, so that ``cpu`` and ``fp32`` exist.
BUILTIN_BASICS = ("devices", "precisions")


def isolated_registry(*plugins: object, builtins: bool = True) -> Registry:
    """A registry with only ``plugins`` (modules or objects with hook functions) loaded, plus
    the built-in devices and precisions unless ``builtins`` is false. Load failures are
    recorded on the registry exactly as ``benchkit plugins`` would show them."""
    host = PluginHost()
    if builtins:
        eps = [
            ep
            for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
            if ep.name in BUILTIN_BASICS and ep.dist is not None and ep.dist.name == "benchkit"
        ]
        host.load_entry_points(eps, disabled=())
    for plugin in plugins:
        name = getattr(plugin, "__name__", None) or type(plugin).__name__
        host.add(plugin, PluginInfo(name=name, module=name))
    return host.collect()


def run_quick(
    registry: Registry,
    model: str,
    dataset: str,
    *,
    epochs: int = 3,
    precision: str = "fp32",
    device: str = "cpu",
    seed: int = 0,
    target_loss: float | None = None,
    options: dict[str, Any] | None = None,
    model_options: dict[str, Any] | None = None,
    recipe: dict[str, Any] | None = None,
) -> RunResult:
    """Run one model on one dataset for a few epochs, as the runner would in a suite."""
    model_reg = registry.get("model", model)
    if dataset not in model_reg.datasets:
        raise PluginError(f"model {model!r} does not fit dataset {dataset!r}")
    base = model_reg.datasets[dataset]
    overrides = {"epochs": epochs, **(recipe or {})}
    case = Case(
        model=model,
        dataset=dataset,
        precision=precision,
        device=device,
        seed=seed,
        recipe=base.with_overrides(overrides),
        target_loss=target_loss,
        options={**registry.get("dataset", dataset).options, **(options or {})},
        model_options={**model_reg.options, **(model_options or {})},
    )
    return run_case(case, registry, DeviceCache(registry))


def check_plugin(
    plugin: object, epochs: int = 2, options: dict[str, dict[str, Any]] | None = None
) -> list[RunResult]:
    """Load ``plugin`` alone and run each model it registers on each dataset it fits for a
    few CPU/fp32 epochs. Fails the calling test with a clear message if the plugin did not
    load, or a run did not end ``ok`` with a finite loss; returns the results otherwise.

    :param options: dataset options per dataset name, for datasets that need some (a file).
    """
    registry = isolated_registry(plugin)
    failed = registry.failures()
    if failed:
        pytest.fail("; ".join(f"{p.describe()}: {p.error}" for p in failed), pytrace=False)
    results = []
    models = [r for r in registry.entries["model"].values()]
    for model in models:
        for dataset in model.datasets:
            if dataset not in registry.entries["dataset"]:
                continue  # provided by another plugin
            result = run_quick(
                registry, model.name, dataset, epochs=epochs, options=(options or {}).get(dataset)
            )
            if result.status != "ok" or not all(math.isfinite(v) for v in result.curve):
                pytest.fail(
                    f"{model.name}/{dataset}: {result.status} {result.status_detail} "
                    f"curve={result.curve}",
                    pytrace=False,
                )
            results.append(result)
    return results


@pytest.fixture(scope="session")
def benchkit_registry() -> Registry:
    """Every installed plugin, loaded through entry points as ``benchkit run`` does."""
    return load_registry()


@pytest.fixture
def benchkit_isolated():
    """Factory fixture: ``benchkit_isolated(plugin, ...)`` → :func:`isolated_registry`."""
    return isolated_registry
