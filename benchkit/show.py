"""What plugins offer, in words: ``benchkit show NAME`` and ``benchkit plugins [--verbose]``.

Each registration is described by its kind, name and plugin, its description, its options
with their defaults, and what it pairs with: a model's recipe per dataset (and which dataset
offered itself), a dataset's models, which recipes use a loss, optimizer or schedule, and a
model's declared metrics.
"""

from __future__ import annotations

import difflib
from typing import Any

from benchkit.errors import BenchkitError
from benchkit.metric import Metric
from benchkit.registry import KINDS, PLURAL, RECIPE_KINDS, PluginInfo, Registration, Registry

INDENT = "    "


def _options(options: dict[str, Any]) -> str:
    if not options:
        return "none"
    return ", ".join(f"{k} = {v!r}" for k, v in options.items())


def _table(rows: list[tuple[str, str]], indent: str) -> list[str]:
    width = max((len(a) for a, _ in rows), default=0)
    return [f"{indent}{a.ljust(width)}  {b}".rstrip() for a, b in rows]


def _metric(metric: Metric) -> str:
    direction = f"{metric.better} is better" if metric.better != "none" else "no direction"
    text = f"{direction}, {metric.kind}"
    return f"{text}: {metric.description}" if metric.description else text


def describe(registry: Registry, reg: Registration, indent: str = "") -> list[str]:
    """The lines that describe one registration."""
    plugin = registry.plugins[reg.plugin].describe()
    inner = indent + INDENT
    lines = [f"{indent}{reg.kind} {reg.name}, from plugin {plugin}"]
    if reg.description:
        lines.append(f"{inner}{reg.description}")
    if reg.kind in RECIPE_KINDS or reg.kind in ("dataset", "model"):
        lines.append(f"{inner}options: {_options(dict(reg.options))}")
    if reg.kind == "model":
        lines.append(f"{inner}recipes per dataset:")
        rows = []
        for dataset, recipe in sorted(reg.datasets.items()):
            note = ""
            if dataset in reg.offered_by:
                note = f"  (offered by {registry.plugins[reg.offered_by[dataset]].describe()})"
            if dataset not in registry.entries["dataset"]:
                note += "  (no loaded plugin registers this dataset)"
            rows.append((dataset, recipe.describe() + note))
        lines += _table(rows, inner + INDENT)
        if reg.metrics:
            lines.append(f"{inner}metrics:")
            rows = [(name, _metric(m)) for name, m in sorted(reg.metrics.items())]
            lines += _table(rows, inner + INDENT)
        else:
            lines.append(f"{inner}metrics: none declared (compare reads them from their names)")
    elif reg.kind == "dataset":
        fits = [
            (model.name, model.datasets[reg.name].describe())
            for model in sorted(registry.entries["model"].values(), key=lambda m: m.name)
            if reg.name in model.datasets
        ]
        fits += [
            (name, f"{recipe.describe()}  (offered; no loaded plugin registers this model)")
            for name, recipe in sorted(reg.recipes.items())
            if name not in registry.entries["model"]
        ]
        lines.append(f"{inner}models that fit it:" + ("" if fits else " none"))
        lines += _table(fits, inner + INDENT)
    elif reg.kind in RECIPE_KINDS:
        users = sorted(
            f"{model.name}/{dataset}"
            for model in registry.entries["model"].values()
            for dataset, recipe in model.datasets.items()
            if getattr(recipe, reg.kind) == reg.name
        )
        lines.append(f"{inner}recipes using it: {', '.join(users) or 'none'}")
    return lines


def show(registry: Registry, name: str) -> str:
    """Everything registered as ``name`` (a model, dataset, loss, optimizer, schedule,
    precision or device; a plugin's name lists what it registered).

    :raises BenchkitError: nothing is called ``name``; the message lists close names.
    """
    found = [registry.entries[kind][name] for kind in KINDS if name in registry.entries[kind]]
    blocks = ["\n".join(describe(registry, reg)) for reg in found]
    plugin = registry.plugins.get(name)
    if plugin is not None and not found:
        blocks.append("\n".join(plugin_lines(registry, plugin, verbose=True)))
    if not blocks:
        names = {n for kind in KINDS for n in registry.entries[kind]} | set(registry.plugins)
        close = difflib.get_close_matches(name, sorted(names), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise BenchkitError(
            f"nothing is registered as {name!r}{hint} (`benchkit plugins` lists every name)"
        )
    return "\n\n".join(blocks) + "\n"


def plugin_lines(registry: Registry, info: PluginInfo, verbose: bool = False) -> list[str]:
    """A plugin as ``benchkit plugins`` lists it; with ``verbose``, each registration in full."""
    where = " ".join(x for x in (info.package, info.version) if x)
    lines = [f"{info.name}  [{info.status}]  {where}  ({info.module})"]
    for kind in sorted(info.registered):
        names = info.registered[kind]
        if not verbose:
            lines.append(f"{INDENT}{PLURAL[kind]}: {', '.join(names)}")
            continue
        for reg_name in names:
            lines += describe(registry, registry.entries[kind][reg_name], INDENT)
    if info.error:
        lines.append(f"{INDENT}error: {info.error}")
    return lines


def plugins_listing(registry: Registry, verbose: bool = False) -> str:
    """``benchkit plugins``: every plugin, sorted by name."""
    infos = sorted(registry.plugins.values(), key=lambda p: p.name)
    return "\n".join(line for info in infos for line in plugin_lines(registry, info, verbose))
