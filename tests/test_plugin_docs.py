"""``docs/writing-plugins.md`` is the plugin author's reference, and it cannot rot.

- Every hook in :mod:`benchkit.hookspecs` has a reference section there (a heading naming it)
  that says what ``register`` accepts (every keyword benchkit takes), when it is called, what
  it may raise, and shows an example; each example is run here as a real plugin.
- Every hook has a test of its own: a test function named ``test_hook_<hook name>...``
  somewhere under ``tests/`` (the convention this file enforces).
- The tutorial's files are the files of ``examples/benchkit-example-plugin/`` (its step 7's,
  of ``examples/benchkit-example-plugin-1-1/``), which ``tests/test_example_plugin.py``
  installs with pip into a fresh virtual environment; here the example plugins are loaded from
  their source and checked in-process.
- The built-in losses, optimizers and schedules, and each of their options, are listed.
"""

from __future__ import annotations

import ast
import inspect
import re
import sys
import tomllib
import types
from pathlib import Path

import pytest
import torch

import benchkit
from benchkit import hookspecs
from benchkit.errors import PluginError
from benchkit.registry import HOOK_FOR_KIND, RECIPE_KINDS, _validate, api_version_problem
from benchkit.suite import parse_suite
from benchkit.testing import assert_ok, check_plugin, isolated_registry, run_quick

ROOT = Path(__file__).resolve().parent.parent
DOCS_PATH = ROOT / "docs" / "writing-plugins.md"
DOCS = DOCS_PATH.read_text()
EXAMPLE = ROOT / "examples" / "benchkit-example-plugin"
EXAMPLE_1_1 = ROOT / "examples" / "benchkit-example-plugin-1-1"
HOOKS = [
    name
    for name, _ in inspect.getmembers(hookspecs, inspect.isfunction)
    if name.startswith("benchkit_")
]
#: torch's implementation switches, named once under the optimizers' table
SWITCHES = {"foreach", "fused", "capturable", "differentiable"}
LABELS = ("**Signature**", "**`register` accepts**", "**Called**", "**May raise**", "**Example**")


def headings(text: str) -> list[tuple[int, str, int]]:
    """(level, title, offset) of every Markdown heading outside code blocks."""
    found, fenced, offset = [], False, 0
    for line in text.splitlines(keepends=True):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (match := re.match(r"^(#{1,6}) (.+)$", line)):
            found.append((len(match[1]), match[2].strip(), offset))
        offset += len(line)
    return found


def section(name: str) -> str:
    """The text under the one heading that names hook ``name``, up to the next heading."""
    marks = headings(DOCS)
    hits = [i for i, (_, title, _) in enumerate(marks) if re.search(rf"\b{name}\b", title)]
    assert len(hits) == 1, f"docs/writing-plugins.md: want one heading naming {name}, got {hits}"
    level, _, start = marks[hits[0]]
    end = next((off for lvl, _, off in marks[hits[0] + 1 :] if lvl <= level), len(DOCS))
    return DOCS[start:end]


def tagged_blocks(text: str, tag: str) -> dict[str, str]:
    """Code blocks right after ``<!-- tag: key -->``, by key."""
    pattern = rf"<!-- {tag}: ([^>]+?) -->\n```[a-z]*\n(.*?)^```$"
    return {key: body for key, body in re.findall(pattern, text, re.S | re.M)}


def example_plugin(name: str) -> types.ModuleType:
    """The hook's example from the docs, executed as a plugin module."""
    examples = tagged_blocks(section(name), "example")
    assert list(examples) == [name], f"{name}: tag its example <!-- example: {name} -->"
    module = types.ModuleType(f"docs_example_{name}")
    exec(compile(examples[name], f"writing-plugins.md ({name})", "exec"), module.__dict__)
    return module


def register_keywords(kind: str) -> list[str]:
    """The keywords ``register`` takes for ``kind``, as benchkit checks them."""
    with pytest.raises(PluginError) as caught:
        _validate(kind, "probe", lambda: None, {"no_such_keyword": 1})
    return str(caught.value).split("valid: ")[1].split(", ")


