"""``single_neuron``: one weight and one bias (``nn.Linear(1, 1)``) on three tiny datasets.

- ``single_point``: x = [1], y = [1], SGD lr 0.1: the source's float16 experiment.
- ``line``: y = 0.7 x + 0.3 on 50 points, L1 loss; the learned weight and bias approach 0.7/0.3.
- ``celsius``: eleven thermometer readings in an unknown unit against Celsius, input scaled by
  0.1, a random 80/20 train/validation split.
"""

from __future__ import annotations

import torch
from torch import nn

import benchkit
from benchkit import Data, Metric, Recipe, Split

CELSIUS = [0.5, 14.0, 15.0, 28.0, 11.0, 8.0, 3.0, -4.0, 6.0, 13.0, 21.0]
UNKNOWN_UNIT = [35.7, 55.9, 58.2, 81.9, 56.3, 48.9, 33.9, 21.8, 48.4, 60.4, 68.4]


def single_point(options: dict) -> Data:
    """x = [1.0], y = [1.0]: one sample, one step per epoch."""
    x = torch.tensor([[1.0]])
    return Data(train=Split((x,), torch.tensor([[1.0]])), info={"in_features": 1})


def line(options: dict) -> Data:
    """50 points of y = 0.7 x + 0.3 on [0, 1); first 80 % train, last 20 % test."""
    x = torch.arange(0, 1, 0.02).unsqueeze(1)
    y = 0.7 * x + 0.3
    cut = int(0.8 * len(x))
    return Data(
        train=Split((x[:cut],), y[:cut]),
        test=Split((x[cut:],), y[cut:]),
        info={"in_features": 1},
    )


def celsius(options: dict) -> Data:
    """Thermometer readings; input scaled by 0.1; seeded random 80/20 train/validation split."""
    t_c = torch.tensor(CELSIUS).unsqueeze(1)
    t_un = 0.1 * torch.tensor(UNKNOWN_UNIT).unsqueeze(1)
    n_val = int(0.2 * len(t_c))
    order = torch.randperm(len(t_c))
    train_idx, val_idx = order[:-n_val], order[-n_val:]
    return Data(
        train=Split((t_un[train_idx],), t_c[train_idx]),
        valid=Split((t_un[val_idx],), t_c[val_idx]),
        info={"in_features": 1},
    )


def build(data: Data, options: dict) -> nn.Module:
    """``nn.Linear(1, 1)``."""
    return nn.Linear(data.info.get("in_features", 1), 1)


def learned_parameters(model: nn.Module, data: Data, context) -> dict[str, float]:
    """The learned weight and bias, to read against the generating ones (0.7/0.3 for line)."""
    return {"weight": float(model.weight.flatten()[0]), "bias": float(model.bias.flatten()[0])}


@benchkit.hookimpl
def benchkit_register_datasets(register):
    """The three single-neuron datasets."""
    register("single_point", single_point, description="x = y = 1 (the float16 experiment)")
    register("line", line, description="y = 0.7x + 0.3, 40 train / 10 test points")
    register("celsius", celsius, description="11 thermometer readings, 80/20 random split")


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
        metrics={
            "weight": Metric(description="the learned weight (line: generated with 0.7)"),
            "bias": Metric(description="the learned bias (line: generated with 0.3)"),
        },
        description="nn.Linear(1, 1): one weight, one bias",
    )
