"""One training step and one inference batch of every case in suite.toml, timed by
pytest-benchmark. ``benchkit run suites/throughput`` runs these and turns the JSON into a
result table; ``pytest suites/throughput`` runs them directly."""

import pytest


@pytest.mark.benchkit_kind("train_step")
def test_train_step(benchmark, benchkit_case):
    """Forward, backward and optimizer step on one batch."""
    benchmark(benchkit_case.train_step)


@pytest.mark.benchkit_kind("inference")
def test_inference(benchmark, benchkit_case):
    """A forward pass on one batch, without gradients."""
    benchmark(benchkit_case.inference)
