"""Claims with statistics (``aggregate = "test"``): a one-sided Mann-Whitney U test over the
seeds, misses counted as infinitely many epochs, a verdict of supported / refuted /
inconclusive with the p-value and the effect."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from benchkit.claims import Claim, evaluate_claims, parse_claim, verdict_table
from benchkit.stats import bootstrap_median_difference, mann_whitney_u

CRITERION = "loss == 0"


def tables(fp32: list[float | None], fp16: list[float | None]) -> tuple[pd.DataFrame, ...]:
    """results.csv and criteria.csv rows: epochs to the criterion per seed (None: never)."""
    results, criteria = [], []
    for precision, epochs in (("fp32", fp32), ("fp16", fp16)):
        for seed, epoch in enumerate(epochs):
            run_id = f"m/d/{precision}/cpu/seed{seed}"
            results.append(
                {
                    "run_id": run_id,
                    "model": "m",
                    "dataset": "d",
                    "precision": precision,
                    "device": "cpu",
                    "seed": seed,
                    "variant": "",
                    "status": "ok",
                }
            )
            criteria.append({"run_id": run_id, "criterion": CRITERION, "epoch": epoch})
    return pd.DataFrame(results), pd.DataFrame(criteria)


def stat_claim(relation: str = ">", min_seeds: int = 10, alpha: float = 0.05) -> Claim:
    return Claim(
        id="fp32-slower",
        text="fp32 takes longer to reach zero",
        source="test",
        metric="epochs_to",
        relation=relation,
        aggregate="test",
        a_filter={"precision": "fp32"},
        b_filter={"precision": "fp16"},
        alpha=alpha,
        min_seeds=min_seeds,
    )


def judge(claim: Claim, fp32, fp16) -> pd.Series:
    table = evaluate_claims([claim], *tables(fp32, fp16))
    assert len(table) == 1
    return table.iloc[0]


FP32 = [34, 37, None, 36, None, 35, 37, 40, None, 36]  # three seeds never reach zero
FP16 = [17, 18, 17, None, 19, 18, 17, 20, 18, 17]


def test_a_clear_difference_is_supported_with_its_p_value_and_effect():
    row = judge(stat_claim(), FP32, FP16)
    assert row["verdict"] == "supported"
    a = [math.inf if e is None else float(e) for e in FP32]
    b = [math.inf if e is None else float(e) for e in FP16]
    assert row["p_value"] == mann_whitney_u(a, b, "greater").p_value
    assert row["p_value"] == pytest.approx(0.0008738702793179066)  # scipy's, see test_rank_test
    effect = bootstrap_median_difference(a, b)
    assert (row["effect"], row["effect_low"], row["effect_high"]) == (
        effect.difference,
        effect.low,
        effect.high,
    )
    assert row["effect"] == 19.0  # medians 37 and 18: misses rank above every epoch
    assert row["alpha"] == 0.05
    why = row["explanation"]
    assert "p = 0.00087 < α = 0.05" in why
    assert "one-sided Mann-Whitney U = 91.5, asymptotic, 10 and 10 seeds" in why
    assert "median difference +19 epochs [95 % bootstrap interval" in why
    assert "never met (counted as infinite): 3 precision=fp32, 1 precision=fp16" in why


def test_the_opposite_direction_refutes_the_claim():
    row = judge(stat_claim(), FP16, FP32)
    assert row["verdict"] == "refuted"
    assert "the opposite holds: precision=fp32 < precision=fp16" in row["explanation"]
    assert row["p_value"] > 0.99  # the claimed direction's own p-value is kept


def test_overlapping_seeds_are_inconclusive():
    fp32 = [20, 22, 19, 25, 21, 23, 18, 24, 22, 20]
    fp16 = [21, 20, 23, 19, 22, 24, 20, 21, 25, 18]
    row = judge(stat_claim(), fp32, fp16)
    assert row["verdict"] == "inconclusive"
    assert "≥ α = 0.05, the opposite <: p = " in row["explanation"]


def test_too_few_seeds_are_inconclusive_however_clear():
    row = judge(stat_claim(), FP32[:5], FP16[:5])
    assert row["verdict"] == "inconclusive"
    assert row["p_value"] < 0.05
    assert "inconclusive by design: 5 seeds, the test needs 10" in row["explanation"]
    assert judge(stat_claim(min_seeds=5), FP32[:5], FP16[:5])["verdict"] == "supported"


def test_the_level_is_the_claims():
    row = judge(stat_claim(alpha=0.0005), FP32, FP16)
    assert (row["verdict"], row["alpha"]) == ("inconclusive", 0.0005)


def test_every_miss_on_one_side_still_counts():
    row = judge(stat_claim(), [None] * 10, FP16)
    assert row["verdict"] == "supported"
    assert row["effect"] == math.inf


def test_nobody_reaching_it_is_not_measured():
    row = judge(stat_claim(), [None] * 10, [None] * 10)
    assert row["verdict"] == "not measured"
    assert "met it in any seed" in row["explanation"]
    assert pd.isna(row["p_value"])


def test_the_verdict_table_states_the_level():
    table = evaluate_claims([stat_claim()], *tables(FP32, FP16))
    text = verdict_table(table)
    assert "(one-sided test over seeds, α = 0.05)" in text
    assert "SUPPORTED  loss == 0 on cpu" in text


def parse(**raw):
    base = {"text": "t", "a": {}, "b": {}, "metric": "epochs_to", "expect": "a > b"}

    def fail(key, message):
        return ValueError(f"{key}: {message}")

    return parse_claim({**base, **raw}, 0, fail, {CRITERION})


def test_a_test_claim_parses_with_its_defaults():
    claim = parse(aggregate="test")
    assert (claim.aggregate, claim.alpha, claim.min_seeds) == ("test", 0.05, 10)
    claim = parse(aggregate="test", alpha=0.01, min_seeds=20)
    assert (claim.alpha, claim.min_seeds) == (0.01, 20)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"aggregate": "test", "expect": "a <= b"}, "claims[0].expect: a test supports"),
        ({"aggregate": "test", "alpha": 0.7}, "claims[0].alpha: expected a level"),
        ({"aggregate": "test", "alpha": True}, "claims[0].alpha"),
        ({"aggregate": "test", "min_seeds": 1}, "claims[0].min_seeds: expected an integer"),
        (
            {"aggregate": "median", "alpha": 0.01},
            'claims[0].alpha: applies only to aggregate = "test"',
        ),
    ],
)
def test_test_settings_are_checked(raw, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace(".", r"\.")):
        parse(**raw)
