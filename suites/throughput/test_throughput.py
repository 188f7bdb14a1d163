"""One training step and one inference batch of every case in suite.toml, timed by
pytest-benchmark in blocks of calls with one wait for the device per block.
``benchkit run suites/throughput`` runs these and turns the JSON into a result table;
``pytest suites/throughput`` runs them directly."""

import pytest


@pytest.mark.benchkit_kind("train_step")
def test_train_step(benchmark, benchkit_case):
    """Forward, backward and optimizer step on one batch."""
    benchkit_case.benchmark(benchmark, "train_step")


@pytest.mark.benchkit_kind("inference")
def test_inference(benchmark, benchkit_case):
    """A forward pass on one batch, without gradients."""
    benchkit_case.benchmark(benchmark, "inference")
