"""The training loop: what an epoch's loss is, and how the curve is read from the device."""

from __future__ import annotations

import pytest
import torch
from benchkit_plugins.devices import CpuDevice
from benchkit_plugins.precisions import CastPrecision
from torch import nn

import benchkit.training as training
from benchkit import Data, Recipe, Split


def _data(n: int = 10) -> Data:
    x = torch.arange(n, dtype=torch.float32).unsqueeze(1) / n
    return Data(train=Split((x,), 3 * x + 1))


def _train(recipe: Recipe, data: Data | None = None, **kwargs) -> training.TrainOutcome:
    torch.manual_seed(0)
    model = nn.Linear(1, 1)
    return training.train(
        model, data or _data(), recipe, CastPrecision(torch.float32), CpuDevice(), 0, **kwargs
    )


def test_minibatch_epoch_loss_is_the_mean_over_batches_before_updates():
    data = _data(10)
    recipe = Recipe(loss="mse", optimizer="sgd", lr=0.05, epochs=1, batch_size=4)
    outcome = _train(recipe, data)
    # Replay by hand: batches of 4, 4, 2; each loss taken before its own update.
    torch.manual_seed(0)
    model = nn.Linear(1, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    losses = []
    for start in range(0, 10, 4):
        x, y = data.train.inputs[0][start : start + 4], data.train.target[start : start + 4]
        loss = nn.functional.mse_loss(model(x), y)
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert outcome.losses[0] == pytest.approx(sum(losses) / 3, rel=1e-12)


def test_shuffling_is_seeded():
    recipe = Recipe(loss="mse", optimizer="sgd", lr=0.05, epochs=5, batch_size=3, shuffle=True)
    assert _train(recipe).losses == _train(recipe).losses
    unshuffled = Recipe(loss="mse", optimizer="sgd", lr=0.05, epochs=5, batch_size=3)
    assert _train(recipe).losses != _train(unshuffled).losses


class QueuedCpu(CpuDevice):
    """The CPU treated as an asynchronous device, as a GPU is."""

    asynchronous = True


def test_on_an_asynchronous_device_the_curve_is_read_in_chunks_never_per_epoch(monkeypatch):
    monkeypatch.setattr(training, "MAX_CHUNK", 10)
    monkeypatch.setattr(training, "READ_EVERY_SECONDS", float("inf"))

    def no_item(self):
        raise AssertionError("the loop must not read a scalar back every epoch")

    monkeypatch.setattr(torch.Tensor, "item", no_item)
    reads = []
    recipe = Recipe(loss="mse", optimizer="sgd", lr=0.05, epochs=95)
    torch.manual_seed(0)
    outcome = training.train(
        nn.Linear(1, 1),
        _data(),
        recipe,
        CastPrecision(torch.float32),
        QueuedCpu(),
        0,
        on_progress=lambda epoch, loss: reads.append(epoch),
    )
    assert len(outcome.losses) == 95
    assert reads == [9, 19, 29, 39, 49, 59, 69, 79, 89, 94]


def test_both_ways_of_reading_give_the_same_curve():
    recipe = Recipe(loss="mse", optimizer="adam", lr=0.05, epochs=40, batch_size=3, shuffle=True)
    data = _data()
    data.valid = data.train
    outcomes = []
    for device in (CpuDevice(), QueuedCpu()):
        torch.manual_seed(0)
        outcomes.append(
            training.train(nn.Linear(1, 1), data, recipe, CastPrecision(torch.float32), device, 0)
        )
    assert outcomes[0].losses == outcomes[1].losses
    assert outcomes[0].valid_losses == outcomes[1].valid_losses


class StepCounter(training.EpochRecorder):
    def __init__(self) -> None:
        self.steps = 0

    def after_step(self, model):
        self.steps += 1


@pytest.mark.parametrize(("device", "extra"), [(CpuDevice(), False), (QueuedCpu(), True)])
def test_divergence_stops_training(device, extra, monkeypatch):
    monkeypatch.setattr(training, "READ_EVERY_SECONDS", float("inf"))
    torch.manual_seed(0)
    model = nn.Linear(1, 1)
    with torch.no_grad():
        model.weight.fill_(1e30)  # the first forward pass already overflows
    counter = StepCounter()
    recipe = Recipe(loss="mse", optimizer="sgd", lr=0.1, epochs=500)
    outcome = training.train(
        model, _data(), recipe, CastPrecision(torch.float32), device, 0, recorders=[counter]
    )
    assert outcome.diverged_epoch == 0
    assert len(outcome.losses) == len(outcome.epoch_end_seconds) == 1
    # a synchronous device stops at once; a queued one at the end of its chunk at the latest
    assert counter.steps == 1 if not extra else 1 <= counter.steps <= training.MAX_CHUNK


TORCH_LOSSES = {"mse": nn.functional.mse_loss, "l1": nn.functional.l1_loss}
TORCH_OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


def _replay(loss: str, optimizer: str, epochs: int, **options) -> list[float]:
    """The curve of a full-batch run, written out by hand with torch's own loss and optimizer."""
    data = _data()
    x, y = data.train.inputs[0], data.train.target
    torch.manual_seed(0)
    model = nn.Linear(1, 1)
    opt = TORCH_OPTIMIZERS[optimizer](model.parameters(), lr=0.05, **options)
    curve = []
    for _ in range(epochs):
        value = TORCH_LOSSES[loss](model(x), y)
        curve.append(value.item())
        opt.zero_grad()
        value.backward()
        opt.step()
    return curve


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
@pytest.mark.parametrize("loss", ["mse", "l1"])
def test_recipe_losses_and_optimizers_train(loss, optimizer):
    """Each recipe loss and optimizer is the torch one of that name: the curve is the
    hand-written loop's, and no other pair gives it (a silent fallback to sgd or mse would)."""
    outcome = _train(Recipe(loss=loss, optimizer=optimizer, lr=0.05, epochs=8))
    assert outcome.losses == pytest.approx(_replay(loss, optimizer, 8), rel=1e-6, abs=0)
    assert outcome.losses[-1] < outcome.losses[0]
    for other_loss in TORCH_LOSSES:
        for other_opt in TORCH_OPTIMIZERS:
            if (other_loss, other_opt) != (loss, optimizer):
                other = _replay(other_loss, other_opt, 8)
                assert outcome.losses != pytest.approx(other, rel=1e-6, abs=0)


def test_optimizer_options_reach_the_optimizer():
    recipe = Recipe(
        loss="mse", optimizer="sgd", lr=0.05, epochs=8, optimizer_options={"momentum": 0.9}
    )
    assert _train(recipe).losses == pytest.approx(_replay("mse", "sgd", 8, momentum=0.9), rel=1e-6)
    assert _replay("mse", "sgd", 8, momentum=0.9) != pytest.approx(_replay("mse", "sgd", 8))


def test_cross_entropy_flattens_sequence_predictions_and_ignores_padding():
    loss_fn = training.make_loss(Recipe(loss="cross_entropy", ignore_index=0))
    logits = torch.randn(2, 3, 5)
    target = torch.tensor([[1, 2, 0], [3, 0, 0]])
    expected = nn.functional.cross_entropy(
        logits.reshape(-1, 5), target.reshape(-1), ignore_index=0
    )
    assert loss_fn(logits, target) == expected


def test_recipe_rejects_unknown_loss_and_optimizer():
    with pytest.raises(ValueError, match="loss 'hinge'"):
        Recipe(loss="hinge")
    with pytest.raises(ValueError, match="optimizer 'lbfgs'"):
        Recipe(optimizer="lbfgs")


@pytest.mark.parametrize("loss", ["mse", "l1"])
def test_split_loss_in_batches_is_the_exact_mean(loss):
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    split = Split((torch.randn(103, 3),), torch.randn(103, 1))
    recipe = Recipe(loss=loss)
    model.double()
    split = split.map(lambda t: t.double())
    args = (model, split, recipe, CastPrecision(torch.float64), CpuDevice())
    whole = training.split_loss(*args)
    batched = training.split_loss(*args, batch=10)
    assert batched.item() == pytest.approx(whole.item(), rel=1e-12)


def test_split_loss_in_batches_weights_cross_entropy_by_real_tokens():
    torch.manual_seed(0)
    logits = nn.Embedding(7, 5).double()  # tokens in, logits out: (batch, time, classes)
    target = torch.randint(1, 5, (50, 6))
    target[::3, 3:] = 0  # padding, ignored
    split = Split((torch.randint(0, 7, (50, 6)),), target)
    recipe = Recipe(loss="cross_entropy", ignore_index=0)
    args = (logits, split, recipe, CastPrecision(torch.float64), CpuDevice())
    assert training.split_loss(*args, batch=7).item() == pytest.approx(
        training.split_loss(*args).item(), rel=1e-12
    )
