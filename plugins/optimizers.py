"""``optimizers``: the optimizers a recipe names, registered through the same hook a plugin
uses.

Each factory is ``factory(params, lr, **options)``; ``lr=None`` keeps torch's default. The
options are torch's keyword arguments with torch's defaults (implementation switches such as
``foreach`` and ``fused`` are left to torch), so a recipe's ``optimizer_options`` can set any
of them and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

import benchkit

Params = Iterable[torch.nn.Parameter]


def _build(cls: type[torch.optim.Optimizer], params: Params, lr: float | None, **options: Any):
    if "betas" in options:
        options["betas"] = tuple(options["betas"])  # a TOML array arrives as a list
    return cls(params, **options) if lr is None else cls(params, lr=lr, **options)


def sgd(params: Params, lr: float | None, **options: Any) -> torch.optim.Optimizer:
    """``torch.optim.SGD``: plain, with momentum, Nesterov momentum or weight decay."""
    return _build(torch.optim.SGD, params, lr, **options)


def adam(params: Params, lr: float | None, **options: Any) -> torch.optim.Optimizer:
    """``torch.optim.Adam``."""
    return _build(torch.optim.Adam, params, lr, **options)


def adamw(params: Params, lr: float | None, **options: Any) -> torch.optim.Optimizer:
    """``torch.optim.AdamW`` (decoupled weight decay)."""
    return _build(torch.optim.AdamW, params, lr, **options)


def rmsprop(params: Params, lr: float | None, **options: Any) -> torch.optim.Optimizer:
    """``torch.optim.RMSprop``."""
    return _build(torch.optim.RMSprop, params, lr, **options)


def adagrad(params: Params, lr: float | None, **options: Any) -> torch.optim.Optimizer:
    """``torch.optim.Adagrad``."""
    return _build(torch.optim.Adagrad, params, lr, **options)


_ADAM = {"betas": [0.9, 0.999], "eps": 1e-8, "amsgrad": False, "maximize": False}


@benchkit.hookimpl
def benchkit_register_optimizers(register):
    """The built-in optimizers, with torch's defaults as their options."""
    register(
        "sgd",
        sgd,
        options={
            "momentum": 0.0,
            "dampening": 0.0,
            "weight_decay": 0.0,
            "nesterov": False,
            "maximize": False,
        },
        description="stochastic gradient descent; momentum, nesterov, weight_decay (lr 1e-3)",
    )
    register(
        "adam",
        adam,
        options={**_ADAM, "weight_decay": 0.0},
        description="Adam (lr 1e-3)",
    )
    register(
        "adamw",
        adamw,
        options={**_ADAM, "weight_decay": 0.01},
        description="AdamW, decoupled weight decay 0.01 (lr 1e-3)",
    )
    register(
        "rmsprop",
        rmsprop,
        options={
            "alpha": 0.99,
            "eps": 1e-8,
            "weight_decay": 0.0,
            "momentum": 0.0,
            "centered": False,
            "maximize": False,
        },
        description="RMSprop (lr 1e-2)",
    )
    register(
        "adagrad",
        adagrad,
        options={
            "lr_decay": 0.0,
            "weight_decay": 0.0,
            "initial_accumulator_value": 0.0,
            "eps": 1e-10,
            "maximize": False,
        },
        description="Adagrad (lr 1e-2)",
    )
