"""``optimizers``: the optimizers a recipe names, registered through the same hook a plugin
uses.

Each factory is ``factory(params, lr, **options)``; ``lr=None`` keeps torch's default. The
options are torch's keyword arguments with torch's defaults, implementation switches
(``foreach``, ``fused``, ``capturable``, ``differentiable``) included, so a recipe's
``optimizer_options`` can set any of them and nothing else. Only the options that differ from
the defaults are passed to torch, so an older torch without a newer switch works as long as
the recipe leaves it alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

import benchkit

Params = Iterable[torch.nn.Parameter]


#: torch's implementation switches: how a step is computed, never what it computes.
_SWITCHES = {"foreach": None, "differentiable": False}
_SGD = {
    "momentum": 0.0,
    "dampening": 0.0,
    "weight_decay": 0.0,
    "nesterov": False,
    "maximize": False,
    **_SWITCHES,
    "fused": None,
}
_ADAM = {
    "betas": [0.9, 0.999],
    "eps": 1e-8,
    "weight_decay": 0.0,
    "amsgrad": False,
    "maximize": False,
    **_SWITCHES,
    "capturable": False,
    "fused": None,
}
_RMSPROP = {
    "alpha": 0.99,
    "eps": 1e-8,
    "weight_decay": 0.0,
    "momentum": 0.0,
    "centered": False,
    "maximize": False,
    **_SWITCHES,
    "capturable": False,
}
_ADAGRAD = {
    "lr_decay": 0.0,
    "weight_decay": 0.0,
    "initial_accumulator_value": 0.0,
    "eps": 1e-10,
    "maximize": False,
    **_SWITCHES,
    "fused": None,
}
#: Each optimizer's torch class and its registered options (torch's defaults).
OPTIMIZERS: dict[str, tuple[type[torch.optim.Optimizer], dict[str, Any]]] = {
    "sgd": (torch.optim.SGD, _SGD),
    "adam": (torch.optim.Adam, {**_ADAM, "decoupled_weight_decay": False}),
    "adamw": (torch.optim.AdamW, {**_ADAM, "weight_decay": 0.01}),
    "rmsprop": (torch.optim.RMSprop, _RMSPROP),
    "adagrad": (torch.optim.Adagrad, _ADAGRAD),
}


def _build(name: str, params: Params, lr: float | None, options: dict[str, Any]):
    cls, defaults = OPTIMIZERS[name]
    kwargs = {k: v for k, v in options.items() if v != defaults[k]}
    if "betas" in kwargs:
        kwargs["betas"] = tuple(kwargs["betas"])  # a TOML array arrives as a list
    if lr is not None:
        kwargs["lr"] = lr
    return cls(params, **kwargs)


def sgd(params: Params, lr: float | None, **options: Any) -> torch.optim.Optimizer:
    """``torch.optim.SGD``: plain, with momentum, Nesterov momentum or weight decay."""
    return _build("sgd", params, lr, options)


def adam(params: Params, lr: float | None, **options: Any) -> torch.optim.Optimizer:
    """``torch.optim.Adam``."""
    return _build("adam", params, lr, options)


def adamw(params: Params, lr: float | None, **options: Any) -> torch.optim.Optimizer:
    """``torch.optim.AdamW`` (decoupled weight decay)."""
    return _build("adamw", params, lr, options)


def rmsprop(params: Params, lr: float | None, **options: Any) -> torch.optim.Optimizer:
    """``torch.optim.RMSprop``."""
    return _build("rmsprop", params, lr, options)


def adagrad(params: Params, lr: float | None, **options: Any) -> torch.optim.Optimizer:
    """``torch.optim.Adagrad``."""
    return _build("adagrad", params, lr, options)


@benchkit.hookimpl
def benchkit_register_optimizers(register):
    """The built-in optimizers, with torch's defaults as their options."""
    descriptions = {
        "sgd": "stochastic gradient descent; momentum, nesterov, weight_decay (lr 1e-3)",
        "adam": "Adam (lr 1e-3)",
        "adamw": "AdamW, decoupled weight decay 0.01 (lr 1e-3)",
        "rmsprop": "RMSprop (lr 1e-2)",
        "adagrad": "Adagrad (lr 1e-2)",
    }
    factories = {"sgd": sgd, "adam": adam, "adamw": adamw, "rmsprop": rmsprop, "adagrad": adagrad}
    for name, (_, defaults) in OPTIMIZERS.items():
        register(name, factories[name], options=dict(defaults), description=descriptions[name])
