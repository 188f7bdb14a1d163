"""Reading the rounds of ``benchkit ab`` back and writing the verdict: a terminal table,
Markdown (for ``$GITHUB_STEP_SUMMARY``) or JSON.

Timings are judged by the paired statistics of :mod:`benchkit.history.paired`. Everything
else (statuses, deterministic metrics, memory) is judged as ``benchkit compare`` judges it,
on the first round's two result sets: a run that now errors or converges later fails the
A/B comparison as it fails ``compare``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchkit.compare import Options, Thresholds, compare, rule_for, suite_threshold_layer
from benchkit.errors import BenchkitError
from benchkit.history.ab import round_folder
from benchkit.history.paired import PairedComparison, PairedFinding, judge
from benchkit.history.store import workload_labels
from benchkit.resultset import ResultSet, load

FORMATS = ("table", "markdown", "json")
DEFAULT_METRIC = "samples_per_second"
_MARKS = {"regressed": "🔴 regressed", "improved": "🟢 improved", "unclear": "⚪ unclear"}


def per_workload(result_set: ResultSet, metric: str) -> dict[str, float]:
    """Each workload's figure for ``metric`` in one result set: the median of its runs'
    per-epoch (or per-round) samples where the set kept them, else of the runs' own values.
    Only runs that finished ``ok`` count."""
    rows = result_set.rows.assign(_workload=workload_labels(result_set))
    rows = rows[rows["status"] == "ok"]
    samples = result_set.samples.get(metric, {})
    out: dict[str, float] = {}
    for workload, runs in rows.groupby("_workload", sort=False):
        pooled = [v for run_id in runs["run_id"] for v in samples.get(str(run_id), [])]
        if not pooled and metric in runs.columns:
            pooled = [float(v) for v in runs[metric] if v == v]
        pooled = [v for v in pooled if math.isfinite(v)]
        if pooled:
            out[str(workload)] = float(np.median(pooled))
    return out


def timing_metrics(result_set: ResultSet, asked: Sequence[str]) -> list[str]:
    """The metrics to pair: those asked for, else ``samples_per_second`` where the set has
    it, else every timing (noisy) column.

    :raises BenchkitError: an asked metric is not a timing, or is not in the result set.
    """
    columns = [str(c) for c in result_set.rows.columns]
    if asked:
        for metric in asked:
            if metric not in columns:
                raise BenchkitError(
                    f"--metric {metric}: not measured by this suite; it has: "
                    f"{', '.join(c for c in columns if rule_for(c).kind == 'noisy')}"
                )
        return list(asked)
    if DEFAULT_METRIC in columns:
        return [DEFAULT_METRIC]
    return [c for c in columns if rule_for(c).kind == "noisy"]


def analyse(
    out: Path,
    rounds: Sequence[int],
    base: str,
    head: str,
    metrics: Sequence[str] = (),
    thresholds: dict[str, float] | None = None,
) -> PairedComparison:
    """Pair the finished ``rounds`` of the A/B folder ``out``.

    :raises BenchkitError: no round finished, or a round's result set cannot be read.
    """
    if not rounds:
        raise BenchkitError(f"{out}: no round finished: nothing to compare")
    sets = {
        (n, side): load(round_folder(out, n, side)) for n in rounds for side in ("base", "head")
    }
    first = sets[(rounds[0], "base")], sets[(rounds[0], "head")]
    chosen = timing_metrics(first[1], metrics)
    layers = [
        suite_threshold_layer(first[1].thresholds, f"{first[1].path} (suite)"),
        dict(thresholds or {}),
    ]
    rules = Thresholds(layers)
    findings: list[PairedFinding] = []
    for metric in chosen:
        rule = rules.rule(metric)
        per_round = {
            (n, side): per_workload(sets[(n, side)], metric)
            for n in rounds
            for side in ("base", "head")
        }
        workloads = list(dict.fromkeys(w for v in per_round.values() for w in v))
        for workload in workloads:
            b = [per_round[(n, "base")].get(workload, math.nan) for n in rounds]
            h = [per_round[(n, "head")].get(workload, math.nan) for n in rounds]
            findings.append(judge(workload, metric, rule.better, rule.threshold, b, h))
    comparison = PairedComparison(base, head, len(rounds), findings)
    _other_checks(comparison, first[0], first[1], thresholds or {}, out, rounds[0])
    return comparison


def _other_checks(
    comparison: PairedComparison,
    base: ResultSet,
    head: ResultSet,
    thresholds: dict[str, float],
    out: Path,
    number: int,
) -> None:
    """Statuses, deterministic metrics and memory of one round, by ``benchkit compare``'s
    rules (timings only reported there: the rounds judge them)."""
    try:
        checked = compare(base, head, Options(thresholds=thresholds, report_only={"noisy"}))
    except BenchkitError as exc:
        comparison.notes.append(f"statuses and deterministic metrics not compared: {exc}")
        return
    checks = [f for f in checked.findings if f.kind not in ("noisy", "rows")]
    same = sum(1 for f in checks if f.verdict in ("same", "within"))
    comparison.notes.append(
        f"statuses, deterministic metrics and memory (round {number}, `benchkit compare` "
        f"rules): {len(checks)} checks, {same} identical or within tolerance, "
        f"{len(checks) - same} changed; details: benchkit compare "
        f"{round_folder(out, number, 'base')} {round_folder(out, number, 'head')}"
    )
    for f in checked.failures:
        note = f": {f.note}" if f.note else ""
        comparison.extra_failures.append(
            f"{f.key}: {f.metric} {f.baseline} → {f.new} ({f.verdict}{note})"
        )


def _pct(ratio: float | None) -> str:
    if ratio is None or not math.isfinite(ratio):
        return ""
    return f"{(ratio - 1) * 100:+.1f} %"


def _ci(f: PairedFinding) -> str:
    if f.interval is None or f.interval.low is None or f.interval.high is None:
        return ""
    return f"[{_pct(f.interval.low)}, {_pct(f.interval.high)}]".replace(" %", "") + " %"


def _rows(comparison: PairedComparison, marks: bool) -> list[list[str]]:
    rows = []
    for f in comparison.findings:
        ratios = " ".join(f"{r:.3f}" for r in f.ratios)
        verdict = (
            _MARKS.get(f.verdict, f.verdict)
            if marks
            else f.verdict.upper()
            if f.fails
            else f.verdict
        )
        rows.append(
            [
                f.workload,
                f.metric,
                f"{f.base:.4g}",
                f"{f.head:.4g}",
                _pct(f.interval.ratio if f.interval else None),
                _ci(f),
                ratios,
                verdict,
                f.note,
            ]
        )
    return rows


_HEAD = [
    "workload",
    "metric",
    "base",
    "head",
    "change",
    "95 % CI",
    "per-round ratios",
    "verdict",
    "note",
]


def _headline(comparison: PairedComparison) -> str:
    regressed = [f for f in comparison.findings if f.fails]
    parts = []
    if regressed:
        parts.append(f"{len(regressed)} timing regression{'s' * (len(regressed) != 1)}")
    if comparison.extra_failures:
        n = len(comparison.extra_failures)
        parts.append(f"{n} other regression{'s' * (n != 1)}")
    return ", ".join(parts) or "no regression"


def _intro(comparison: PairedComparison) -> list[str]:
    return [
        f"{comparison.rounds} round{'s' * (comparison.rounds != 1)}, BASE and HEAD alternating "
        "on this machine; change = median over rounds of HEAD/BASE (each workload's median), "
        "95 % CI from the Wilcoxon signed-rank test on the per-round ratios",
        *comparison.notes,
    ]


def _text_table(head: list[str], rows: list[list[str]]) -> str:
    keep = [i for i in range(len(head)) if any(r[i] for r in rows) or i < 2]
    table = [[head[i] for i in keep]] + [[r[i] for i in keep] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(keep))]
    return "\n".join(
        "  " + "  ".join(x.ljust(w) for x, w in zip(row, widths, strict=True)).rstrip()
        for row in table
    )


def render(comparison: PairedComparison, fmt: str = "table") -> str:
    """The comparison as ``table``, ``markdown`` or ``json``."""
    if fmt == "json":
        return json.dumps(_json(comparison), indent=2) + "\n"
    if fmt == "markdown":
        return _markdown(comparison)
    lines = [
        f"benchkit ab: BASE {comparison.base} vs HEAD {comparison.head}",
        *(f"  {x}" for x in _intro(comparison)),
        "",
        "Timings:",
        _text_table(_HEAD, _rows(comparison, False)) if comparison.findings else "  none",
    ]
    if comparison.extra_failures:
        lines += [
            "",
            "Other regressions (round 1):",
            *(f"  {x}" for x in comparison.extra_failures),
        ]
    verdict = "FAIL" if comparison.regressed else "PASS"
    if comparison.interrupted:
        verdict = f"INTERRUPTED ({verdict.lower()} so far)"
    lines += ["", f"{verdict}: {_headline(comparison)} (exit {comparison.exit_code})"]
    return "\n".join(lines) + "\n"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _markdown(comparison: PairedComparison) -> str:
    icon = "❌" if comparison.regressed else "⚠️" if comparison.interrupted else "✅"
    rows = _rows(comparison, True)
    keep = [i for i in range(len(_HEAD)) if any(r[i] for r in rows) or i < 2]
    lines = [
        f"### {icon} benchkit ab: {_headline(comparison)}",
        "",
        f"BASE `{comparison.base}` → HEAD `{comparison.head}`",
        "",
        *(f"- {_md_cell(x)}" for x in _intro(comparison)),
        "",
        "| " + " | ".join(_HEAD[i] for i in keep) + " |",
        "|" + "---|" * len(keep),
        *("| " + " | ".join(_md_cell(r[i]) for i in keep) + " |" for r in rows),
        "",
    ]
    if comparison.extra_failures:
        lines += ["**Other regressions (round 1):**", ""]
        lines += [f"- {_md_cell(x)}" for x in comparison.extra_failures] + [""]
    lines.append(f"Exit code {comparison.exit_code}.")
    return "\n".join(lines) + "\n"


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _json(comparison: PairedComparison) -> dict[str, Any]:
    findings = []
    for f in comparison.findings:
        interval = f.interval
        findings.append(
            {
                "workload": f.workload,
                "metric": f.metric,
                "better": f.better,
                "base": _plain(f.base),
                "head": _plain(f.head),
                "ratio": _plain(interval.ratio) if interval else None,
                "low": interval.low if interval else None,
                "high": interval.high if interval else None,
                "confidence": interval.confidence if interval else None,
                "ratios": [_plain(r) for r in f.ratios],
                "threshold": f.threshold,
                "verdict": f.verdict,
                "fails": f.fails,
                "note": f.note,
            }
        )
    return {
        "base": comparison.base,
        "head": comparison.head,
        "rounds": comparison.rounds,
        "exit_code": comparison.exit_code,
        "interrupted": comparison.interrupted,
        "result": _headline(comparison),
        "notes": comparison.notes,
        "other_regressions": comparison.extra_failures,
        "findings": findings,
    }


def describe_out(out: Path) -> str:
    """One line naming the folder the rounds were kept in."""
    return f"rounds kept in {out} (round-NN-base, round-NN-head: result sets; logs/; ab.json)"
