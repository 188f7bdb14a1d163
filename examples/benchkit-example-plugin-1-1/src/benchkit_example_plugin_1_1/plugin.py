"""Robust line fitting: a straight line through data with outliers, as a benchkit plugin.

- loss ``log_cosh``: log(cosh(r / scale)) of the residual r, quadratic near zero and linear
  far from it, so a few outliers pull the fit less than under MSE;
- optimizer ``sign_sgd``: steps by the sign of the gradient (signSGD, Bernstein et al. 2018),
  with optional momentum; every parameter moves by lr per step, whatever the loss's scale;
- dataset ``line_outliers``: 50 points of y = 0.7 x + 0.3 on [0, 1), of which a share
  (``outliers``) is shifted up by 2; seeded by benchkit. It offers itself to benchkit's
  built-in ``single_neuron`` model (``recipes=``) with this plugin's loss and optimizer;
- model ``robust_neuron``: ``nn.Linear(1, 1)`` with the same recipe, on ``line_outliers`` and
  on benchkit's own ``line``, and the metric ``inlier_share``: the share of the clean line's
  points it predicts within ``0.02``, declared higher-is-better so that ``benchkit compare``
  fails when it drops.
"""

from __future__ import annotations

import benchkit
import torch
from benchkit import Data, Metric, Recipe, Split
from torch import nn

#: The hook API this plugin needs: losses, optimizers, dataset recipes and metrics are 1.1's.
benchkit_api = "1.1"

#: The recipe on data with outliers: this plugin's loss and optimizer, benchkit's schedule.
ROBUST = Recipe(
    loss="log_cosh",
    optimizer="sign_sgd",
    lr=0.01,
    epochs=300,
    schedule="cosine",
)
TOLERANCE = 0.02


def log_cosh(scale: float):
    """The log-cosh loss of ``(prediction, target)``, averaged; ``scale`` sets where it
    turns from quadratic to linear."""

    def loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        r = (prediction - target) / scale
        # log(cosh(r)) = |r| + log1p(exp(-2|r|)) - log(2), without overflow for large |r|
        return (r.abs() + torch.log1p(torch.exp(-2 * r.abs())) - 0.6931471805599453).mean()

    return loss


class SignSGD(torch.optim.Optimizer):
    """signSGD with momentum (signum): p -= lr * sign(m), m = momentum * m + grad."""

    def __init__(self, params, lr: float, momentum: float) -> None:
        super().__init__(params, {"lr": lr, "momentum": momentum})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                direction = p.grad
                if group["momentum"]:
                    state = self.state[p]
                    buffer = state.setdefault("momentum", torch.zeros_like(p))
                    buffer.mul_(group["momentum"]).add_(p.grad)
                    direction = buffer
                p.add_(direction.sign(), alpha=-group["lr"])


def sign_sgd(params, lr: float | None, momentum: float) -> torch.optim.Optimizer:
    """``SignSGD`` over ``params``; lr 0.01 when the recipe gives none."""
    return SignSGD(params, lr=0.01 if lr is None else lr, momentum=momentum)


def line_outliers(options: dict) -> Data:
    """50 points of y = 0.7 x + 0.3 with a seeded share shifted up by 2; the clean line as
    the test split."""
    x = torch.arange(0, 1, 0.02).unsqueeze(1)
    clean = 0.7 * x + 0.3
    shifted = torch.rand(len(x), 1) < options["outliers"]
    return Data(
        train=Split((x,), clean + 2.0 * shifted),
        test=Split((x,), clean),
        info={"in_features": 1},
    )


def robust_neuron(data: Data, options: dict) -> nn.Module:
    """``nn.Linear(1, 1)``."""
    return nn.Linear(data.info.get("in_features", 1), 1)


def inlier_share(model: nn.Module, data: Data, context) -> dict[str, float]:
    """The share of the clean line's points predicted within ``TOLERANCE``."""
    split = data.test if data.test is not None else data.train
    error = (model(*split.inputs) - split.target).float().abs()
    return {"inlier_share": float((error <= TOLERANCE).float().mean())}


@benchkit.hookimpl
def benchkit_register_losses(register):
    """The log-cosh loss."""
    register("log_cosh", log_cosh, options={"scale": 0.1}, description="log(cosh(r / scale))")


@benchkit.hookimpl
def benchkit_register_optimizers(register):
    """signSGD."""
    register(
        "sign_sgd",
        sign_sgd,
        options={"momentum": 0.0},
        description="steps by the sign of the gradient (signSGD; signum with momentum)",
    )


@benchkit.hookimpl
def benchkit_register_datasets(register):
    """The line with outliers, offered to benchkit's single neuron."""
    register(
        "line_outliers",
        line_outliers,
        options={"outliers": 0.1},
        recipes={"single_neuron": ROBUST},
        description="y = 0.7x + 0.3 on 50 points, a tenth shifted up by 2 (seeded)",
    )


@benchkit.hookimpl
def benchkit_register_models(register):
    """The robust neuron and its declared metric."""
    register(
        "robust_neuron",
        robust_neuron,
        datasets={"line_outliers": ROBUST, "line": ROBUST},
        evaluate=inlier_share,
        metrics={
            "inlier_share": Metric(
                better="higher", description=f"share of clean points within {TOLERANCE}"
            )
        },
        description="nn.Linear(1, 1) fitted with log-cosh and signSGD",
    )
