"""The memory method measures each case's own peak, whatever ran before it."""

from __future__ import annotations

import importlib
import os
import sys
import textwrap

import pytest

from benchkit.memory import measure
from benchkit.registry import PluginHost, PluginInfo
from benchkit.suite import parse_suite

BIG_MIB = 160

PLUGIN = textwrap.dedent(
    """
    import torch
    from torch import nn
    import benchkit
    from benchkit import Data, Recipe, Split

    @benchkit.hookimpl
    def benchkit_register_datasets(register):
        def ballast(options):
            x = torch.ones(8, 1)
            # random values: every page is touched, so it is resident, not lazily mapped
            blob = torch.rand(options["mib"] * 2**20 // 4)
            return Data(train=Split((x,), x), info={"blob": blob})

        register("ballast", ballast, options={"mib": 0})

    @benchkit.hookimpl
    def benchkit_register_models(register):
        register("probe_linear", lambda data, options: nn.Linear(1, 1),
                 datasets={"ballast": Recipe(loss="mse", optimizer="sgd", lr=0.1, epochs=1)})
    """
)

SUITE = f"""
[suite]
kind = "memory"

[matrix]
devices = ["cpu"]
precisions = ["fp32"]
seeds = [0]

[[cases]]
model = "probe_linear"
dataset = "ballast"
options = {{ mib = {BIG_MIB} }}

[[cases]]
model = "probe_linear"
dataset = "ballast"
options = {{ mib = 0 }}
"""


@pytest.fixture
def suite(tmp_path, monkeypatch):
    (tmp_path / "memprobe_plugin.py").write_text(PLUGIN)
    (tmp_path / "suite.toml").write_text(SUITE)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    return tmp_path / "suite.toml"


def run_ids(suite_path):
    """The big and the tiny case's run ids, read from the suite with the probe plugin."""
    sys.path.insert(0, str(suite_path.parent))
    try:
        host = PluginHost()
        host.load_entry_points()
        host.add(importlib.import_module("memprobe_plugin"), PluginInfo(name="memprobe_plugin"))
        cases = parse_suite(suite_path, host.collect()).cases
    finally:
        sys.path.remove(str(suite_path.parent))
    big = next(c.run_id for c in cases if c.options["mib"] == BIG_MIB)
    tiny = next(c.run_id for c in cases if c.options["mib"] == 0)
    return big, tiny


@pytest.mark.skipif(
    not os.path.exists("/proc/self/clear_refs"),
    reason="the CPU method needs Linux /proc",
)
@pytest.mark.parametrize("order", ["big first", "tiny first"])
def test_a_large_case_reports_its_allocation_and_a_tiny_one_far_less(suite, order):
    big, tiny = run_ids(suite)
    sequence = [big, tiny] if order == "big first" else [tiny, big]
    got = {
        rid: measure(suite, rid, "train_step", plugins=("memprobe_plugin",), threads=1)
        for rid in sequence
    }
    for result in got.values():
        assert result.status == "ok", result.detail
    assert got[big].peak_memory_bytes >= BIG_MIB * 2**20
    assert got[tiny].peak_memory_bytes < 0.1 * BIG_MIB * 2**20
    assert "fresh process" in got[big].method


def test_a_probe_that_fails_is_an_error_with_its_reason(suite):
    result = measure(suite, "no/such/run/cpu/seed0", "train_step", plugins=("memprobe_plugin",))
    assert result.status == "error"
    assert result.detail == f"no/such/run/cpu/seed0 is not a case of {suite}"


TRIMMED = """
import torch
from benchkit_plugins.devices import CpuDevice

device = CpuDevice()
chunks, pins = [], []
for _ in range(512):  # 32 MiB in 64 KiB pieces from the heap, each held in place by a pin
    chunks.append(torch.ones(16 * 1024))
    pins.append(torch.ones(16))
del chunks  # an earlier run's memory, freed in the middle of the heap
device.reset_peak_memory()
again = [torch.ones(16 * 1024) for _ in range(512)]
print(device.peak_memory_bytes())
"""


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or not os.access("/proc/self/clear_refs", os.W_OK),
    reason="the CPU figure is measured on Linux only",
)
def test_a_cpu_run_counts_memory_an_earlier_run_freed():
    # Without handing freed heap pages back first, a run that reuses them grows the process
    # less, and its figure depended on the runs before it (35 MiB in one order, 3 in another).
    import subprocess

    out = subprocess.run(
        [sys.executable, "-c", TRIMMED], capture_output=True, text=True, check=True
    ).stdout
    assert int(out.split()[-1]) >= 30 * 2**20
