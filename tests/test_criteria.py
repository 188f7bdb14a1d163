"""Convergence criteria: parsing and the first epoch each is met."""

from __future__ import annotations

import pytest

from benchkit.criteria import Criterion, parse_criterion


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("loss <= 1e-4", "loss <= 0.0001"),
        ("loss<=1e-8", "loss <= 1e-08"),
        ("loss == 0", "loss == 0"),
        ("valid_loss < 2.5", "valid_loss < 2.5"),
        ("relative_loss <= 1e-6", "relative_loss <= 1e-06"),
    ],
)
def test_criteria_parse_to_a_canonical_spelling(text, canonical):
    assert parse_criterion(text).text == canonical


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("loss is small", "must read SERIES OP VALUE"),
        ("accuracy >= 0.9", "must read SERIES OP VALUE"),
        ("acc <= 0.9", "series 'acc' is not one of loss, valid_loss, relative_loss"),
        ("loss <= tiny", "'tiny' is not a number"),
        ("loss <= inf", "must be finite"),
    ],
)
def test_bad_criteria_say_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        parse_criterion(text)


CURVE = [1.0, 0.1, 1e-5, 0.0, 0.0]


@pytest.mark.parametrize(
    ("criterion", "epoch"),
    [
        (Criterion("loss", "<=", 0.1), 1),
        (Criterion("loss", "<", 0.1), 2),
        (Criterion("loss", "<=", 1e-8), 3),
        (Criterion("loss", "==", 0.0), 3),
        (Criterion("loss", "<=", -1.0), None),
        (Criterion("relative_loss", "<=", 1e-4), 2),
    ],
)
def test_first_epoch_each_criterion_is_met(criterion, epoch):
    assert criterion.first_epoch(CURVE, []) == epoch


def test_valid_loss_criterion_reads_the_validation_curve():
    # the training curve is at or below 0.5 from epoch 1, the validation curve from epoch 2
    assert Criterion("valid_loss", "<=", 0.5).first_epoch(CURVE, [3.0, 2.0, 0.4]) == 2
    assert Criterion("valid_loss", "<=", 0.5).first_epoch(CURVE, []) is None


@pytest.mark.parametrize(
    ("curve", "epoch"),
    [
        ([4.0, 3.0, 2.0, 1.0], 2),  # relative: 0.75, 0.5 (the first <= 0.5), 0.25
        ([2.0, 0.0], 1),  # a zero after the start is relative 0
        ([2.0, float("inf"), 1.0], 2),  # a non-finite loss after the start never meets it
        ([0.0, 0.0], None),  # nothing to be relative to
        ([float("inf"), 1.0], None),
        ([], None),
    ],
)
def test_relative_loss_divides_by_the_loss_of_epoch_zero(curve, epoch):
    assert Criterion("relative_loss", "<=", 0.5).first_epoch(curve, []) == epoch


def test_nan_never_meets_a_criterion_and_relative_needs_a_finite_start():
    assert Criterion("loss", "<=", 1.0).first_epoch([float("nan"), 2.0], []) is None
    assert Criterion("relative_loss", "<=", 1.0).first_epoch([float("nan"), 0.0], []) is None
