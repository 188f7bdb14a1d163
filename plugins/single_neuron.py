"""``single_neuron``: one weight and one bias on three tiny datasets.

The sources, their recipes and what they printed are in ``docs/workloads.md``.

- ``single_point``: x = [1], y = [1], SGD lr 0.1: the float16 notebook's experiment.
- ``line``: y = 0.7 x + 0.3 on 50 points, L1 loss; the learned weight and bias approach
  0.7/0.3. The lecture's model is ``weights * x + bias`` with both drawn by ``torch.randn(1)``,
  and so is benchkit's on this dataset (``init = "source"``). The lecture evaluates its 10 test
  points every epoch; they are also the validation split, so the curve's ``valid_loss`` is
  that test MAE (taken before each step, where the lecture takes it after).
- ``celsius``: eleven thermometer readings in an unknown unit against Celsius, input scaled by
  0.1, a random 80/20 train/validation split (``split = "notebook"``: the notebook's printed
  pair, t_c = 11 and 15, validates).

The model (option ``init``): ``"linear"`` is ``nn.Linear(1, 1)`` with torch's own uniform
start, as the float16 notebook and the temperature notebook build it; ``"randn"`` is the
lecture's module, ``weight * x + bias`` with both parameters drawn by ``torch.randn(1)`` (its
elementwise product rounds as the lecture's does; ``nn.Linear``'s matrix product may fuse
the multiply and the add); ``"source"`` (the default) is whichever of the two the dataset's
source used: ``randn`` on ``line``, ``linear`` elsewhere. ``weight`` and ``bias`` set the
starting values (after the draw, so the random stream is the same either way), where a
source printed them.
"""

from __future__ import annotations

import torch
from torch import nn

import benchkit
import benchkit.errors
from benchkit import Data, Metric, Recipe, Split

CELSIUS = [0.5, 14.0, 15.0, 28.0, 11.0, 8.0, 3.0, -4.0, 6.0, 13.0, 21.0]
UNKNOWN_UNIT = [35.7, 55.9, 58.2, 81.9, 56.3, 48.9, 33.9, 21.8, 48.4, 60.4, 68.4]


def single_point(options: dict) -> Data:
    """x = [1.0], y = [1.0]: one sample, one step per epoch."""
    x = torch.tensor([[1.0]])
    return Data(train=Split((x,), torch.tensor([[1.0]])), info={"in_features": 1})


#: The temperature notebook's validation pair: the readings t_c = 11 and 15 (t_u = 56.3, 58.2).
NOTEBOOK_VALID = [4, 2]
INITS = ("source", "linear", "randn")
SPLITS = ("random", "notebook")


def line(options: dict) -> Data:
    """50 points of y = 0.7 x + 0.3 on [0, 1); first 80 % train, last 20 % test, which is
    also the validation split (evaluated every epoch, as the lecture does)."""
    x = torch.arange(0, 1, 0.02).unsqueeze(1)
    y = 0.7 * x + 0.3
    cut = int(0.8 * len(x))
    test = Split((x[cut:],), y[cut:])
    return Data(
        train=Split((x[:cut],), y[:cut]),
        valid=test,
        test=test,
        info={"in_features": 1, "source_init": "randn"},  # the lecture's model (build)
    )


def celsius(options: dict) -> Data:
    """Thermometer readings; input scaled by 0.1; a seeded random 80/20 train/validation
    split, or with ``split = "notebook"`` the notebook's pair validating and the other nine,
    in file order, training."""
    split = options.get("split", "random")
    if split not in SPLITS:
        raise benchkit.errors.BenchkitError(
            f"celsius: split {split!r} is not one of {', '.join(SPLITS)}"
        )
    t_c = torch.tensor(CELSIUS).unsqueeze(1)
    t_un = 0.1 * torch.tensor(UNKNOWN_UNIT).unsqueeze(1)
    if split == "notebook":
        val_idx = torch.tensor(NOTEBOOK_VALID)
        train_idx = torch.tensor([i for i in range(len(t_c)) if i not in NOTEBOOK_VALID])
    else:
        n_val = int(0.2 * len(t_c))
        order = torch.randperm(len(t_c))
        train_idx, val_idx = order[:-n_val], order[-n_val:]
    return Data(
        train=Split((t_un[train_idx],), t_c[train_idx]),
        valid=Split((t_un[val_idx],), t_c[val_idx]),
        info={"in_features": 1},
    )


class RandnNeuron(nn.Module):
    """The lecture's model: ``weight * x + bias``, both parameters drawn by ``torch.randn(1)``
    (weight first)."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1))
        self.bias = nn.Parameter(torch.randn(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(samples, 1) → (samples, 1)."""
        return self.weight * x + self.bias


def build(data: Data, options: dict) -> nn.Module:
    """``nn.Linear(1, 1)`` or the lecture's :class:`RandnNeuron` (option ``init``), from the
    ``weight`` and ``bias`` options where they are set."""
    init = options.get("init", "source")
    if init not in INITS:
        raise benchkit.errors.BenchkitError(
            f"single_neuron: init {init!r} is not one of {', '.join(INITS)}"
        )
    if init == "source":
        init = data.info.get("source_init", "linear")
    in_features = data.info.get("in_features", 1)
    if init == "randn" and in_features != 1:
        raise benchkit.errors.BenchkitError(
            f"single_neuron: init 'randn' is the one-input lecture model; this dataset has "
            f"{in_features} inputs"
        )
    model = RandnNeuron() if init == "randn" else nn.Linear(in_features, 1)
    for name in ("weight", "bias"):
        value = options.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise benchkit.errors.BenchkitError(
                f"single_neuron: {name} must be a number (the starting value), got {value!r}"
            )
        with torch.no_grad():
            getattr(model, name).fill_(float(value))
    return model


def learned_parameters(model: nn.Module, data: Data, context) -> dict[str, float]:
    """The learned weight and bias, to read against the generating ones (0.7/0.3 for line)."""
    return {"weight": float(model.weight.flatten()[0]), "bias": float(model.bias.flatten()[0])}


@benchkit.hookimpl
def benchkit_register_datasets(register):
    """The three single-neuron datasets."""
    register("single_point", single_point, description="x = y = 1 (the float16 experiment)")
    register("line", line, description="y = 0.7x + 0.3, 40 train / 10 test (and validation) points")
    register(
        "celsius",
        celsius,
        options={"split": "random"},
        description="11 thermometer readings, 80/20 random split (or the notebook's)",
    )


@benchkit.hookimpl
def benchkit_register_models(register):
    """The single neuron with its recipe per dataset."""
    register(
        "single_neuron",
        build,
        datasets={
            "single_point": Recipe(loss="mse", optimizer="sgd", lr=0.1, epochs=100),
            "line": Recipe(loss="l1", optimizer="sgd", lr=0.01, epochs=500),
            "celsius": Recipe(loss="mse", optimizer="sgd", lr=1e-2, epochs=3000),
        },
        evaluate=learned_parameters,
        options={"init": "source", "weight": None, "bias": None},
        metrics={
            "weight": Metric(description="the learned weight (line: generated with 0.7)"),
            "bias": Metric(description="the learned bias (line: generated with 0.3)"),
        },
        description="one weight, one bias: nn.Linear(1, 1), or the lecture's randn neuron",
    )
