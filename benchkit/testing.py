"""Test helpers for plugin authors, loaded as a pytest plugin (entry point ``pytest11``).

Functions, usable from any test::

    from benchkit.testing import assert_ok, isolated_registry, run_quick, check_plugin

    def test_my_plugin():
        results = check_plugin(my_package.plugin)   # loads it alone, runs every model briefly
        assert_ok(*results)                         # on failure: each run's status_detail

Fixtures: ``benchkit_registry`` (every installed plugin, as ``benchkit run`` sees them),
``benchkit_isolated`` (a factory: ``benchkit_isolated(my_plugin)`` → a registry holding only
that plugin plus the built-in devices, precisions and modes) and ``benchkit_check_plugin``
(:func:`check_plugin`, for tests that take their helpers as fixtures).

The guide for plugin authors is ``docs/writing-plugins.md``.
"""

from __future__ import annotations

import importlib.metadata
import math
from collections.abc import Sequence
from typing import Any

import pytest
import torch

import benchkit
from benchkit.cases import DeviceCache
from benchkit.errors import PluginError
from benchkit.registry import (
    ENTRY_POINT_GROUP,
    HOOK_FOR_KIND,
    KINDS,
    PluginHost,
    PluginInfo,
    Registry,
    load_registry,
)
from benchkit.run_result import RunResult
from benchkit.runner import run_case
from benchkit.suite import Case

#: Built-in plugins every isolated registry gets, so that ``cpu``, ``fp32``, ``eager`` and the
#: built-in losses, optimizers and schedules exist.
BUILTIN_BASICS = ("devices", "precisions", "modes", "losses", "optimizers", "schedules")


def isolated_registry(*plugins: object, builtins: bool = True) -> Registry:
    """A registry with only ``plugins`` (modules or objects with hook functions) loaded, plus
    the built-in devices, precisions, modes, losses, optimizers and schedules unless
    ``builtins`` is false. Load failures are
    recorded on the registry exactly as ``benchkit plugins`` would show them. A plugin is
    named after its module (``my_package.plugin``) or, for an object, its class; a string
    names an installed plugin (``"single_neuron"``: an entry point of the ``benchkit``
    group), loaded from its module."""
    plugins = tuple(_installed(p) if isinstance(p, str) else p for p in plugins)
    host = PluginHost()
    if builtins:
        given = {_plugin_name(p) for p in plugins}
        eps = [
            ep
            for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
            if ep.name in BUILTIN_BASICS
            and ep.dist is not None
            and ep.dist.name == "benchkit"
            and ep.value not in given  # checking a built-in itself: load it once
        ]
        host.load_entry_points(eps, disabled=())
    for plugin in plugins:
        name = _plugin_name(plugin)
        host.add(plugin, PluginInfo(name=name, module=name))
    return host.collect()


def _installed(name: str) -> object:
    """The module of the installed plugin ``name`` (an entry point of the ``benchkit`` group)."""
    found = list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))
    for ep in found:
        if ep.name == name:
            return ep.load()
    names = ", ".join(sorted({ep.name for ep in found}))
    raise PluginError(f"no installed plugin is named {name!r}; installed: {names}")


def _plugin_name(plugin: object) -> str:
    return getattr(plugin, "__name__", None) or type(plugin).__name__


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
    mode: str = "eager",
    mode_options: dict[str, Any] | None = None,
) -> RunResult:
    """Run one model on one dataset for a few epochs, as the runner would in a suite
    (``mode`` and its ``mode_options`` say how each step runs: eager, compile …). The run
    never raises for a problem of its own: check ``status`` with :func:`assert_ok`, which
    shows ``status_detail`` when it is not ``ok``."""
    model_reg = registry.get("model", model)
    if dataset not in model_reg.datasets:
        fits = ", ".join(sorted(model_reg.datasets))
        raise PluginError(f"model {model!r} does not fit dataset {dataset!r}; it fits: {fits}")
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
        mode=mode,
        mode_options=_mode_options(registry, mode, mode_options),
    )
    return run_case(case, registry, DeviceCache(registry))


def _mode_options(registry: Registry, mode: str, given: dict[str, Any] | None) -> dict[str, Any]:
    registered = registry.entries["mode"].get(mode)
    return {**(registered.options if registered else {}), **(given or {})}


