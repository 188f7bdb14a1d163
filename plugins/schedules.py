"""``schedules``: learning-rate schedules a recipe names, registered through the same hook a
plugin uses. benchkit steps each once at the end of every epoch, so a schedule's length is the
recipe's ``epochs`` and its step unit is an epoch.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.optim import lr_scheduler

import benchkit


def step(optimizer: torch.optim.Optimizer, epochs: int, **options: Any) -> Any:
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs."""
    return lr_scheduler.StepLR(optimizer, step_size=options["step_size"], gamma=options["gamma"])


def cosine(optimizer: torch.optim.Optimizer, epochs: int, **options: Any) -> Any:
    """Cosine annealing from the recipe's rate to ``eta_min`` over the whole run."""
    return lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs, eta_min=options["eta_min"])


def exponential(optimizer: torch.optim.Optimizer, epochs: int, **options: Any) -> Any:
    """Multiply the learning rate by ``gamma`` every epoch."""
    return lr_scheduler.ExponentialLR(optimizer, gamma=options["gamma"])


def onecycle(optimizer: torch.optim.Optimizer, epochs: int, **options: Any) -> Any:
    """The one-cycle policy over the run: warm up from ``max_lr / div_factor`` to ``max_lr``
    over ``pct_start`` of the epochs, then anneal to ``max_lr / div_factor /
    final_div_factor``. ``max_lr`` defaults to the recipe's rate. Momentum is left alone unless
    ``cycle_momentum`` is true (then the optimizer must have momentum or betas)."""
    max_lr = options["max_lr"]
    if max_lr is None:
        max_lr = optimizer.param_groups[0]["lr"]
    return lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=max_lr,
        total_steps=epochs,
        pct_start=options["pct_start"],
        anneal_strategy=options["anneal_strategy"],
        div_factor=options["div_factor"],
        final_div_factor=options["final_div_factor"],
        cycle_momentum=options["cycle_momentum"],
    )


@benchkit.hookimpl
def benchkit_register_schedules(register):
    """The built-in learning-rate schedules, stepped per epoch."""
    register(
        "step",
        step,
        options={"step_size": 30, "gamma": 0.1},
        description="lr × gamma every step_size epochs (StepLR)",
    )
    register(
        "cosine",
        cosine,
        options={"eta_min": 0.0},
        description="cosine annealing to eta_min over the run (CosineAnnealingLR)",
    )
    register(
        "exponential",
        exponential,
        options={"gamma": 0.99},
        description="lr × gamma every epoch (ExponentialLR)",
    )
    register(
        "onecycle",
        onecycle,
        options={
            "max_lr": None,
            "pct_start": 0.3,
            "anneal_strategy": "cos",
            "div_factor": 25.0,
            "final_div_factor": 1e4,
            "cycle_momentum": False,
        },
        description="one cycle: warm up to max_lr (default: the recipe's lr), then anneal",
    )