# --- one reference section per hook -----------------------------------------------------------


@pytest.mark.parametrize("name", HOOKS)
def test_each_hook_has_a_reference_section_saying_when_what_and_what_may_raise(name):
    text = section(name)
    for label in LABELS:
        assert label in text, f"{name}: the reference section lacks {label}"
    assert f"`{name}(register) -> None`" in text


@pytest.mark.parametrize("name", HOOKS)
def test_each_hooks_section_names_every_keyword_register_takes(name):
    kind = next(k for k, hook in HOOK_FOR_KIND.items() if hook == name)
    accepts = section(name).split("**`register` accepts**")[1].split("**Called**")[0]
    assert "register(name, factory, *," in accepts
    for keyword in register_keywords(kind):
        assert f"{keyword}=" in accepts or f"`{keyword}`" in accepts, (
            f"{name}: register() takes {keyword}=, which the docs do not describe"
        )


def test_every_hook_the_docs_give_a_heading_exists():
    named = {m for _, title, _ in headings(DOCS) for m in re.findall(r"benchkit_\w+", title)}
    assert named == set(HOOKS)


def test_each_hook_has_a_test_of_its_own():
    tests = {
        node.name
        for path in (ROOT / "tests").glob("test_*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef)
    }
    missing = [h for h in HOOKS if not any(t.startswith(f"test_hook_{h}") for t in tests)]
    assert missing == [], f"write a test named test_hook_<hook>_... for each of {missing}"


# --- the examples in the reference run ---------------------------------------------------------


def test_the_devices_example_builds_and_says_why_it_is_absent():
    plugin = example_plugin("benchkit_register_devices")
    (result,) = check_plugin(plugin)
    present = hasattr(torch, "xpu") and torch.xpu.is_available()
    assert (result.device, result.status) == ("xpu", "ok" if present else "skipped")
    if not present:
        assert result.status_detail.startswith("device xpu unavailable: no Intel GPU")


def test_the_precisions_example_trains_in_float16_and_reports_its_stat():
    plugin = example_plugin("benchkit_register_precisions")
    (result,) = check_plugin(plugin, epochs=4)
    assert (result.precision, result.status) == ("fp16_static", "ok")
    assert result.metrics["static_scale_overflows"] == 0


def test_the_modes_example_runs_every_step_under_anomaly_detection():
    plugin = example_plugin("benchkit_register_modes")
    (result,) = check_plugin(plugin, epochs=3)
    assert (result.model, result.mode, result.status) == ("benchkit_check_linear", "anomaly", "ok")
    assert result.mode_setup_seconds is None  # no one-off work
    registration = isolated_registry(plugin).get("mode", "anomaly")
    assert registration.options == {"check_nan": True}


def test_the_datasets_example_builds_with_the_suites_options():
    plugin = example_plugin("benchkit_register_datasets")
    assert check_plugin(plugin) == []  # no model fits it: built once, nothing to train
    registration = isolated_registry(plugin).get("dataset", "noisy_sine")
    data = registration.factory({**registration.options, "points": 50})
    assert (len(data.train), len(data.valid), len(data.test)) == (30, 10, 10)


def test_the_models_example_trains_on_the_built_in_line_with_its_metrics():
    plugin = example_plugin("benchkit_register_models")
    (result,) = check_plugin(plugin, epochs=5, with_plugins=["single_neuron"])
    assert (result.model, result.dataset, result.status) == ("relu_line", "line", "ok")
    assert result.params == 8 + 8 + 8 + 1
    assert result.metrics["test_max_error"] > 0
    assert len(result.series["test_residuals"]) == 10  # line's 10 test points
    declared = isolated_registry(plugin, "single_neuron").get("model", "relu_line").metrics
    assert declared["test_max_error"].better == "lower"


def test_the_losses_example_fits_a_high_quantile_above_the_line():
    plugin = example_plugin("benchkit_register_losses")
    (checked,) = check_plugin(plugin, epochs=3)  # trained on the reference model
    assert checked.status == "ok"
    registry = isolated_registry(plugin, "single_neuron")
    recipe = {"loss": "pinball", "loss_options": {"quantile": 0.9}, "lr": 0.05}
    high = run_quick(registry, "single_neuron", "celsius", epochs=300, recipe=recipe)
    recipe["loss_options"] = {"quantile": 0.1}
    low = run_quick(registry, "single_neuron", "celsius", epochs=300, recipe=recipe)
    assert_ok(high, low)
    assert high.metrics["bias"] > low.metrics["bias"]  # the 90 % line lies above the 10 % one


def test_the_optimizers_example_is_torchs_adamax_with_the_recipes_options():
    plugin = example_plugin("benchkit_register_optimizers")
    (checked,) = check_plugin(plugin, epochs=3)
    assert checked.status == "ok"
    registry = isolated_registry(plugin, "single_neuron")
    recipe = {"optimizer": "adamax", "lr": 0.02, "optimizer_options": {"betas": [0.8, 0.99]}}
    result = run_quick(registry, "single_neuron", "line", epochs=200, recipe=recipe)
    assert_ok(result)
    assert result.optimizer == "adamax" and result.curve[-1] < result.curve[0] / 4


def test_the_schedules_example_warms_up_linearly():
    plugin = example_plugin("benchkit_register_schedules")
    (checked,) = check_plugin(plugin, epochs=3)
    assert checked.status == "ok"
    registry = isolated_registry(plugin, "single_neuron")
    recipe = {"schedule": "warmup", "schedule_options": {"warmup_epochs": 4}, "lr": 0.1}
    result = run_quick(registry, "single_neuron", "line", epochs=6, recipe=recipe)
    assert result.lr_curve == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1, 0.1])


