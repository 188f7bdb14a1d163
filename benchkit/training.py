"""The training loop: one model, one dataset split, one recipe, under a precision on a device.

The loop never makes an asynchronous device (a GPU) wait for the host to look at the loss:
there each epoch's loss stays on the device as a detached scalar and the curve is read back in
chunks (at most every ``MAX_CHUNK`` epochs or once a ``READ_EVERY_SECONDS``), which is also when
divergence is noticed. On a synchronous device (the CPU) reading a scalar costs nothing, while
holding a hundred small tensors alive measurably slows the epochs around them (5-7 % on
sine_mlp, measured with benchmarks/overhead.py), so there each loss is read as it is made.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from benchkit.device import Device
from benchkit.mode import Mode
from benchkit.precision import Precision
from benchkit.recipe_parts import RecipeParts
from benchkit.workload import Data, Split

MAX_CHUNK = 128
READ_EVERY_SECONDS = 0.25
EVAL_BATCH = 4096

ProgressFn = Callable[[int, float], None]


class EpochRecorder:
    """Records something every epoch without waiting for the device: ``before_step`` and
    ``after_step`` queue device tensors, ``flush`` (called when the loop reads the curve)
    brings them to the host."""

    def before_step(self, model: nn.Module, prediction: torch.Tensor) -> None:
        """After the forward pass of a full-batch epoch, before its update."""

    def after_step(self, model: nn.Module) -> None:
        """After the epoch's last update."""

    def flush(self) -> None:
        """Bring queued values to the host (a sync, once per chunk)."""


class TraceRecorder(EpochRecorder):
    """The source's step-by-step table: per epoch the prediction (when the model has a single
    output), every parameter before the update (``weight``), its gradient (``weight_grad``)
    and its value after the update (``weight_after``; the float16 notebook prints those).
    For models with a handful of parameters only."""

    MAX_VALUES = 64

    def __init__(self, model: nn.Module) -> None:
        self.names = []
        for name, param in model.named_parameters():
            if param.numel() == 1:
                self.names.append(name)
            else:
                self.names.extend(f"{name}[{i}]" for i in range(param.numel()))
        if len(self.names) > self.MAX_VALUES:
            raise ValueError(
                f"trace records every parameter each epoch; this model has {len(self.names)}, "
                f"more than {self.MAX_VALUES}"
            )
        self.rows: list[dict[str, float]] = []
        self._before: list[torch.Tensor] = []
        self._after: list[torch.Tensor] = []
        self._has_prediction = True

    def before_step(self, model: nn.Module, prediction: torch.Tensor) -> None:
        self._has_prediction = prediction.numel() == 1
        parts = [p.detach().reshape(-1).double() for p in model.parameters()]
        if self._has_prediction:
            parts.insert(0, prediction.detach().reshape(-1).double())
        self._before.append(torch.cat(parts))

    def after_step(self, model: nn.Module) -> None:
        grads = [
            (p.grad if p.grad is not None else torch.full_like(p, float("nan")))
            .detach()
            .reshape(-1)
            .double()
            for p in model.parameters()
        ]
        after = [p.detach().reshape(-1).double() for p in model.parameters()]
        self._after.append(torch.cat(grads + after))

    def flush(self) -> None:
        if not self._before:
            return
        before = torch.stack(self._before).cpu().tolist()
        after = torch.stack(self._after).cpu().tolist()
        count = len(self.names)
        for values, grads_after in zip(before, after, strict=True):
            row: dict[str, float] = {}
            if self._has_prediction:
                row["prediction"] = values.pop(0)
            row.update(zip(self.names, values, strict=True))
            grads, updated = grads_after[:count], grads_after[count:]
            row.update({f"{n}_grad": g for n, g in zip(self.names, grads, strict=True)})
            row.update({f"{n}_after": v for n, v in zip(self.names, updated, strict=True)})
            self.rows.append(row)
        self._before.clear()
        self._after.clear()


class FiniteWatch(EpochRecorder):
    """Notes the first epoch whose gradients, and the first whose updated parameters, hold a
    NaN or an infinity. Used when replaying a diverged run, so the normal loop pays nothing."""

    def __init__(self) -> None:
        self._flags: list[torch.Tensor] = []
        self.epochs = 0
        self.grads_nonfinite_epoch: int | None = None
        self.params_nonfinite_epoch: int | None = None

    def after_step(self, model: nn.Module) -> None:
        params = [p.detach() for p in model.parameters()]
        grads = [p.grad.detach() for p in model.parameters() if p.grad is not None]
        grads_ok = torch.stack([g.isfinite().all() for g in grads]).all() if grads else None
        params_ok = torch.stack([p.isfinite().all() for p in params]).all()
        ok = params_ok if grads_ok is None else grads_ok
        self._flags.append(torch.stack([ok, params_ok]))

    def flush(self) -> None:
        if not self._flags:
            return
        for grads_ok, params_ok in torch.stack(self._flags).cpu().tolist():
            if not grads_ok and self.grads_nonfinite_epoch is None:
                self.grads_nonfinite_epoch = self.epochs
            if not params_ok and self.params_nonfinite_epoch is None:
                self.params_nonfinite_epoch = self.epochs
            self.epochs += 1
        self._flags.clear()


