"""Claims judged on hand-made result tables: ties, missing sides, diverged and skipped runs."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from benchkit.claims import Claim, evaluate_claims, verdict_table


def results(*rows: tuple) -> pd.DataFrame:
    """Rows of (precision, seed, status, final_loss) for one model on one device."""
    return pd.DataFrame(
        [
            {
                "run_id": f"m/d/{p}/cpu/seed{s}",
                "model": "m",
                "dataset": "d",
                "precision": p,
                "device": "cpu",
                "seed": s,
                "variant": "",
                "status": status,
                "final_loss": loss,
            }
            for p, s, status, loss in rows
        ]
    )


def criteria(**epochs: dict[str, list]) -> pd.DataFrame:
    """criteria(fp32={"loss == 0": [34, 37]}) → criteria.csv rows by seed."""
    rows = []
    for precision, by_criterion in epochs.items():
        for name, per_seed in by_criterion.items():
            for seed, epoch in enumerate(per_seed):
                rows.append(
                    {"run_id": f"m/d/{precision}/cpu/seed{seed}", "criterion": name, "epoch": epoch}
                )
    return pd.DataFrame(rows)


def claim(relation: str = ">", aggregate: str = "median", metric: str = "epochs_to") -> Claim:
    return Claim(
        id="c",
        text="fp32 is slower than fp16",
        source="test",
        metric=metric,
        relation=relation,
        aggregate=aggregate,
        a_filter={"model": "m", "precision": "fp32"},
        b_filter={"model": "m", "precision": "fp16"},
    )


OK2 = [
    ("fp32", 0, "ok", 0.1),
    ("fp32", 1, "ok", 0.1),
    ("fp16", 0, "ok", 0.2),
    ("fp16", 1, "ok", 0.2),
]


def only_row(frame: pd.DataFrame) -> pd.Series:
    assert len(frame) == 1, frame
    return frame.iloc[0]


def test_a_claim_that_holds_gives_both_sides_and_the_figures():
    table = evaluate_claims(
        [claim()],
        results(*OK2),
        criteria(fp32={"loss == 0": [34, 36]}, fp16={"loss == 0": [17, 19]}),
    )
    row = only_row(table)
    assert (row["verdict"], row["a_value"], row["b_value"]) == ("holds", 35, 18)
    assert (row["a"], row["b"], row["criterion"], row["device"]) == (
        "precision=fp32",
        "precision=fp16",
        "loss == 0",
        "cpu",
    )
    assert (
        "precision=fp32 epoch 35 vs precision=fp16 epoch 18 (median of 2 and 2 runs)"
        in (row["explanation"])
    )


def test_a_tie_does_not_hold_a_strict_relation_and_says_tie():
    table = evaluate_claims(
        [claim(">")],
        results(*OK2),
        criteria(fp32={"loss <= 1e-4": [8, 9]}, fp16={"loss <= 1e-4": [8, 9]}),
    )
    row = only_row(table)
    assert row["verdict"] == "does not hold"
    assert "(a tie)" in row["explanation"]
    relaxed = only_row(
        evaluate_claims(
            [claim(">=")],
            results(*OK2),
            criteria(fp32={"loss <= 1e-4": [8, 9]}, fp16={"loss <= 1e-4": [8, 9]}),
        )
    )
    assert relaxed["verdict"] == "holds"


@pytest.mark.parametrize(
    ("relation", "fp32", "fp16", "verdict"),
    [
        ("<=", [8, 9], [8, 9], "holds"),  # a tie holds <=
        ("<=", [7, 8], [8, 9], "holds"),
        ("<=", [9, 10], [8, 9], "does not hold"),
        ("<", [8, 9], [8, 9], "does not hold"),  # but not <
        ("<", [7, 8], [8, 9], "holds"),
        (">=", [7, 8], [8, 9], "does not hold"),
    ],
)
def test_each_relation_on_a_tie_and_either_side_of_it(relation, fp32, fp16, verdict):
    table = evaluate_claims(
        [claim(relation)],
        results(*OK2),
        criteria(fp32={"loss <= 1e-4": fp32}, fp16={"loss <= 1e-4": fp16}),
    )
    row = only_row(table)
    assert row["verdict"] == verdict
    assert row["expect"] == f"a {relation} b"
    assert (row["a_value"], row["b_value"]) == (sum(fp32) / 2, sum(fp16) / 2)


def test_each_criterion_gets_its_own_verdict():
    table = evaluate_claims(
        [claim()],
        results(*OK2),
        criteria(
            fp32={"loss <= 1e-4": [8, 8], "loss == 0": [34, 37]},
            fp16={"loss <= 1e-4": [8, 8], "loss == 0": [17, 18]},
        ),
    )
    assert dict(zip(table["criterion"], table["verdict"], strict=True)) == {
        "loss <= 1e-4": "does not hold",
        "loss == 0": "holds",
    }


def test_never_reaching_counts_as_slower_but_neither_reaching_is_not_measured():
    one_side = only_row(
        evaluate_claims(
            [claim()],
            results(*OK2),
            criteria(fp32={"loss == 0": [None, None]}, fp16={"loss == 0": [17, 18]}),
        )
    )
    assert one_side["verdict"] == "holds" and math.isinf(one_side["a_value"])
    assert "precision=fp32 never" in one_side["explanation"]
    neither = only_row(
        evaluate_claims(
            [claim()],
            results(*OK2),
            criteria(fp32={"loss == 0": [None, None]}, fp16={"loss == 0": [None, None]}),
        )
    )
    assert neither["verdict"] == "not measured"
    assert "neither" in neither["explanation"]


def test_a_missing_side_is_not_measured():
    rows = results(("fp32", 0, "ok", 0.1), ("fp32", 1, "ok", 0.1))
    row = only_row(evaluate_claims([claim(metric="final_loss")], rows, pd.DataFrame()))
    assert row["verdict"] == "not measured"
    assert row["explanation"] == "no usable runs for precision=fp16"


def test_skipped_runs_are_left_out_and_named():
    rows = results(
        ("fp32", 0, "ok", 0.1), ("fp16", 0, "skipped", None), ("fp16", 1, "skipped", None)
    )
    row = only_row(evaluate_claims([claim(metric="final_loss")], rows, pd.DataFrame()))
    assert row["verdict"] == "not measured"
    assert "(precision=fp16: 2 skipped)" in row["explanation"]


def test_diverged_runs_never_reach_a_criterion_and_are_noted():
    rows = results(
        ("fp32", 0, "ok", 0.1),
        ("fp32", 1, "ok", 0.1),
        ("fp16", 0, "diverged", None),
        ("fp16", 1, "diverged", None),
    )
    table = evaluate_claims(
        [claim("<")],
        rows,
        criteria(fp32={"loss <= 1e-3": [70, 75]}, fp16={"loss <= 1e-3": [None, None]}),
    )
    row = only_row(table)
    assert row["verdict"] == "holds"  # fp32 reaches it; diverged fp16 never does
    assert "[precision=fp16: 2 diverged]" in row["explanation"]
    # A metric a diverged run has no value for leaves that side empty.
    by_loss = only_row(evaluate_claims([claim("<", metric="final_loss")], rows, pd.DataFrame()))
    assert by_loss["verdict"] == "not measured"


@pytest.mark.parametrize(
    ("aggregate", "a", "b"), [("min", 30, 17), ("max", 40, 19), ("mean", 35, 18)]
)
def test_seed_aggregates(aggregate, a, b):
    rows = results(*OK2, ("fp32", 2, "ok", 0.1), ("fp16", 2, "ok", 0.2))
    table = evaluate_claims(
        [claim(aggregate=aggregate)],
        rows,
        criteria(fp32={"loss == 0": [30, 35, 40]}, fp16={"loss == 0": [17, 18, 19]}),
    )
    row = only_row(table)
    assert (row["a_value"], row["b_value"]) == (a, b)


def test_every_compares_seed_by_seed_and_skips_seeds_neither_side_met():
    rows = results(*OK2, ("fp32", 2, "ok", 0.1), ("fp16", 2, "ok", 0.2))
    table = evaluate_claims(
        [claim(aggregate="every")],
        rows,
        criteria(fp32={"loss == 0": [34, 37, None]}, fp16={"loss == 0": [17, 18, None]}),
    )
    row = only_row(table)
    assert row["verdict"] == "holds"
    assert (
        "for 2 of 2 seeds (seed 0: epoch 34 vs epoch 17, seed 1: epoch 37 vs epoch 18)"
        in (row["explanation"])
    )
    assert "1 seed(s) met it on neither side" in row["explanation"]
    mixed = only_row(
        evaluate_claims(
            [claim(aggregate="every")],
            rows,
            criteria(fp32={"loss == 0": [34, 10, None]}, fp16={"loss == 0": [17, 18, None]}),
        )
    )
    assert mixed["verdict"] == "does not hold"


def test_a_metric_column_claim_and_the_verdict_table():
    table = evaluate_claims([claim("<", metric="final_loss")], results(*OK2), pd.DataFrame())
    row = only_row(table)
    assert (row["verdict"], row["a_value"], row["b_value"]) == ("holds", 0.1, 0.2)
    text = verdict_table(table.fillna(""))
    assert text.splitlines()[0] == 'c: "fp32 is slower than fp16"'
    assert "HOLDS" in text


def test_an_unknown_metric_is_not_measured():
    row = only_row(evaluate_claims([claim(metric="nope")], results(*OK2), pd.DataFrame()))
    assert row["verdict"] == "not measured"
    assert "metric 'nope' is not in the results" in row["explanation"]
