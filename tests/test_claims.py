"""Claims judged on hand-made result tables: ties, missing sides, diverged and skipped runs."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from benchkit.claims import (
    CLAIM_COLUMNS,
    TEST_COLUMNS,
    Claim,
    evaluate_claims,
    parse_claim,
    verdict_table,
)


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
    ("aggregate", "a", "b"),
    [("min", 30, 17), ("max", 46, 22), ("mean", 37, 19), ("median", 35, 18)],
)
def test_seed_aggregates(aggregate, a, b):
    rows = results(*OK2, ("fp32", 2, "ok", 0.1), ("fp16", 2, "ok", 0.2))
    table = evaluate_claims(
        [claim(aggregate=aggregate)],
        rows,
        criteria(fp32={"loss == 0": [30, 35, 46]}, fp16={"loss == 0": [17, 18, 22]}),
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
    text = verdict_table(table.astype(object).fillna(""))
    assert text.splitlines()[0] == 'c: "fp32 is slower than fp16"'
    assert "HOLDS" in text


def test_an_unknown_metric_is_not_measured():
    row = only_row(evaluate_claims([claim(metric="nope")], results(*OK2), pd.DataFrame()))
    assert row["verdict"] == "not measured"
    assert "metric 'nope' is not in the results" in row["explanation"]


# --- parsing a [[claims]] table ---------------------------------------------------------------


class Bad(Exception):
    pass


def fail(key: str, message: str) -> Exception:
    return Bad(f"{key}: {message}")


RAW = {
    "text": "fp32 is slower",
    "a": {"precision": "fp32"},
    "b": {"precision": "fp16"},
    "metric": "epochs_to",
    "expect": "a > b",
}


def test_a_minimal_claim_gets_its_defaults():
    got = parse_claim(dict(RAW), 2, fail, {"loss == 0"})
    assert got == Claim(
        id="claim3",
        text="fp32 is slower",
        source="",
        metric="epochs_to",
        relation=">",
        aggregate="median",
        a_filter={"precision": "fp32"},
        b_filter={"precision": "fp16"},
        criteria=(),
    )


def test_a_full_claim():
    raw = {
        **RAW,
        "id": "slow",
        "source": "notebook",
        "where": {"model": "m", "seed": [0, 1]},
        "b": {"precision": "fp16", "model": "n"},
        "expect": "a <= b",
        "aggregate": "every",
        "criteria": ["loss<=1e-4", "loss == 0"],
    }
    got = parse_claim(raw, 0, fail, {"loss <= 0.0001", "loss == 0"})
    assert (got.id, got.source, got.relation, got.aggregate) == ("slow", "notebook", "<=", "every")
    assert got.a_filter == {"model": "m", "seed": [0, 1], "precision": "fp32"}
    assert got.b_filter == {"model": "n", "seed": [0, 1], "precision": "fp16"}
    assert got.criteria == ("loss <= 0.0001", "loss == 0")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"verdict": "yes"},
            "claims[0].verdict: unknown key; valid keys: a, aggregate, alpha, b, ",
        ),
        ({"text": None}, "claims[0].text: missing (a claim needs text, a, b, metric, expect)"),
        ({"expect": None}, "claims[0].expect: missing"),
        ({"where": ["model"]}, "claims[0].where: expected a table of filters, got ['model']"),
        ({"a": {"gpu": "x"}}, "claims[0].a.gpu: not a filter column; valid: model, dataset, "),
        ({"b": {"seed": True}}, "claims[0].b.seed: expected a value or an array, got True"),
        ({"b": {"seed": 1.5}}, "claims[0].b.seed: expected a value or an array, got 1.5"),
        ({"expect": "a >> b"}, "claims[0].expect: expected 'a OP b' with OP one of <, <=, >, >="),
        ({"expect": "b > a"}, "claims[0].expect: expected 'a OP b'"),
        ({"expect": "a > c"}, "claims[0].expect: expected 'a OP b'"),
        ({"expect": "a > b c"}, "claims[0].expect: expected 'a OP b'"),
        ({"expect": 3}, "claims[0].expect: expected 'a OP b'"),
        ({"aggregate": "mode"}, "claims[0].aggregate: unknown 'mode'; valid: median, mean, "),
        ({"metric": 3}, "claims[0].metric: expected a string, got 3"),
        ({"criteria": "loss == 0"}, "claims[0].criteria: expected an array of criteria strings"),
        ({"criteria": [1]}, "claims[0].criteria: expected an array of criteria strings"),
        ({"criteria": ["loss ~ 0"]}, "claims[0].criteria: criterion 'loss ~ 0' must read"),
        (
            {"criteria": ["loss <= 1"]},
            "claims[0].criteria: loss <= 1 is not a criterion of the suite's cases; they have: "
            "loss == 0",
        ),
        ({"source": 1}, "claims[0].source: expected a string, got 1"),
        ({"id": 1}, "claims[0].id: expected a string, got 1"),
        ({"text": 1}, "claims[0].text: expected a string, got 1"),
    ],
)
def test_a_bad_claim_names_its_key(change, message):
    raw = {**RAW, **change}
    raw = {k: v for k, v in raw.items() if v is not None}
    with pytest.raises(Bad) as err:
        parse_claim(raw, 0, fail, {"loss == 0"})
    assert str(err.value).startswith(message), str(err.value)


def test_a_suite_without_criteria_says_none():
    with pytest.raises(Bad, match="they have: none"):
        parse_claim({**RAW, "criteria": ["loss == 0"]}, 0, fail, set())


# --- labels, figures and explanations ---------------------------------------------------------


def test_a_side_is_labelled_by_what_sets_it_apart():
    shared = claim()
    assert (shared.label("a"), shared.label("b")) == ("precision=fp32", "precision=fp16")
    lists = Claim("c", "t", "", "final_loss", "<", "median", {"seed": [0, 1]}, {"seed": [2]})
    assert (lists.label("a"), lists.label("b")) == ("seed=0,1", "seed=2")
    same = Claim("c", "t", "", "final_loss", "<", "median", {"model": "m"}, {"model": "m"})
    assert (same.label("a"), same.label("b")) == ("a", "b")


def test_a_metric_claim_explains_with_four_significant_digits():
    rows = results(("fp32", 0, "ok", 0.123456), ("fp16", 0, "ok", 0.2))
    row = only_row(evaluate_claims([claim("<", metric="final_loss")], rows, pd.DataFrame()))
    assert row["explanation"] == (
        "precision=fp32 0.1235 vs precision=fp16 0.2 (median of 1 and 1 runs)"
    )
    assert (row["a_runs"], row["b_runs"], row["metric"], row["expect"]) == (
        1,
        1,
        "final_loss",
        "a < b",
    )
    assert (row["claim"], row["text"], row["source"], row["criterion"]) == (
        "c",
        "fp32 is slower than fp16",
        "test",
        "",
    )


def test_a_missing_figure_leaves_the_run_out_of_a_metric_claim():
    rows = results(("fp32", 0, "ok", 0.1), ("fp32", 1, "ok", None), ("fp16", 0, "ok", 0.2))
    row = only_row(evaluate_claims([claim("<", metric="final_loss")], rows, pd.DataFrame()))
    assert (row["verdict"], row["a_runs"]) == ("holds", 1)


def test_errored_and_diverged_runs_are_counted_in_the_notes():
    rows = results(
        ("fp32", 0, "ok", 0.1),
        ("fp32", 1, "error", None),
        ("fp32", 2, "error", None),
        ("fp16", 0, "ok", 0.2),
        ("fp16", 1, "diverged", None),
        ("fp16", 2, "skipped", None),
    )
    row = only_row(evaluate_claims([claim("<", metric="final_loss")], rows, pd.DataFrame()))
    assert row["explanation"].endswith(
        " [precision=fp32: 2 error; precision=fp16: 1 skipped, 1 diverged]"
    )
    missing = only_row(
        evaluate_claims(
            [claim("<", metric="final_loss")],
            results(("fp32", 0, "error", None), ("fp16", 0, "ok", 0.2)),
            pd.DataFrame(),
        )
    )
    assert missing["explanation"] == "no usable runs for precision=fp32 (precision=fp32: 1 error)"
    assert math.isnan(missing["a_value"]) and math.isnan(missing["b_value"])


def test_no_usable_runs_on_either_side():
    rows = results(("fp32", 0, "error", None), ("fp16", 0, "skipped", None))
    row = only_row(evaluate_claims([claim("<", metric="final_loss")], rows, pd.DataFrame()))
    assert row["explanation"] == (
        "no usable runs for precision=fp32 and precision=fp16 "
        "(precision=fp32: 1 error; precision=fp16: 1 skipped)"
    )


def test_a_median_of_an_even_number_of_runs_averages_the_middle_two():
    rows = results(*[("fp32", s, "ok", v) for s, v in enumerate([1.0, 2.0, 4.0, 9.0])])
    rows = pd.concat([rows, results(("fp16", 0, "ok", 5.0))], ignore_index=True)
    row = only_row(evaluate_claims([claim("<", metric="final_loss")], rows, pd.DataFrame()))
    assert (row["a_value"], row["verdict"]) == (3.0, "holds")
    odd = results(*[("fp32", s, "ok", v) for s, v in enumerate([1.0, 7.0, 4.0])])
    odd = pd.concat([odd, results(("fp16", 0, "ok", 5.0))], ignore_index=True)
    row = only_row(evaluate_claims([claim("<", metric="final_loss")], odd, pd.DataFrame()))
    assert (row["a_value"], row["verdict"]) == (4.0, "holds")


def test_every_with_no_shared_seed_is_not_measured():
    rows = results(("fp32", 0, "ok", 0.1), ("fp16", 1, "ok", 0.2))
    row = only_row(
        evaluate_claims([claim("<", aggregate="every", metric="final_loss")], rows, pd.DataFrame())
    )
    assert (row["verdict"], row["explanation"]) == ("not measured", "the two sides share no seed")
    neither = only_row(
        evaluate_claims(
            [claim(aggregate="every")],
            results(*OK2),
            criteria(fp32={"loss == 0": [None, None]}, fp16={"loss == 0": [None, None]}),
        )
    )
    assert (neither["verdict"], neither["explanation"]) == (
        "not measured",
        "no seed met it on either side",
    )
    assert math.isinf(neither["a_value"])


def test_every_explains_seed_by_seed_and_keeps_the_notes():
    rows = results(*OK2, ("fp16", 2, "skipped", None))
    row = only_row(
        evaluate_claims(
            [claim(aggregate="every")],
            rows,
            criteria(fp32={"loss == 0": [34, 17]}, fp16={"loss == 0": [17, 18]}),
        )
    )
    assert row["verdict"] == "does not hold"
    assert row["explanation"] == (
        "precision=fp32 > precision=fp16 for 1 of 2 seeds (seed 0: epoch 34 vs epoch 17, "
        "seed 1: epoch 17 vs epoch 18) [precision=fp16: 1 skipped]"
    )
    assert (row["a_value"], row["b_value"]) == (25.5, 17.5)  # medians, as for other aggregates


def test_epochs_to_a_criterion_only_its_runs_recorded_in_suite_order():
    rows = pd.concat(
        [results(*OK2), results(("fp64", 0, "ok", 0.0)).assign(model="other")], ignore_index=True
    )
    rows.loc[rows["model"] == "other", "run_id"] = "other/d/fp64/cpu/seed0"
    table = criteria(
        fp32={"loss <= 1e-4": [8, 9], "loss == 0": [34, 36]},
        fp16={"loss <= 1e-4": [8, 9], "loss == 0": [17, 19]},
    )
    other = pd.DataFrame([{"run_id": "other/d/fp64/cpu/seed0", "criterion": "x", "epoch": 1}])
    got = evaluate_claims([claim()], rows, pd.concat([table, other], ignore_index=True))
    assert list(got["criterion"]) == ["loss <= 1e-4", "loss == 0"]
    chosen = Claim(**{**claim().__dict__, "criteria": ("loss == 0",)})
    got = evaluate_claims([chosen], rows, table)
    assert list(got["criterion"]) == ["loss == 0"]
    none = evaluate_claims([claim()], results(*OK2), pd.DataFrame())
    assert only_row(none)["explanation"] == "metric 'epochs_to' is not in the results"


def test_a_claim_whose_filters_match_no_run():
    lost = Claim("c", "t", "", "final_loss", "<", "median", {"model": "x"}, {"model": "y"})
    row = only_row(evaluate_claims([lost], results(*OK2), pd.DataFrame()))
    assert (row["verdict"], row["explanation"], row["device"]) == (
        "not measured",
        "no run matches either side",
        "",
    )


def test_each_device_gets_its_own_verdict():
    rows = pd.concat([results(*OK2), results(*OK2).assign(device="cuda")], ignore_index=True)
    rows.loc[4:5, "final_loss"] = 0.3  # on cuda fp32 is the worse
    got = evaluate_claims([claim("<", metric="final_loss")], rows, pd.DataFrame())
    assert list(zip(got["device"], got["verdict"], strict=True)) == [
        ("cpu", "holds"),
        ("cuda", "does not hold"),
    ]


def test_the_verdict_table_text():
    rows = pd.concat([results(*OK2), results(*OK2).assign(device="cuda")], ignore_index=True)
    table = evaluate_claims([claim("<", metric="final_loss")], rows, pd.DataFrame())
    assert verdict_table(table.astype(object).fillna("")) == "\n".join(
        [
            'c: "fp32 is slower than fp16"',
            "  source: test",
            "  metric: final_loss, expected: precision=fp32 < precision=fp16",
            "           HOLDS  on cpu: precision=fp32 0.1 vs precision=fp16 0.2 (median of 2 and "
            "2 runs)",
            "           HOLDS  on cuda: precision=fp32 0.1 vs precision=fp16 0.2 (median of 2 "
            "and 2 runs)",
        ]
    )
    sourceless = table.assign(source="", device="", criterion="loss == 0")
    lines = verdict_table(sourceless.astype(object).fillna("")).splitlines()
    assert not any(line.startswith("  source") for line in lines)
    assert lines[2].startswith("           HOLDS  loss == 0: ")


def test_both_filters_of_a_side_apply_and_a_list_matches_any_of_its_values():
    rows = pd.concat(
        [results(*OK2), results(("fp32", 0, "ok", 9.0)).assign(model="n", run_id="n/d")],
        ignore_index=True,
    )
    row = only_row(evaluate_claims([claim("<", metric="final_loss")], rows, pd.DataFrame()))
    assert (row["a_value"], row["a_runs"]) == (0.1, 2)  # model n's fp32 run is not side a
    seeds_claim = Claim("c", "t", "", "final_loss", "<", "median", {"seed": [0, 1]}, {"seed": [5]})
    rows = results(("fp32", 0, "ok", 0.1), ("fp32", 1, "ok", 0.3), ("fp32", 5, "ok", 0.4))
    row = only_row(evaluate_claims([seeds_claim], rows, pd.DataFrame()))
    assert (row["a_runs"], row["a_value"], row["b_value"]) == (2, 0.2, 0.4)
    assert (row["a"], row["b"]) == ("seed=0,1", "seed=5")


def test_a_run_without_the_figure_is_skipped_not_the_rest():
    rows = results(
        ("fp32", 0, "ok", None),
        ("fp32", 1, "ok", 0.1),
        ("fp32", 2, "ok", 0.3),
        ("fp16", 0, "ok", 1.0),
    )
    row = only_row(evaluate_claims([claim("<", metric="final_loss")], rows, pd.DataFrame()))
    assert (row["a_runs"], row["a_value"]) == (2, 0.2)


def test_a_tie_is_said_in_the_explanation():
    rows = results(("fp32", 0, "ok", 0.5), ("fp16", 0, "ok", 0.5))
    row = only_row(evaluate_claims([claim("<=", metric="final_loss")], rows, pd.DataFrame()))
    assert row["explanation"] == (
        "precision=fp32 0.5 vs precision=fp16 0.5 (median of 1 and 1 runs) (a tie)"
    )


def test_every_counts_a_seed_only_one_side_met_as_decisive():
    row = only_row(
        evaluate_claims(
            [claim(aggregate="every")],
            results(*OK2),
            criteria(fp32={"loss == 0": [34, None]}, fp16={"loss == 0": [17, 18]}),
        )
    )
    assert row["verdict"] == "holds"
    assert (
        "for 2 of 2 seeds (seed 0: epoch 34 vs epoch 17, seed 1: never vs epoch 18)"
        in (row["explanation"])
    )


def test_claims_after_an_unmeasurable_one_are_still_judged_in_their_order():
    claims = [
        Claim(**{**claim().__dict__, "id": "z", "metric": "nope"}),
        Claim(**{**claim("<", metric="final_loss").__dict__, "id": "a"}),
    ]
    table = evaluate_claims(claims, results(*OK2), pd.DataFrame())
    assert list(table.columns) == CLAIM_COLUMNS + TEST_COLUMNS
    assert list(table["claim"]) == ["z", "a"]
    assert (table["criterion"].iloc[0], table["verdict"].iloc[1]) == ("", "holds")
    text = verdict_table(table.astype(object).fillna(""))
    assert text.index('z: "') < text.index('a: "')


def test_sides_with_the_same_filters_are_called_a_and_b():
    same = Claim("c", "t", "", "final_loss", "<", "median", {"model": "m"}, {"model": "m"})
    rows = results(("fp32", 0, "ok", 0.1), ("fp32", 1, "ok", 0.1))
    row = only_row(evaluate_claims([same], rows, pd.DataFrame()))
    assert (row["a"], row["b"]) == ("a", "b")
    assert row["explanation"] == "a 0.1 vs b 0.1 (median of 2 and 2 runs) (a tie)"


def test_a_side_set_apart_by_two_filters_names_both():
    two = Claim(
        "c",
        "t",
        "",
        "final_loss",
        "<",
        "median",
        {"precision": "fp32", "seed": 0},
        {"precision": "fp16", "seed": 1},
    )
    assert two.label("a") == "precision=fp32 seed=0"
