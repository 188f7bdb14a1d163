"""Does the harness slow down what it measures?

Trains sine_mlp for its 1000 epochs twice per round: once through benchkit (``run_case`` and
the result set writer's ``add``, the path ``benchkit run`` takes for every run: the run's curve
and series rows appended and flushed, ``results.csv`` and ``run.json`` replaced) and once
through a bare hand-written PyTorch loop doing the same work (same data, model, optimizer,
epochs), alternating the order every round, in one process. Prints each side's median wall
time, what writing the run cost, and their ratio. Target: at most 1.03 on the CPU.

    python benchmarks/overhead.py [--rounds 7] [--epochs 1000] [--threads 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from benchkit.cases import DeviceCache
from benchkit.registry import load_registry
from benchkit.resultset import ResultSetWriter
from benchkit.runner import run_case
from benchkit.suite import Case


def bare_loop(epochs: int, device: str) -> tuple[float, float]:
    """The hand-written loop: the source's recipe with nothing around it. Returns the seconds
    of the whole call and of the training loop alone."""
    start = time.perf_counter()
    torch.manual_seed(0)
    n, window = 2000, 20
    t = torch.linspace(0, 80, n)
    series = torch.sin(t) + 0.1 * torch.sin(3 * t)
    count = n - window - 1
    x = torch.stack([series[i : i + window] for i in range(count)]).to(device)
    y = series[window : window + count].unsqueeze(1).to(device)
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(window, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1)
    ).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.MSELoss()
    loop_start = time.perf_counter()
    for _ in range(epochs):
        loss = loss_fn(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    end = time.perf_counter()
    return end - start, end - loop_start


def through_benchkit(
    case: Case, registry, devices: DeviceCache, writer: ResultSetWriter
) -> tuple[float, float, float]:
    """The same work through the runner and the writer. Returns (wall seconds, the run's own
    train seconds, seconds spent writing it)."""
    start = time.perf_counter()
    result = run_case(case, registry, devices)
    written = time.perf_counter()
    writer.add(result)
    elapsed = time.perf_counter() - start
    if result.status != "ok":
        raise SystemExit(f"benchkit run failed: {result.status} {result.status_detail}")
    return elapsed, result.train_seconds, elapsed - (written - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    registry = load_registry()
    model = registry.get("model", "sine_mlp")
    recipe = model.datasets["sine"].with_overrides({"epochs": args.epochs})
    case = Case(
        "sine_mlp",
        "sine",
        "fp32",
        args.device,
        0,
        recipe,
        options=dict(registry.get("dataset", "sine").options),
        model_options=dict(model.options),
    )
    devices = DeviceCache(registry)
    reason = devices.get(args.device).unavailable_reason()
    if reason:
        raise SystemExit(f"{args.device}: {reason}")

    folder = Path(tempfile.mkdtemp(prefix="benchkit-overhead-")) / "set"
    writer = ResultSetWriter(folder, {"kind": "convergence"})
    bare_loop(50, args.device)  # warm-up: first-call costs belong to neither side
    through_benchkit(case, registry, devices, writer)
    bare, bare_loop_s, kit, kit_train, kit_write = [], [], [], [], []
    for i in range(args.rounds):
        order = ("bare", "kit") if i % 2 == 0 else ("kit", "bare")
        for side in order:
            if side == "bare":
                wall, loop = bare_loop(args.epochs, args.device)
                bare.append(wall)
                bare_loop_s.append(loop)
            else:
                # the writer refuses a run_id it holds already: a new one per round
                case = dataclasses.replace(case, seed=0, tag=f"round{i}")
                wall, train, write = through_benchkit(case, registry, devices, writer)
                kit.append(wall)
                kit_train.append(train)
                kit_write.append(write)
    writer.close()

    med_bare, med_kit = statistics.median(bare), statistics.median(kit)
    loop_bare, loop_kit = statistics.median(bare_loop_s), statistics.median(kit_train)
    print(
        f"sine_mlp, {args.epochs} epochs, fp32, {args.device}, {args.threads} thread(s), "
        f"{args.rounds} alternating rounds"
    )
    print(f"  bare PyTorch loop      median {med_bare:.3f} s  (min {min(bare):.3f})")
    print(f"    of which the loop    median {loop_bare:.3f} s")
    print(f"  benchkit run_case      median {med_kit:.3f} s  (min {min(kit):.3f})")
    print(f"    of which training    median {loop_kit:.3f} s  (the rest: rollout metric, setup)")
    print(
        f"    of which writing     median {statistics.median(kit_write) * 1000:.1f} ms  "
        f"(curve and series rows appended and flushed, results.csv and run.json replaced; "
        f"{folder})"
    )
    # Each round's two sides ran back to back, so the ratio within a round cancels the slow
    # drift of a shared machine; the median over rounds is the figure held to the target.
    paired_loop = statistics.median(k / b for k, b in zip(kit_train, bare_loop_s, strict=True))
    paired_call = statistics.median(k / b for k, b in zip(kit, bare, strict=True))
    print(
        f"  ratio benchkit / bare  whole call {med_kit / med_bare:.3f} (median), "
        f"{min(kit) / min(bare):.3f} (min); training loop {loop_kit / loop_bare:.3f}"
    )
    print(
        f"  paired per round       whole call {paired_call:.3f}, training loop "
        f"{paired_loop:.3f} (median of the rounds' ratios)   target: training loop <= 1.03"
    )


if __name__ == "__main__":
    main()