class _Curve:
    """Where the loop puts each epoch's loss: read at once on a synchronous device, queued on
    the device and read in chunks on an asynchronous one (see the module docs)."""

    def __init__(self, device: Device, acc_dtype: torch.dtype) -> None:
        self.queue_on_device = device.asynchronous
        self.acc_dtype = acc_dtype
        self.losses: list[float] = []
        self.valid: list[float] = []
        self._queued: list[torch.Tensor] = []
        self._queued_valid: list[torch.Tensor] = []

    def add(self, loss: torch.Tensor, valid: torch.Tensor | None) -> None:
        if self.queue_on_device:
            self._queued.append(loss)
            if valid is not None:
                self._queued_valid.append(valid)
        else:
            self.losses.append(loss.item())
            if valid is not None:
                self.valid.append(valid.item())

    @property
    def queued(self) -> int:
        return len(self._queued)

    @property
    def last_known_bad(self) -> bool:
        """The newest loss already on the host is NaN or infinite."""
        return bool(self.losses) and not self.queued and not math.isfinite(self.losses[-1])

    def read(self) -> None:
        """Bring queued losses to the host: one transfer, and the only wait, per chunk."""
        for queue, target in ((self._queued, self.losses), (self._queued_valid, self.valid)):
            if queue:
                target.extend(torch.stack(queue).to(self.acc_dtype).cpu().tolist())
                queue.clear()


@dataclass
class TrainOutcome:
    """What the loop observed. ``epoch_end_seconds[i]`` is the time from the start of training
    to the end of epoch ``i``, on the device's own clock, without the mode's one-off work
    (compiling, capturing), which is ``setup_seconds``."""

    losses: list[float] = field(default_factory=list)
    valid_losses: list[float] = field(default_factory=list)
    epoch_end_seconds: list[float] = field(default_factory=list)
    diverged_epoch: int | None = None
    #: the learning rate each epoch ran with; empty when the recipe has no schedule
    lrs: list[float] = field(default_factory=list)
    setup_seconds: float = 0.0
    #: the loop stopped at its deadline before the last epoch
    timed_out: bool = False


def _generator(device: Device, seed: int) -> torch.Generator:
    try:
        gen = torch.Generator(device=device.torch_device)
    except RuntimeError:
        gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


def split_loss(
    model: nn.Module,
    split: Split,
    parts: RecipeParts,
    precision: Precision,
    device: Device,
    batch: int = EVAL_BATCH,
) -> torch.Tensor:
    """The recipe's loss of ``model`` on a whole split, without gradients, in batches of at most
    ``batch`` samples (so a large validation set fits a small GPU); stays on the device. The
    result is the exact mean over the split, not a mean of batch means: each batch's mean is
    weighed by the terms it averages (targets the loss skips excluded)."""
    with torch.no_grad(), precision.autocast(device):
        if len(split) <= batch:
            return parts.loss(model(*split.inputs), split.target).detach()
        total = torch.zeros((), dtype=device.accumulate_dtype, device=device.torch_device)
        terms = torch.zeros((), dtype=torch.int64, device=device.torch_device)
        for start in range(0, len(split), batch):
            inputs = tuple(t[start : start + batch] for t in split.inputs)
            target = split.target[start : start + batch]
            n = parts.loss_terms(target)
            mean = parts.loss(model(*inputs), target).to(device.accumulate_dtype)
            total += torch.where(n > 0, mean * n, torch.zeros_like(mean))
            terms += n
        return total / terms


