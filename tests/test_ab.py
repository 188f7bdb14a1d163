"""``benchkit ab``: paired statistics over rounds, the choice of environment, and the verdict
on rounds made from a real result set with a planted slowdown."""

from __future__ import annotations

import itertools
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _resultsets import copy_set, edit_results, scale_speed, shared_tiny_set, steady_timings

from benchkit.history import ab
from benchkit.history.ab_report import analyse, render
from benchkit.history.paired import judge, paired_ratio

REPO = Path(__file__).resolve().parents[1]


def test_six_rounds_give_the_range_at_97_percent():
    ratios = [0.91, 0.95, 0.93, 0.97, 0.92, 0.94]
    interval = paired_ratio(ratios)
    assert interval.ratio == pytest.approx(np.median(ratios))
    assert (interval.low, interval.high) == pytest.approx((0.91, 0.97))
    assert interval.confidence == pytest.approx(1 - 2 / 64)
    assert interval.excludes_one()


def test_fewer_than_six_rounds_give_no_interval():
    interval = paired_ratio([0.9, 0.91, 0.92, 0.9, 0.93])
    assert interval.low is None and not interval.excludes_one()


def walsh_interval(ratios: list[float], k: int) -> tuple[float, float]:
    logs = np.log(ratios)
    walsh = sorted((a + b) / 2 for a, b in itertools.combinations_with_replacement(logs, 2))
    return math.exp(walsh[k]), math.exp(walsh[-1 - k])


def test_the_interval_is_cut_at_the_signed_rank_critical_value():
    rng = np.random.default_rng(1)
    ratios = list(np.exp(rng.normal(0, 0.05, 12)))
    # n = 12: P(T <= 13) = 0.0212, P(T <= 14) = 0.0261 (tables of the signed-rank test)
    interval = paired_ratio(ratios)
    assert (interval.low, interval.high) == pytest.approx(walsh_interval(ratios, 13))
    assert interval.confidence == pytest.approx(1 - 2 * 87 / 4096)


def test_the_interval_covers_the_true_ratio_at_its_level():
    rng = np.random.default_rng(0)
    covered = 0
    for _ in range(400):
        ratios = np.exp(rng.normal(np.log(0.95), 0.04, 8))
        interval = paired_ratio(list(ratios))
        covered += interval.low <= 0.95 <= interval.high
    assert covered / 400 >= 0.93


def test_the_verdict_needs_size_and_certainty():
    slower = [1000.0 * r for r in (0.80, 0.82, 0.79, 0.81, 0.80, 0.83)]
    base = [1000.0] * 6
    assert judge("w", "samples_per_second", "higher", 0.10, base, slower).verdict == "regressed"
    assert judge("w", "samples_per_second", "higher", 0.25, base, slower).verdict == "within"
    assert judge("w", "train_seconds", "lower", 0.10, base, slower).verdict == "improved"
    few = judge("w", "samples_per_second", "higher", 0.10, base[:3], slower[:3])
    assert few.verdict == "unclear" and "at least 6" in few.note
    mixed = [1000.0 * r for r in (0.9, 1.1, 0.95, 1.05, 1.0, 0.98)]
    assert judge("w", "samples_per_second", "higher", 0.10, base, mixed).verdict == "same"


def test_rounds_alternate_which_side_runs_first():
    assert [ab.round_order(n) for n in (1, 2, 3)] == [
        ("base", "head"),
        ("head", "base"),
        ("base", "head"),
    ]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository holding this benchkit's pyproject.toml and a suite."""
    root = tmp_path / "repo"
    (root / "suites").mkdir(parents=True)
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    (root / "suites" / "a.toml").write_text("[suite]\nname = 'a'\n")
    git(root, "init", "--quiet")
    git(root, "config", "user.email", "t@example.com")
    git(root, "config", "user.name", "t")
    git(root, "add", ".")
    git(root, "commit", "--quiet", "-m", "base")
    return root


def test_only_suites_changed_reuses_this_environment(repo: Path):
    (repo / "suites" / "a.toml").write_text("[suite]\nname = 'a2'\n")
    git(repo, "commit", "--quiet", "-am", "suite only")
    mode, why = ab.choose_environment(repo, "HEAD~1", "HEAD", repo, "auto")
    assert mode == "reuse", why


def test_a_changed_pyproject_makes_a_venv_per_revision(repo: Path):
    text = (repo / "pyproject.toml").read_text()
    (repo / "pyproject.toml").write_text(text.replace('"pandas>=2.0",', '"pandas>=2.0", "rich",'))
    git(repo, "commit", "--quiet", "-am", "a dependency")
    mode, why = ab.choose_environment(repo, "HEAD~1", "HEAD", repo, "auto")
    assert mode == "venv" and "pyproject.toml" in why
    assert ab.choose_environment(repo, "HEAD~1", "HEAD", repo, "reuse")[0] == "reuse"


def test_other_entry_points_than_installed_make_a_venv(repo: Path):
    text = (repo / "pyproject.toml").read_text()
    (repo / "pyproject.toml").write_text(
        text.replace(
            "[project.entry-points.benchkit]", "[project.entry-points.benchkit]\nextra = 'x.y'"
        )
    )
    mode, why = ab.choose_environment(repo, "HEAD", "HEAD", repo, "auto")
    assert mode == "venv" and "entry points" in why


