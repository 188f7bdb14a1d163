"""How a :class:`~benchkit.compare.Comparison` is written: a terminal table, Markdown (for a
pull-request comment or ``$GITHUB_STEP_SUMMARY``), CSV and JSON.

The terminal and Markdown forms show what changed (identical checks are counted, not listed,
unless ``show_all``) and one line per workload and timing metric; CSV and JSON hold every
finding.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from typing import Any

import pandas as pd

from benchkit.compare import MIB, Comparison, Finding, never_is_worst, rule_for

FORMATS = ("table", "markdown", "csv", "json")
_QUIET = ("same", "within")
_MARKS = {
    "regressed": "🔴 regressed",
    "improved": "🟢 improved",
    "changed": "🟡 changed",
    "only-baseline": "⚪ only in baseline",
    "only-new": "⚪ only in new",
    "unclear": "⚪ unclear",
    "not-comparable": "⚪ not comparable",
    "unreadable": "⚪ unreadable value",
}


def render(comparison: Comparison, fmt: str = "table", show_all: bool = False) -> str:
    """The comparison in format ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "csv":
        return _frame(comparison).to_csv(index=False)
    if fmt == "json":
        return json.dumps(_json(comparison), indent=2, default=str) + "\n"
    if fmt == "markdown":
        return _markdown(comparison, show_all)
    return _terminal(comparison, show_all)


def _value(finding: Finding, value: Any) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "never" if never_is_worst(finding.metric) else "-"
    if isinstance(value, str):
        return value
    rule = rule_for(finding.metric)
    if rule.unit == "bytes":
        return f"{value / MIB:.1f} MiB"
    if rule.unit == "epochs" or finding.metric in ("epochs", "params", "train_samples"):
        return f"{value:.0f}"
    return f"{value:.4g}"


def _change(finding: Finding) -> str:
    if finding.change is None or finding.kind in ("status", "rows"):
        return ""
    if finding.verdict == "same":
        return "0"
    rule = rule_for(finding.metric)
    if rule.relative or finding.kind in ("noisy", "memory"):
        return _percent(finding.change)
    if rule.unit == "epochs":
        return f"{finding.change:+.0f}"
    return f"{finding.change:+.4g}"


def _percent(x: float) -> str:
    if math.isinf(x):
        return "+inf %" if x > 0 else "-inf %"
    return f"{x * 100:+.1f} %"


def _ci(finding: Finding) -> str:
    if finding.low is None or finding.high is None:
        return ""
    return f"[{finding.low * 100:+.1f}, {finding.high * 100:+.1f}] %"


def _verdict(finding: Finding, marks: bool) -> str:
    text = _MARKS.get(finding.verdict, finding.verdict) if marks else finding.verdict
    if not marks and finding.verdict == "regressed":
        text = "REGRESSED"
    if finding.verdict in ("regressed", "improved", "changed") and not finding.gated:
        text += " (not gated)"
    elif finding.fails and finding.verdict != "regressed":
        text += " (fails: --strict)"
    return text


def _headline(comparison: Comparison) -> str:
    failures = comparison.failures
    if not failures:
        return "no regression"
    regressions = sum(1 for f in failures if f.verdict == "regressed")
    others = len(failures) - regressions
    parts = []
    if regressions:
        parts.append(f"{regressions} regression{'s' * (regressions != 1)}")
    if others:
        parts.append(f"{others} change{'s' * (others != 1)} failing under --strict")
    return ", ".join(parts)


def _split(comparison: Comparison, show_all: bool) -> tuple[list[Finding], list[Finding]]:
    noisy = [f for f in comparison.findings if f.kind == "noisy"]
    other = [
        f
        for f in comparison.findings
        if f.kind != "noisy" and (show_all or f.verdict not in _QUIET)
    ]
    return other, noisy


def _counts(comparison: Comparison) -> str:
    checks = [f for f in comparison.findings if f.kind not in ("noisy", "rows")]
    same = sum(1 for f in checks if f.verdict == "same")
    within = sum(1 for f in checks if f.verdict == "within")
    only_b = comparison.count("only-baseline")
    only_n = comparison.count("only-new")
    return (
        f"{comparison.matched} runs matched, {only_b} only in baseline, {only_n} only in new; "
        f"{len(checks)} checks: {same} identical, {within} within tolerance, "
        f"{len(checks) - same - within} changed"
    )


def _timing_title(comparison: Comparison) -> str:
    repeats = {
        "epochs": "per-epoch samples after warm-up, seeds pooled",
        "seeds": "one figure per seed",
        "rounds": "benchmark rounds",
    }.get(comparison.repeats, comparison.repeats)
    return (
        "Timings per workload: ratio of medians new/baseline, 95 % bootstrap CI "
        f"(repeats: {repeats}); a regression needs the change past the threshold and the CI "
        "clear of 0"
    )


