"""Does the README's first command hold up on a busy machine?

Runs the sine MLP case of the README's first command exactly as a user types it (no
``--threads``)::

    benchkit run suites/convergence --model sine_mlp --dataset sine --precision fp32 \\
        --device cpu --seeds 0

on a quiet machine, with one, and with two other CPU-bound processes (``python -c "while True:
pass"``, started before and killed after each run), the three conditions alternating round by
round. Prints per condition the median training time (``train_seconds`` from results.csv) and
wall time of the command, their ratio to the quiet time against the targets (at most 2x with one
other process, 2.5x with two, issue 11), the thread count benchkit chose, whether it warned
that the machine is busy, and whether the run was marked contended.

``--torch-default`` also runs each condition with ``--threads`` set to torch's own default (the
behaviour before the thread policy), for comparison.

    python benchmarks/contention.py [--rounds 5] [--torch-default]

The other processes are this script's children and are killed after each run. Run it on an
otherwise quiet machine: anything else running shifts every figure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

COMMAND = [
    "run",
    "suites/convergence",
    "--model",
    "sine_mlp",
    "--dataset",
    "sine",
    "--precision",
    "fp32",
    "--device",
    "cpu",
    "--seeds",
    "0",
]
CONDITIONS = {"quiet": 0, "one busy": 1, "two busy": 2}
TARGETS = {"one busy": 2.0, "two busy": 2.5}
BUSY_LOOP = "while True: pass"


@dataclass
class Sample:
    """One run of the command."""

    train: float
    wall: float
    threads: int | None
    warned: bool
    contended: bool


@dataclass
class Condition:
    """The runs of one condition and variant."""

    samples: list[Sample] = field(default_factory=list)

    def median(self, what: str) -> float:
        return statistics.median(getattr(s, what) for s in self.samples)


def burn(n: int) -> list[subprocess.Popen]:
    """Start ``n`` CPU-bound processes."""
    return [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(n)]


def stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        proc.kill()
    for proc in procs:
        proc.wait()


def run_once(out: Path, busy: int, threads: int | None, settle: float) -> Sample:
    """The command once, with ``busy`` other processes running from ``settle`` s before."""
    procs = burn(busy)
    try:
        time.sleep(settle)
        cmd = [sys.executable, "-m", "benchkit.cli", *COMMAND, "--out", str(out)]
        if threads is not None:
            cmd += ["--threads", str(threads)]
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - start
    finally:
        stop(procs)
    if done.returncode != 0:
        raise SystemExit(f"benchkit exited {done.returncode}: {done.stderr.strip()[-500:]}")
    import pandas as pd

    row = pd.read_csv(out / "results.csv").iloc[0]
    meta = json.loads((out / "run.json").read_text())
    return Sample(
        train=float(row["train_seconds"]),
        wall=wall,
        threads=meta["environment"].get("torch_threads"),
        warned="the CPU is busy" in done.stderr or "shared the CPU" in done.stderr,
        contended=str(row.get("contended")).lower() == "true",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="runs per condition (default 5)")
    parser.add_argument(
        "--torch-default",
        action="store_true",
        help="also run each condition with --threads set to torch's default (before the policy)",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=1.0,
        help="seconds the other processes run before benchkit starts (default 1)",
    )
    args = parser.parse_args()
    import torch

    default = torch.get_num_threads()
    variants: dict[str, int | None] = {"policy": None}
    if args.torch_default:
        variants[f"--threads {default}"] = default
    results = {(c, v): Condition() for c in CONDITIONS for v in variants}
    names = list(CONDITIONS)
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            order = names[round_ % len(names) :] + names[: round_ % len(names)]
            for condition in order:
                for variant, threads in variants.items():
                    out = Path(tmp) / f"r{round_}-{condition.replace(' ', '-')}-{threads}"
                    sample = run_once(out, CONDITIONS[condition], threads, args.settle)
                    results[condition, variant].samples.append(sample)
                    print(
                        f"  round {round_ + 1}: {condition:9} {variant:12} train "
                        f"{sample.train:6.2f} s  wall {sample.wall:6.2f} s  threads "
                        f"{sample.threads}  warned {sample.warned}  contended {sample.contended}",
                        file=sys.stderr,
                    )
    print(
        f"README's first command, sine_mlp fp32 cpu seed 0; {args.rounds} alternating rounds; "
        f"torch's default is {default} threads on this machine"
    )
    print(
        f"  {'condition':10} {'variant':12} {'train s':>8} {'wall s':>8} {'ratio':>6} "
        f"{'target':>7}  threads  warned  contended"
    )
    for variant in variants:
        quiet = results["quiet", variant].median("train")
        for condition in CONDITIONS:
            cell = results[condition, variant]
            ratio = cell.median("train") / quiet
            target = TARGETS.get(condition)
            verdict = "" if target is None else ("ok" if ratio <= target else "MISSED")
            threads = sorted({s.threads for s in cell.samples}, key=str)
            warned = sum(s.warned for s in cell.samples)
            contended = sum(s.contended for s in cell.samples)
            n = len(cell.samples)
            print(
                f"  {condition:10} {variant:12} {cell.median('train'):8.2f} "
                f"{cell.median('wall'):8.2f} {ratio:6.2f} "
                f"{'' if target is None else f'<= {target:g}':>7} {verdict:6} "
                f"{threads}  {warned}/{n}  {contended}/{n}"
            )


if __name__ == "__main__":
    main()
