"""Plugin discovery and the registry of what plugins provide.

Entry points in the ``benchkit`` group are loaded one at a time. A plugin that fails to import,
implements a hook that does not exist, raises in a hook or registers something invalid is
recorded with its name, package and version, and the others still load.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pluggy

import benchkit
from benchkit import hookspecs
from benchkit.errors import PluginError, describe_exception
from benchkit.workload import Recipe

ENTRY_POINT_GROUP = "benchkit"
DISABLE_ENV = "BENCHKIT_DISABLE_PLUGINS"
KINDS = ("device", "precision", "mode", "dataset", "model")
_HOOK_FOR_KIND = {kind: f"benchkit_register_{kind}s" for kind in KINDS}
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


class Registry:
    """Everything the loaded plugins registered, by kind and name, and the plugins themselves."""

    def __init__(self) -> None:
        self.plugins: dict[str, PluginInfo] = {}
        self.entries: dict[str, dict[str, Registration]] = {kind: {} for kind in KINDS}

    def names(self, kind: str) -> list[str]:
        """Registered names of one kind, sorted."""
        return sorted(self.entries[kind])

    def get(self, kind: str, name: str) -> Registration:
        """The registration of ``name``; a :class:`PluginError` lists the valid names."""
        try:
            return self.entries[kind][name]
        except KeyError:
            valid = ", ".join(self.names(kind)) or "none registered"
            raise PluginError(f"unknown {kind} {name!r}; valid: {valid}") from None

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
    if not callable(factory):
        raise PluginError(
            f"{kind} {name!r}: factory must be callable, got {type(factory).__name__}"
        )
    allowed = {"description"}
    if kind in ("dataset", "model", "mode"):  # suites set options on these
        allowed |= {"options"}
    if kind == "model":
        allowed |= {"datasets", "evaluate"}
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
        raise PluginError(f"{kind} {name!r}: options must be a dict of defaults")
    out["options"] = dict(options)
    if kind == "model":
        datasets = out.get("datasets")
        if not isinstance(datasets, Mapping) or not datasets:
            raise PluginError(
                f"model {name!r}: register() needs datasets={{dataset_name: Recipe(...)}} "
                "naming at least one dataset the model fits"
            )
        for ds, recipe in datasets.items():
            if not isinstance(recipe, Recipe):
                raise PluginError(
                    f"model {name!r}: datasets[{ds!r}] must be a benchkit.Recipe, "
                    f"got {type(recipe).__name__}"
                )
        out["datasets"] = dict(datasets)
        evaluate = out.get("evaluate")
        if evaluate is not None and not callable(evaluate):
            raise PluginError(f"model {name!r}: evaluate must be callable")
    return out


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
    known = list(_HOOK_FOR_KIND.values())
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
    known = set(_HOOK_FOR_KIND.values())
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
                continue
            try:
                plugin = ep.load()
            except Exception as exc:
                info.status, info.error = "failed", f"import failed: {describe_exception(exc)}"
                self.registry.plugins[info.name] = info
                continue
            self.add(plugin, info)

    def collect(self) -> Registry:
        """Call every plugin's register hooks, one plugin at a time, and return the registry."""
        registry = self.registry
        for kind in KINDS:
            caller = getattr(self.pm.hook, _HOOK_FOR_KIND[kind])
            for impl in caller.get_hookimpls():
                info = registry.plugins[impl.plugin_name]
                if info.status != "ok":
                    continue
                self._call_one(kind, impl, info)
        return registry

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
            self._fail(info, f"{_HOOK_FOR_KIND[kind]}: {describe_exception(exc)}")
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
