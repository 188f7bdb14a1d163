"""``benchkit new-plugin NAME``: a plugin package to start from.

:func:`create_plugin` writes a complete, installable package: ``pyproject.toml`` with the
``benchkit`` entry point, a plugin module registering a tiny dataset and a model that fits it,
a suite that runs them, and tests written with :mod:`benchkit.testing`. Install it with
``pip install -e NAME`` and it shows in ``benchkit plugins``; the guide to what to change next
is ``docs/writing-plugins.md``.
"""

from __future__ import annotations

import keyword
import re
from pathlib import Path
from string import Template

import benchkit
from benchkit.errors import BenchkitError

_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:[-_][A-Za-z0-9]+)*$")
_TAKEN = {"benchkit", "benchkit_plugins", "torch", "tests", "test"}


def package_names(name: str) -> tuple[str, str]:
    """The import package and the short name (entry point, registration prefix) for ``name``.

    ``benchkit-my-models`` → ``("benchkit_my_models", "my_models")``: the package is the
    distribution name in lower case with ``-`` as ``_``; the short name drops a leading
    ``benchkit_``. Raises :class:`BenchkitError` for a name that cannot be both.
    """
    if not _NAME_RE.match(name):
        raise BenchkitError(
            f"plugin name {name!r}: use letters, digits and single - or _ between them, "
            "starting with a letter (e.g. benchkit-my-models)"
        )
    package = name.lower().replace("-", "_")
    if keyword.iskeyword(package) or package in _TAKEN:
        raise BenchkitError(
            f"plugin name {name!r}: its import package would be {package!r}, which is taken; "
            "pick another name (e.g. benchkit-my-models)"
        )
    short = package.removeprefix("benchkit_") or package
    return package, short


def create_plugin(name: str, dest: Path) -> Path:
    """Write the package ``dest/name`` and return its folder.

    :param name: the distribution name (``benchkit-my-models``).
    :param dest: the folder to create it in; ``dest/name`` must not exist yet.
    :raises BenchkitError: the name is not usable, or the folder already exists.
    """
    package, short = package_names(name)
    root = Path(dest) / name
    if root.exists():
        raise BenchkitError(f"{root} already exists; pick another name or --dir")
    fields = {
        "name": name,
        "package": package,
        "short": short,
        "model": f"{short}_mlp",
        "dataset": f"{short}_parabola",
        "api": benchkit.API_VERSION,
        "requires": _requirement(),
    }
    files = {
        "pyproject.toml": _PYPROJECT,
        "README.md": _README,
        ".gitignore": _GITIGNORE,
        f"src/{package}/__init__.py": _INIT,
        f"src/{package}/plugin.py": _PLUGIN,
        f"suites/{short}/suite.toml": _SUITE,
        "tests/test_plugin.py": _TEST,
    }
    for relative, template in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Template(template).substitute(fields))
    return root


def next_steps(root: Path) -> str:
    """What to run after :func:`create_plugin`, for the command line to print."""
    package, short = package_names(root.name)
    return (
        f"created {root}\n"
        "next:\n"
        f"  pip install -e {root}\n"
        f"  benchkit plugins                  # lists {short} [ok]\n"
        f"  cd {root}\n"
        "  pytest                            # the plugin's own tests\n"
        f"  benchkit run suites/{short}\n"
        f"then make src/{package}/plugin.py your own; the guide is docs/writing-plugins.md"
    )


def _requirement() -> str:
    """``benchkit>=X.Y`` for the running benchkit, or plain ``benchkit`` from a source tree."""
    match = re.match(r"^(\d+)\.(\d+)", benchkit.__version__)
    return f"benchkit>={match[1]}.{match[2]}" if match else "benchkit"


_PYPROJECT = """\
[build-system]
requires = ["setuptools>=77"]
build-backend = "setuptools.build_meta"

[project]
name = "$name"
version = "0.1.0"
description = "A benchkit plugin: model $model on dataset $dataset"
readme = "README.md"
requires-python = ">=3.11"
dependencies = [
    "$requires",
    "torch>=2.1,<3",
]

[project.optional-dependencies]
test = ["pytest>=7.4"]

# benchkit finds plugins through this entry-point group: plugin name = "module".
[project.entry-points.benchkit]
$short = "$package.plugin"

[tool.setuptools.packages.find]
where = ["src"]

[tool.pytest.ini_options]
testpaths = ["tests"]

[tool.ruff]
line-length = 100
src = ["src"]
"""

