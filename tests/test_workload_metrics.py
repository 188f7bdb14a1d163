"""The seed workloads' quality metrics, on models whose outputs are known, against figures
computed here by hand: a wrong formula, split or stopping rule changes a number."""

from __future__ import annotations

import math

import benchkit_plugins.lstm_seq2seq as s2s
import benchkit_plugins.rnn as rnn
import benchkit_plugins.sine_mlp as sine_mlp
import benchkit_plugins.single_neuron as single_neuron
import pytest
import torch
from benchkit_plugins.devices import CpuDevice
from benchkit_plugins.precisions import CastPrecision
from torch import nn

from benchkit import Data, Split
from benchkit.workload import EvalContext

CONTEXT = EvalContext(device=CpuDevice(), precision=CastPrecision(torch.float32))


class Fixed(nn.Module):
    """Returns the same predictions whatever its input."""

    def __init__(self, predictions: list[float]) -> None:
        super().__init__()
        self.predictions = torch.tensor(predictions).unsqueeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.predictions


# --- single_neuron ------------------------------------------------------------------------------


def test_the_learned_weight_and_bias_are_read_from_the_model():
    model = nn.Linear(1, 1)
    with torch.no_grad():
        model.weight.fill_(0.75)
        model.bias.fill_(-0.25)
    with torch.no_grad():  # as the runner calls evaluate
        got = single_neuron.learned_parameters(model, single_neuron.line({}), CONTEXT)
    assert got == {"weight": 0.75, "bias": -0.25}


# --- rnn --------------------------------------------------------------------------------------


def _forecast_data(actual: list[float], low: float = 10.0, high: float = 50.0) -> Data:
    x = torch.zeros(len(actual), 1, 1)
    split = Split((x,), torch.zeros(len(actual), 1))
    info = {"target_min": low, "target_max": high, "test_actual": torch.tensor(actual)}
    return Data(train=split, test=split, info=info)


def test_forecast_metrics_are_in_the_series_own_units():
    # scaled predictions 0, 0.5, 1, 0.25 on [10, 50] are 10, 30, 50, 20
    model = Fixed([0.0, 0.5, 1.0, 0.25])
    got = rnn.forecast_metrics(model, _forecast_data([12.0, 28.0, 50.0, 30.0]), CONTEXT)
    # errors -2, 2, 0, -10; the actual values' mean is 30, their squared deviations sum to 728
    assert got["test_mae"] == pytest.approx(3.5, rel=1e-12)
    assert got["test_rmse"] == pytest.approx(math.sqrt(27.0), rel=1e-12)
    assert got["test_r2"] == pytest.approx(1 - 108.0 / 728.0, rel=1e-12)


def test_a_perfect_forecast_has_r2_one_and_a_flat_series_none():
    perfect = rnn.forecast_metrics(Fixed([0.0, 1.0]), _forecast_data([10.0, 50.0]), CONTEXT)
    assert perfect == {"test_mae": 0.0, "test_rmse": 0.0, "test_r2": 1.0}
    flat = rnn.forecast_metrics(Fixed([0.0, 1.0]), _forecast_data([30.0, 30.0]), CONTEXT)
    assert flat["test_mae"] == 20.0 and math.isnan(flat["test_r2"])
    # a series that barely moves still has an R²: deviations 0.25 and 0.25, errors 0 and 0.5
    barely = rnn.forecast_metrics(Fixed([0.0, 0.0]), _forecast_data([1.0, 1.5], 1.0, 2.0), CONTEXT)
    assert barely["test_r2"] == pytest.approx(1 - 0.25 / 0.125, rel=1e-12)


def test_forecast_metrics_need_a_test_split_and_its_actual_values():
    data = _forecast_data([12.0, 28.0])
    no_actual = Data(train=data.train, test=data.test, info={"target_min": 0, "target_max": 1})
    assert rnn.forecast_metrics(Fixed([0.0, 1.0]), no_actual, CONTEXT) == {}
    no_test = Data(train=data.train, info=data.info)
    assert rnn.forecast_metrics(Fixed([0.0, 1.0]), no_test, CONTEXT) == {}


