"""The data a workload trains on and the recipe it trains with.

These plain dataclasses cross the boundary between plugins and the runner: a dataset factory
returns a :class:`Data`, a model registration carries one :class:`Recipe` per dataset it fits.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass(frozen=True)
class Recipe:
    """How a model is trained on one dataset: the defaults a suite may override field by field.

    Losses, optimizers and schedules are named by strings: the names plugins registered
    (``benchkit plugins --verbose`` lists them; the built-ins are in ``docs/writing-plugins.md``).
    A name no plugin registered is rejected when a suite naming the pairing is read.

    :param loss: a registered loss (built in: ``"mse"``, ``"l1"``, ``"huber"``,
        ``"cross_entropy"``, ``"bce_with_logits"``, ``"nll"``). Cross-entropy and NLL flatten
        ``(batch, ..., classes)`` predictions and honour ``ignore_index``.
    :param optimizer: a registered optimizer (built in: ``"sgd"``, ``"adam"``, ``"adamw"``,
        ``"rmsprop"``, ``"adagrad"``).
    :param lr: learning rate; ``None`` takes the optimizer's own default.
    :param epochs: passes over the training split.
    :param batch_size: ``None`` trains full batch (one step per epoch).
    :param shuffle: reshuffle the training split every epoch (minibatch only).
    :param optimizer_options: the optimizer's options (``momentum`` …), checked against the
        defaults the optimizer registered.
    :param ignore_index: target value the loss skips (padding), for losses with an
        ``ignore_index`` option; other losses ignore it.
    :param loss_options: the loss's options (``delta`` of ``huber`` …), checked against the
        defaults the loss registered. (API 1.1)
    :param schedule: a registered learning-rate schedule (built in: ``"step"``, ``"cosine"``,
        ``"exponential"``, ``"onecycle"``), stepped once per epoch; ``None``: a constant
        learning rate. (API 1.1)
    :param schedule_options: the schedule's options, checked against its defaults. (API 1.1)
    """

    loss: str = "mse"
    optimizer: str = "sgd"
    lr: float | None = None
    epochs: int = 100
    batch_size: int | None = None
    shuffle: bool = False
    optimizer_options: dict[str, Any] = field(default_factory=dict)
    ignore_index: int | None = None
    loss_options: dict[str, Any] = field(default_factory=dict)
    schedule: str | None = None
    schedule_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, hook in (
            ("loss", "benchkit_register_losses"),
            ("optimizer", "benchkit_register_optimizers"),
            ("schedule", "benchkit_register_schedules"),
        ):
            value = getattr(self, name)
            if value is None and name == "schedule":
                continue
            if not isinstance(value, str):
                what = "a callable" if callable(value) else type(value).__name__
                raise TypeError(
                    f"Recipe({name}=...) takes the name of a registered {name}, got {what}; "
                    f"register it with the {hook} hook (register('my_{name}', factory)) "
                    f"and write {name}='my_{name}'"
                )
        for name in ("optimizer_options", "loss_options", "schedule_options"):
            value = getattr(self, name)
            if not isinstance(value, dict):
                raise TypeError(
                    f"Recipe({name}=...) takes a dict of option values such as "
                    f"{{'momentum': 0.9}}, got {type(value).__name__}"
                )
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1 or absent, got {self.batch_size}")

    def describe(self) -> str:
        """``Recipe(loss='l1', optimizer='sgd', lr=0.01, epochs=500)``: the fields that are not
        the defaults, for messages and ``benchkit show``."""
        default = Recipe()
        parts = [
            f"{f.name}={getattr(self, f.name)!r}"
            for f in dataclasses.fields(self)
            if f.name in ("loss", "optimizer", "epochs")
            or getattr(self, f.name) != getattr(default, f.name)
        ]
        return f"Recipe({', '.join(parts)})"

    def with_overrides(self, overrides: dict[str, Any]) -> Recipe:
        """A copy with the given fields replaced (a suite's ``recipe`` table)."""
        return dataclasses.replace(self, **overrides)


@dataclass
class Split:
    """One split of a dataset: the model's positional inputs and the training target.

    ``model(*inputs)`` is compared with ``target`` by the recipe's loss. Every tensor has the
    samples along dimension 0.
    """

    inputs: tuple[torch.Tensor, ...]
    target: torch.Tensor

    def __post_init__(self) -> None:
        if isinstance(self.inputs, torch.Tensor):
            self.inputs = (self.inputs,)
        n = len(self.target)
        for t in self.inputs:
            if len(t) != n:
                raise ValueError(f"split inputs have {len(t)} samples but the target has {n}")

    def __len__(self) -> int:
        return len(self.target)

    def map(self, fn: Any) -> Split:
        """Apply ``fn`` to every tensor (moving to a device, casting)."""
        return Split(tuple(fn(t) for t in self.inputs), fn(self.target))


@dataclass
class Data:
    """What a dataset factory returns.

    :param train: the split the model is trained on; its loss is the curve.
    :param valid: evaluated every epoch; its loss becomes ``valid_loss`` in the curve (in a
        full-batch epoch from the parameters of the epoch's training loss, before the update;
        with minibatches after the epoch's last update).
    :param test: evaluated once after training; its loss becomes the ``test_loss`` metric.
    :param info: anything a model factory or a metric needs (input sizes, vocabulary, the raw
        series, scalers). Models read ``info`` to size themselves.
    """

    train: Split
    valid: Split | None = None
    test: Split | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def splits(self) -> dict[str, Split]:
        """The splits that are present, by name."""
        named = {"train": self.train, "valid": self.valid, "test": self.test}
        return {k: v for k, v in named.items() if v is not None}


@dataclass
class EvalContext:
    """What a model's ``evaluate`` function gets besides the model and the data.

    :param device: the run's device.
    :param precision: the run's precision.
    """

    device: Any
    precision: Any

    def prepare(self, tensor: torch.Tensor) -> torch.Tensor:
        """Move a tensor to the run's device and cast it to the run's precision."""
        return self.precision.prepare_tensor(self.device.to_device(tensor))