def _rows(
    findings: list[Finding], marks: bool, detail: Callable[[Finding], str] = lambda f: f.rule
) -> list[list[str]]:
    """One table row per finding; ``detail`` fills the column between change and verdict
    (the rule, or for timings the confidence interval)."""
    return [
        [
            f.key,
            f.metric,
            _value(f, f.baseline),
            _value(f, f.new),
            _change(f),
            detail(f),
            _verdict(f, marks),
            f.note,
        ]
        for f in findings
    ]


_HEAD = ["run", "metric", "baseline", "new", "change", "rule", "verdict", "note"]
_NOISY_HEAD = ["workload", "metric", "baseline", "new", "change", "95 % CI", "verdict", "note"]


def _text_table(head: list[str], rows: list[list[str]]) -> str:
    keep = [i for i in range(len(head)) if any(r[i] for r in rows) or i < 2]
    head = [head[i] for i in keep]
    rows = [[r[i] for i in keep] for r in rows]
    widths = [max(len(x) for x in col) for col in zip(head, *rows, strict=True)]
    lines = ["  ".join(x.ljust(w) for x, w in zip(head, widths, strict=True)).rstrip()]
    for row in rows:
        lines.append("  ".join(x.ljust(w) for x, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join("  " + line for line in lines)


def _terminal(comparison: Comparison, show_all: bool) -> str:
    other, noisy = _split(comparison, show_all)
    lines = [
        "benchkit compare",
        f"  baseline: {comparison.baseline}",
        f"  new:      {comparison.new}",
        f"  {_counts(comparison)}",
        *(f"  {note}" for note in comparison.notes),
        "",
    ]
    lines.append("Changes:" if not show_all else "All checks:")
    lines.append(_text_table(_HEAD, _rows(other, False)) if other else "  none")
    if noisy:
        lines += [
            "",
            _timing_title(comparison) + ":",
            _text_table(_NOISY_HEAD, _rows(noisy, False, _ci)),
        ]
    verdict = "FAIL" if comparison.exit_code else "PASS"
    lines += ["", f"{verdict}: {_headline(comparison)} (exit {comparison.exit_code})"]
    return "\n".join(lines) + "\n"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    keep = [i for i in range(len(head)) if any(r[i] for r in rows) or i < 2]
    lines = [
        "| " + " | ".join(head[i] for i in keep) + " |",
        "|" + "---|" * len(keep),
    ]
    for row in rows:
        lines.append("| " + " | ".join(_md_cell(row[i]) for i in keep) + " |")
    return "\n".join(lines)


def _markdown(comparison: Comparison, show_all: bool) -> str:
    other, noisy = _split(comparison, show_all)
    icon = "❌" if comparison.exit_code else "✅"
    lines = [
        f"### {icon} benchkit compare: {_headline(comparison)}",
        "",
        f"`{comparison.baseline}` → `{comparison.new}`",
        "",
        f"- {_counts(comparison)}",
        *(f"- {note}" for note in comparison.notes),
        "",
    ]
    if other:
        lines += [_md_table(_HEAD, _rows(other, True)), ""]
    else:
        lines += ["No deterministic metric, status or memory figure changed.", ""]
    if noisy:
        lines += [
            f"**{_timing_title(comparison)}**",
            "",
            _md_table(_NOISY_HEAD, _rows(noisy, True, _ci)),
            "",
        ]
    lines.append(f"Exit code {comparison.exit_code}.")
    return "\n".join(lines) + "\n"


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    if hasattr(value, "item"):
        return _plain(value.item())
    if value is not None and not isinstance(value, str) and pd.isna(value):
        return None
    return value


def _frame(comparison: Comparison) -> pd.DataFrame:
    rows = [dataclasses.asdict(f) for f in comparison.findings]
    return pd.DataFrame(rows, columns=[f.name for f in dataclasses.fields(Finding)])


def _json(comparison: Comparison) -> dict[str, Any]:
    return {
        "baseline": comparison.baseline,
        "new": comparison.new,
        "exit_code": comparison.exit_code,
        "result": _headline(comparison),
        "matched": comparison.matched,
        "strict": comparison.strict,
        "environments_match": comparison.environments_match,
        "repeats": comparison.repeats,
        "notes": comparison.notes,
        "findings": [
            {k: _plain(v) for k, v in dataclasses.asdict(f).items()} for f in comparison.findings
        ],
    }
