"""``benchkit ab`` for real: a git repository holding this benchkit, two commits, two rounds.
Each side must run its own code and its own suite."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from benchkit.cli import main

REPO = Path(__file__).resolve().parents[1]
SUITE = """
[suite]
name = "ab-tiny"

[matrix]
devices = ["cpu"]
precisions = ["fp32"]
seeds = [0]

[[cases]]
model = "single_neuron"
dataset = "single_point"
recipe = {{ epochs = {epochs} }}
"""


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.mark.slow
def test_ab_runs_each_revision_of_a_real_repository(tmp_path, monkeypatch, capsys):
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("benchkit", "plugins"):
        shutil.copytree(REPO / name, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", repo / "pyproject.toml")
    (repo / "suite.toml").write_text(SUITE.format(epochs=20))
    git(repo, "init", "--quiet")
    git(repo, "config", "user.email", "t@example.com")
    git(repo, "config", "user.name", "t")
    git(repo, "add", ".")
    git(repo, "commit", "--quiet", "-m", "base")
    # HEAD changes the core (a mark in run.json's environment) and the suite (more epochs)
    environment = repo / "benchkit" / "environment.py"
    text = environment.read_text()
    environment.write_text(text.replace('"command": argv,', '"command": argv, "ab_mark": "head",'))
    (repo / "suite.toml").write_text(SUITE.format(epochs=30))
    git(repo, "commit", "--quiet", "-am", "head")
    base, head = git(repo, "rev-parse", "HEAD~1"), git(repo, "rev-parse", "HEAD")

    monkeypatch.chdir(repo)
    out = tmp_path / "ab"
    argv = ["ab", "HEAD~1", "HEAD", "suite.toml", "--rounds", "2", "--out", str(out)]
    code = main([*argv, "--format", "json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    doc = json.loads(captured.out)
    assert doc["rounds"] == 2 and doc["findings"][0]["verdict"] == "unclear"  # 2 rounds
    # more epochs: deterministic figures changed (compare calls that a change, not a failure)
    assert doc["other_regressions"] == []
    assert any(" 0 changed" not in n for n in doc["notes"] if "deterministic" in n)
    for number in (1, 2):
        for side, sha, epochs, mark in (("base", base, 20, None), ("head", head, 30, "head")):
            folder = out / f"round-{number:02d}-{side}"
            meta = json.loads((folder / "run.json").read_text())
            assert meta["environment"]["git"]["commit"] == sha
            assert meta["environment"].get("ab_mark") == mark  # its own benchkit ran
            assert f"epochs = {epochs}" in meta["suite"]["text"]  # and its own suite
    manifest = json.loads((out / "ab.json").read_text())
    assert manifest["state"] == "finished" and manifest["environment"]["mode"] == "reuse"
    assert "benchkit-ab-" not in git(repo, "worktree", "list")  # cleaned up


def test_ab_outside_git_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["ab", "HEAD~1", "HEAD", "suite.toml"]) == 2
    assert "not inside a git repository" in capsys.readouterr().err
