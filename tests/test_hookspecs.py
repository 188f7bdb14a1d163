"""The hook API reads as its own reference, and every hook is exercised."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from benchkit import hookspecs

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
        "benchkit_register_models",
        "benchkit_register_precisions",
    ]


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
    kind = name.removeprefix("benchkit_register_").removesuffix("s")
    builtin = {p.name for p in benchkit_registry.plugins.values() if p.package == "benchkit"}
    providers = {r.plugin for r in benchkit_registry.entries[kind].values()}
    assert providers & builtin, f"no built-in plugin implements {name}"


@pytest.mark.parametrize("name", HOOKS)
def test_each_hook_is_named_in_the_readme(name):
    assert name in README.read_text()