def train(
    model: nn.Module,
    data: Data,
    parts: RecipeParts,
    precision: Precision,
    device: Device,
    seed: int,
    on_progress: ProgressFn | None = None,
    recorders: Sequence[EpochRecorder] = (),
    epochs: int | None = None,
    deadline: float | None = None,
    mode: Mode | None = None,
) -> TrainOutcome:
    """Train ``model`` for ``recipe.epochs`` epochs with the recipe's resolved ``parts``;
    ``data`` is already on the device.

    The loss of an epoch is the training loss of that pass's forward step(s), before the
    update(s), averaged over batches. The validation loss of a full-batch epoch comes from the
    same parameters as its training loss, before the update (as the temperature notebook
    computes it); with minibatches it is taken after the epoch's last update (as Keras
    reports ``val_loss``). A non-finite epoch loss stops training; the outcome then ends at
    that epoch and names it in ``diverged_epoch``. ``recorders`` see every epoch
    (``before_step`` on full-batch epochs only); ``epochs`` overrides the recipe's count (a
    schedule still spans the recipe's, so a shortened replay follows the same rates).
    ``deadline`` (a ``time.perf_counter()`` value) stops the loop after the first epoch that
    ends past it, with ``timed_out`` set; the check reuses the clock reading the loop takes
    anyway, so it costs one comparison an epoch. ``mode`` (eager when ``None``) executes each
    step, the full-batch validation inside it included; minibatch validation after the epoch
    runs as written.
    """
    recipe = parts.recipe
    epochs = recipe.epochs if epochs is None else epochs
    stop_at = math.inf if deadline is None else deadline
    mode = mode or Mode()
    loss_fn = parts.loss
    optimizer = parts.make_optimizer(model.parameters(), mode.optimizer_options(recipe.optimizer))
    schedule = parts.make_schedule(optimizer)
    train_split, valid_split = data.train, data.valid
    n = len(train_split)
    batch = min(recipe.batch_size or n, n)
    starts = range(0, n, batch)
    acc_dtype = device.accumulate_dtype
    generator = _generator(device, seed) if recipe.shuffle and batch < n else None
    full_batch = batch == n
    watch_prediction = tuple(recorders) if full_batch else ()
    validate_in_step = full_batch and valid_split is not None

    def step(
        inputs: tuple[torch.Tensor, ...], target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Forward, loss, backward and update on one batch: the loss, detached, and on a
        full-batch epoch the validation loss of the same parameters, before the update."""
        with precision.autocast(device):
            prediction = model(*inputs)
            loss = loss_fn(prediction, target)
        valid = None
        if validate_in_step:  # the parameters of this epoch's training loss
            model.eval()
            valid = split_loss(model, valid_split, parts, precision, device)
        for recorder in watch_prediction:
            recorder.before_step(model, prediction)
        optimizer.zero_grad(set_to_none=True)
        precision.backward_step(loss, optimizer)
        return loss.detach(), valid

    run_step = mode.wrap(step, device)

    out = TrainOutcome()
    curve = _Curve(device, acc_dtype)
    checked = 0  # epochs whose loss has been checked for divergence
    device.synchronize()
    marks = [device.mark()]
    setup = []  # the mode's one-off seconds by the end of each epoch, taken out of its time
    last_read = time.perf_counter()

    for epoch in range(epochs):
        if not model.training:  # 10 us a call on a small MLP: only after validation
            model.train()
        if schedule is not None:
            out.lrs.append(schedule.lr())
        valid_loss = None
        if batch == n:
            epoch_loss, valid_loss = run_step(train_split.inputs, train_split.target)
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
                total += run_step(inputs, target)[0]
            epoch_loss = total / len(starts)
        for recorder in recorders:
            recorder.after_step(model)
        if schedule is not None:
            schedule.step()
        if valid_split is not None and valid_loss is None:  # minibatches: after the epoch
            model.eval()
            valid_loss = split_loss(model, valid_split, parts, precision, device)
        curve.add(epoch_loss, valid_loss)
        marks.append(device.mark())
        setup.append(mode.setup_seconds)

        last_epoch = epoch == epochs - 1
        now = time.perf_counter()
        late = now >= stop_at
        due = (
            last_epoch or late or curve.queued >= MAX_CHUNK or now - last_read >= READ_EVERY_SECONDS
        )
        if due or curve.last_known_bad:
            curve.read()
            for recorder in recorders:
                recorder.flush()
            last_read = now
            bad = next(
                (i for i, v in enumerate(curve.losses[checked:], checked) if not math.isfinite(v)),
                None,
            )
            checked = len(curve.losses)
            if bad is not None:
                out.diverged_epoch = bad
                del curve.losses[bad + 1 :]
                del curve.valid[bad + 1 :]
                del marks[bad + 2 :]
                del setup[bad + 1 :]
                del out.lrs[bad + 1 :]
                break
            if on_progress is not None:
                on_progress(epoch, curve.losses[-1])
            if late and not last_epoch:
                out.timed_out = True
                break

    device.synchronize()
    out.losses, out.valid_losses = curve.losses, curve.valid
    out.epoch_end_seconds = [
        device.seconds_between(marks[0], m) - s for m, s in zip(marks[1:], setup, strict=True)
    ]
    out.setup_seconds = mode.setup_seconds
    return out