# --- sine_mlp ---------------------------------------------------------------------------------


def _averaging_model() -> nn.Module:
    """Predicts the mean of the oldest and the newest value of its window."""
    model = nn.Linear(20, 1)
    with torch.no_grad():
        model.weight.zero_()
        model.weight[0, 0] = 0.5
        model.weight[0, -1] = 0.5
        model.bias.zero_()
    return model


def test_the_rollout_feeds_each_prediction_back():
    data = sine_mlp.sine({"points": 2000, "window": 20})
    series = data.info["series"].double().tolist()
    with torch.no_grad():
        got = sine_mlp.rollout(_averaging_model(), data, CONTEXT)
    window = series[1500:1520]
    expected = []
    for _ in range(100):
        nxt = 0.5 * window[0] + 0.5 * window[-1]
        expected.append(nxt)
        window = [*window[1:], nxt]
    assert got["rollout_predicted"].tolist() == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert got["rollout_actual"].tolist() == series[1520:1620]
    assert got["rollout_mse"] == pytest.approx(
        sum((p - a) ** 2 for p, a in zip(expected, series[1520:1620], strict=True)) / 100,
        rel=1e-5,
    )


def test_the_rollout_needs_the_whole_stretch_of_the_series():
    model = _averaging_model()
    with torch.no_grad():
        exact = sine_mlp.rollout(model, sine_mlp.sine({"points": 1620, "window": 20}), CONTEXT)
        short = sine_mlp.rollout(model, sine_mlp.sine({"points": 1619, "window": 20}), CONTEXT)
    assert len(exact["rollout_predicted"]) == 100 and short == {}


# --- lstm_seq2seq -----------------------------------------------------------------------------

V = 6  # <pad> <sos> <eos> <unk> and two words, 4 and 5
E = s2s.EOS


class Scripted(nn.Module):
    """Quacks like ``Seq2Seq``. A row is named by its first source token: teacher forcing
    returns ``logits[row]``; greedy decoding emits ``script[row][step]`` at each step. It
    counts the decoder's calls."""

    def __init__(self, logits: torch.Tensor, script: list[list[int]]) -> None:
        super().__init__()
        self.logits, self.script, self.calls = logits, torch.tensor(script), 0

    def forward(self, src, tgt_in):
        return self.logits[src[:, 0]]

    def encoder(self, src):
        return src[:, 0]

    def decoder(self, token, rows, step):
        step = step or 0
        self.calls += 1
        chosen = self.script[rows, step]
        return nn.functional.one_hot(chosen, V).float()[:, None, :] * 50, rows, step + 1


def _split(rows: list[int], target: list[list[int]]) -> Split:
    src = torch.tensor([[r, 4, 5] for r in rows])
    return Split(
        (src, torch.ones(len(rows), len(target[0]), dtype=torch.long)), torch.tensor(target)
    )


VALID_TARGET = [[4, 5, E, 0], [5, E, 0, 0], [4, 4, 5, E]]  # 9 real tokens
TEST_TARGET = [[4, 5, E, 0], [5, E, 0, 0], [4, 4, 5, E], [5, 5, 5, 5], [4, 0, 0, 0]]
# greedy outputs of the test rows (named 3 to 7); references [4, 5], [5], [4, 4, 5],
# [5, 5, 5, 5] (no <eos>: the whole row) and [4] (no <eos>: padding dropped)
SCRIPT = [[0] * 4] * 3 + [[4, 5, E, 4], [5, 5, E, 0], [4, 4, 5, E], [5, 5, 5, 5], [4, E, 4, 4]]


def _seq2seq_case() -> tuple[Scripted, Data, torch.Tensor]:
    torch.manual_seed(0)
    logits = torch.randn(8, 4, V) * 3
    model = Scripted(logits, SCRIPT)
    data = Data(
        train=_split([0], [[4, E, 0, 0]]),
        valid=_split([0, 1, 2], VALID_TARGET),
        test=_split([3, 4, 5, 6, 7], TEST_TARGET),
    )
    return model, data, logits