_README = """\
# $name

A [benchkit](https://pypi.org/project/benchkit/) plugin: model `$model` on dataset
`$dataset`.

```sh
pip install -e .          # benchkit finds the plugin through its entry point
benchkit plugins          # $short is listed, [ok]
pytest                    # the plugin's own tests (benchkit.testing)
benchkit run suites/$short
```

The plugin lives in `src/$package/plugin.py`; the guide to every hook is benchkit's
`docs/writing-plugins.md`.
"""

_GITIGNORE = """\
__pycache__/
*.egg-info/
build/
dist/
results/
"""

_INIT = '''\
"""$name: a benchkit plugin (see plugin.py)."""
'''

_PLUGIN = '''\
"""benchkit plugin $short: model ``$model`` on dataset ``$dataset``.

benchkit loads this module through the entry point in pyproject.toml and calls each hook once.
Hooks register *factories*: nothing is built, read or moved to a GPU until a suite runs.
"""

from __future__ import annotations

import benchkit
import torch
from benchkit import Data, Recipe, Split
from torch import nn

#: The benchkit hook API this plugin needs: same major version, at least this minor one.
benchkit_api = "$api"

#: The names a suite uses; each must be unique among the installed plugins.
DATASET = "$dataset"
MODEL = "$model"


def parabola(options: dict) -> Data:
    """y = x² plus noise on ``points`` points in [-1, 1]; every fifth point validates.
    benchkit seeds torch right before this call, so a seed always draws the same noise."""
    x = torch.linspace(-1, 1, options["points"]).unsqueeze(1)
    y = x**2 + options["noise"] * torch.randn_like(x)
    valid = torch.arange(len(x)) % 5 == 0
    return Data(
        train=Split((x[~valid],), y[~valid]),
        valid=Split((x[valid],), y[valid]),
        info={"in_features": 1},
    )


def mlp(data: Data, options: dict) -> nn.Module:
    """in_features → ``hidden`` tanh units → 1, built on the CPU in float32."""
    hidden = options["hidden"]
    return nn.Sequential(
        nn.Linear(data.info["in_features"], hidden),
        nn.Tanh(),
        nn.Linear(hidden, 1),
    )


@benchkit.hookimpl
def benchkit_register_datasets(register):
    register(
        DATASET,
        parabola,
        options={"points": 64, "noise": 0.05},
        description="y = x² + noise on 64 points",
    )


@benchkit.hookimpl
def benchkit_register_models(register):
    register(
        MODEL,
        mlp,
        datasets={DATASET: Recipe(loss="mse", optimizer="adam", lr=1e-2, epochs=300)},
        options={"hidden": 16},
        description="1 → 16 → 1 tanh MLP",
    )
'''

_SUITE = """\
# Run it with: benchkit run suites/$short
[suite]
name = "$short"
description = "$model on $dataset"

[matrix]
devices = ["cpu", "cuda", "mps"]      # a device that is not present is reported as skipped
precisions = ["fp32"]
seeds = [0, 1, 2]

[[cases]]
model = "$model"
dataset = "$dataset"
target_loss = 0.01                    # converged_epoch: first epoch with loss <= this
"""

_TEST = '''\
"""The plugin's own tests, with the helpers benchkit ships for plugin authors."""

from __future__ import annotations

from pathlib import Path

from benchkit.suite import parse_suite

from $package import plugin

SUITE = Path(__file__).resolve().parent.parent / "suites" / "$short"


PLUGIN_NAME = "$short"  # the entry point's name in pyproject.toml


def test_the_plugin_loads_alone_and_its_model_trains(benchkit_check_plugin):
    results = benchkit_check_plugin(plugin, epochs=3)
    assert [(r.model, r.dataset) for r in results] == [(plugin.MODEL, plugin.DATASET)]
    assert results[0].curve[-1] < results[0].curve[0]


def test_benchkit_finds_the_installed_plugin_through_its_entry_point(benchkit_registry):
    info = benchkit_registry.plugins[PLUGIN_NAME]
    assert info.status == "ok", info.error
    assert info.registered == {"dataset": [plugin.DATASET], "model": [plugin.MODEL]}


def test_the_suite_names_only_what_is_installed(benchkit_registry):
    suite = parse_suite(SUITE, benchkit_registry)
    assert {(c.model, c.dataset) for c in suite.cases} == {(plugin.MODEL, plugin.DATASET)}
'''
