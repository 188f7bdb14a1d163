"""CUDA paths. Skipped where no NVIDIA GPU is visible (CI never has one)."""

from __future__ import annotations

import pytest
import torch

import benchkit.training as training
from benchkit.testing import run_quick

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_a_run_on_cuda_names_the_gpu_and_measures_its_memory(benchkit_registry):
    result = run_quick(benchkit_registry, "sine_mlp", "sine", device="cuda", epochs=20)
    assert result.status == "ok", result.status_detail
    assert result.device_name == torch.cuda.get_device_name(0)
    assert result.peak_memory_bytes > 1979 * 20 * 4  # at least the training inputs
    assert result.train_seconds > 0


def test_the_loop_syncs_per_chunk_not_per_epoch(benchkit_registry, monkeypatch):
    monkeypatch.setattr(training, "READ_EVERY_SECONDS", float("inf"))
    monkeypatch.setattr(training, "MAX_CHUNK", 50)
    syncs = []
    real = torch.cuda.synchronize
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a: (syncs.append(1), real(*a)))
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with pytest.warns(UserWarning) as warned:
            result = run_quick(benchkit_registry, "sine_mlp", "sine", device="cuda", epochs=200)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert result.status == "ok"
    implicit = [w for w in warned if "synchroniz" in str(w.message)]
    # 4 chunk reads of the curve, plus the set-up and evaluation; never one per epoch
    assert len(implicit) < 50, [str(w.message) for w in implicit[:5]]


@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
def test_same_seed_same_curve_on_cuda(benchkit_registry, precision):
    a = run_quick(
        benchkit_registry, "single_neuron", "celsius", device="cuda", precision=precision, epochs=50
    )
    b = run_quick(
        benchkit_registry, "single_neuron", "celsius", device="cuda", precision=precision, epochs=50
    )
    assert a.curve == b.curve
