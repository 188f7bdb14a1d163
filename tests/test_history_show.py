"""``benchkit history add`` and ``history show`` on a made-up history: twelve commits of a
real git repository, throughput −20 % from the seventh, and one run converging later from the
ninth."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import numpy as np
import pytest
from _resultsets import copy_set, edit_meta, edit_results, scale_speed, shared_tiny_set

from benchkit.cli import main
from benchkit.history import load
from benchkit.history.series import build_series, select

COMMITS = 12
SLOWER_FROM = 6  # throughput x 0.8 from this commit on
LATER_FROM = 8  # single_neuron/fp32 seed 0 converges 5 epochs later from this commit on


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture(scope="module")
def history_db(tmp_path_factory) -> tuple[Path, list[str]]:
    tiny = shared_tiny_set(tmp_path_factory)
    root = tmp_path_factory.mktemp("history")
    repo = root / "repo"
    repo.mkdir()
    git(repo, "init", "--quiet")
    git(repo, "config", "user.email", "test@example.com")
    git(repo, "config", "user.name", "test")
    rng = np.random.default_rng(0)
    commits, sets = [], []
    for i in range(COMMITS):
        git(repo, "commit", "--allow-empty", "--quiet", "-m", f"commit {i}")
        sha = git(repo, "rev-parse", "HEAD")
        commits.append(sha)
        folder = copy_set(tiny, root / f"set{i}")

        def stamp(meta: dict, sha: str = sha, i: int = i) -> None:
            meta["environment"]["git"] = {"commit": sha, "dirty": False}
            meta["started_at"] = f"2026-02-{i + 1:02d}T10:00:00+0000"

        edit_meta(folder, stamp)
        factor = (0.8 if i >= SLOWER_FROM else 1.0) * (1 + rng.uniform(-0.02, 0.02))
        scale_speed(folder, factor)
        if i >= LATER_FROM:

            def later(frame):
                hit = (frame["model"] == "single_neuron") & (frame["precision"] == "fp32")
                hit &= frame["seed"] == 0
                frame.loc[hit, "converged_epoch"] += 5

            edit_results(folder, later)
        sets.append(folder)
    db = root / "history.sqlite"
    assert main(["history", "add", *map(str, sets), "--db", str(db), "--repo", str(repo)]) == 0
    return db, commits


def test_the_history_reads_back_in_commit_order(history_db):
    db, commits = history_db
    frame = load(db)
    assert list(dict.fromkeys(frame["commit"])) == commits
    assert frame["parent"].iloc[-1] == commits[-2]


def test_a_throughput_step_is_found_at_its_commit(history_db):
    db, commits = history_db
    rows = select(load(db), "samples_per_second", {"model": ["sine_mlp"]})
    [series] = build_series(rows, "samples_per_second")  # fp16 diverged: no throughput
    [step] = series.steps
    assert step.after == commits[SLOWER_FROM] and step.before == commits[SLOWER_FROM - 1]
    assert step.exact and step.first == step.last == commits[SLOWER_FROM]
    assert step.verdict == "regressed"
    assert step.ratio == pytest.approx(0.8, abs=0.03)
    assert step.high < 1


def test_a_deterministic_change_shows_its_exact_commit(history_db):
    db, commits = history_db
    rows = select(load(db), "converged_epoch", {"model": ["single_neuron"], "precision": ["fp32"]})
    [series] = build_series(rows, "converged_epoch")
    assert series.kind == "deterministic"
    [step] = series.steps
    assert step.after == commits[LATER_FROM] and step.exact
    assert step.verdict == "regressed"  # converges later


def test_show_writes_markdown_png_and_html(history_db, tmp_path, capsys):
    db, commits = history_db
    out = tmp_path / "show"
    assert main(["history", "show", "--db", str(db), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert commits[SLOWER_FROM][:10] in text and "regressed" in text
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == 3  # single_neuron fp32 and fp16, sine_mlp fp32
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in pngs)
    html = (out / "history.html").read_text()
    assert html.count("data:image/png;base64,") == 3 and 'class="regressed"' in html
    markdown = (out / "history.md").read_text()
    assert f"| {commits[SLOWER_FROM][:10]} |" in markdown
    assert all(f"]({p.name})" in markdown for p in pngs)


def test_show_prints_markdown_for_a_step_summary(history_db, tmp_path, capsys):
    db, commits = history_db
    argv = ["history", "show", "--db", str(db), "--out", str(tmp_path / "md")]
    assert main([*argv, "--format", "markdown", "--metric", "converged_epoch"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("### 🔴 benchkit history: converged_epoch")
    assert f"| {commits[LATER_FROM][:10]} |" in text


def test_the_database_can_come_from_the_environment(history_db, tmp_path, monkeypatch, capsys):
    db, _ = history_db
    monkeypatch.setenv("BENCHKIT_HISTORY", str(db))
    assert main(["history", "show", "--model", "sine_mlp", "--out", str(tmp_path / "env")]) == 0
    assert str(db) in capsys.readouterr().out


def test_unknown_metric_and_empty_filters_are_one_line_errors(history_db, tmp_path, capsys):
    db, _ = history_db
    base = ["history", "show", "--db", str(db), "--out", str(tmp_path / "x")]
    assert main([*base, "--metric", "nonsense"]) == 2
    assert main([*base, "--model", "nonsense"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "no metric 'nonsense'" in err[0] and "model nonsense" in err[1]


def test_a_foreign_database_exits_2_with_one_line(tmp_path, capsys):
    db = tmp_path / "other.sqlite"
    with sqlite3.connect(db) as other:
        other.execute("CREATE TABLE notes (text TEXT)")
    assert main(["history", "show", "--db", str(db)]) == 2
    assert main(["history", "add", "whatever", "--db", str(db)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all("not a benchkit history database" in line for line in err)