def test_token_metrics_are_per_real_token_of_the_validation_split():
    model, data, logits = _seq2seq_case()
    got = s2s.quality(model, data, CONTEXT, batch_size=2)
    target = torch.tensor(VALID_TARGET)
    mask = target != s2s.PAD
    log_p = torch.log_softmax(logits[:3], -1).gather(-1, target.unsqueeze(-1)).squeeze(-1)
    token_loss = float(-(log_p * mask).sum()) / 9
    right = int(((logits[:3].argmax(-1) == target) & mask).sum())
    assert got["token_loss"] == pytest.approx(token_loss, rel=1e-6)
    assert got["perplexity"] == pytest.approx(math.exp(token_loss), rel=1e-6)
    assert got["token_accuracy"] == right / 9
    assert 0 < right < 9  # the random logits get some right, not all


def test_exact_match_is_the_share_of_greedy_translations_equal_to_the_reference():
    model, data, _ = _seq2seq_case()
    got = s2s.quality(model, data, CONTEXT, batch_size=2)
    assert got["exact_match"] == 4 / 5  # the second row decodes [5, 5], not [5]
    # batches of rows 3-4 (both end at step 2), 5-6 (row 6 never ends), 7 (ends at step 1)
    assert model.calls == 3 + 4 + 2


def test_greedy_decoding_stops_at_eos_or_after_the_given_steps():
    model, *_ = _seq2seq_case()
    src = torch.tensor([[3, 4], [6, 4], [7, 4]])
    assert s2s.greedy_decode(model, src, 4) == [[4, 5], [5, 5, 5, 5], [4]]
    assert model.calls == 4
    assert s2s.greedy_decode(model, src, 2) == [[4, 5], [5, 5], [4]]
    assert model.calls == 4 + 2
    # rows that end at different steps: decoding stops once the last of them has ended
    assert s2s.greedy_decode(model, torch.tensor([[7, 4], [3, 4]]), 4) == [[4], [4, 5]]
    assert model.calls == 4 + 2 + 3


def test_references_stop_at_eos_and_drop_padding():
    target = torch.tensor([[4, 5, E, 4], [4, 0, 5, 0], [E, 0, 0, 0]])
    assert s2s.references(target) == [[4, 5], [4, 5], []]


def test_without_a_validation_split_the_test_split_is_scored_and_vice_versa():
    model, data, logits = _seq2seq_case()
    test_only = s2s.quality(model, Data(train=data.train, test=data.test), CONTEXT)
    valid_only = s2s.quality(model, Data(train=data.train, valid=data.valid), CONTEXT)
    both = s2s.quality(model, data, CONTEXT)
    target = torch.tensor(TEST_TARGET)
    mask = target != s2s.PAD
    right = int(((logits[3:8].argmax(-1) == target) & mask).sum())
    assert test_only["token_accuracy"] == right / int(mask.sum())
    assert test_only["exact_match"] == both["exact_match"] == 4 / 5
    assert valid_only["token_accuracy"] == both["token_accuracy"]
    assert valid_only["exact_match"] == 0.0  # the valid rows' script is all padding
    assert s2s.quality(model, Data(train=data.train), CONTEXT) == {}


def test_splits_without_real_tokens_or_rows_give_no_metric():
    model, data, _ = _seq2seq_case()
    padding = _split([0], [[0, 0, 0, 0]])
    empty = Split((torch.zeros(0, 3, dtype=torch.long), torch.zeros(0, 4)), torch.zeros(0, 4))
    got = s2s.quality(model, Data(train=data.train, valid=padding, test=empty), CONTEXT)
    assert got == {}


def test_perplexity_is_capped_where_exp_would_overflow():
    model, data, _ = _seq2seq_case()
    target = torch.tensor(VALID_TARGET)
    model.logits = torch.zeros(8, 4, V)
    model.logits[:3] = 2000.0 * (1 - nn.functional.one_hot(target, V).float())  # all wrong
    got = s2s.quality(model, Data(train=data.train, valid=data.valid), CONTEXT)
    assert got["token_loss"] == pytest.approx(2000.0 + math.log(V - 1), rel=1e-6)
    assert got["perplexity"] == math.exp(700.0)
    assert got["token_accuracy"] == 0.0
