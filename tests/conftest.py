"""Shared fixtures: small in-memory plugins for exercising the runner's edge cases."""

from __future__ import annotations

import os
import tempfile

# First: under mutation testing, benchkit_plugins must be the mutated copy (see the module).
import _mutation_paths  # noqa: F401
import benchkit_plugins.single_neuron as single_neuron
import pytest
import torch
from torch import nn

import benchkit
import benchkit.threads as threads
from benchkit import Data, Recipe, Split
from benchkit.testing import isolated_registry

# One thread: tiny models gain nothing from more, and a second busy process on a 2-core
# machine makes multi-threaded torch spin-wait and run many times slower.
torch.set_num_threads(1)
# Peak FLOP/s and bandwidth are cached per machine (benchkit/peaks.py): the tests keep theirs
# in a folder of their own (measured once per session), never in the user's ~/.cache.
os.environ.setdefault("BENCHKIT_CACHE_DIR", tempfile.mkdtemp(prefix="benchkit-test-cache-"))


_REAL_LOAD = {
    name: getattr(threads, name) for name in ("measure_load", "read_cpu_times", "CONTENDED_SPREAD")
}


@pytest.fixture(scope="session", autouse=True)
def quiet_machine():
    """Tests see a quiet machine: the start-up load probe reports idle cores at once, and no
    run is judged contended, whatever else this machine is doing (session-wide, so result sets
    made by session fixtures see it too). The tests of benchkit.threads call its functions
    with readings of their own; a test marked ``real_load`` sees the machine as it is."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            threads, "measure_load", lambda seconds=0: threads.CpuLoad(2, 0.0, "tests: quiet")
        )
        patch.setattr(threads, "read_cpu_times", lambda: None)
        patch.setattr(threads, "CONTENDED_SPREAD", float("inf"))
        yield


@pytest.fixture(autouse=True)
def _real_load(request, monkeypatch):
    if request.node.get_closest_marker("real_load"):
        for name, value in _REAL_LOAD.items():
            monkeypatch.setattr(threads, name, value)


class ToyPlugin:
    """Datasets and models that misbehave on purpose."""

    @benchkit.hookimpl
    def benchkit_register_datasets(self, register):
        def ramp(options):
            x = torch.linspace(0, 1, options["n"]).unsqueeze(1)
            valid = Split((x[:4],), 2 * x[:4])
            return Data(train=Split((x,), 2 * x), valid=valid, info={"in_features": 1})

        def broken(options):
            raise benchkit.errors.BenchkitError("toy dataset: file data.csv is missing")

        register("toy_ramp", ramp, options={"n": 64})
        register("toy_broken", broken)

    @benchkit.hookimpl
    def benchkit_register_models(self, register):
        def linear(data, options):
            return nn.Linear(1, 1)

        def exploding(data, options):
            model = nn.Linear(1, 1)
            with torch.no_grad():
                model.weight.fill_(1e30)
            return model

        def raising(data, options):
            raise RuntimeError("model factory bug")

        recipe = Recipe(loss="mse", optimizer="sgd", lr=0.1, epochs=20)
        register("toy_linear", linear, datasets={"toy_ramp": recipe, "toy_broken": recipe})
        register("toy_exploding", exploding, datasets={"toy_ramp": recipe})
        register("toy_raising", raising, datasets={"toy_ramp": recipe})


@pytest.fixture(scope="session")
def toy_registry():
    """single_neuron plus the toy plugin, with the built-in devices and precisions."""
    return isolated_registry(single_neuron, ToyPlugin())
