"""The thermometer network of *Deep Learning with PyTorch* (chapter 6), as a benchkit plugin.

- model ``thermometer_mlp``: ``nn.Sequential(nn.Linear(1, 13), nn.Tanh(), nn.Linear(13, 1))``,
  trained as the book trains it: MSE loss, plain SGD with lr 1e-3, full batch, 5000 epochs. It
  fits benchkit's own ``celsius`` dataset (the eleven readings, registered by benchkit's
  built-in ``single_neuron`` plugin) and this plugin's ``thermometer_noisy``.
- dataset ``thermometer_noisy``: the eleven readings plus ``samples`` synthetic ones, drawn
  around the straight line fitted to the readings with their own scatter.

Both datasets scale the input by 0.1, as the book does, and hold out a random fifth of the
samples for validation. ``valid_mae_celsius`` is the model's mean absolute error in degrees
Celsius on that fifth.
"""

from __future__ import annotations

import benchkit
import torch
from benchkit import Data, Recipe, Split
from torch import nn

#: The benchkit hook API this plugin needs: same major version, at least this minor one.
benchkit_api = "1.0"

#: The book's readings: degrees Celsius, and the same temperatures in the unknown unit.
CELSIUS = [0.5, 14.0, 15.0, 28.0, 11.0, 8.0, 3.0, -4.0, 6.0, 13.0, 21.0]
UNKNOWN_UNIT = [35.7, 55.9, 58.2, 81.9, 56.3, 48.9, 33.9, 21.8, 48.4, 60.4, 68.4]

#: The book's recipe for the Sequential model (``optim.SGD(lr=1e-3)``, 5000 epochs).
BOOK_RECIPE = Recipe(loss="mse", optimizer="sgd", lr=1e-3, epochs=5000)


def linear_law() -> tuple[float, float]:
    """Slope and intercept of the least-squares line through the readings (°C per unit)."""
    t_u = torch.tensor(UNKNOWN_UNIT, dtype=torch.float64)
    t_c = torch.tensor(CELSIUS, dtype=torch.float64)
    design = torch.stack([t_u, torch.ones_like(t_u)], dim=1)
    slope, intercept = torch.linalg.lstsq(design, t_c.unsqueeze(1)).solution.flatten()
    return float(slope), float(intercept)


def thermometer_noisy(options: dict) -> Data:
    """The readings plus ``samples`` draws of t_u uniform in [20, 85) with
    t_c = slope * t_u + intercept + N(0, noise²). benchkit seeds torch before calling this, so
    a seed always draws the same samples."""
    slope, intercept = linear_law()
    t_u = 20 + 65 * torch.rand(options["samples"])
    t_c = slope * t_u + intercept + options["noise"] * torch.randn(options["samples"])
    t_u = torch.cat([torch.tensor(UNKNOWN_UNIT), t_u]).unsqueeze(1)
    t_c = torch.cat([torch.tensor(CELSIUS), t_c]).unsqueeze(1)
    return _split(0.1 * t_u, t_c)


def _split(x: torch.Tensor, y: torch.Tensor) -> Data:
    """A random 80/20 train/validation split, as the book makes it."""
    order = torch.randperm(len(x))
    n_valid = int(0.2 * len(x))
    train, valid = order[:-n_valid], order[-n_valid:]
    return Data(
        train=Split((x[train],), y[train]),
        valid=Split((x[valid],), y[valid]),
        info={"in_features": 1},
    )


def thermometer_mlp(data: Data, options: dict) -> nn.Module:
    """One input, ``hidden`` tanh units, one output (the book uses 13)."""
    hidden = options["hidden"]
    return nn.Sequential(
        nn.Linear(data.info.get("in_features", 1), hidden),
        nn.Tanh(),
        nn.Linear(hidden, 1),
    )


def valid_mae(model: nn.Module, data: Data, context) -> dict[str, float]:
    """Mean absolute error in degrees Celsius on the validation split."""
    if data.valid is None:
        return {}
    prediction = model(*data.valid.inputs)
    error = (prediction.float() - data.valid.target.float()).abs().mean()
    return {"valid_mae_celsius": float(error)}


@benchkit.hookimpl
def benchkit_register_datasets(register):
    """The noisier thermometer."""
    register(
        "thermometer_noisy",
        thermometer_noisy,
        options={"samples": 200, "noise": 1.8},
        description="the 11 readings + 200 draws around their fitted line (seeded)",
    )


@benchkit.hookimpl
def benchkit_register_models(register):
    """The 13-unit tanh network with the book's recipe on both thermometer datasets."""
    register(
        "thermometer_mlp",
        thermometer_mlp,
        datasets={"celsius": BOOK_RECIPE, "thermometer_noisy": BOOK_RECIPE},
        evaluate=valid_mae,
        options={"hidden": 13},
        description="Linear(1, 13) → Tanh → Linear(13, 1), SGD lr 1e-3 (the book's)",
    )
