"""The report is a table of sections (``benchkit.report.SECTIONS``): each row says what it
draws, when it has nothing to show and why, and which tables go under it. These tests drive
the table with hand-made inputs, without drawing anything real."""

from __future__ import annotations

import pandas as pd
import pytest
from matplotlib.figure import Figure

from benchkit import report
from benchkit.report import FigureSpec, ReportInputs, SectionSpec


def inputs(**extras: pd.DataFrame) -> ReportInputs:
    results = pd.DataFrame({"run_id": ["m/d/fp32/cpu/seed0"], "model": ["m"], "dataset": ["d"]})
    return ReportInputs([], results, None, dict(extras))


def test_the_report_has_its_sections_in_order():
    assert [s.title for s in report.SECTIONS] == [
        "Loss curves",
        "Rollout: actual vs predicted",
        "Convergence epochs by precision",
        "Throughput: CPU vs GPU",
        "Peak memory",
        "Roofline",
        "The sources' figures against benchkit's",
        "Claim verdicts",
    ]


def test_a_section_draws_saves_and_captions_its_figures_in_order():
    saved = []
    spec = SectionSpec(
        "Two",
        lambda _: [
            FigureSpec(Figure, "a.png", "first", "never"),
            FigureSpec(lambda: None, "b.png", "second", "b had nothing"),
            FigureSpec(Figure, "c.png", "third", "never"),
        ],
        tables=lambda _: [pd.DataFrame({"x": [1]})],
    )
    section = report._build(spec, inputs(), lambda fig, name: saved.append(name))
    assert saved == ["a.png", "c.png"]
    assert section.images == [("a.png", "first"), ("c.png", "third")]
    assert section.paragraphs == ["Not drawn: b had nothing."]
    assert [list(t.columns) for t in section.tables] == [["x"]]


def test_a_section_with_nothing_to_show_says_why_and_draws_nothing():
    def never(_):
        raise AssertionError("figures asked for although the section said it has none")

    spec = SectionSpec("Empty", never, missing=lambda _: "Not drawn: no input.")
    section = report._build(spec, inputs(), lambda fig, name: None)
    assert section.paragraphs == ["Not drawn: no input."]
    assert section.images == []


@pytest.mark.parametrize("table", [None, pd.DataFrame(columns=["claim", "verdict"])])
def test_claims_appear_only_when_a_set_has_claim_rows(table):
    claims = next(s for s in report.SECTIONS if s.title == "Claim verdicts")
    extras = {} if table is None else {"claims": table}
    assert not claims.shown(inputs(**extras))
    assert claims.shown(inputs(claims=pd.DataFrame({"claim": ["c"], "verdict": ["holds"]})))


def test_without_curves_the_loss_section_says_so():
    loss = next(s for s in report.SECTIONS if s.title == "Loss curves")
    assert "none of the result sets has curves.csv" in loss.missing(inputs())
    assert loss.figures(inputs()) == []