def test_the_built_in_losses_optimizers_and_schedules_are_listed_with_their_options():
    text = section("Built-in losses, optimizers and schedules")
    registry = isolated_registry()
    for kind in RECIPE_KINDS:
        for name in registry.names(kind):
            row = next((line for line in text.splitlines() if line.startswith(f"| `{name}`")), "")
            assert row, f"the {kind} {name!r} is not in the table"
            options = registry.get(kind, name).options
            for option in options:
                listed = f"`{option} = " in row or "as `adam`" in row
                assert listed or (option in SWITCHES and f"`{option}`" in text), (name, option)


def test_the_executors_example_runs_a_suite_in_its_own_order(tmp_path):
    from benchkit.cases import DeviceCache
    from benchkit.executors import ExecutorContext, build_executor

    plugin = example_plugin("benchkit_register_executors")
    registry = isolated_registry(plugin, "single_neuron")
    suite_file = tmp_path / "suite.toml"
    suite_file.write_text(
        '[matrix]\ndevices = ["cpu"]\nprecisions = ["fp32"]\nseeds = [0, 1, 2, 3]\n'
        '[[cases]]\nmodel = "single_neuron"\ndataset = "line"\nrecipe = { epochs = 2 }\n'
    )
    suite = parse_suite(suite_file, registry)
    executor = build_executor(registry, "shuffled", {"seed": 3}, ExecutorContext(suite))
    ran = [r.run_id for r in executor.results(suite.cases, registry, DeviceCache(registry))]
    assert sorted(ran) == sorted(c.run_id for c in suite.cases)
    assert ran != [c.run_id for c in suite.cases]  # seed 3 reorders these four


# --- the tutorial is the example package -------------------------------------------------------


def test_step_7_shows_the_1_1_example_packages_plugin():
    shown = tagged_blocks(DOCS, "file-1.1")
    assert list(shown) == ["src/benchkit_example_plugin_1_1/plugin.py"]
    for relative, text in shown.items():
        assert text == (EXAMPLE_1_1 / relative).read_text(), (
            f"docs/writing-plugins.md step 7 shows {relative} unlike {EXAMPLE_1_1 / relative}"
        )


