"""The entry-point path end to end: third-party plugin packages installed with pip into a fresh
virtual environment, found by ``benchkit plugins``, run in a suite, and passing their own tests.

Three packages are installed beside benchkit: ``examples/benchkit-example-plugin`` (hook API
1.0, the package ``docs/writing-plugins.md`` builds step by step; ``tests/test_plugin_docs.py``
checks the docs show its files exactly), ``examples/benchkit-example-plugin-1-1`` (hook API 1.1:
its own loss and optimizer, a dataset offered to benchkit's ``single_neuron``, a declared
metric) and a package written by ``benchkit new-plugin`` (:func:`benchkit.scaffold.create_plugin`).
The 1.0 package is installed unchanged beside the 1.1 one: plugins of both versions work
together. One virtual environment serves the module: torch
comes from pip's configured index or wheel folder (the CPU wheel, on our machines), everything
else is built from copies of the sources, so the repository never gets build folders.

The installing tests are marked ``slow``; the scaffold's own checks at the bottom are not.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import torch
from _resultsets import edit_results

import benchkit
from benchkit.cli import main
from benchkit.errors import BenchkitError
from benchkit.scaffold import create_plugin, next_steps, package_names
from benchkit.testing import check_plugin

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "benchkit-example-plugin"
EXAMPLE_1_1 = ROOT / "examples" / "benchkit-example-plugin-1-1"
DOCS = ROOT / "docs" / "writing-plugins.md"
#: What the benchkit distribution is built from (pyproject.toml maps plugins/ to benchkit_plugins).
BENCHKIT_SOURCES = ("pyproject.toml", "README.md", "benchkit", "plugins")
SCAFFOLD = "benchkit-scaffold-demo"
BUILD_LEFTOVERS = shutil.ignore_patterns(
    "__pycache__", "*.egg-info", "build", "dist", ".pytest_cache", ".ruff_cache", "results"
)


@dataclass
class Venv:
    """A fresh virtual environment with benchkit and the three plugin packages installed."""

    path: Path
    sources: Path
    env: dict[str, str]

    def run(self, *args: str, cwd: Path | None = None, timeout: int = 300):
        """Run a command of the environment (``benchkit``, ``python`` …) and return it."""
        exe = self.path / "bin" / args[0]
        return subprocess.run(
            [str(exe), *args[1:]],
            cwd=cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def check(self, *args: str, cwd: Path | None = None, timeout: int = 300) -> str:
        """Run a command that must succeed; its stdout."""
        done = self.run(*args, cwd=cwd, timeout=timeout)
        assert done.returncode == 0, (
            f"{' '.join(args)} exited {done.returncode}\n"
            f"--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}"
        )
        return done.stdout


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Venv:
    root = tmp_path_factory.mktemp("e2e")
    sources = root / "sources"
    benchkit_copy = sources / "benchkit"
    for name in BENCHKIT_SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, benchkit_copy / name, ignore=BUILD_LEFTOVERS)
        else:
            benchkit_copy.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, benchkit_copy / name)
    shutil.copytree(EXAMPLE, sources / EXAMPLE.name, ignore=BUILD_LEFTOVERS)
    shutil.copytree(EXAMPLE_1_1, sources / EXAMPLE_1_1.name, ignore=BUILD_LEFTOVERS)
    create_plugin(SCAFFOLD, sources)

    path = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, timeout=300)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "BENCHKIT_DISABLE_PLUGINS", "PYTEST_ADDOPTS")
    }
    env.update(
        VIRTUAL_ENV=str(path),
        PATH=f"{path / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        OMP_NUM_THREADS="1",  # tiny models; a busy 2-core machine makes threads spin
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    venv = Venv(path, sources, env)
    torch_version = torch.__version__.split("+")[0]
    pip = ("python", "-m", "pip", "install", "--quiet")
    venv.check(*pip, f"torch=={torch_version}", "setuptools>=77", "pytest", timeout=900)
    venv.check(
        *pip,
        "--no-build-isolation",
        str(benchkit_copy),
        str(sources / EXAMPLE.name),
        str(sources / EXAMPLE_1_1.name),
        str(sources / SCAFFOLD),
        timeout=900,
    )
    return venv


@pytest.mark.slow
def test_benchkit_plugins_lists_both_packages_as_the_docs_show(venv):
    out = venv.check("benchkit", "plugins", "--strict-plugins")
    (shown,) = re.findall(
        r"<!-- output: benchkit plugins -->\n```text\n(.*?)```", DOCS.read_text(), re.S
    )
    assert shown in out
    assert (
        "scaffold_demo  [ok]  benchkit-scaffold-demo 0.1.0  (benchkit_scaffold_demo.plugin)\n"
        "    datasets: scaffold_demo_parabola\n"
        "    models: scaffold_demo_mlp\n"
    ) in out
    assert "single_neuron  [ok]  benchkit 0.1.0  (benchkit_plugins.single_neuron)" in out


@pytest.mark.slow
def test_the_example_suite_runs_the_installed_plugin(venv, tmp_path):
    out = tmp_path / "results"
    venv.check(
        "benchkit",
        "run",
        "suites/example",
        "--device",
        "cpu",
        "--precision",
        "fp32",
        "--seeds",
        "0",
        "--threads",
        "1",
        "--quiet",
        "--out",
        str(out),
        cwd=venv.sources / EXAMPLE.name,
    )
    results = pd.read_csv(out / "results.csv").set_index("dataset")
    assert sorted(results.index) == ["celsius", "celsius", "thermometer_noisy"]
    assert (results["model"] == "thermometer_mlp").all()
    assert (results["status"] == "ok").all(), results["status_detail"].tolist()
    assert (results["epochs"] == 5000).all()  # the book's recipe
    # the book's 13 tanh units (40 parameters), and the 8 its printed log comes from (25)
    assert sorted(results.loc["celsius", "params"]) == [25, 40]
    assert results.loc["thermometer_noisy", "params"] == 40
    assert (results["valid_mae_celsius"] > 0).all()
    assert results.loc["thermometer_noisy", "final_loss"] < 5  # the data's own scatter is 3.2
    plugins = json.loads((out / "run.json").read_text())["plugins"]
    assert plugins["thermometer"] == {
        "package": "benchkit-example-plugin",
        "version": "0.1.0",
        "status": "ok",
    }


@pytest.mark.slow
def test_the_example_packages_own_tests_pass_where_it_is_installed(venv):
    out = venv.check(
        "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=venv.sources / EXAMPLE.name
    )
    assert re.search(r"\b6 passed\b", out), out


@pytest.mark.slow
def test_a_new_plugin_package_installs_and_its_tests_and_suite_pass(venv, tmp_path):
    package = venv.sources / SCAFFOLD
    out = venv.check("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=package)
    assert re.search(r"\b3 passed\b", out), out

    results = tmp_path / "results"
    venv.check(
        "benchkit",
        "run",
        "suites/scaffold_demo",
        "--device",
        "cpu",
        "--seeds",
        "0",
        "--threads",
        "1",
        "--quiet",
        "--out",
        str(results),
        cwd=package,
    )
    (row,) = pd.read_csv(results / "results.csv").to_dict("records")
    assert (row["model"], row["dataset"], row["status"]) == (
        "scaffold_demo_mlp",
        "scaffold_demo_parabola",
        "ok",
    )
    assert row["final_loss"] < 0.01  # the suite's target: y = x² learnt to the noise (0.05²)
    assert row["converged_epoch"] >= 0


# --- hook API 1.1: a loss, an optimizer, a pairing and a metric from a third party ----------------


@pytest.mark.slow
def test_the_1_1_package_is_listed_and_offers_its_dataset_to_the_built_in_model(venv):
    out = venv.check("benchkit", "plugins", "--strict-plugins")
    assert (
        "robust_line  [ok]  benchkit-example-plugin-1-1 0.1.0  "
        "(benchkit_example_plugin_1_1.plugin)\n"
        "    datasets: line_outliers\n"
        "    losses: log_cosh\n"
        "    models: robust_neuron\n"
        "    optimizers: sign_sgd\n"
    ) in out
    shown = venv.check("benchkit", "show", "single_neuron")
    assert re.search(
        r"\n        line_outliers +Recipe\(loss='log_cosh', optimizer='sign_sgd', lr=0\.01, "
        r"epochs=300, schedule='cosine'\)  \(offered by robust_line "
        r"\(benchkit-example-plugin-1-1 0\.1\.0\)\)\n",
        shown,
    ), shown


@pytest.mark.slow
def test_the_1_1_suite_runs_and_compare_fails_when_the_declared_metric_drops(venv, tmp_path):
    package = venv.sources / EXAMPLE_1_1.name
    base = tmp_path / "base"
    venv.check(
        "benchkit",
        "run",
        "suites/robust",
        "--device",
        "cpu",
        "--seeds",
        "0",
        "--threads",
        "1",
        "--quiet",
        "--out",
        str(base),
        cwd=package,
    )
    results = pd.read_csv(base / "results.csv")
    assert (results["status"] == "ok").all(), results["status_detail"].tolist()
    assert set(results["optimizer"]) == {"sign_sgd"}
    offered = results[results["model"] == "single_neuron"].iloc[0]
    assert abs(offered["weight"] - 0.7) < 0.03 and abs(offered["bias"] - 0.3) < 0.03
    curves = pd.read_csv(base / "curves.csv")
    assert curves["lr"].iloc[0] == 0.01 and curves["lr"].notna().all()  # the cosine schedule
    declared = json.loads((base / "run.json").read_text())["metrics"]["robust_neuron"]
    assert declared["inlier_share"]["better"] == "higher"

    new = tmp_path / "new"
    shutil.copytree(base, new)

    def drop(frame: pd.DataFrame) -> None:
        frame.loc[frame["model"] == "robust_neuron", "inlier_share"] = 0.5

    edit_results(new, drop)
    same = venv.run("benchkit", "compare", str(base), str(base))
    assert same.returncode == 0, same.stdout + same.stderr
    dropped = venv.run("benchkit", "compare", str(base), str(new))
    assert dropped.returncode == 1, dropped.stdout + dropped.stderr
    assert re.search(r"inlier_share.*REGRESSED|REGRESSED.*inlier_share", dropped.stdout, re.S)


@pytest.mark.slow
def test_the_1_1_packages_own_tests_pass_where_it_is_installed(venv):
    out = venv.check(
        "python",
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        cwd=venv.sources / EXAMPLE_1_1.name,
    )
    assert re.search(r"\b6 passed\b", out), out


# --- benchkit new-plugin: the scaffold (fast, nothing installed) -------------------------------


def test_create_plugin_writes_an_installable_package(tmp_path):
    root = create_plugin("benchkit-my-models", tmp_path)
    assert root == tmp_path / "benchkit-my-models"
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) == [
        ".gitignore",
        "README.md",
        "pyproject.toml",
        "src/benchkit_my_models/__init__.py",
        "src/benchkit_my_models/plugin.py",
        "suites/my_models/suite.toml",
        "tests/test_plugin.py",
    ]
    pyproject = (root / "pyproject.toml").read_text()
    assert '[project.entry-points.benchkit]\nmy_models = "benchkit_my_models.plugin"\n' in pyproject
    assert 'name = "benchkit-my-models"' in pyproject
    assert "$" not in "".join(p.read_text() for p in root.rglob("*") if p.is_file())


def test_the_scaffolded_plugin_passes_the_author_checks(tmp_path, monkeypatch):
    root = create_plugin("benchkit-my-models", tmp_path)
    monkeypatch.syspath_prepend(str(root / "src"))
    try:
        from benchkit_my_models import plugin

        (result,) = check_plugin(plugin, epochs=3)
        assert (result.model, result.dataset) == ("my_models_mlp", "my_models_parabola")
        assert plugin.benchkit_api == benchkit.API_VERSION  # the scaffold declares its own
    finally:
        for module in [m for m in sys.modules if m.startswith("benchkit_my_models")]:
            del sys.modules[module]


def test_create_plugin_never_overwrites_a_folder(tmp_path):
    (tmp_path / "benchkit-mine").mkdir()
    with pytest.raises(BenchkitError, match=r"benchkit-mine already exists; pick another name"):
        create_plugin("benchkit-mine", tmp_path)
    assert list((tmp_path / "benchkit-mine").iterdir()) == []


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("my models", "use letters, digits and single - or _ between them"),
        ("2fast", "use letters, digits and single - or _ between them"),
        ("my--models", "use letters, digits and single - or _ between them"),
        ("my_models-", "use letters, digits and single - or _ between them"),
        ("benchkit", "its import package would be 'benchkit', which is taken"),
        ("Benchkit-Plugins", "its import package would be 'benchkit_plugins', which is taken"),
        ("class", "its import package would be 'class', which is taken"),
    ],
)
def test_create_plugin_rejects_a_name_that_cannot_be_a_package(tmp_path, name, message):
    with pytest.raises(BenchkitError, match=re.escape(message)):
        create_plugin(name, tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "package", "short"),
    [
        ("benchkit-my-models", "benchkit_my_models", "my_models"),
        ("Fancy_Nets", "fancy_nets", "fancy_nets"),
        ("benchkit_x2", "benchkit_x2", "x2"),
    ],
)
def test_package_names(name, package, short):
    assert package_names(name) == (package, short)


def test_next_steps_say_how_to_install_test_and_run(tmp_path):
    root = create_plugin("benchkit-my-models", tmp_path)
    text = next_steps(root)
    assert f"pip install -e {root}" in text
    assert "benchkit run suites/my_models" in text
    assert "docs/writing-plugins.md" in text


def test_benchkit_new_plugin_writes_the_package_and_says_what_next(tmp_path, capsys):
    assert main(["new-plugin", "benchkit-cli-demo", "--dir", str(tmp_path)]) == 0
    root = tmp_path / "benchkit-cli-demo"
    assert (root / "src" / "benchkit_cli_demo" / "plugin.py").is_file()
    assert capsys.readouterr().out.strip() == next_steps(root)


def test_benchkit_new_plugin_exits_2_on_an_existing_folder(tmp_path, capsys):
    (tmp_path / "benchkit-cli-demo").mkdir()
    assert main(["new-plugin", "benchkit-cli-demo", "--dir", str(tmp_path)]) == 2
    assert "benchkit-cli-demo already exists" in capsys.readouterr().err
