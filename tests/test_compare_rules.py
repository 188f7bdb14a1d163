"""``benchkit compare`` rule by rule, on small result sets built in memory: each verdict, change
and note checked against a figure worked out by hand."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from benchkit.compare import (
    CPU_MEMORY_FLOOR,
    MIB,
    RULES,
    Finding,
    Options,
    Rule,
    Thresholds,
    compare,
    never_is_worst,
    parse_threshold_args,
    rule_for,
    suite_threshold_layer,
)
from benchkit.errors import BenchkitError
from benchkit.resultset import KEY_COLUMNS, ResultSet, Summary

ENV = {"torch": "2.13.0+cpu", "cpu": "Xeon", "cpu_capability": "AVX512", "torch_threads": "1"}


def run(seed: int = 0, precision: str = "fp32", model: str = "m", **values) -> dict:
    """One results.csv row of model ``model`` on dataset d, on the CPU."""
    row = {
        "run_id": f"{model}/d/{precision}/cpu/seed{seed}",
        "model": model,
        "dataset": "d",
        "precision": precision,
        "device": "cpu",
        "seed": str(seed),
        "variant": "",
        "mode": "eager",
        "device_name": "Xeon",
        "status": "ok",
        "status_detail": "",
    }
    row.update(values)
    return row


def result_set(rows: list[dict], name: str = "base", **fields) -> ResultSet:
    fields.setdefault("environment", dict(ENV))
    fields.setdefault("meta", {"finished": True})
    return ResultSet(
        path=Path(name),
        kind=fields.pop("kind", "benchkit"),
        rows=pd.DataFrame(rows),
        key_columns=list(KEY_COLUMNS),
        group_columns=[c for c in KEY_COLUMNS if c != "seed"],
        **fields,
    )


def judge(base: list[dict], new: list[dict], base_fields=None, new_fields=None, **options):
    return compare(
        result_set(base, "base", **(base_fields or {})),
        result_set(new, "new", **(new_fields or {})),
        Options(**options),
    )


def finding(comparison, metric: str, key: str | None = None) -> Finding:
    hits = [f for f in comparison.findings if f.metric == metric and (key is None or f.key == key)]
    assert len(hits) == 1, [(f.key, f.metric, f.verdict) for f in comparison.findings]
    return hits[0]


def one(metric: str, before, after, same_env: bool = True, **options) -> Finding:
    """The finding of ``metric`` going from ``before`` to ``after`` in one run."""
    new_fields = None if same_env else {"environment": {**ENV, "cpu": "EPYC"}}
    got = judge([run(**{metric: before})], [run(**{metric: after})], None, new_fields, **options)
    return finding(got, metric)


# --- the rule table ---------------------------------------------------------------------------


def test_epoch_loss_and_setup_rules():
    assert rule_for("converged_epoch") == Rule(
        "converged_epoch",
        "deterministic",
        "lower",
        0,
        False,
        cross=2,
        unit="epochs",
        doc=RULES["converged_epoch"].doc,
    )
    final = rule_for("final_loss")
    assert (final.kind, final.better, final.threshold, final.relative) == (
        "deterministic",
        "lower",
        0.0,
        True,
    )
    assert (final.cross, final.floor, final.unit) == (0.05, 1e-6, "")
    setup = rule_for("optimizer")
    assert (setup.kind, setup.better, setup.threshold, setup.relative, setup.cross) == (
        "deterministic",
        "none",
        0,
        False,
        0.0,
    )
    assert rule_for("diverged_epoch").better == "higher"
    assert rule_for("grads_nonfinite_epoch").better == "none"


@pytest.mark.parametrize(
    ("metric", "kind", "better", "threshold", "relative", "unit"),
    [
        ("epochs_to[loss <= 1e-08]", "deterministic", "lower", 0, False, "epochs"),
        ("tokens_per_second", "noisy", "higher", 0.10, True, ""),
        ("step_seconds", "noisy", "lower", 0.10, True, ""),
        ("warmup_time", "noisy", "lower", 0.10, True, ""),
        ("gpu_memory", "memory", "lower", 0.25, True, "bytes"),
        ("test_rmse", "deterministic", "lower", 0.0, True, ""),
        ("token_accuracy", "deterministic", "higher", 0.0, True, ""),
        ("bias", "deterministic", "none", 0.0, True, ""),
    ],
)
def test_metrics_outside_the_table_get_a_rule_from_their_name(
    metric, kind, better, threshold, relative, unit
):
    rule = rule_for(metric)
    assert rule.metric == metric
    assert (rule.kind, rule.better, rule.threshold, rule.relative, rule.unit) == (
        kind,
        better,
        threshold,
        relative,
        unit,
    )
    if kind == "deterministic" and unit != "epochs":
        assert (rule.cross, rule.floor) == (0.05, 1e-6)
    if unit == "epochs":
        assert rule.cross == 2
    assert rule.doc


def test_epoch_metrics_that_never_happened_are_the_worst():
    assert never_is_worst("converged_epoch") and never_is_worst("zero_loss_epoch")
    assert never_is_worst("epochs_to[loss == 0]")
    assert not never_is_worst("diverged_epoch") and not never_is_worst("final_loss")


# --- thresholds -------------------------------------------------------------------------------


def test_threshold_layers_the_later_winning_the_metric_over_its_kind():
    layers = Thresholds(
        [
            {"noisy": 0.2, "final_loss.cross": 0.5, "converged_epoch": 3},
            {"samples_per_second": 0.3, "deterministic": 1.0, "deterministic.cross": 4},
        ]
    )
    assert layers.rule("samples_per_second").threshold == 0.3
    assert layers.rule("train_seconds").threshold == 0.2
    assert layers.rule("converged_epoch").threshold == 1.0  # the later layer's kind wins
    assert layers.rule("final_loss").cross == 4
    assert Thresholds([{"final_loss.cross": 0.5}]).rule("final_loss").cross == 0.5
    assert (
        Thresholds([{"deterministic": 1.0, "final_loss": 0.5}]).rule("final_loss").threshold == 0.5
    )
    assert (
        Thresholds([{"final_loss": 0.5, "deterministic": 1.0}]).rule("final_loss").threshold == 0.5
    )
    untouched = Thresholds([]).rule("final_loss")
    assert untouched == rule_for("final_loss")


def test_threshold_arguments():
    assert parse_threshold_args([" samples_per_second = 0.2", "converged_epoch=0"]) == {
        "samples_per_second": 0.2,
        "converged_epoch": 0.0,
    }
    assert parse_threshold_args([]) == {}


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("converged_epoch", "--threshold 'converged_epoch': write METRIC=VALUE"),
        ("=0.1", "--threshold '=0.1': write METRIC=VALUE"),
        ("x=fast", "--threshold 'x=fast': 'fast' is not a number"),
        ("x=-0.1", "--threshold 'x=-0.1': a threshold is a number >= 0, got '-0.1'"),
        ("x=inf", "a threshold is a number >= 0, got 'inf'"),
        ("x=nan", "a threshold is a number >= 0, got 'nan'"),
    ],
)
def test_bad_threshold_arguments(item, message):
    with pytest.raises(BenchkitError) as err:
        parse_threshold_args([item])
    assert message in str(err.value)


def test_a_suites_compare_table_with_cross_tolerances():
    table = {"samples_per_second": 0.2, "cross": {"final_loss": 0.1, "converged_epoch": 3}}
    assert suite_threshold_layer(table, "s") == {
        "samples_per_second": 0.2,
        "final_loss.cross": 0.1,
        "converged_epoch.cross": 3.0,
    }
    with pytest.raises(BenchkitError, match=r"s \[compare.cross\] final_loss: 'x' is not"):
        suite_threshold_layer({"cross": {"final_loss": "x"}}, "s")
    with pytest.raises(BenchkitError, match=r"s \[compare\] noisy: a threshold is a number"):
        suite_threshold_layer({"noisy": -1}, "s")
    # a metric called "cross" that is not a table is a plain threshold
    assert suite_threshold_layer({"cross": 0.5}, "s") == {"cross": 0.5}


@pytest.mark.parametrize(
    ("thresholds", "message"),
    [
        ({"speed": 0.1}, "--threshold: unknown metric 'speed'; valid: "),
        ({"final_loss.tolerance": 0.1}, "unknown metric 'final_loss.tolerance'"),
        (
            {"samples_per_second.cross": 0.1},
            "--threshold: 'samples_per_second.cross': only deterministic metrics have a cross",
        ),
        ({"memory.cross": 0.1}, "'memory.cross': only deterministic metrics have a cross"),
    ],
)
def test_threshold_names_are_checked(thresholds, message):
    with pytest.raises(BenchkitError) as err:
        judge([run(final_loss=0.1)], [run(final_loss=0.1)], thresholds=thresholds)
    assert message in str(err.value)


def test_cross_tolerances_of_deterministic_metrics_and_kinds_are_accepted():
    got = judge(
        [run(final_loss=0.1)],
        [run(final_loss=0.1)],
        thresholds={"final_loss.cross": 0.1, "deterministic.cross": 0.2, "memory": 0.5},
    )
    assert got.exit_code == 0


def test_the_suites_compare_table_is_checked_and_named():
    with pytest.raises(BenchkitError) as err:
        judge([run(final_loss=0.1)], [run(final_loss=0.1)], new_fields={"thresholds": {"x": 1}})
    assert "new: the suite's [compare] table: unknown metric 'x'" in str(err.value)
    tolerant = judge(
        [run(final_loss=0.1)],
        [run(final_loss=0.2)],
        new_fields={"thresholds": {"final_loss": 1.0}},
    )
    assert finding(tolerant, "final_loss").verdict == "within"


# --- deterministic metrics --------------------------------------------------------------------


def test_an_unchanged_value_is_the_same():
    got = one("final_loss", 0.5, 0.5)
    assert (got.verdict, got.change, got.rule, got.kind) == ("same", 0.0, "exact", "deterministic")
    assert (got.baseline, got.new, got.fails, got.gated) == (0.5, 0.5, False, True)


def test_any_change_of_a_loss_on_the_same_environment_counts():
    worse = one("final_loss", 0.5, 0.6)
    assert (worse.verdict, worse.rule, worse.fails) == ("regressed", "exact", True)
    assert worse.change == pytest.approx(0.2, rel=1e-12)  # relative to the baseline
    better = one("final_loss", 0.5, 0.4)
    assert (better.verdict, better.fails) == ("improved", False)
    assert better.change == pytest.approx(-0.2, rel=1e-12)
    tiny = one("final_loss", 1e-7, 5e-7)  # the cross-environment floor does not apply here
    assert tiny.verdict == "regressed"


def test_other_environments_allow_five_percent_and_at_least_the_floor():
    within = one("final_loss", 0.5, 0.524, same_env=False)
    assert (within.verdict, within.rule) == ("within", "±5 %, at least 1e-06 (environments differ)")
    assert one("final_loss", 0.5, 0.526, same_env=False).verdict == "regressed"
    assert one("final_loss", 0.5, 0.476, same_env=False).verdict == "within"
    assert one("final_loss", 0.5, 0.474, same_env=False).verdict == "improved"
    assert one("final_loss", 1e-7, 1.05e-6, same_env=False).verdict == "within"
    assert one("final_loss", 1e-7, 1.2e-6, same_env=False).verdict == "regressed"


def test_a_change_from_zero_is_an_infinite_relative_change():
    up = one("final_loss", 0.0, 0.1)
    assert up.verdict == "regressed" and up.change == math.inf
    down = one("weight", 0.0, -0.1)
    assert down.verdict == "changed" and down.change == -math.inf


def test_epochs_compare_in_epochs():
    later = one("converged_epoch", 10, 12)
    assert (later.verdict, later.change, later.rule) == ("regressed", 2.0, "exact")
    assert one("converged_epoch", 10, 9).verdict == "improved"
    cross = one("converged_epoch", 10, 12, same_env=False)
    assert (cross.verdict, cross.rule) == ("within", "±2 epochs (environments differ)")
    assert one("converged_epoch", 10, 13, same_env=False).verdict == "regressed"
    assert one("converged_epoch", 10, 8, same_env=False).verdict == "within"
    allowed = one("converged_epoch", 10, 11, thresholds={"converged_epoch": 1})
    assert (allowed.verdict, allowed.rule) == ("within", "±1 epochs")
    relative = one("final_loss", 0.5, 0.52, thresholds={"final_loss": 0.1})
    assert (relative.verdict, relative.rule) == ("within", "±10 %")


def test_an_epoch_never_reached_is_worse_than_any():
    lost = one("converged_epoch", 10, None)
    assert (lost.verdict, lost.note, lost.fails) == ("regressed", "never reached", True)
    gained = one("converged_epoch", None, 10)
    assert (gained.verdict, gained.note) == ("improved", "now reached")
    missing = one("test_loss", 0.3, None)
    assert (missing.verdict, missing.note, missing.fails) == ("changed", "missing in new", False)
    assert one("test_loss", None, 0.3).note == "missing in baseline"
    empty_text = one("optimizer", "adam", "")
    assert (empty_text.verdict, empty_text.note) == ("changed", "missing in new")


def test_neither_side_having_a_value_is_no_finding():
    got = judge(
        [run(converged_epoch=None, final_loss=0.1)], [run(converged_epoch=None, final_loss=0.1)]
    )
    assert not [f for f in got.findings if f.metric == "converged_epoch"]


def test_text_values_are_the_same_or_changed():
    assert one("optimizer", "adam", "adam").verdict == "same"
    changed = one("optimizer", "adam", "sgd")
    assert (changed.verdict, changed.fails) == ("changed", False)
    assert one("lr", 0.1, 0.2).verdict == "changed"


@pytest.mark.parametrize(
    ("metric", "before", "after", "verdict"),
    [
        ("token_accuracy", 0.8, 0.7, "regressed"),
        ("token_accuracy", 0.8, 0.9, "improved"),
        ("diverged_epoch", 5, 3, "regressed"),
        ("weight", 0.5, 0.6, "changed"),
    ],
)
def test_the_direction_comes_from_the_rule(metric, before, after, verdict):
    assert one(metric, before, after).verdict == verdict


def test_strict_fails_every_deterministic_change():
    assert one("final_loss", 0.5, 0.4, strict=True).fails
    assert one("weight", 0.5, 0.6, strict=True).fails
    assert not one("final_loss", 0.5, 0.5, strict=True).fails
    assert not one("final_loss", 0.5, 0.52, thresholds={"final_loss": 0.1}, strict=True).fails


def test_report_only_keeps_a_regression_from_failing():
    by_kind = one("final_loss", 0.5, 0.6, report_only={"deterministic"})
    assert (by_kind.verdict, by_kind.gated, by_kind.fails) == ("regressed", False, False)
    by_metric = one("final_loss", 0.5, 0.6, report_only={"final_loss"})
    assert (by_metric.gated, by_metric.fails) == (False, False)
    assert one("final_loss", 0.5, 0.6, report_only={"best_loss"}).fails


# --- memory -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "device", "verdict"),
    [
        (100, 140, "cpu", "regressed"),  # +40 MiB, +40 %
        (100, 130, "cpu", "within"),  # +30 MiB: under the CPU's 32 MiB floor
        (200, 240, "cpu", "within"),  # +40 MiB but +20 %
        (140, 100, "cpu", "improved"),
        (100, 100, "cpu", "same"),
        (4, 6, "cuda", "regressed"),  # +2 MiB, +50 %
        (4, 4.9, "cuda", "within"),  # +0.9 MiB: under 1 MiB
        (0, 40, "cpu", "regressed"),
    ],
)
def test_memory_needs_both_a_relative_and_an_absolute_change(before, after, device, verdict):
    base = run(peak_memory_bytes=before * MIB)
    new = run(peak_memory_bytes=after * MIB)
    base["device"] = new["device"] = device
    got = finding(judge([base], [new]), "peak_memory_bytes")
    assert got.verdict == verdict
    assert got.kind == "memory"
    floor = "32" if device == "cpu" else "1"
    assert got.rule == f"25 % and > {floor} MiB"
    expected = (after - before) / before if before else (math.inf if after > before else 0.0)
    assert got.change == pytest.approx(expected, rel=1e-12)


def test_memory_of_a_diverged_run_or_a_missing_figure_is_not_compared():
    diverged = judge(
        [run(status="diverged", peak_memory_bytes=MIB)],
        [run(status="diverged", peak_memory_bytes=100 * MIB)],
    )
    assert not [f for f in diverged.findings if f.metric == "peak_memory_bytes"]
    missing = judge([run(peak_memory_bytes=MIB)], [run(peak_memory_bytes=None, final_loss=1.0)])
    assert not [f for f in missing.findings if f.metric == "peak_memory_bytes"]
    zero = finding(
        judge([run(peak_memory_bytes=0)], [run(peak_memory_bytes=0)]), "peak_memory_bytes"
    )
    assert (zero.verdict, zero.change) == ("same", 0.0)


@pytest.mark.parametrize(
    ("workers", "device", "where"),
    [
        (("", ""), "cpu", None),  # both made by the benchkit process, in the suite's order
        ((math.nan, None), "cpu", None),  # how a results.csv's empty cells read back
        ((math.nan, 0), "cpu", "the benchkit process / worker 0"),  # serial against Dask
        (("1", "0"), "cpu", "worker 1 / worker 0"),  # two workers, each after its own runs
        (("0", "0"), "cpu", "worker 0 / worker 0"),  # the same name: not the same runs before
        (("", "0"), "cuda", None),  # the allocator's own peak: no history in it
    ],
)
def test_cpu_memory_gates_only_between_runs_of_the_benchkit_process(workers, device, where):
    base = run(peak_memory_bytes=10 * MIB, worker=workers[0])
    new = run(peak_memory_bytes=60 * MIB, worker=workers[1])
    base["device"] = new["device"] = device
    comparison = judge([base], [new], strict=True)
    got = finding(comparison, "peak_memory_bytes")
    gated = where is None
    assert (got.verdict, got.gated, got.fails) == ("regressed", gated, gated)
    if gated:
        assert got.note == ""
        assert comparison.exit_code == 1
    else:
        assert got.note == (
            "not gated: CPU memory is a process's growth, which depends on the runs it made "
            f"before, and these ran in different processes' sequences ({where})"
        )
        assert comparison.exit_code == 0


def test_a_memory_threshold_override():
    base = run(peak_memory_bytes=100 * MIB)
    new = run(peak_memory_bytes=140 * MIB)
    got = finding(judge([base], [new], thresholds={"memory": 0.5}), "peak_memory_bytes")
    assert (got.verdict, got.rule) == ("within", "50 % and > 32 MiB")
    assert CPU_MEMORY_FLOOR == 32 * MIB


# --- status -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "verdict"),
    [
        ("ok", "diverged", "regressed"),
        ("ok", "error", "regressed"),
        ("diverged", "error", "regressed"),
        ("diverged", "ok", "improved"),
        ("error", "diverged", "improved"),
        ("ok", "skipped", "changed"),
        ("skipped", "ok", "changed"),
        ("ok", "lost", "changed"),
    ],
)
def test_a_status_change(before, after, verdict):
    base = run(status=before, status_detail="was " + before, final_loss=0.1)
    new = run(status=after, status_detail="now " + after, final_loss=0.9)
    got = judge([base], [new])
    status = finding(got, "status")
    assert (status.verdict, status.baseline, status.new, status.kind) == (
        verdict,
        before,
        after,
        "status",
    )
    assert status.fails == (verdict == "regressed")
    # the detail of the side that is not ok says why
    assert status.note == ("was " + before if after == "ok" else "now " + after)
    assert [f.metric for f in got.findings] == ["status"]  # nothing else is compared


def test_a_status_change_fails_under_strict_and_not_when_report_only():
    improved = judge([run(status="diverged")], [run(status="ok")], strict=True)
    assert finding(improved, "status").fails
    quiet = judge([run(status="ok")], [run(status="error")], report_only={"status"})
    assert (finding(quiet, "status").gated, quiet.exit_code) == (False, 0)


def test_a_status_detail_that_is_not_text_is_no_note():
    got = judge([run(status="ok")], [run(status="error", status_detail=float("nan"))])
    assert finding(got, "status").note == ""


@pytest.mark.parametrize("status", ["skipped", "error"])
def test_runs_without_figures_compare_their_status_only(status):
    got = judge([run(status=status, final_loss=0.1)], [run(status=status, final_loss=0.9)])
    assert [(f.metric, f.verdict) for f in got.findings] == [("status", "same")]


def test_diverged_runs_compare_their_figures():
    got = judge(
        [run(status="diverged", diverged_epoch=4)], [run(status="diverged", diverged_epoch=3)]
    )
    assert finding(got, "diverged_epoch").verdict == "regressed"


# --- timings ----------------------------------------------------------------------------------


def seeds(n: int, **values) -> list[dict]:
    return [run(seed=s, **values) for s in range(n)]


def test_identical_repeats_give_an_exact_ratio():
    got = judge(seeds(5, train_seconds=1.0), seeds(5, train_seconds=2.0))
    slow = finding(got, "train_seconds")
    assert (slow.key, slow.kind, slow.verdict) == ("m/d/fp32/cpu", "noisy", "regressed")
    assert (slow.baseline, slow.new, slow.change, slow.low, slow.high) == (1.0, 2.0, 1.0, 1.0, 1.0)
    assert slow.rule == "10 % and 95 % CI" and slow.fails and slow.gated
    fast = finding(judge(seeds(5, train_seconds=2.0), seeds(5, train_seconds=1.0)), "train_seconds")
    assert (fast.verdict, fast.change, fast.fails) == ("improved", -0.5, False)
    faster = finding(
        judge(seeds(5, samples_per_second=1.0), seeds(5, samples_per_second=2.0)),
        "samples_per_second",
    )
    assert faster.verdict == "improved"


def test_a_change_within_the_threshold_is_noise():
    got = finding(judge(seeds(5, train_seconds=1.0), seeds(5, train_seconds=1.05)), "train_seconds")
    assert (got.verdict, got.note) == ("noise", "")
    assert got.change == pytest.approx(0.05, rel=1e-9)
    at = finding(
        judge(seeds(5, train_seconds=1.0), seeds(5, train_seconds=2.0), thresholds={"noisy": 1.0}),
        "train_seconds",
    )
    assert at.verdict == "noise"  # a change equal to the threshold is not past it


def test_a_change_past_the_threshold_whose_interval_includes_one_is_noise():
    base = [run(seed=s, train_seconds=v) for s, v in enumerate([1.0, 1.0, 1.0, 2.0, 2.0])]
    new = [run(seed=s, train_seconds=v) for s, v in enumerate([2.0, 2.0, 2.0, 1.0, 1.0])]
    got = finding(judge(base, new), "train_seconds")
    assert (got.verdict, got.note, got.change) == ("noise", "CI includes no change", 1.0)
    assert got.low < 0 < got.high


@pytest.mark.parametrize("n", [1, 4])
def test_too_few_repeats_are_unclear(n):
    got = finding(judge(seeds(n, train_seconds=1.0), seeds(n, train_seconds=2.0)), "train_seconds")
    assert (got.verdict, got.low, got.high, got.fails) == ("unclear", None, None, False)
    plural = "s" if n != 1 else ""
    assert got.note == f"{n} repeat{plural} a side; judging noise needs 5"


def test_timings_of_runs_that_are_not_ok_on_both_sides_are_left_out():
    base = seeds(5, train_seconds=1.0)
    new = seeds(5, train_seconds=2.0)
    new[0]["status"] = "diverged"
    got = judge(base, new)
    assert finding(got, "train_seconds").verdict == "unclear"  # four repeats left


def test_timings_on_other_hardware_are_reported_not_gated():
    got = judge(
        seeds(5, train_seconds=1.0),
        seeds(5, train_seconds=2.0),
        new_fields={"environment": {**ENV, "torch_threads": "2"}},
    )
    slow = finding(got, "train_seconds")
    assert (slow.verdict, slow.gated, slow.fails) == ("regressed", False, False)
    assert slow.note == "environments differ: not gated"
    reported = finding(
        judge(seeds(5, train_seconds=1.0), seeds(5, train_seconds=2.0), report_only={"noisy"}),
        "train_seconds",
    )
    assert (reported.gated, reported.fails) == (False, False)


def test_seeds_are_pooled_per_workload():
    base = seeds(5, train_seconds=1.0) + seeds(5, precision="fp16", train_seconds=1.0)
    new = seeds(5, train_seconds=1.0) + seeds(5, precision="fp16", train_seconds=3.0)
    got = judge(base, new)
    assert finding(got, "train_seconds", "m/d/fp32/cpu").verdict == "noise"
    assert finding(got, "train_seconds", "m/d/fp16/cpu").verdict == "regressed"


def epochs(n_runs: int, per_run: list[float]) -> dict[str, list[float]]:
    return {f"m/d/fp32/cpu/seed{s}": list(per_run) for s in range(n_runs)}


def each_run(samples: list[list[float]]) -> dict[str, list[float]]:
    """Different repeats per run: run s (seed s) gets ``samples[s]``."""
    return {f"m/d/fp32/cpu/seed{s}": values for s, values in enumerate(samples)}


def test_per_epoch_repeats_and_contention():
    """Some epochs slowed (another process) make a slowdown unclear; every epoch slowed (a
    slower code path) is a regression."""
    steady = [100.0 + i for i in range(10)]  # samples/s, 10 epochs a run
    base_samples = {"samples_per_second": epochs(3, steady)}
    some = [v / 2 if i % 10 < 7 else v for i, v in enumerate(steady)]
    every = [v / 2 for v in steady]
    fields = {"samples": base_samples, "repeats_from": "epochs"}

    def verdict(new_epochs):
        new_fields = {
            "samples": {"samples_per_second": epochs(3, new_epochs)},
            "repeats_from": "epochs",
        }
        rows = seeds(3, samples_per_second=100.0)
        return finding(judge(rows, rows, fields, new_fields), "samples_per_second")

    contended = verdict(some)
    assert contended.verdict == "unclear"
    assert contended.change == -0.5
    # the 95th percentile of each side's 30 repeats is 109 samples/s
    assert contended.note == (
        "the fastest repeats moved +0.0 % only: some repeats were slowed, not "
        "all, as when another process shares the CPU; re-run on a quiet machine"
    )
    slower = verdict(every)
    assert (slower.verdict, slower.change) == ("regressed", -0.5)
    assert (slower.baseline, slower.new) == (104.5, 52.25)


@pytest.mark.parametrize(("per_run", "verdict"), [(9, "regressed"), (10, "unclear")])
def test_the_fastest_repeats_need_twenty_a_side(per_run, verdict):
    """Two runs: 18 repeats a side are too few to look at the fastest; 20 are enough."""
    steady = [100.0 + i for i in range(per_run)]
    slowed = [v / 2 for v in steady[:-1]] + steady[-1:]  # all but the fastest epoch
    rows = seeds(2, samples_per_second=100.0)
    got = judge(
        rows,
        rows,
        {"samples": {"samples_per_second": epochs(2, steady)}, "repeats_from": "epochs"},
        {"samples": {"samples_per_second": epochs(2, slowed)}, "repeats_from": "epochs"},
    )
    assert finding(got, "samples_per_second").verdict == verdict


def test_the_fastest_repeats_of_a_time_are_its_lowest():
    base = {"time": epochs(3, [1.0 + i / 100 for i in range(10)])}
    slower_some = {
        "time": epochs(3, [2.0 + i / 100 if i < 7 else 1.0 + i / 100 for i in range(10)])
    }
    rows = seeds(3, time=1.0)
    got = judge(
        rows,
        rows,
        {"samples": base, "repeats_from": "rounds"},
        {"samples": slower_some, "repeats_from": "rounds"},
    )
    # the median time doubled, yet the fastest 5 % did not move: contention
    assert finding(got, "time").verdict == "unclear"


def test_one_side_without_per_epoch_repeats_uses_each_runs_figure():
    rows_base = seeds(5, samples_per_second=100.0)
    rows_new = seeds(5, samples_per_second=50.0)
    got = judge(
        rows_base,
        rows_new,
        {"samples": {"samples_per_second": epochs(5, [100.0] * 10)}, "repeats_from": "epochs"},
    )
    slow = finding(got, "samples_per_second")
    assert (slow.verdict, slow.change) == ("regressed", -0.5)
    assert got.repeats == "seeds"


def test_summaries_without_raw_rounds_use_the_notch_interval():
    summary = {"time": {"m/d/fp32/cpu/seed0": Summary(1.0, 0.01, 100)}}
    slower = {"time": {"m/d/fp32/cpu/seed0": Summary(1.3, 0.01, 100)}}
    rows = [run(time=1.0)]
    got = judge(
        rows,
        [run(time=1.3)],
        {"summaries": summary, "repeats_from": "rounds"},
        {"summaries": slower, "repeats_from": "rounds"},
    )
    slow = finding(got, "time")
    assert slow.verdict == "regressed"
    assert slow.low == pytest.approx((1.3 - 0.00157) / (1.0 + 0.00157) - 1, rel=1e-9)


def test_a_timing_without_a_positive_baseline_is_not_judged():
    got = judge(seeds(5, train_seconds=0.0), seeds(5, train_seconds=1.0))
    assert not [f for f in got.findings if f.metric == "train_seconds"]


def test_throughput_drift_across_workloads_is_noted():
    base, new = [], []
    for model, factor in (("a", 0.8), ("b", 0.9), ("c", 1.05)):
        base += [run(seed=s, model=model, samples_per_second=100.0) for s in range(5)]
        new += [run(seed=s, model=model, samples_per_second=100.0 * factor) for s in range(5)]
    got = judge(base, new)
    assert (
        "throughput across 3 workloads moved by -10.0 % (median; range -20.0 to +5.0 %): a "
        "shift shared by all is the machine's load or a change that touches every workload"
    ) in got.notes
    two = judge(base[:10], new[:10])
    assert not [n for n in two.notes if n.startswith("throughput across")]


# --- matching rows, notes ---------------------------------------------------------------------


def test_the_comparison_object():
    got = judge([run(final_loss=0.1), run(seed=1, final_loss=0.1)], [run(final_loss=0.2)])
    assert (got.baseline, got.new, got.matched, got.environments_match) == ("base", "new", 1, True)
    assert got.exit_code == 1 and [f.metric for f in got.failures] == ["final_loss"]
    assert got.count("regressed") == 1 and got.count("only-baseline") == 1
    assert got.repeats == "seeds" and got.strict is False


def test_rows_on_one_side_only():
    got = judge(
        [run(final_loss=0.1), run(seed=1, final_loss=0.1)],
        [run(final_loss=0.1), run(seed=2, final_loss=0.1)],
    )
    only = {f.verdict: f for f in got.findings if f.kind == "rows"}
    assert set(only) == {"only-baseline", "only-new"}
    base_only = only["only-baseline"]
    assert (base_only.key, base_only.metric, base_only.baseline, base_only.new) == (
        "m/d/fp32/cpu/seed1",
        "row",
        "ok",
        None,
    )
    assert (base_only.gated, base_only.fails, base_only.note) == (
        False,
        False,
        "only in the baseline",
    )
    new_only = only["only-new"]
    assert (new_only.key, new_only.baseline, new_only.new, new_only.note) == (
        "m/d/fp32/cpu/seed2",
        None,
        "ok",
        "only in the new",
    )
    strict = judge(
        [run(final_loss=0.1), run(seed=1, final_loss=0.1)], [run(final_loss=0.1)], strict=True
    )
    row = finding(strict, "row")
    assert (row.gated, row.fails, strict.exit_code) == (True, True, 1)


def test_results_of_different_kinds_do_not_compare():
    with pytest.raises(BenchkitError) as err:
        compare(
            result_set([run()], "a"),
            result_set([run()], "b.json", kind="pytest-benchmark"),
        )
    assert (
        str(err.value)
        == "cannot compare a benchkit result (a) with a pytest-benchmark result (b.json)"
    )


def test_no_row_in_common():
    with pytest.raises(BenchkitError) as err:
        judge([run(final_loss=0.1)], [run(seed=7, final_loss=0.1), run(seed=8, final_loss=0.1)])
    assert str(err.value) == (
        "no rows in common between base (1 rows, e.g. m/d/fp32/cpu/seed0) and new (2 rows, e.g. "
        "m/d/fp32/cpu/seed7); rows match on model, dataset, precision, device, seed, variant, "
        "mode"
    )


def test_rows_sharing_a_key_are_told_apart_by_run_id():
    base = [run(batch_size=16, final_loss=0.1), run(batch_size=64, final_loss=0.2)]
    base[1]["run_id"] += "/batch64"
    new = [dict(r) for r in base]
    new[1]["final_loss"] = 0.3
    got = judge(base, new)
    assert got.matched == 2
    assert finding(got, "final_loss", "m/d/fp32/cpu/seed0/batch64").verdict == "regressed"
    twice = [run(final_loss=0.1), run(final_loss=0.1)]
    with pytest.raises(BenchkitError, match="base: two rows share the key"):
        judge(twice, [run(final_loss=0.1)])


def test_report_only_names_are_checked():
    for ok in ("status", "noisy", "final_loss"):
        judge([run(final_loss=0.1)], [run(final_loss=0.1)], report_only={ok})
    with pytest.raises(BenchkitError) as err:
        judge([run(final_loss=0.1)], [run(final_loss=0.1)], report_only={"speed"})
    assert str(err.value).startswith("--report-only 'speed': not a kind or metric; valid: status, ")


def test_notes_say_how_the_environments_compare():
    same = judge([run(final_loss=0.1)], [run(final_loss=0.1)])
    assert same.notes == [
        "environments match (torch 2.13.0+cpu, cpu Xeon, cpu_capability AVX512, torch_threads 1):"
        " deterministic metrics must be identical; timings gate"
    ]
    reported = judge([run(final_loss=0.1)], [run(final_loss=0.1)], report_only={"noisy"})
    assert reported.notes == [
        "environments match (torch 2.13.0+cpu, cpu Xeon, cpu_capability AVX512, torch_threads 1):"
        " deterministic metrics must be identical; timings are reported (--report-only)",
        "report only (never fail): noisy",
    ]
    other = judge(
        [run(final_loss=0.1)],
        [run(final_loss=0.1)],
        new_fields={"environment": {**ENV, "cpu": "EPYC", "torch": "2.14.0"}},
    )
    assert other.environments_match is False
    assert other.notes[0] == (
        "environments differ (cpu: 'Xeon' → 'EPYC'; torch: '2.13.0+cpu' → '2.14.0'): "
        "deterministic metrics are compared with cross-environment tolerances; timings are "
        "reported, not gated"
    )


def test_the_device_name_is_part_of_the_fingerprint_and_named_when_it_is_not_the_cpu():
    base = run(final_loss=0.1)
    base["device_name"] = "GPU A"
    new = dict(base, device_name="GPU B")
    got = judge([base], [new])
    assert got.notes[0].startswith("environments differ (device_name: 'GPU A' → 'GPU B')")
    same = judge([base], [dict(base)])
    assert "device_name GPU A" in same.notes[0]
    assert "device_name" not in judge([run(final_loss=0.1)], [run(final_loss=0.1)]).notes[0]
    blank = dict(base, device_name="")
    assert "device_name" not in judge([blank], [dict(blank)]).notes[0]


def test_an_unfinished_result_set_is_noted():
    got = judge(
        [run(final_loss=0.1)],
        [run(final_loss=0.1)],
        {"meta": {"finished": False}},
        {"meta": {}},
    )
    assert "the baseline result set did not finish (1 runs kept)" in got.notes
    assert not [n for n in got.notes if "new result set" in n]
    unfinished_file = judge(
        [run(final_loss=0.1)],
        [run(final_loss=0.1)],
        {"meta": {"finished": False}, "kind": "pytest-benchmark"},
        {"kind": "pytest-benchmark"},
    )
    assert not [n for n in unfinished_file.notes if "did not finish" in n]


def test_repeats_are_named_when_both_sides_agree():
    agree = judge(
        [run(final_loss=0.1)],
        [run(final_loss=0.1)],
        {"repeats_from": "epochs"},
        {"repeats_from": "epochs"},
    )
    assert agree.repeats == "epochs"


def test_metrics_only_in_the_new_set_are_compared_and_labels_are_not():
    got = judge([run(final_loss=0.1)], [run(final_loss=0.1, test_loss=0.2)])
    assert finding(got, "test_loss").note == "missing in baseline"
    compared = {f.metric for f in got.findings}
    assert not compared & {"run_id", "device_name", "status_detail", "model", "seed"}


def test_timings_are_listed_in_the_rule_tables_order():
    rows_base = seeds(5, train_seconds=1.0, samples_per_second=1.0)
    rows_new = seeds(5, train_seconds=1.0, samples_per_second=1.0)
    for rows in (rows_base, rows_new):
        for r in rows:
            r["zz_per_second"] = 1.0
            r = dict(reversed(list(r.items())))
    got = judge(rows_base, rows_new)
    noisy = [f.metric for f in got.findings if f.kind == "noisy"]
    assert noisy == ["samples_per_second", "train_seconds", "zz_per_second"]


def test_pytest_benchmark_rows_are_grouped_by_their_key():
    def bench(name: str, time: float) -> dict:
        return {
            "run_id": f"g/{name}",
            "group": "g",
            "name": name,
            "params": "",
            "status": "ok",
            "time": time,
        }

    base = ResultSet(
        path=Path("a.json"),
        kind="pytest-benchmark",
        rows=pd.DataFrame([bench("t1", 1.0), bench("t2", 1.0)]),
        key_columns=["group", "name", "params"],
        group_columns=["group", "name", "params"],
        samples={"time": {"g/t1": [1.0] * 10, "g/t2": [1.0] * 10}},
        repeats_from="rounds",
    )
    new = ResultSet(
        path=Path("b.json"),
        kind="pytest-benchmark",
        rows=pd.DataFrame([bench("t1", 2.0), bench("t2", 1.0)]),
        key_columns=["group", "name", "params"],
        group_columns=["group", "name", "params"],
        samples={"time": {"g/t1": [2.0] * 10, "g/t2": [1.0] * 10}},
        repeats_from="rounds",
    )
    got = compare(base, new)
    assert finding(got, "time", "g/t1").verdict == "regressed"
    assert finding(got, "time", "g/t2").verdict == "noise"


# --- details the first mutation run found untested --------------------------------------------


def test_rules_read_from_a_name_say_so():
    assert rule_for("epochs_to[loss == 0]").doc == "first epoch the criterion held (criteria.csv)"
    assert rule_for("step_seconds").doc == "timing (from its name)"
    assert rule_for("gpu_memory").doc == "memory (from its name)"
    assert {rule_for(m).doc for m in ("test_rmse", "token_accuracy", "bias")} == {"workload metric"}


def test_an_unknown_threshold_lists_every_valid_name():
    with pytest.raises(BenchkitError) as err:
        judge([run(final_loss=0.1)], [run(final_loss=0.1)], thresholds={"speed": 0.1})
    known = sorted({"final_loss", *RULES, "deterministic", "noisy", "memory", "reference"})
    assert str(err.value) == f"--threshold: unknown metric 'speed'; valid: {', '.join(known)}"
    with pytest.raises(BenchkitError) as err:
        judge([run(final_loss=0.1)], [run(final_loss=0.1)], report_only={"speed"})
    assert str(err.value) == (
        f"--report-only 'speed': not a kind or metric; valid: status, {', '.join(known)}"
    )


def test_a_threshold_value_with_an_equals_sign_is_not_a_number():
    with pytest.raises(BenchkitError, match="'1=2' is not a number"):
        parse_threshold_args(["x=1=2"])


def test_a_bad_value_in_the_suites_compare_table_names_the_set():
    with pytest.raises(BenchkitError) as err:
        judge([run(final_loss=0.1)], [run(final_loss=0.1)], new_fields={"thresholds": {"x": "y"}})
    assert str(err.value) == "new (suite) [compare] x: 'y' is not a number"


def test_within_tolerance_keeps_the_change_and_no_note():
    within = one("final_loss", 0.5, 0.52, same_env=False)
    assert within.verdict == "within" and within.change == pytest.approx(0.04, rel=1e-9)
    assert within.note == "" and one("final_loss", 0.5, 0.6).note == ""


def test_a_text_against_a_number_is_a_change():
    assert one("optimizer", "adam", 3).verdict == "changed"
    assert one("optimizer", 3, "adam").verdict == "changed"


def test_memory_boundaries_and_the_figures_kept():
    def memory(before, after):
        return finding(
            judge([run(peak_memory_bytes=before)], [run(peak_memory_bytes=after)]),
            "peak_memory_bytes",
        )

    exactly_floor = memory(100 * MIB, 132 * MIB)  # +32 MiB: not more than the floor
    assert exactly_floor.verdict == "within"
    exactly_quarter = memory(200 * MIB, 250 * MIB)  # +25 %: not more than the threshold
    assert exactly_quarter.verdict == "within"
    one_byte = memory(0, 1)
    assert (one_byte.change, one_byte.verdict) == (math.inf, "within")
    kept = memory(100 * MIB, 140 * MIB)
    assert (kept.baseline, kept.new) == (100 * MIB, 140 * MIB)


def test_a_diverged_runs_memory_is_skipped_but_not_what_follows_it():
    base = run(status="diverged", peak_memory_bytes=MIB, diverged_epoch=4)
    new = run(status="diverged", peak_memory_bytes=100 * MIB, diverged_epoch=3)
    assert finding(judge([base], [new]), "diverged_epoch").verdict == "regressed"


def test_a_memory_figure_missing_on_one_side_does_not_stop_the_other_metrics():
    base = run(peak_memory_bytes=MIB, final_loss=0.1)
    new = run(peak_memory_bytes=None, final_loss=0.2)
    assert finding(judge([base], [new]), "final_loss").verdict == "regressed"


def test_an_unchanged_status_is_a_finding_of_its_own():
    got = judge([run(final_loss=0.1)], [run(final_loss=0.1)])
    assert finding(got, "status") == Finding(
        "m/d/fp32/cpu/seed0", "status", "status", "ok", "ok", "same", True
    )
    quiet = judge([run(final_loss=0.1)], [run(final_loss=0.1)], report_only={"status"})
    assert finding(quiet, "status").gated is False


def test_the_unfinished_new_set_and_two_report_only_names_are_noted():
    got = judge(
        [run(final_loss=0.1)],
        [run(final_loss=0.1)],
        None,
        {"meta": {"finished": False}},
        report_only={"noisy", "deterministic"},
        strict=True,
    )
    assert "the new result set did not finish (1 runs kept)" in got.notes
    assert "report only (never fail): deterministic, noisy" in got.notes
    assert got.strict is True


def test_a_python_version_is_part_of_a_benchmark_files_description():
    def bench_set(name: str) -> ResultSet:
        rows = [{"run_id": "g/t", "group": "g", "name": "t", "params": "", "status": "ok"}]
        return ResultSet(
            path=Path(name),
            kind="pytest-benchmark",
            rows=pd.DataFrame(rows),
            key_columns=["group", "name", "params"],
            group_columns=["group", "name", "params"],
            environment={"cpu": "Xeon", "machine": "x86_64", "python": "3.11.7"},
        )

    assert (
        compare(bench_set("a"), bench_set("b"))
        .notes[0]
        .startswith("environments match (cpu Xeon, python 3.11.7): ")
    )


def test_a_fingerprint_field_one_side_lacks_counts_as_empty():
    lacking = {k: v for k, v in ENV.items() if k != "torch_threads"}
    empty = {**ENV, "torch_threads": ""}
    got = judge(
        [run(final_loss=0.1)],
        [run(final_loss=0.1)],
        {"environment": lacking},
        {"environment": empty},
    )
    assert got.environments_match is True
    extra = judge(
        [run(final_loss=0.1)],
        [run(final_loss=0.1)],
        None,
        {"environment": {**ENV, "python": "3.12"}},
    )
    assert extra.environments_match is False
    assert "python: '' → '3.12'" in extra.notes[0]


def test_rows_duplicated_on_one_side_only_are_matched_by_run_id():
    base = [run(batch_size=16, final_loss=0.1), run(batch_size=64, final_loss=0.2)]
    base[1]["run_id"] += "/batch64"
    got = judge(base, [run(batch_size=16, final_loss=0.1)])
    assert got.matched == 1 and got.count("only-baseline") == 1


def test_an_empty_side_is_described_as_such():
    empty = pd.DataFrame(columns=list(run()))
    with pytest.raises(BenchkitError) as err:
        compare(
            result_set([run()], "a"), ResultSet(Path("b"), "benchkit", empty, list(KEY_COLUMNS), [])
        )
    assert "and b (0 rows, e.g. none)" in str(err.value)


def test_a_fast_repeats_ratio_exactly_at_the_threshold_leaves_the_slowdown_unclear():
    """The median fell to a quarter, the fastest repeats to a half: with a threshold of
    50 %, a fastest-repeats change of exactly 50 % is not past it."""
    base = {"samples_per_second": epochs(3, [100.0] * 10)}
    new = {"samples_per_second": epochs(3, [25.0] * 9 + [50.0])}
    rows = seeds(3, samples_per_second=100.0)
    got = judge(
        rows,
        rows,
        {"samples": base, "repeats_from": "epochs"},
        {"samples": new, "repeats_from": "epochs"},
        thresholds={"samples_per_second": 0.5},
    )
    slow = finding(got, "samples_per_second")
    assert (slow.verdict, slow.change) == ("unclear", -0.75)
    assert slow.note.startswith("the fastest repeats moved -50.0 % only")


def test_the_fastest_repeats_are_the_95th_percentile_of_a_throughput():
    # pooled 30 repeats a side: the 95th percentile sits between the 28th and 29th values
    base = [[50.0] * 9 + [top] for top in (100.0, 200.0, 200.0)]  # 95th: 155, 96th: 184
    new = [[25.0] * 9 + [150.0] for _ in range(3)]  # 150: -3.2 % at the 95th, -18 % at the 96th
    got = judge(
        seeds(3, samples_per_second=1.0),
        seeds(3, samples_per_second=1.0),
        {
            "samples": {"samples_per_second": each_run(base)},
            "repeats_from": "epochs",
        },
        {
            "samples": {"samples_per_second": each_run(new)},
            "repeats_from": "epochs",
        },
    )
    slow = finding(got, "samples_per_second")
    assert slow.verdict == "unclear"
    assert slow.note.startswith("the fastest repeats moved -3.2 % only")


def test_the_fastest_repeats_of_a_time_are_its_5th_percentile():
    base = [[10.0, 40.0] + [40.0] * 8, [10.0] + [40.0] * 9, [20.0] + [40.0] * 9]  # 5th: 14.5
    new = [[15.0] + [80.0] * 9 for _ in range(3)]  # 5th: 15; at the 6th percentile 17.4 vs 15
    got = judge(
        seeds(3, time=1.0),
        seeds(3, time=1.0),
        {"samples": {"time": each_run(base)}, "repeats_from": "rounds"},
        {"samples": {"time": each_run(new)}, "repeats_from": "rounds"},
    )
    slow = finding(got, "time")
    assert slow.verdict == "unclear"
    assert slow.note.startswith("the fastest repeats moved +3.4 % only")


def test_a_throughput_gain_under_double_is_an_improvement():
    got = judge(seeds(5, samples_per_second=1.0), seeds(5, samples_per_second=1.5))
    assert finding(got, "samples_per_second").verdict == "improved"


def test_timings_are_listed_in_the_rule_tables_order_not_alphabetically():
    rows = seeds(5, aa_per_second=1.0, train_seconds=1.0, samples_per_second=1.0)
    noisy = [f.metric for f in judge(rows, rows).findings if f.kind == "noisy"]
    assert noisy == ["samples_per_second", "train_seconds", "aa_per_second"]


def test_a_workload_that_cannot_be_judged_does_not_hide_the_next():
    base = seeds(5, model="a", train_seconds=0.0) + seeds(5, model="b", train_seconds=1.0)
    new = seeds(5, model="a", train_seconds=1.0) + seeds(5, model="b", train_seconds=2.0)
    got = judge(base, new)
    assert [f.key for f in got.findings if f.metric == "train_seconds"] == ["b/d/fp32/cpu"]


def test_a_timing_missing_on_one_side_is_not_judged():
    got = judge(seeds(5, train_seconds=1.0), seeds(5, train_seconds=None, final_loss=0.1))
    assert not [f for f in got.findings if f.metric == "train_seconds"]


def test_notes_of_an_ungated_timing_say_both_why():
    got = judge(
        seeds(4, train_seconds=1.0),
        seeds(4, train_seconds=2.0),
        None,
        {"environment": {**ENV, "cpu": "EPYC"}},
    )
    assert finding(got, "train_seconds").note == (
        "environments differ: not gated; 4 repeats a side; judging noise needs 5"
    )


def test_sides_with_repeats_of_different_kinds_use_each_runs_figure():
    rows_base = seeds(5, samples_per_second=100.0)
    rows_new = seeds(5, samples_per_second=50.0)
    same = {"samples_per_second": epochs(5, [100.0] * 10)}
    got = judge(
        rows_base,
        rows_new,
        {"samples": same, "repeats_from": "epochs"},
        {"samples": same, "repeats_from": "rounds"},
    )
    assert finding(got, "samples_per_second").verdict == "regressed"  # the runs' own figures


def test_the_bootstrap_uses_the_options_iterations_and_seed():
    from benchkit.stats import bootstrap_ratio_of_medians

    base = [run(seed=s, train_seconds=v) for s, v in enumerate([1.0, 1.1, 0.9, 1.05, 0.95])]
    new = [run(seed=s, train_seconds=v) for s, v in enumerate([1.3, 1.2, 1.4, 1.25, 1.35])]
    got = finding(judge(base, new, iterations=50, seed=7), "train_seconds")
    direct = bootstrap_ratio_of_medians(
        [[r["train_seconds"]] for r in base], [[r["train_seconds"]] for r in new], 50, seed=7
    )
    assert (got.low, got.high) == (direct.low - 1, direct.high - 1)


def test_the_notch_interval_needs_one_summary_a_side():
    summaries = {f"m/d/fp32/cpu/seed{s}": Summary(1.0, 0.01, 100) for s in (0, 1)}
    slower = {"m/d/fp32/cpu/seed0": Summary(1.3, 0.01, 100)}
    got = judge(
        seeds(2, time=1.0),
        seeds(2, time=1.3),
        {"summaries": {"time": summaries}, "repeats_from": "rounds"},
        {"summaries": {"time": slower}, "repeats_from": "rounds"},
    )
    assert not [f for f in got.findings if f.metric == "time"]


def test_a_memory_metric_of_a_benchmark_file_uses_the_general_floor():
    def bench_set(name: str, memory: float) -> ResultSet:
        rows = [
            {
                "run_id": "g/t",
                "group": "g",
                "name": "t",
                "params": "",
                "status": "ok",
                "peak_memory_bytes": memory,
            }
        ]
        return ResultSet(
            path=Path(name),
            kind="pytest-benchmark",
            rows=pd.DataFrame(rows),
            key_columns=["group", "name", "params"],
            group_columns=["group", "name", "params"],
        )

    got = finding(compare(bench_set("a", 4 * MIB), bench_set("b", 6 * MIB)), "peak_memory_bytes")
    assert (got.verdict, got.rule) == ("regressed", "25 % and > 1 MiB")


def test_drift_is_the_median_change_of_throughput_only():
    base, new = [], []
    for model, factor in (("a", 0.7), ("b", 0.8), ("c", 0.9), ("d", 1.1)):
        base += [
            run(seed=s, model=model, samples_per_second=100.0, final_loss=0.1) for s in range(5)
        ]
        new += [
            run(seed=s, model=model, samples_per_second=100.0 * factor, final_loss=0.5)
            for s in range(5)
        ]
    got = judge(base, new)
    drift = [n for n in got.notes if n.startswith("throughput across")]
    assert drift == [
        "throughput across 4 workloads moved by -10.0 % (median; range -30.0 to +10.0 %): a "
        "shift shared by all is the machine's load or a change that touches every workload"
    ]