def test_the_1_1_example_plugin_passes_the_author_checks(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE_1_1 / "src"))
    try:
        from benchkit_example_plugin_1_1 import plugin

        results = check_plugin(plugin, epochs=3, with_plugins=["single_neuron"])
        assert_ok(*results)
        assert plugin.benchkit_api == "1.1"
        assert benchkit.API_VERSION == "1.2"
    finally:
        for module in [m for m in sys.modules if m.startswith("benchkit_example_plugin_1_1")]:
            del sys.modules[module]


def test_the_tutorials_files_are_the_example_packages_files():
    shown = tagged_blocks(DOCS, "file")
    assert sorted(shown) == [
        "pyproject.toml",
        "src/benchkit_example_plugin/__init__.py",
        "src/benchkit_example_plugin/plugin.py",
        "suites/example/suite.toml",
        "tests/test_plugin.py",
    ]
    for relative, text in shown.items():
        assert text == (EXAMPLE / relative).read_text(), (
            f"docs/writing-plugins.md shows {relative} unlike {EXAMPLE / relative}: "
            "make them the same"
        )


def test_the_tutorials_plugin_listing_matches_the_example_package():
    (listing,) = tagged_blocks(DOCS, "output").values()
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    ((name, module),) = project["entry-points"]["benchkit"].items()
    assert listing.splitlines()[0] == (
        f"{name}  [ok]  {project['name']} {project['version']}  ({module})"
    )


@pytest.fixture
def example_source(monkeypatch):
    """The example package importable from its source folder (not installed)."""
    monkeypatch.syspath_prepend(str(EXAMPLE / "src"))
    yield
    for module in [m for m in sys.modules if m.startswith("benchkit_example_plugin")]:
        del sys.modules[module]


def test_the_example_plugin_passes_the_author_checks(example_source):
    from benchkit_example_plugin import plugin

    results = check_plugin(plugin, epochs=3, with_plugins=["single_neuron"])
    assert sorted((r.model, r.dataset, r.status) for r in results) == [
        ("thermometer_mlp", "celsius", "ok"),
        ("thermometer_mlp", "thermometer_noisy", "ok"),
    ]
    # the 1.0 example is kept as it was written: it declares 1.0 and loads on 1.1
    assert plugin.benchkit_api == "1.0"
    assert api_version_problem(plugin.benchkit_api) == ""


def test_the_example_suite_names_what_the_example_registers(example_source):
    from benchkit_example_plugin import plugin

    registry = isolated_registry(plugin, "single_neuron")
    suite = parse_suite(EXAMPLE / "suites" / "example", registry)
    assert suite.name == "example"
    assert {(c.model, c.dataset) for c in suite.cases} == {
        ("thermometer_mlp", "celsius"),
        ("thermometer_mlp", "thermometer_noisy"),
    }


def test_the_example_recipe_is_the_books():
    # Deep Learning with PyTorch, ch. 6: optim.SGD(seq_model.parameters(), lr=1e-3), 5000 epochs.
    text = (EXAMPLE / "src" / "benchkit_example_plugin" / "plugin.py").read_text()
    assert 'BOOK_RECIPE = Recipe(loss="mse", optimizer="sgd", lr=1e-3, epochs=5000)' in text
    assert 'nn.Linear(data.info.get("in_features", 1), hidden)' in text
    assert 'options={"hidden": 13}' in text


# --- versions and links -------------------------------------------------------------------------


def test_the_docs_state_the_current_hook_api_and_this_releases_row():
    assert f"The current hook API is **{benchkit.API_VERSION}**." in DOCS
    assert f"| {benchkit.__version__} | {benchkit.API_VERSION} |" in DOCS


def test_every_link_inside_the_docs_leads_to_a_heading():
    def slug(title: str) -> str:  # GitHub's anchors
        return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")

    anchors = {slug(title) for _, title, _ in headings(DOCS)}
    links = re.findall(r"\]\(#([^)]+)\)", DOCS)
    assert links, "the docs link their sections"
    assert sorted(set(links) - anchors) == []


def test_the_docs_relative_links_exist():
    for target in re.findall(r"\]\((\.\./[^)#]+)\)", DOCS):
        assert (DOCS_PATH.parent / target).exists(), target
