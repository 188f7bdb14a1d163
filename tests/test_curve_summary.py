"""The loss figures of a run, from its curve: literal curves, literal expected epochs."""

from __future__ import annotations

import math

import pytest

from benchkit.run_result import RunResult, first_epoch, summarise_curve

INF, NAN = float("inf"), float("nan")


def summary(curve: list[float], target: float | None = None) -> RunResult:
    result = RunResult("m/d/fp32/cpu/seed0", "m", "d", "fp32", "cpu", 0, target_loss=target)
    result.curve = curve
    summarise_curve(result)
    return result


def test_figures_of_a_curve_that_reaches_its_target_and_zero():
    got = summary([4.0, 2.0, 1.0, 1.0, 0.5, 0.0, 0.0, 0.25], target=1.0)
    assert got.epochs == 8
    assert got.final_loss == 0.25
    assert got.best_loss == 0.0
    assert got.converged_epoch == 2  # the first loss equal to the target counts
    assert got.zero_loss_epoch == 5


def test_a_target_between_two_losses_and_one_never_reached():
    assert summary([4.0, 2.0, 1.0], target=1.5).converged_epoch == 2
    assert summary([4.0, 2.0, 1.0], target=4.0).converged_epoch == 0
    never = summary([4.0, 2.0, 1.0], target=0.5)
    assert never.converged_epoch is None and never.zero_loss_epoch is None


def test_no_target_leaves_converged_epoch_empty():
    assert summary([4.0, 0.0]).converged_epoch is None


def test_non_finite_losses_are_no_best_and_never_converge():
    got = summary([NAN, 3.0, INF, 2.0, -INF], target=2.5)
    assert got.best_loss == 2.0  # the finite minimum, not -inf
    assert got.final_loss == -INF  # the last loss, whatever it is
    assert got.converged_epoch == 3  # -inf <= 2.5, but 2.0 came first; NaN never counts
    assert got.epochs == 5
    diverged = summary([INF, NAN])
    assert diverged.best_loss is None and math.isnan(diverged.final_loss)


def test_an_empty_curve_has_no_figures():
    got = summary([], target=1.0)
    assert got.epochs == 0
    assert (got.final_loss, got.best_loss, got.converged_epoch, got.zero_loss_epoch) == (
        None,
        None,
        None,
        None,
    )


def test_a_negative_zero_counts_as_zero():
    assert summary([1.0, -0.0]).zero_loss_epoch == 1


@pytest.mark.parametrize(
    ("curve", "epoch"),
    [([3.0, 2.0, 1.0], 1), ([2.0], 0), ([3.0, 2.5], None), ([], None)],
)
def test_first_epoch_is_the_first_index_meeting_the_predicate(curve, epoch):
    assert first_epoch(curve, lambda v: v <= 2.0) == epoch
