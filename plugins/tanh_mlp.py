"""``tanh_mlp``: the temperature notebook's small network (*Deep Learning with PyTorch*, ch. 6).

``Linear(1, hidden) → Tanh → Linear(hidden, 1)`` on the eleven thermometer readings
(``celsius``, registered by the ``single_neuron`` plugin), trained as the notebook trains it:
MSE, plain SGD with lr 1e-3, full batch, 5000 epochs.

``hidden`` defaults to 13, the width the book's text defines; the notebook's printed log comes
from an 8-unit model (its printed hidden-layer gradient has 8 rows), so ``suites/reproduce``
sets ``hidden = 8``. ``docs/workloads.md`` has the figures.

The evaluation returns ``valid_predicted``: the model's output for each validation reading, in
the validation split's order (a ``series.csv`` series; the notebook prints its outputs for its
validation pair).
"""

from __future__ import annotations

from torch import nn

import benchkit
import benchkit.errors
from benchkit import Data, Recipe

#: The notebook's recipe for the tanh network (``optim.SGD(lr=1e-3)``, 5000 epochs).
NOTEBOOK_RECIPE = Recipe(loss="mse", optimizer="sgd", lr=1e-3, epochs=5000)


def build(data: Data, options: dict) -> nn.Module:
    """``nn.Sequential(Linear(in, hidden), Tanh(), Linear(hidden, 1))``."""
    hidden = options["hidden"]
    if hidden < 1:
        raise benchkit.errors.BenchkitError(f"tanh_mlp: hidden must be at least 1, got {hidden}")
    return nn.Sequential(
        nn.Linear(data.info.get("in_features", 1), hidden),
        nn.Tanh(),
        nn.Linear(hidden, 1),
    )


def valid_predictions(model: nn.Module, data: Data, context) -> dict[str, list[float]]:
    """The output for each validation sample, in the split's order."""
    if data.valid is None:
        return {}
    predicted = model(*data.valid.inputs).detach().reshape(-1)
    return {"valid_predicted": [float(v) for v in predicted]}


@benchkit.hookimpl
def benchkit_register_models(register):
    """The tanh network on the thermometer readings."""
    register(
        "tanh_mlp",
        build,
        datasets={"celsius": NOTEBOOK_RECIPE},
        evaluate=valid_predictions,
        options={"hidden": 13},
        description="Linear(1, hidden) → Tanh → Linear(hidden, 1): the temperature notebook's",
    )