def check_plugin(
    plugin: object,
    epochs: int = 2,
    options: dict[str, dict[str, Any]] | None = None,
    *,
    with_plugins: Sequence[object] = (),
) -> list[RunResult]:
    """Load ``plugin`` alone and check everything it registers, the way ``benchkit run``
    would use it, in a few CPU/fp32 epochs:

    - it loads (a hook name, a registration or a declared ``benchkit_api`` that is wrong
      fails here with the message ``benchkit plugins`` would show) and registers something;
    - each model runs on each dataset it fits for ``epochs`` epochs on the CPU in fp32 and
      ends ``ok`` with a finite loss. A dataset it fits must be loaded: pass the plugins that
      register datasets it borrows in ``with_plugins`` (their own models are not run);
    - each dataset no loaded model fits is built with its default options; a dataset that
      offers itself to a model (``recipes=``) trains that model for ``epochs`` epochs, which
      must be loaded (pass its plugin in ``with_plugins``);
    - each loss, optimizer and schedule that no run above used trains a reference model
      (``nn.Linear(1, 1)`` regressing 16 points) with its default options on the CPU, ending
      ``ok``; a loss the reference cannot use (one for class indices) is checked by
      registering a model whose recipe names it;
    - each precision and each mode trains a reference model (``nn.Linear(1, 1)`` on 16
      points) on the CPU, ending ``ok`` or ``skipped`` with the precision's or mode's reason;
    - each device is built with no index; one that says it is unavailable is ``skipped`` with
      its reason, one that is present trains the reference model in fp32.

    The calling test fails with a clear message at the first problem; otherwise the results
    of every run are returned (the reference runs have model ``benchkit_check_linear``).

    :param options: dataset options per dataset name, for datasets that need some (a file).
    :param with_plugins: other plugins loaded beside ``plugin``: installed plugins by name
        (``"single_neuron"``, benchkit's own, for a model that fits its ``celsius`` dataset)
        or plugin modules and objects.
    """
    options = options or {}
    name = _plugin_name(plugin)
    plain = isolated_registry(plugin, *with_plugins)
    failed = plain.failures()
    if failed:
        pytest.fail("; ".join(f"{p.describe()}: {p.error}" for p in failed), pytrace=False)
    registered = plain.plugins[name].registered
    if not any(registered.values()):
        pytest.fail(
            f"{name} registered nothing: are its hook functions marked @benchkit.hookimpl "
            f"and named {', '.join(HOOK_FOR_KIND.values())}?",
            pytrace=False,
        )
    mine = {kind: registered.get(kind, []) for kind in KINDS}
    results = []
    used: set[tuple[str, str | None]] = set()
    pairs = [(m, d) for m in mine["model"] for d in plain.get("model", m).datasets]
    for dataset in mine["dataset"]:
        for model_name in plain.get("dataset", dataset).recipes:
            if model_name not in plain.entries["model"]:
                pytest.fail(
                    f"dataset {dataset!r} offers itself to model {model_name!r}, which no "
                    "loaded plugin registers: fix the name, or pass the plugin that registers "
                    "it in with_plugins=[...]",
                    pytrace=False,
                )
            if (model_name, dataset) not in pairs:
                pairs.append((model_name, dataset))
    for model_name, dataset in pairs:
        if dataset not in plain.entries["dataset"]:
            pytest.fail(
                f"model {model_name!r} fits dataset {dataset!r}, which no loaded plugin "
                "registers: fix the name, or pass the plugin that registers it in "
                "with_plugins=[...]",
                pytrace=False,
            )
        result = run_quick(plain, model_name, dataset, epochs=epochs, options=options.get(dataset))
        results.append(_require(result, ("ok",)))
        recipe = plain.get("model", model_name).datasets[dataset]
        used |= {("loss", recipe.loss), ("optimizer", recipe.optimizer)}
        used.add(("schedule", recipe.schedule))
    fitted = {d for m in plain.entries["model"].values() for d in m.datasets}
    for dataset in mine["dataset"]:
        if dataset not in fitted:
            _build_dataset(plain, dataset, options.get(dataset))
    parts = [
        (kind, name)
        for kind in ("loss", "optimizer", "schedule")
        for name in mine[kind]
        if (kind, name) not in used
    ]
    if mine["device"] or mine["precision"] or mine["mode"] or parts:
        reference = isolated_registry(plugin, *with_plugins, _ReferenceWorkload())
        for precision in mine["precision"]:
            result = run_quick(reference, *_REFERENCE, epochs=epochs, precision=precision)
            results.append(_require(result, ("ok", "skipped")))
        for kind, part in parts:
            result = run_quick(reference, *_REFERENCE, epochs=epochs, recipe={kind: part})
            what = (
                f"{kind} {part!r}, which no model of the plugin uses, on the reference "
                "nn.Linear(1, 1) regression (register a model whose recipe names it, if it "
                "needs another kind of model)"
            )
            results.append(_require(result, ("ok",), what))
        for mode in mine["mode"]:
            result = run_quick(reference, *_REFERENCE, epochs=epochs, mode=mode)
            results.append(_require(result, ("ok", "skipped")))
        for device in mine["device"]:
            results.append(_check_device(reference, device, epochs))
    return results


