"""Small real result sets for the compare, report and baseline tests, and ways to plant
changes in copies of them."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from benchkit.cli import main
from benchkit.run_result import warmup_epochs

TINY_SUITE = """
[suite]
name = "tiny"

[matrix]
devices = ["cpu"]
precisions = ["fp32", "fp16"]
seeds = [0, 1, 2]

[[cases]]
model = "single_neuron"
dataset = "single_point"
target_loss = 1e-6
recipe = { epochs = 40 }

[[cases]]
model = "sine_mlp"
dataset = "sine"
target_loss = 0.1
recipe = { epochs = 30 }
"""


def run_suite(folder: Path, text: str = TINY_SUITE) -> Path:
    """Run ``text`` as a suite with ``benchkit run``; returns the result set folder."""
    suite = folder / "suite.toml"
    folder.mkdir(parents=True, exist_ok=True)
    suite.write_text(text)
    out = folder / "results"
    assert main(["run", str(suite), "--out", str(out), "--quiet"]) == 0
    return out


_SHARED: dict[str, Path] = {}


def shared_tiny_set(factory: pytest.TempPathFactory) -> Path:
    """A real result set: single_neuron and sine_mlp, fp32 and fp16 (which diverges on
    sine_mlp), seeds 0-2, a few epochs each; made once per test session. Tests copy it before
    changing anything."""
    key = str(factory.getbasetemp())
    if key not in _SHARED:
        _SHARED[key] = run_suite(factory.mktemp("tiny"))
    return _SHARED[key]


def copy_set(src: Path, dst: Path) -> Path:
    """A copy of a result set to plant changes in."""
    shutil.copytree(src, dst)
    return dst


def edit_results(folder: Path, change: Callable[[pd.DataFrame], pd.DataFrame | None]) -> None:
    """Apply ``change`` to results.csv: it edits the frame in place or returns a new one."""
    frame = pd.read_csv(folder / "results.csv", converters={"variant": str, "status_detail": str})
    changed = change(frame)
    (frame if changed is None else changed).to_csv(folder / "results.csv", index=False)


def edit_meta(folder: Path, change: Callable[[dict], None]) -> None:
    """Apply ``change`` to run.json in place."""
    meta = json.loads((folder / "run.json").read_text())
    change(meta)
    (folder / "run.json").write_text(json.dumps(meta))


def scale_speed(
    folder: Path, factor: float, jitter: float = 0.0, seed: int = 0, share: float = 1.0
) -> None:
    """Make runs ``factor`` times as fast (0.5: throughput -50 %): per-epoch durations in
    curves.csv, samples_per_second and train_seconds. ``share`` < 1 slows only that share of
    the epochs, at random, as another process on the CPU does; ``jitter`` adds a random ±
    fraction to each epoch's duration."""
    import numpy as np

    curves = pd.read_csv(folder / "curves.csv", converters={"variant": str})
    rng = np.random.default_rng(seed)
    parts = []
    for _, run in curves.groupby("run_id", sort=False):
        durations = np.diff(run["seconds"].to_numpy(), prepend=0.0)
        hit = rng.uniform(0, 1, len(durations)) < share
        durations = np.where(hit, durations / factor, durations)
        durations *= 1 + rng.uniform(-jitter, jitter, len(durations))
        parts.append(run.assign(seconds=np.cumsum(durations)))
    pd.concat(parts).to_csv(folder / "curves.csv", index=False)

    def change(frame: pd.DataFrame) -> None:
        frame["samples_per_second"] *= factor
        frame["train_seconds"] /= factor

    edit_results(folder, change)


def steady_timings(
    folder: Path, epoch_seconds: float = 0.002, spread: float = 0.05, seed: int = 0
) -> None:
    """Give every run fixed per-epoch durations: ``epoch_seconds`` times a seeded random
    factor within ± ``spread``, the same for every run and every session, as a quiet machine
    gives them. results.csv's ``train_seconds`` and ``samples_per_second`` are recomputed to
    match.

    The durations the tiny set was measured with must not leak into tests that plant a
    slowdown: on a busy machine one seed's run can be half as fast as another's, and the
    bootstrap over runs then rightly calls a planted -20 % noise (this made the planted
    regression tests fail about once in ten full runs)."""
    import numpy as np

    curves = pd.read_csv(folder / "curves.csv", converters={"variant": str})
    rng = np.random.default_rng(seed)
    parts = []
    for _, run in curves.sort_values(["run_id", "epoch"]).groupby("run_id", sort=True):
        steady = epoch_seconds * (1 + rng.uniform(-spread, spread, len(run)))
        parts.append(run.assign(seconds=np.cumsum(steady)))
    curves = pd.concat(parts)
    curves.to_csv(folder / "curves.csv", index=False)
    seconds = {run_id: run["seconds"].to_numpy() for run_id, run in curves.groupby("run_id")}

    def change(frame: pd.DataFrame) -> None:
        for i, row in frame.iterrows():
            run = seconds.get(row["run_id"])
            if run is None or not len(run):
                continue
            frame.loc[i, "train_seconds"] = run[-1]
            warm = warmup_epochs(len(run))
            if len(run) > warm:  # the runner's formula (benchkit.runner._measure)
                span = run[-1] - run[warm - 1]
                frame.loc[i, "samples_per_second"] = row["train_samples"] * (len(run) - warm) / span

    edit_results(folder, change)


def set_memory(folder: Path, mib: float) -> None:
    """Give every run ``mib`` MiB of peak memory."""

    def change(frame: pd.DataFrame) -> None:
        frame["peak_memory_bytes"] = int(mib * 1024 * 1024)

    edit_results(folder, change)
