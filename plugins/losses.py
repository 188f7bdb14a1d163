"""``losses``: the losses a recipe names, registered through the same hook a plugin uses.

Each factory takes the loss's options and returns ``(prediction, target) -> scalar``, the mean
over the batch. ``cross_entropy`` and ``nll`` flatten ``(batch, ..., classes)`` predictions
and ``(batch, ...)`` targets, so a sequence model's output needs no reshaping, and skip targets
equal to ``ignore_index`` (a recipe's ``ignore_index`` sets it).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional

import benchkit

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: torch's own "skip nothing" value for ignore_index
_NO_INDEX = -100


def mse() -> LossFn:
    """Mean squared error."""
    return nn.MSELoss()


def l1() -> LossFn:
    """Mean absolute error."""
    return nn.L1Loss()


def huber(delta: float) -> LossFn:
    """Huber loss: squared below ``delta``, linear above it."""
    return nn.HuberLoss(delta=delta)


def cross_entropy(ignore_index: int | None, label_smoothing: float) -> LossFn:
    """Softmax cross-entropy of class logits against class indices, flattened."""
    ignore = _NO_INDEX if ignore_index is None else ignore_index

    def loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return functional.cross_entropy(
            prediction.reshape(-1, prediction.shape[-1]),
            target.reshape(-1),
            ignore_index=ignore,
            label_smoothing=label_smoothing,
        )

    return loss


def nll(ignore_index: int | None) -> LossFn:
    """Negative log-likelihood of log-probabilities against class indices, flattened."""
    ignore = _NO_INDEX if ignore_index is None else ignore_index

    def loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return functional.nll_loss(
            prediction.reshape(-1, prediction.shape[-1]), target.reshape(-1), ignore_index=ignore
        )

    return loss


def bce_with_logits(pos_weight: float | None) -> LossFn:
    """Binary cross-entropy of logits against 0/1 targets of the same shape (numerically
    stable: the sigmoid is folded into the loss). ``pos_weight`` weighs the positive class."""

    def loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        weight = (
            None
            if pos_weight is None
            else torch.tensor(pos_weight, dtype=prediction.dtype, device=prediction.device)
        )
        return functional.binary_cross_entropy_with_logits(
            prediction, target.to(prediction.dtype), pos_weight=weight
        )

    return loss


@benchkit.hookimpl
def benchkit_register_losses(register):
    """The built-in losses."""
    register("mse", mse, description="mean squared error (nn.MSELoss)")
    register("l1", l1, description="mean absolute error (nn.L1Loss)")
    register("huber", huber, options={"delta": 1.0}, description="Huber loss (nn.HuberLoss)")
    register(
        "cross_entropy",
        cross_entropy,
        options={"ignore_index": None, "label_smoothing": 0.0},
        description="softmax cross-entropy on class logits, (batch, ..., classes) flattened",
    )
    register(
        "bce_with_logits",
        bce_with_logits,
        options={"pos_weight": None},
        description="binary cross-entropy on logits, 0/1 targets (nn.BCEWithLogitsLoss)",
    )
    register(
        "nll",
        nll,
        options={"ignore_index": None},
        description="negative log-likelihood on log-probabilities (nn.NLLLoss), flattened",
    )
