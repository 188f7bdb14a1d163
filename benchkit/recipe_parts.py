"""The parts of training a recipe names by string (its loss, optimizer and learning-rate
schedule), resolved against what plugins registered.

A :class:`~benchkit.workload.Recipe` holds names and option values only, so a suite can
override them and a result set can record them. :func:`resolve_recipe` looks the names up in
the registry, merges the recipe's options over each registration's defaults, and returns a
:class:`RecipeParts` the training loop uses. :func:`recipe_problem` runs the same checks
without building anything, for reading a suite.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from benchkit.errors import BenchkitError, PluginError
from benchkit.registry import RECIPE_KINDS, Registry, call_plugin
from benchkit.workload import Recipe

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def recipe_problem(recipe: Recipe, registry: Registry) -> str:
    """Why ``recipe`` cannot run with the loaded plugins (an unknown loss, optimizer or
    schedule, or an option one of them does not have), with the valid choices; ``""`` if it
    can."""
    for kind, options_field in RECIPE_KINDS.items():
        name = getattr(recipe, kind)
        if name is None:
            continue
        if name not in registry.entries[kind]:
            valid = ", ".join(registry.names(kind)) or "none registered"
            return f"unknown {kind} {name!r}; valid: {valid}"
        defaults = registry.entries[kind][name].options
        unknown = sorted(set(getattr(recipe, options_field)) - set(defaults))
        if unknown:
            valid = ", ".join(sorted(defaults)) or "none"
            return (
                f"{options_field}: {kind} {name!r} has no option {', '.join(unknown)}; "
                f"valid: {valid}"
            )
    if recipe.schedule is None and recipe.schedule_options:
        return "schedule_options without a schedule: name one (schedule = 'cosine')"
    return ""


def _options(recipe: Recipe, registry: Registry, kind: str) -> dict[str, Any]:
    """The registered defaults of the recipe's ``kind`` updated with the recipe's options."""
    options = dict(registry.get(kind, getattr(recipe, kind)).options)
    if kind == "loss" and recipe.ignore_index is not None and "ignore_index" in options:
        options["ignore_index"] = recipe.ignore_index  # the 1.0 field; loss_options win
    options.update(getattr(recipe, RECIPE_KINDS[kind]))
    return options


def _call(registry: Registry, kind: str, name: str, fn: Callable[..., Any], *args: Any) -> Any:

    return call_plugin(registry, kind, name, "", fn, *args)


@dataclass(frozen=True)
class RecipeParts:
    """A recipe with its loss built and its optimizer and schedule ready to build.

    :param recipe: the recipe resolved.
    :param loss: ``(prediction, target) -> scalar``, the mean over the batch.
    :param ignore_index: the target value the loss skips, if its options name one; batched
        evaluation weighs each batch by the targets it does not skip.
    """

    recipe: Recipe
    loss: LossFn
    ignore_index: int | None
    registry: Registry
    optimizer_options: Mapping[str, Any]
    schedule_options: Mapping[str, Any]

    def make_optimizer(
        self, params: Iterable[torch.nn.Parameter], extra: Mapping[str, Any] | None = None
    ) -> torch.optim.Optimizer:
        """The recipe's optimizer over ``params``. ``extra`` options (what an execution mode
        needs, such as ``capturable=True``) apply where the optimizer has them."""
        name = self.recipe.optimizer
        registration = self.registry.get("optimizer", name)
        options = dict(self.optimizer_options)
        options.update((k, v) for k, v in (extra or {}).items() if k in registration.options)
        built = _call(
            self.registry,
            "optimizer",
            name,
            functools.partial(registration.factory, **options),
            params,
            self.recipe.lr,
        )
        if not isinstance(built, torch.optim.Optimizer):
            raise PluginError(
                f"optimizer {name!r}: the factory returned {type(built).__name__}, not a "
                "torch.optim.Optimizer"
            )
        return built

    def make_schedule(self, optimizer: torch.optim.Optimizer) -> Schedule | None:
        """The recipe's schedule over ``optimizer``, spanning ``recipe.epochs``; ``None``
        when the recipe has none."""
        name = self.recipe.schedule
        if name is None:
            return None
        factory = self.registry.get("schedule", name).factory
        built = _call(
            self.registry,
            "schedule",
            name,
            functools.partial(factory, **self.schedule_options),
            optimizer,
            self.recipe.epochs,
        )
        if not callable(getattr(built, "step", None)):
            raise PluginError(
                f"schedule {name!r}: the factory returned {type(built).__name__}, which has "
                "no step() method"
            )
        return Schedule(built, optimizer)

    def loss_terms(self, target: torch.Tensor) -> torch.Tensor:
        """How many terms the mean loss over ``target`` averages (skipped targets excluded)."""
        if self.ignore_index is not None:
            return (target != self.ignore_index).sum()
        return torch.tensor(target.numel(), device=target.device)


class Schedule:
    """A scheduler stepped once per epoch, and the learning rate each epoch ran with."""

    def __init__(self, scheduler: Any, optimizer: torch.optim.Optimizer) -> None:
        self.scheduler = scheduler
        self.optimizer = optimizer

    def lr(self) -> float:
        """The learning rate of the optimizer's first parameter group now."""
        return float(self.optimizer.param_groups[0]["lr"])

    def step(self) -> None:
        """Advance one epoch. torch warns when a scheduler steps before its optimizer has,
        which is what a gradient scaler that skipped the first steps looks like: not a
        mistake here."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*lr_scheduler\.step\(\).*")
            self.scheduler.step()


def resolve_recipe(recipe: Recipe, registry: Registry) -> RecipeParts:
    """Look up the recipe's loss, optimizer and schedule and build its loss.

    :raises BenchkitError: a name no plugin registered or an option a part does not have
        (with the valid choices), or a loss factory that fails (naming its plugin).
    """
    problem = recipe_problem(recipe, registry)
    if problem:
        raise BenchkitError(f"recipe {recipe.describe()}: {problem}")
    loss_options = _options(recipe, registry, "loss")
    factory = registry.get("loss", recipe.loss).factory
    loss = _call(registry, "loss", recipe.loss, functools.partial(factory, **loss_options))
    if not callable(loss):
        raise PluginError(
            f"loss {recipe.loss!r}: the factory returned {type(loss).__name__}, not a callable "
            "(prediction, target) -> scalar tensor"
        )
    return RecipeParts(
        recipe=recipe,
        loss=loss,
        ignore_index=loss_options.get("ignore_index"),
        registry=registry,
        optimizer_options=_options(recipe, registry, "optimizer"),
        schedule_options=_options(recipe, registry, "schedule") if recipe.schedule else {},
    )
