"""The training loop: what an epoch's loss is, and how the curve is read from the device."""

from __future__ import annotations

import pytest
import torch
from benchkit_plugins.devices import CpuDevice
from benchkit_plugins.precisions import CastPrecision
from torch import nn

import benchkit.training as training
from benchkit import Data, Recipe, Split
from benchkit.errors import BenchkitError
from benchkit.recipe_parts import RecipeParts, resolve_recipe
from benchkit.testing import isolated_registry

#: The built-in losses, optimizers and schedules (and devices and precisions), nothing else.
BASICS = isolated_registry()


def parts(recipe: Recipe) -> RecipeParts:
    """The recipe resolved against the built-ins, as the runner resolves a case's."""
    return resolve_recipe(recipe, BASICS)


def _data(n: int = 10) -> Data:
    x = torch.arange(n, dtype=torch.float32).unsqueeze(1) / n
    return Data(train=Split((x,), 3 * x + 1))


def _train(recipe: Recipe, data: Data | None = None, **kwargs) -> training.TrainOutcome:
    torch.manual_seed(0)
    model = nn.Linear(1, 1)
    return training.train(
        model,
        data or _data(),
        parts(recipe),
        CastPrecision(torch.float32),
        CpuDevice(),
        0,
        **kwargs,
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
        parts(recipe),
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
            training.train(
                nn.Linear(1, 1), data, parts(recipe), CastPrecision(torch.float32), device, 0
            )
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
        model, _data(), parts(recipe), CastPrecision(torch.float32), device, 0, recorders=[counter]
    )
    assert outcome.diverged_epoch == 0
    assert len(outcome.losses) == len(outcome.epoch_end_seconds) == 1
    # a synchronous device stops at once; a queued one at the end of its chunk at the latest
    assert counter.steps == 1 if not extra else 1 <= counter.steps <= training.MAX_CHUNK


TORCH_LOSSES = {
    "mse": nn.functional.mse_loss,
    "l1": nn.functional.l1_loss,
    "huber": nn.functional.huber_loss,
}
TORCH_OPTIMIZERS = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
    "adagrad": torch.optim.Adagrad,
}


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


@pytest.mark.parametrize("optimizer", sorted(TORCH_OPTIMIZERS))
@pytest.mark.parametrize("loss", sorted(TORCH_LOSSES))
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
    loss_fn = parts(Recipe(loss="cross_entropy", ignore_index=0)).loss
    logits = torch.randn(2, 3, 5)
    target = torch.tensor([[1, 2, 0], [3, 0, 0]])
    expected = nn.functional.cross_entropy(
        logits.reshape(-1, 5), target.reshape(-1), ignore_index=0
    )
    assert loss_fn(logits, target) == expected


def test_a_recipe_names_parts_the_registry_must_have():
    with pytest.raises(BenchkitError, match=r"unknown loss 'hinge'; valid: bce_with_logits, "):
        parts(Recipe(loss="hinge"))
    with pytest.raises(BenchkitError, match=r"unknown optimizer 'lbfgs'; valid: adagrad, adam"):
        parts(Recipe(optimizer="lbfgs"))
    with pytest.raises(BenchkitError, match=r"optimizer_options: optimizer 'sgd' has no option "):
        parts(Recipe(optimizer_options={"betas": [0.9, 0.99]}))


def test_a_recipe_takes_names_never_callables():
    with pytest.raises(TypeError, match=r"Recipe\(loss=\.\.\.\) takes the name of a registered"):
        Recipe(loss=nn.MSELoss())
    with pytest.raises(TypeError, match=r"register it with the benchkit_register_optimizers"):
        Recipe(optimizer=torch.optim.SGD)
    with pytest.raises(TypeError, match=r"optimizer_options=\.\.\.\) takes a dict"):
        Recipe(optimizer_options=[("momentum", 0.9)])


def test_bce_with_logits_and_nll_are_torchs():
    logits, target = torch.randn(6, 1), torch.randint(0, 2, (6, 1)).float()
    bce = parts(Recipe(loss="bce_with_logits")).loss
    assert bce(logits, target) == nn.functional.binary_cross_entropy_with_logits(logits, target)
    weighted = parts(Recipe(loss="bce_with_logits", loss_options={"pos_weight": 3.0})).loss
    expected = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(3.0))(logits, target)
    assert weighted(logits, target) == pytest.approx(expected.item(), rel=1e-6)
    log_probs = torch.log_softmax(torch.randn(2, 3, 4), -1)
    tokens = torch.tensor([[1, 2, 0], [3, 0, 0]])
    nll = parts(Recipe(loss="nll", ignore_index=0)).loss
    assert nll(log_probs, tokens) == nn.functional.nll_loss(
        log_probs.reshape(-1, 4), tokens.reshape(-1), ignore_index=0
    )


def test_optimizer_options_reach_torch():
    model = nn.Linear(1, 1)
    recipe = Recipe(optimizer="sgd", lr=0.1, optimizer_options={"momentum": 0.9, "nesterov": True})
    group = parts(recipe).make_optimizer(model.parameters()).param_groups[0]
    assert (group["lr"], group["momentum"], group["nesterov"]) == (0.1, 0.9, True)
    adam = parts(Recipe(optimizer="adam", optimizer_options={"betas": [0.8, 0.9]}))
    group = adam.make_optimizer(model.parameters()).param_groups[0]
    assert (group["lr"], group["betas"]) == (1e-3, (0.8, 0.9))  # lr=None: torch's default


@pytest.mark.parametrize(
    ("schedule", "options", "expected"),
    [
        ("step", {"step_size": 2, "gamma": 0.5}, [0.1, 0.1, 0.05, 0.05, 0.025]),
        ("exponential", {"gamma": 0.5}, [0.1, 0.05, 0.025, 0.0125, 0.00625]),
        ("cosine", {}, [0.1, 0.0904508, 0.0654508, 0.0345492, 0.0095492]),
    ],
)
def test_a_schedule_steps_once_per_epoch_and_the_outcome_keeps_each_epochs_lr(
    schedule, options, expected
):
    recipe = Recipe(lr=0.1, epochs=5, batch_size=3, schedule=schedule, schedule_options=options)
    outcome = _train(recipe)
    assert outcome.lrs == pytest.approx(expected, rel=1e-5)
    assert _train(Recipe(lr=0.1, epochs=5)).lrs == []  # no schedule, no lr curve


def test_onecycle_warms_up_to_the_recipes_rate_and_anneals():
    outcome = _train(Recipe(lr=0.1, epochs=10, schedule="onecycle"))
    peak = max(range(10), key=outcome.lrs.__getitem__)
    assert outcome.lrs[0] == pytest.approx(0.1 / 25)
    assert outcome.lrs[peak] == pytest.approx(0.1, rel=0.05)
    assert 1 <= peak <= 4 and outcome.lrs[-1] < outcome.lrs[0]


@pytest.mark.parametrize("loss", ["mse", "l1"])
def test_split_loss_in_batches_is_the_exact_mean(loss):
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    split = Split((torch.randn(103, 3),), torch.randn(103, 1))
    recipe = parts(Recipe(loss=loss))
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
    target[7:14] = 0  # a batch of padding only: weighs nothing
    recipe = parts(Recipe(loss="cross_entropy", ignore_index=0))
    args = (logits, split, recipe, CastPrecision(torch.float64), CpuDevice())
    assert training.split_loss(*args, batch=7).item() == pytest.approx(
        training.split_loss(*args).item(), rel=1e-12
    )