_REFERENCE = ("benchkit_check_linear", "benchkit_check_line")


class _ReferenceWorkload:
    """What :func:`check_plugin` trains to exercise a precision or a device."""

    @benchkit.hookimpl
    def benchkit_register_datasets(self, register):
        def line(options):
            x = torch.linspace(0, 1, 16).unsqueeze(1)
            return benchkit.Data(train=benchkit.Split((x,), 2 * x + 1))

        register(_REFERENCE[1], line)

    @benchkit.hookimpl
    def benchkit_register_models(self, register):
        recipe = benchkit.Recipe(loss="mse", optimizer="sgd", lr=0.1, epochs=2)
        register(
            _REFERENCE[0],
            lambda data, options: torch.nn.Linear(1, 1),
            datasets={_REFERENCE[1]: recipe},
        )


def _require(result: RunResult, statuses: tuple[str, ...], what: str = "") -> RunResult:
    finite = all(math.isfinite(v) for v in result.curve)
    if result.status not in statuses or (result.status == "ok" and not finite):
        pytest.fail(
            f"{what or f'{result.model}/{result.dataset}'} ({result.precision} on "
            f"{result.device}): {result.status} {result.status_detail} curve={result.curve}",
            pytrace=False,
        )
    return result


def assert_ok(*results: RunResult) -> None:
    """Fail the test unless every run ended ``ok``, showing each failing run's key, status
    and ``status_detail`` (a plain ``assert result.status == "ok"`` shows only the status)::

        result = run_quick(registry, "my_model", "my_data")
        assert_ok(result)
    """
    bad = [r for r in results if r.status != "ok"]
    if bad:
        lines = [
            f"{r.run_id or f'{r.model}/{r.dataset}'}: {r.status}: "
            f"{r.status_detail or '(no detail)'}"
            for r in bad
        ]
        raise AssertionError(
            f"{len(bad)} of {len(results)} run(s) did not end ok:\n" + "\n".join(lines)
        )


def _build_dataset(registry: Registry, name: str, options: dict[str, Any] | None) -> None:
    dataset = registry.get("dataset", name)
    torch.manual_seed(0)
    try:
        data = dataset.factory({**dataset.options, **(options or {})})
    except Exception as exc:
        pytest.fail(f"dataset {name!r}: the factory raised {type(exc).__name__}: {exc}")
    if not isinstance(data, benchkit.Data) or len(data.train) == 0:
        pytest.fail(
            f"dataset {name!r}: the factory must return a benchkit.Data with a non-empty "
            f"train split, got {type(data).__name__}",
            pytrace=False,
        )


def _check_device(registry: Registry, name: str, epochs: int) -> RunResult:
    try:
        device = registry.get("device", name).factory(None)
    except Exception as exc:
        pytest.fail(f"device {name!r}: factory(None) raised {type(exc).__name__}: {exc}")
    if not isinstance(device, benchkit.Device):
        pytest.fail(
            f"device {name!r}: the factory must return a benchkit.Device, "
            f"got {type(device).__name__}",
            pytrace=False,
        )
    reason = device.unavailable_reason()
    if reason is not None and not (isinstance(reason, str) and reason):
        pytest.fail(
            f"device {name!r}: unavailable_reason() must return None or a reason, got {reason!r}",
            pytrace=False,
        )
    result = run_quick(registry, *_REFERENCE, epochs=epochs, device=name)
    return _require(result, ("ok", "skipped") if reason else ("ok",))


@pytest.fixture(scope="session")
def benchkit_registry() -> Registry:
    """Every installed plugin, loaded through entry points as ``benchkit run`` does."""
    return load_registry()


@pytest.fixture
def benchkit_isolated():
    """Factory fixture: ``benchkit_isolated(plugin, ...)`` → :func:`isolated_registry`."""
    return isolated_registry


@pytest.fixture
def benchkit_check_plugin():
    """Factory fixture: ``benchkit_check_plugin(plugin, ...)`` → :func:`check_plugin`."""
    return check_plugin
