"""The training loop: one model, one dataset split, one recipe, under a precision on a device.

The loop never waits for the device to look at the loss. Each epoch's loss stays on the
device as a detached scalar; the curve is read back in chunks (at most every ``MAX_CHUNK``
epochs or once a ``READ_EVERY_SECONDS``), which is also when divergence is noticed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from benchkit.device import Device
from benchkit.precision import Precision
from benchkit.workload import Data, Recipe, Split

MAX_CHUNK = 128
READ_EVERY_SECONDS = 1.0

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
ProgressFn = Callable[[int, float], None]


def make_loss(recipe: Recipe) -> LossFn:
    """The recipe's loss as a callable ``(prediction, target) -> scalar``."""
    if recipe.loss == "mse":
        return nn.MSELoss()
    if recipe.loss == "l1":
        return nn.L1Loss()
    ignore = -100 if recipe.ignore_index is None else recipe.ignore_index
    ce = nn.CrossEntropyLoss(ignore_index=ignore)

    def cross_entropy(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return ce(prediction.reshape(-1, prediction.shape[-1]), target.reshape(-1))

    return cross_entropy


def make_optimizer(recipe: Recipe, params) -> torch.optim.Optimizer:
    """The recipe's optimizer over ``params``."""
    cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
    kwargs = dict(recipe.optimizer_options)
    if recipe.lr is not None:
        kwargs["lr"] = recipe.lr
    return cls[recipe.optimizer](params, **kwargs)


@dataclass
class TrainOutcome:
    """What the loop observed. ``epoch_end_seconds[i]`` is the time from the start of training
    to the end of epoch ``i``, on the device's own clock."""

    losses: list[float] = field(default_factory=list)
    valid_losses: list[float] = field(default_factory=list)
    epoch_end_seconds: list[float] = field(default_factory=list)
    diverged_epoch: int | None = None


def _accumulator_dtype(device: Device) -> torch.dtype:
    return torch.float32 if device.torch_device.type == "mps" else torch.float64


def _generator(device: Device, seed: int) -> torch.Generator:
    try:
        gen = torch.Generator(device=device.torch_device)
    except RuntimeError:
        gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


def split_loss(
    model: nn.Module, split: Split, loss_fn: LossFn, precision: Precision, device: Device
) -> torch.Tensor:
    """Loss of ``model`` on a whole split, without gradients; stays on the device."""
    with torch.no_grad(), precision.autocast(device):
        return loss_fn(model(*split.inputs), split.target).detach()


def train(
    model: nn.Module,
    data: Data,
    recipe: Recipe,
    precision: Precision,
    device: Device,
    seed: int,
    on_progress: ProgressFn | None = None,
) -> TrainOutcome:
    """Train ``model`` for ``recipe.epochs`` epochs; ``data`` is already on the device.

    The loss of an epoch is the training loss of that pass's forward step(s), before the
    update(s), averaged over batches. A non-finite epoch loss stops training; the outcome then
    ends at that epoch and names it in ``diverged_epoch``.
    """
    loss_fn = make_loss(recipe)
    optimizer = make_optimizer(recipe, model.parameters())
    train_split, valid_split = data.train, data.valid
    n = len(train_split)
    batch = min(recipe.batch_size or n, n)
    starts = range(0, n, batch)
    acc_dtype = _accumulator_dtype(device)
    generator = _generator(device, seed) if recipe.shuffle and batch < n else None

    out = TrainOutcome()
    pending: list[torch.Tensor] = []
    pending_valid: list[torch.Tensor] = []
    device.synchronize()
    marks = [device.mark()]
    last_read = time.perf_counter()

    for epoch in range(recipe.epochs):
        model.train()
        if batch == n:
            with precision.autocast(device):
                loss = loss_fn(model(*train_split.inputs), train_split.target)
            optimizer.zero_grad(set_to_none=True)
            precision.backward_step(loss, optimizer)
            epoch_loss = loss.detach()
        else:
            order = (
                torch.randperm(n, generator=generator, device=generator.device)
                if generator is not None
                else None
            )
            total = torch.zeros((), dtype=acc_dtype, device=device.torch_device)
            for start in starts:
                if order is None:
                    inputs = tuple(t[start : start + batch] for t in train_split.inputs)
                    target = train_split.target[start : start + batch]
                else:
                    idx = order[start : start + batch]
                    inputs = tuple(t[idx] for t in train_split.inputs)
                    target = train_split.target[idx]
                with precision.autocast(device):
                    loss = loss_fn(model(*inputs), target)
                optimizer.zero_grad(set_to_none=True)
                precision.backward_step(loss, optimizer)
                total += loss.detach()
            epoch_loss = total / len(starts)
        pending.append(epoch_loss.to(acc_dtype))
        if valid_split is not None:
            model.eval()
            pending_valid.append(
                split_loss(model, valid_split, loss_fn, precision, device).to(acc_dtype)
            )
        marks.append(device.mark())

        last_epoch = epoch == recipe.epochs - 1
        now = time.perf_counter()
        if last_epoch or len(pending) >= MAX_CHUNK or now - last_read >= READ_EVERY_SECONDS:
            first = len(out.losses)
            out.losses.extend(torch.stack(pending).cpu().tolist())
            if pending_valid:
                out.valid_losses.extend(torch.stack(pending_valid).cpu().tolist())
            pending.clear()
            pending_valid.clear()
            last_read = now
            bad = next(
                (i for i, v in enumerate(out.losses[first:], first) if not math.isfinite(v)), None
            )
            if bad is not None:
                out.diverged_epoch = bad
                del out.losses[bad + 1 :]
                del out.valid_losses[bad + 1 :]
                del marks[bad + 2 :]
                break
            if on_progress is not None:
                on_progress(epoch, out.losses[-1])

    device.synchronize()
    out.epoch_end_seconds = [device.seconds_between(marks[0], m) for m in marks[1:]]
    return out