def test_the_shim_makes_this_python_import_the_revision(tmp_path: Path):
    tree = tmp_path / "tree"
    (tree / "src_core").mkdir(parents=True)
    (tree / "src_core" / "__init__.py").write_text("WHERE = 'the revision'\n")
    (tree / "pyproject.toml").write_text(
        "[tool.setuptools]\npackages = ['benchkit']\npackage-dir = { benchkit = 'src_core' }\n"
    )
    env = ab.shim_environment(tree, tmp_path / "shim")
    out = subprocess.run(
        [sys.executable, "-c", "import benchkit; print(benchkit.WHERE)"],
        env={"PATH": "/usr/bin:/bin", **env},
        cwd=tmp_path,  # not this checkout, whose benchkit/ would come first
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "the revision"


def test_a_revision_git_does_not_know_is_a_one_line_error(repo: Path):
    with pytest.raises(ab.BenchkitError, match="not a commit"):
        ab.resolve(repo, "no-such-branch")


@pytest.fixture(scope="module")
def steady_set(tmp_path_factory) -> Path:
    folder = copy_set(shared_tiny_set(tmp_path_factory), tmp_path_factory.mktemp("ab") / "set")
    steady_timings(folder, spread=0.02)
    return folder


def make_rounds(out: Path, src: Path, rounds: int, head_factor: float, seed: int = 0) -> None:
    """Rounds as `benchkit ab` leaves them: a machine whose speed drifts by ±15 % from round
    to round (both sides alike), and HEAD ``head_factor`` times as fast as BASE."""
    rng = np.random.default_rng(seed)
    for n in range(1, rounds + 1):
        machine = 1 + rng.uniform(-0.15, 0.15)
        for side, factor in (("base", 1.0), ("head", head_factor)):
            folder = copy_set(src, ab.round_folder(out, n, side))
            scale_speed(folder, machine * factor * (1 + rng.uniform(-0.01, 0.01)))


def test_a_planted_slowdown_is_a_regression_through_machine_drift(steady_set, tmp_path):
    make_rounds(tmp_path, steady_set, 6, head_factor=0.8)
    comparison = analyse(tmp_path, [1, 2, 3, 4, 5, 6], "base", "head")
    verdicts = {f.workload.split("/{")[0]: f.verdict for f in comparison.findings}
    assert verdicts == {
        "single_neuron/single_point/fp32/cpu": "regressed",
        "single_neuron/single_point/fp16/cpu": "regressed",
        "sine_mlp/sine/fp32/cpu": "regressed",  # sine_mlp fp16 diverges: no throughput
    }
    assert all(f.interval.ratio == pytest.approx(0.8, abs=0.02) for f in comparison.findings)
    assert comparison.exit_code == 1
    text = render(comparison)
    assert "REGRESSED" in text and "FAIL" in text
    doc = json.loads(render(comparison, "json"))
    assert doc["exit_code"] == 1 and len(doc["findings"][0]["ratios"]) == 6
    assert render(comparison, "markdown").startswith("### ❌ benchkit ab")


def test_no_change_passes_despite_machine_drift(steady_set, tmp_path):
    make_rounds(tmp_path, steady_set, 6, head_factor=1.0, seed=1)
    comparison = analyse(tmp_path, [1, 2, 3, 4, 5, 6], "base", "head")
    assert comparison.exit_code == 0, render(comparison)
    assert {f.verdict for f in comparison.findings} <= {"same", "within"}
    assert "0 changed" in " ".join(comparison.notes)


def test_a_run_that_now_errors_fails_like_compare(steady_set, tmp_path):
    make_rounds(tmp_path, steady_set, 2, head_factor=1.0)

    def break_one(frame):
        frame.loc[0, "status"] = "error"
        frame.loc[0, "status_detail"] = "RuntimeError: planted"

    edit_results(ab.round_folder(tmp_path, 1, "head"), break_one)
    comparison = analyse(tmp_path, [1, 2], "base", "head")
    assert comparison.exit_code == 1
    assert any("planted" in line for line in comparison.extra_failures)


def test_ctrl_c_keeps_the_finished_rounds(steady_set, tmp_path, monkeypatch):
    out = tmp_path / "ab"
    out.mkdir()
    plan = ab.Plan(
        tmp_path,
        ab.Revision("base", "main", "a" * 40, tmp_path),
        ab.Revision("head", "HEAD", "b" * 40, tmp_path),
        "suite",
        [],
        6,
        out,
        "reuse",
        "test",
    )
    ran = []

    def fake_run(revision, plan, number):
        if number == 3 and revision.side == "head":
            raise KeyboardInterrupt  # Ctrl-C in the third round, its first run done
        ran.append((number, revision.side))
        return copy_set(steady_set, ab.round_folder(plan.out, number, revision.side))

    monkeypatch.setattr(ab, "run_side", fake_run)
    finished, interrupted = ab.execute(plan, progress=False)
    assert interrupted and finished == [1, 2]
    assert ran == [(1, "base"), (1, "head"), (2, "head"), (2, "base"), (3, "base")]
    manifest = json.loads((out / "ab.json").read_text())
    assert manifest["state"] == "interrupted" and manifest["rounds_finished"] == [1, 2]
    comparison = analyse(out, finished, "base", "head")
    comparison.interrupted = True
    assert comparison.rounds == 2 and comparison.exit_code == 130
    assert "INTERRUPTED" in render(comparison) and "(exit 130)" in render(comparison)


def test_a_venv_that_cannot_be_made_is_a_one_line_error_with_its_log(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    log = tmp_path / "out" / "logs" / "venv-base.log"
    with pytest.raises(ab.BenchkitError, match="making the environment") as caught:
        ab.make_venv(tree, tmp_path / "venv", "not-a-package-name-benchkit==0.0.0", log)
    assert "\n" not in str(caught.value) and str(log) in str(caught.value)
    assert "pip" in log.read_text()
