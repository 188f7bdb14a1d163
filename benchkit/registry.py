"""Plugin discovery and the registry of what plugins provide.

Entry points in the ``benchkit`` group are loaded one at a time. A plugin that fails to import,
implements a hook that does not exist, raises in a hook or registers something invalid is
recorded with its name, package and version, and the others still load.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.metadata
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pluggy
import torch

import benchkit
from benchkit import hookspecs
from benchkit.errors import BenchkitError, PluginError, describe_exception
from benchkit.metric import Metric
from benchkit.workload import Recipe

ENTRY_POINT_GROUP = "benchkit"
DISABLE_ENV = "BENCHKIT_DISABLE_PLUGINS"
#: What plugins register, in the order their hooks are called: losses, optimizers and
#: schedules exist before any model names them in a recipe.
KINDS = (
    "device",
    "precision",
    "mode",
    "loss",
    "optimizer",
    "schedule",
    "dataset",
    "model",
    "executor",
)
PLURAL = {kind: "losses" if kind == "loss" else f"{kind}s" for kind in KINDS}
HOOK_FOR_KIND = {kind: f"benchkit_register_{PLURAL[kind]}" for kind in KINDS}
#: Kinds a recipe names, with the options a recipe sets on them.
RECIPE_KINDS = {
    "loss": "loss_options",
    "optimizer": "optimizer_options",
    "schedule": "schedule_options",
}
#: Kinds whose registrations take ``options=`` (suites, recipes or the command line set them).
_WITH_OPTIONS = {"dataset", "model", "loss", "optimizer", "schedule", "mode", "executor"}
#: What each kind's factory is called with, for the messages about a wrong factory.
FACTORY_SIGNATURE = {
    "device": "factory(index) -> benchkit.Device",
    "precision": "factory() -> benchkit.Precision",
    "mode": "factory(options) -> benchkit.Mode",
    "loss": "factory(**options) -> a callable (prediction, target) -> scalar tensor",
    "optimizer": "factory(params, lr, **options) -> torch.optim.Optimizer",
    "schedule": "factory(optimizer, epochs, **options) -> a scheduler with step()",
    "dataset": "factory(options) -> benchkit.Data",
    "model": "factory(data, options) -> torch.nn.Module",
    "executor": "factory(options, context) -> an executor with results(cases, ...)",
}
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")
#: A plugin module may declare the hook API it needs: ``benchkit_api = "1.0"``.
API_ATTRIBUTE = "benchkit_api"
_API_RE = re.compile(r"^(\d+)\.(\d+)$")


@dataclass
class PluginInfo:
    """One plugin as ``benchkit plugins`` shows it."""

    name: str
    package: str = ""
    version: str = ""
    module: str = ""
    status: str = "ok"  # ok | failed | disabled
    error: str = ""
    registered: dict[str, list[str]] = field(default_factory=dict)

    def describe(self) -> str:
        """``name (package version)`` for messages."""
        where = " ".join(p for p in (self.package, self.version) if p)
        return f"{self.name} ({where})" if where else self.name


@dataclass(frozen=True)
class Registration:
    """A factory a plugin registered, with the keyword arguments it came with."""

    kind: str
    name: str
    factory: Callable[..., Any]
    plugin: str
    description: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    datasets: Mapping[str, Recipe] = field(default_factory=dict)  # models only
    evaluate: Callable[..., dict[str, float]] | None = None  # models only
    metrics: Mapping[str, Metric] = field(default_factory=dict)  # models only
    recipes: Mapping[str, Recipe] = field(default_factory=dict)  # datasets only: offers
    #: models only: the datasets in ``datasets`` that offered themselves (``recipes=``), with
    #: the plugin that registered each
    offered_by: Mapping[str, str] = field(default_factory=dict)


class Registry:
    """Everything the loaded plugins registered, by kind and name, and the plugins themselves."""

    def __init__(self) -> None:
        self.plugins: dict[str, PluginInfo] = {}
        self.entries: dict[str, dict[str, Registration]] = {kind: {} for kind in KINDS}
        #: things to tell the user that are not failures (a misspelt disabled name)
        self.warnings: list[str] = []
        #: entry points skipped through BENCHKIT_DISABLE_PLUGINS, by plugin name
        self.disabled: dict[str, importlib.metadata.EntryPoint] = {}

    def names(self, kind: str) -> list[str]:
        """Registered names of one kind, sorted."""
        return sorted(self.entries[kind])

    def get(self, kind: str, name: str) -> Registration:
        """The registration of ``name``; a :class:`PluginError` lists the valid names."""
        try:
            return self.entries[kind][name]
        except KeyError:
            valid = ", ".join(self.names(kind)) or "none registered"
            hint = self.disabled_hint(kind, name)
            raise PluginError(f"unknown {kind} {name!r}; valid: {valid}{hint}") from None

    def disabled_hint(self, kind: str, name: str) -> str:
        """For an unknown name: ``"; plugin X (pkg 1.0) provides it but BENCHKIT_DISABLE_PLUGINS
        disables it"`` when a disabled plugin would have registered it (the plugin is loaded
        alone, into a registry of its own, only to find out), else a reminder of what is
        disabled, else ``""``."""
        for plugin_name, ep in self.disabled.items():
            info = _entry_point_info(ep)
            try:
                host = PluginHost()
                host.add(ep.load(), info)
                found = name in host.collect().entries[kind]
            except Exception:
                found = False
            if found:
                return (
                    f"; plugin {info.describe()} provides it but {DISABLE_ENV} disables "
                    f"{plugin_name}"
                )
        if self.disabled:
            return f"; {DISABLE_ENV} disables {', '.join(sorted(self.disabled))}"
        return ""

    def failures(self) -> list[PluginInfo]:
        """Plugins that did not load cleanly."""
        return [p for p in self.plugins.values() if p.status == "failed"]

    def check_strict(self) -> None:
        """Raise if any plugin failed (``--strict-plugins``)."""
        failed = self.failures()
        if failed:
            lines = [f"  {p.describe()}: {p.error}" for p in failed]
            raise PluginError(
                "plugins failed to load (--strict-plugins):\n"
                + "\n".join(lines)
                + "\nFix or uninstall them, or list them in "
                f"{DISABLE_ENV} to skip them."
            )


def _validate(kind: str, name: Any, factory: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Check one registration's arguments; return the normalised keyword arguments."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise PluginError(f"{kind} name {name!r} must be a string of letters, digits, _ . -")
    _check_factory(kind, name, factory)
    allowed = {"description"}
    if kind in _WITH_OPTIONS:  # suites, recipes or the command line set options on these
        allowed |= {"options"}
    if kind == "model":
        allowed |= {"datasets", "evaluate", "metrics"}
    if kind == "dataset":
        allowed |= {"recipes"}
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise PluginError(
            f"{kind} {name!r}: unknown register() argument(s) {', '.join(unknown)}; "
            f"valid: {', '.join(sorted(allowed))}"
        )
    out = dict(kwargs)
    options = out.get("options")
    options = {} if options is None else options
    if not isinstance(options, Mapping):
        raise PluginError(
            f"{kind} {name!r}: options must be a dict of each option's default, such as "
            f"options={{'points': 100}}, got {type(options).__name__}"
        )
    out["options"] = dict(options)
    if kind == "model":
        out["datasets"] = _recipes(
            f"model {name!r}", "datasets", out.get("datasets"), "dataset_name", required=True
        )
        evaluate = out.get("evaluate")
        if evaluate is not None and not callable(evaluate):
            raise PluginError(
                f"model {name!r}: evaluate must be a function (model, data, context) -> dict, "
                f"got {type(evaluate).__name__}"
            )
        out["metrics"] = _metrics(name, out.get("metrics"))
    if kind == "dataset":
        out["recipes"] = _recipes(
            f"dataset {name!r}", "recipes", out.get("recipes"), "model_name", required=False
        )
    return out


def _check_factory(kind: str, name: str, factory: Any) -> None:
    """A factory is a function or a class that builds the thing, never the thing built."""
    built = isinstance(factory, torch.nn.Module | torch.optim.Optimizer)
    if built or not callable(factory):
        what = f"a built {type(factory).__name__}" if built else type(factory).__name__
        raise PluginError(
            f"{kind} {name!r}: register() takes a factory, got {what}; pass a function or "
            f"class that builds it, {FACTORY_SIGNATURE[kind]}, so that discovering plugins "
            "builds nothing"
        )


def _recipes(
    owner: str, keyword: str, value: Any, key_name: str, *, required: bool
) -> dict[str, Recipe]:
    example = f"{keyword}={{{key_name}: Recipe(...)}}"
    if value is None and not required:
        return {}
    if not isinstance(value, Mapping) or (required and not value):
        need = "naming at least one dataset the model fits" if required else "or leave it out"
        raise PluginError(f"{owner}: register() needs {example} {need}")
    for key, recipe in value.items():
        if not isinstance(key, str):
            raise PluginError(f"{owner}: {keyword} keys are names, got {key!r}")
        if not isinstance(recipe, Recipe):
            raise PluginError(
                f"{owner}: {keyword}[{key!r}] must be a benchkit.Recipe, "
                f"got {type(recipe).__name__}"
            )
    return dict(value)


def _metrics(model: str, value: Any) -> dict[str, Metric]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise PluginError(
            f"model {model!r}: metrics must be a dict such as "
            f"{{'accuracy': benchkit.Metric(better='higher')}}, got {type(value).__name__}"
        )
    for key, metric in value.items():
        if not isinstance(metric, Metric):
            raise PluginError(
                f"model {model!r}: metrics[{key!r}] must be a benchkit.Metric, such as "
                f"benchkit.Metric(better='higher'), got {type(metric).__name__}"
            )
    return dict(value)


def _package(ep: importlib.metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return dist.metadata["Name"] if dist is not None else ""


def _entry_point_info(ep: importlib.metadata.EntryPoint) -> PluginInfo:
    dist = getattr(ep, "dist", None)
    return PluginInfo(
        name=ep.name,
        package=_package(ep),
        version=dist.version if dist is not None else "",
        module=ep.value,
    )


def _parse_api_version(text: str) -> tuple[int, int] | None:
    match = _API_RE.match(text) if isinstance(text, str) else None
    return (int(match[1]), int(match[2])) if match else None


def api_version_problem(needed: object) -> str:
    """Why a plugin that declares ``benchkit_api = needed`` cannot load here; ``""`` if it can.

    A plugin needs hook API ``MAJOR.MINOR``: this benchkit's :data:`benchkit.API_VERSION` must
    have the same major part and at least that minor part. ``None`` (nothing declared) fits.
    """
    if needed is None:
        return ""
    have_text = benchkit.API_VERSION
    want, have = _parse_api_version(needed), _parse_api_version(have_text)
    if want is None:
        return (
            f"{API_ATTRIBUTE} = {needed!r} is not a hook API version; write a string "
            f"'MAJOR.MINOR' such as {API_ATTRIBUTE} = {have_text!r}"
        )
    assert have is not None, f"benchkit.API_VERSION {have_text!r} is malformed"
    this = f"this benchkit {benchkit.__version__} has {have_text}"
    if want[0] > have[0] or (want[0] == have[0] and want[1] > have[1]):
        return (
            f"needs benchkit hook API {needed}, {this}; upgrade benchkit (pip install -U benchkit)"
        )
    if want[0] < have[0]:
        return (
            f"needs benchkit hook API {needed}, {this} (a new major version, which may break "
            f"plugins written for {want[0]}.x); upgrade the plugin, or install a benchkit "
            f"with hook API {want[0]}.x"
        )
    return ""


def _hook_functions(plugin: object) -> dict[str, Any]:
    return {
        name: getattr(plugin, name, None)
        for name in dir(plugin)
        if name.startswith("benchkit_") and callable(getattr(plugin, name, None))
    }


def _unknown_hooks(plugin: object) -> str:
    """The message for hook functions whose names no hookspec has, with the likely meant one."""
    known = list(HOOK_FOR_KIND.values())
    parts = []
    for name, fn in _hook_functions(plugin).items():
        if name in known or not hasattr(fn, "benchkit_impl"):
            continue
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        parts.append(f"unknown hook {name!r}{hint}")
    return "; ".join(parts) + f"; the hooks are {', '.join(known)}"


def _unmarked_hooks(plugin: object) -> list[str]:
    """Functions named like hooks that lack the marker pluggy looks for."""
    known = set(HOOK_FOR_KIND.values())
    return sorted(
        name
        for name, fn in _hook_functions(plugin).items()
        if name in known and not hasattr(fn, "benchkit_impl")
    )


class PluginHost:
    """Loads plugins into a pluggy manager and collects their registrations."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("benchkit")
        self.pm.add_hookspecs(hookspecs)
        self.registry = Registry()

    def add(self, plugin: object, info: PluginInfo) -> None:
        """Register one plugin object; on failure record it and leave the others untouched."""
        first = self.registry.plugins.get(info.name)
        if first is not None:
            info.status = "failed"
            info.error = (
                f"plugin name {info.name!r} is already taken by {first.describe()} "
                f"({first.module}); rename one entry point"
            )
            # keep the first under its name; list the second beside it
            self.registry.plugins[f"{info.name} [{info.module}]"] = info
            return
        self.registry.plugins[info.name] = info
        problem = api_version_problem(getattr(plugin, API_ATTRIBUTE, None))
        if problem:
            info.status, info.error = "failed", problem
            return
        try:
            self.pm.register(plugin, name=info.name)
        except Exception as exc:
            info.status, info.error = "failed", describe_exception(exc)
            return
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError:
            # Only this plugin can be at fault: every earlier one passed the same check.
            self.pm.unregister(name=info.name)
            info.status, info.error = "failed", _unknown_hooks(plugin)
            return
        unmarked = _unmarked_hooks(plugin)
        if unmarked:
            self.pm.unregister(name=info.name)
            info.status = "failed"
            info.error = (
                f"{', '.join(unmarked)} is not marked with @benchkit.hookimpl, so benchkit would "
                "never call it; add the decorator"
            )

    def load_entry_points(
        self,
        entry_points: Iterable[importlib.metadata.EntryPoint] | None = None,
        disabled: Iterable[str] | None = None,
    ) -> None:
        """Load every entry point of the ``benchkit`` group, one at a time."""
        if entry_points is None:
            entry_points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
        if disabled is None:
            disabled = [n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",")]
        skip = {n for n in disabled if n}
        # benchkit's own plugins first: a third-party name clash then fails the newcomer, never
        # a built-in; the others in name order.
        for ep in sorted(entry_points, key=lambda e: (_package(e) != "benchkit", e.name)):
            info = _entry_point_info(ep)
            seen = self.registry.plugins.get(info.name)
            if seen is not None and (seen.module, seen.package) == (info.module, info.package):
                continue  # the same distribution found twice on sys.path
            if info.name in skip:
                info.status, info.error = "disabled", f"listed in {DISABLE_ENV}"
                self.registry.plugins[info.name] = info
                self.registry.disabled[info.name] = ep
                continue
            try:
                plugin = ep.load()
            except Exception as exc:
                info.status, info.error = "failed", f"import failed: {describe_exception(exc)}"
                self.registry.plugins[info.name] = info
                continue
            self.add(plugin, info)
        unknown = sorted(skip - set(self.registry.plugins))
        if unknown:
            names = sorted(self.registry.plugins)
            hints = [
                f"{n!r} (did you mean {close[0]!r}?)"
                if (close := difflib.get_close_matches(n, names, n=1))
                else repr(n)
                for n in unknown
            ]
            self.registry.warnings.append(
                f"{DISABLE_ENV} names {', '.join(hints)}, but no installed plugin has that name, "
                f"so nothing was disabled for it; plugins: {', '.join(names) or 'none'}"
            )

    def collect(self) -> Registry:
        """Call every plugin's register hooks, one plugin at a time, then pair each model with
        the datasets that offered themselves to it, and return the registry."""
        registry = self.registry
        for kind in KINDS:
            caller = getattr(self.pm.hook, HOOK_FOR_KIND[kind])
            for impl in caller.get_hookimpls():  # in load order: benchkit's own first
                info = registry.plugins[impl.plugin_name]
                if info.status != "ok":
                    continue
                self._call_one(kind, impl, info)
        self._pair()
        return registry

    def _pair(self) -> None:
        """Add each dataset's ``recipes=`` offers to the models they name.

        A pairing both sides name with different recipes fails the dataset's plugin (the
        model keeps its own recipes). Failing a plugin takes back its models too, which can
        only remove conflicts, so the check repeats until none is left.
        """
        entries = self.registry.entries
        while True:
            clash = next(
                (
                    (dataset, model)
                    for dataset in entries["dataset"].values()
                    for model_name, recipe in dataset.recipes.items()
                    if (model := entries["model"].get(model_name)) is not None
                    and dataset.name in model.datasets
                    and model.datasets[dataset.name] != recipe
                ),
                None,
            )
            if clash is None:
                break
            dataset, model = clash
            mine = self.registry.plugins[dataset.plugin]
            theirs = self.registry.plugins[model.plugin].describe()
            self._fail(
                mine,
                f"{HOOK_FOR_KIND['dataset']}: dataset {dataset.name!r} offers model "
                f"{model.name!r} {dataset.recipes[model.name].describe()}, "
                f"but model {model.name!r} of {theirs} names dataset {dataset.name!r} with "
                f"{model.datasets[dataset.name].describe()}; offer the same recipe, or none "
                "(a suite's recipe table overrides fields)",
            )
        for dataset in list(entries["dataset"].values()):
            for model_name, recipe in dataset.recipes.items():
                model = entries["model"].get(model_name)
                if model is None or dataset.name in model.datasets:
                    continue
                entries["model"][model_name] = dataclasses.replace(
                    model,
                    datasets={**model.datasets, dataset.name: recipe},
                    offered_by={**model.offered_by, dataset.name: dataset.plugin},
                )

    def _call_one(self, kind: str, impl: pluggy.HookImpl, info: PluginInfo) -> None:
        added: list[Registration] = []

        def register(name: str, factory: Callable[..., Any], **kwargs: Any) -> None:
            kw = _validate(kind, name, factory, kwargs)
            existing = self.registry.entries[kind].get(name)
            if existing is not None or any(r.name == name for r in added):
                other = existing.plugin if existing else info.name
                first = self.registry.plugins[other].describe()
                raise PluginError(
                    f"{kind} {name!r} registered by both {first} and {info.describe()}"
                )
            added.append(
                Registration(kind=kind, name=name, factory=factory, plugin=info.name, **kw)
            )

        try:
            impl.function(register=register)
        except Exception as exc:
            # A plugin's registrations count all or nothing: drop what it already registered.
            self._fail(info, f"{HOOK_FOR_KIND[kind]}: {describe_exception(exc)}")
            return
        for reg in added:
            self.registry.entries[kind][reg.name] = reg
            info.registered.setdefault(kind, []).append(reg.name)

    def _fail(self, info: PluginInfo, error: str) -> None:
        info.status, info.error = "failed", error
        for kind, names in info.registered.items():
            for n in names:
                self.registry.entries[kind].pop(n, None)
        info.registered.clear()


def load_registry(strict: bool = False) -> Registry:
    """Discover installed plugins through entry points and return what they registered.

    :param strict: raise :class:`PluginError` when any plugin failed to load.
    """
    host = PluginHost()
    host.load_entry_points()
    registry = host.collect()
    if strict:
        registry.check_strict()
    return registry


def call_factory(registry: Registry, kind: str, name: str, *args: Any) -> Any:
    """Call the factory a plugin registered as ``name`` (see :func:`call_plugin`)."""
    return call_plugin(registry, kind, name, "", registry.get(kind, name).factory, *args)


def call_plugin(
    registry: Registry, kind: str, name: str, role: str, fn: Callable[..., Any], *args: Any
) -> Any:
    """Call plugin code. A :class:`BenchkitError` keeps its message (it is meant for the
    user); any other exception is a bug in the plugin, and the error names the plugin and the
    package to report it to."""
    try:
        return fn(*args)
    except BenchkitError:
        raise
    except Exception as exc:
        plugin = registry.plugins[registry.get(kind, name).plugin]
        where = f"{kind} {name!r} of plugin {plugin.describe()}" + (f", {role}" if role else "")
        raise PluginError(f"{where}: {describe_exception(exc)}") from exc
