"""Does spreading a suite over Dask workers pay, and does it change any result?

Runs the suite twice with the ``benchkit`` command, each in a fresh process and each timed
from the command's start to its exit (cluster start-up and shutdown included):

1. serially: ``benchkit run SUITE --device cpu --threads 1``;
2. on a local Dask cluster: ``benchkit run SUITE --device cpu --threads 1 --executor dask
   --workers 2 --share-hosts``;

prints both wall times and their ratio (target on a quiet 2-core machine: at most 0.7), then
``benchkit compare SERIAL DASK --strict --report-only noisy``, which must pass: the Dask run's
deterministic columns equal the serial run's, and its timings, taken on a shared host, are
marked (``timings_shared``) and never gate. Exits with compare's exit code (2: a run failed).

    python benchmarks/scale_out.py [--suite suites/convergence] [--workers 2] [--out DIR]
                                   [--model M,..] [--dataset D,..] [--precision P,..]
                                   [--seeds 0,1]

The filters narrow both runs alike (for a quick check on a busy machine); the target is for
the whole convergence suite on a quiet machine. Needs the extra: pip install 'benchkit[dask]'.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

TARGET = 0.7


def benchkit(*args: str) -> list[str]:
    """The ``benchkit`` command of this interpreter's environment."""
    found = shutil.which("benchkit", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "benchkit.cli"]


def timed_run(argv: list[str]) -> float:
    """Run ``benchkit run ...`` quietly; return its wall time in seconds."""
    start = time.perf_counter()
    done = subprocess.run([*benchkit(), *argv], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1):  # 1: a run ended in error, which compare will show
        sys.stderr.write(done.stderr)
        raise SystemExit(f"benchkit {' '.join(argv)} failed with exit {done.returncode}")
    return seconds


def main() -> int:
    """Run both, print the wall times, the ratio and the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="suites/convergence")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, help="folder for both result sets (default: temp)")
    for flag in ("--model", "--dataset", "--precision", "--seeds"):
        parser.add_argument(flag)
    args = parser.parse_args()

    out = args.out or Path(tempfile.mkdtemp(prefix="benchkit-scale-out-"))
    serial_out, dask_out = out / "serial", out / "dask"
    common = [args.suite, "--device", "cpu", "--threads", "1", "--quiet"]
    for flag in ("model", "dataset", "precision", "seeds"):
        if getattr(args, flag):
            common += [f"--{flag}", getattr(args, flag)]
    spread = ["--executor", "dask", "--workers", str(args.workers), "--share-hosts"]

    serial = timed_run(["run", *common, "--out", str(serial_out)])
    dask = timed_run(["run", *common, *spread, "--out", str(dask_out)])
    runs = len(pd.read_csv(serial_out / "results.csv"))
    rows = pd.read_csv(dask_out / "results.csv")
    shared = int(rows["timings_shared"].sum())
    ratio = dask / serial
    verdict = "meets" if ratio <= TARGET else "misses"
    print(f"suite {args.suite}: {runs} runs, cpu, --threads 1")
    print(f"serial:                          {serial:8.2f} s  ({serial_out})")
    print(f"dask --workers {args.workers} --share-hosts:   {dask:8.2f} s  ({dask_out})")
    print(
        f"ratio dask/serial: {ratio:.3f} ({verdict} the target of {TARGET}, "
        "which is for a quiet 2-core machine)"
    )
    print(f"dask runs marked timings_shared: {shared} of {len(rows)}")
    compare = [*benchkit(), "compare", str(serial_out), str(dask_out), "--strict"]
    compare += ["--report-only", "noisy"]
    print("$ benchkit compare SERIAL DASK --strict --report-only noisy", flush=True)
    return subprocess.run(compare).returncode


if __name__ == "__main__":
    sys.exit(main())
