"""The data a workload trains on and the recipe it trains with.

These plain dataclasses cross the boundary between plugins and the runner: a dataset factory
returns a :class:`Data`, a model registration carries one :class:`Recipe` per dataset it fits.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch

LOSSES = ("mse", "l1", "cross_entropy")
OPTIMIZERS = ("sgd", "adam", "adamw")


@dataclass(frozen=True)
class Recipe:
    """How a model is trained on one dataset: the defaults a suite may override field by field.

    :param loss: one of ``"mse"``, ``"l1"``, ``"cross_entropy"``. Cross-entropy flattens
        ``(batch, ..., classes)`` predictions and honours ``ignore_index``.
    :param optimizer: ``"sgd"``, ``"adam"`` or ``"adamw"``.
    :param lr: learning rate; ``None`` takes the optimizer's own default.
    :param epochs: passes over the training split.
    :param batch_size: ``None`` trains full batch (one step per epoch).
    :param shuffle: reshuffle the training split every epoch (minibatch only).
    :param optimizer_options: extra keyword arguments for the optimizer (``momentum`` …).
    :param ignore_index: target value the cross-entropy loss skips (padding).
    """

    loss: str = "mse"
    optimizer: str = "sgd"
    lr: float | None = None
    epochs: int = 100
    batch_size: int | None = None
    shuffle: bool = False
    optimizer_options: dict[str, Any] = field(default_factory=dict)
    ignore_index: int | None = None

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss {self.loss!r} is not one of {', '.join(LOSSES)}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer {self.optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1 or absent, got {self.batch_size}")

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
