"""``benchkit history show``: a metric over commits and its steps, as a terminal or Markdown
table, a PNG per series, and one self-contained HTML page.

The folder it writes holds ``history.md`` (the tables, with the figures beside it),
``history.html`` (the same, figures embedded, one file to attach to a CI run) and one PNG per
series (workload × environment): the runs' values per commit, their median, the fitted
levels, and each step as a vertical line, red for a regression, green for an improvement,
grey otherwise, with the commits that could have started it shaded.
"""

from __future__ import annotations

import base64
import html
import math
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from benchkit.errors import BenchkitError
from benchkit.history.series import Series, Step
from benchkit.history.step_detect import DEFAULT_BETA

_VERDICT_COLORS = {"regressed": "tab:red", "improved": "tab:green"}
_MARKS = {"regressed": "🔴 regressed", "improved": "🟢 improved", "unclear": "⚪ unclear"}


@dataclass
class HistoryView:
    """What ``history show`` found: the series of one metric and where they came from."""

    db: str
    metric: str
    series: list[Series]
    beta: float = DEFAULT_BETA

    @property
    def commits(self) -> int:
        """Distinct commits over all series."""
        return len({p.commit for s in self.series for p in s.points})


def _number(value: float | None, metric: str) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    if "bytes" in metric:
        return f"{value / 2**20:.1f} MiB"
    return f"{value:.4g}"


def _change(step: Step) -> str:
    if step.ratio is None:
        return ""
    return f"{(step.ratio - 1) * 100:+.1f} %"


def _interval(step: Step) -> str:
    if step.low is None or step.high is None:
        return ""
    return f"[{(step.low - 1) * 100:+.1f}, {(step.high - 1) * 100:+.1f}] %"


def _possible(step: Step) -> str:
    if step.first == step.last:
        return step.first[:10]
    return f"{step.first[:10]} … {step.last[:10]}"


def series_table(view: HistoryView) -> pd.DataFrame:
    """One row per series: its commits, latest value and steps."""
    rows = []
    for s in view.series:
        latest = s.points[-1] if s.points else None
        regressions = len(s.regressions)
        steps = f"{len(s.steps)}" + (f" ({regressions} regressed)" if regressions else "")
        rows.append(
            {
                "workload": s.workload,
                "suite": s.suite,
                "env": s.fingerprint,
                "commits": len(s.points),
                "latest": latest.short if latest else "",
                "value": _number(latest.median if latest else None, s.metric),
                "steps": steps,
                "note": s.note,
            }
        )
    return pd.DataFrame(rows)


def steps_table(view: HistoryView) -> pd.DataFrame:
    """One row per step of every series."""
    rows = []
    for s in view.series:
        for step in s.steps:
            rows.append(
                {
                    "workload": s.workload,
                    "env": s.fingerprint,
                    "commit": step.commits,
                    "could be": _possible(step) if s.kind != "deterministic" else "",
                    "before": _number(step.level_before, s.metric),
                    "after": _number(step.level_after, s.metric),
                    "change": _change(step),
                    "95 % CI": _interval(step),
                    "verdict": step.verdict,
                    "detail": step.detail,
                }
            )
    return pd.DataFrame(
        rows,
        columns=[
            "workload",
            "env",
            "commit",
            "could be",
            "before",
            "after",
            "change",
            "95 % CI",
            "verdict",
            "detail",
        ],
    )


def _method(view: HistoryView) -> str:
    kinds = {s.kind for s in view.series}
    if kinds <= {"deterministic"}:
        return (
            f"{view.metric} is deterministic: every commit whose values differ from the "
            "previous commit's is a step, at exactly that commit"
        )
    return (
        f"{view.metric} is noisy: steps found by an exact penalised-L1 fit of levels to the "
        f"per-commit medians (β = {view.beta:g}); change = ratio of the levels' medians with "
        "a 95 % bootstrap CI; 'could be': the commits that could have started the step"
    )


def _text_table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "  none"
    cells = [[str(c) for c in frame.columns]] + [
        ["" if pd.isna(v) else str(v) for v in row] for row in frame.itertuples(index=False)
    ]
    keep = [i for i in range(len(cells[0])) if any(row[i] for row in cells[1:])]
    widths = [max(len(row[i]) for row in cells) for i in keep]
    return "\n".join(
        "  " + "  ".join(row[i].ljust(w) for i, w in zip(keep, widths, strict=True)).rstrip()
        for row in cells
    )


def render_text(view: HistoryView) -> str:
    """The terminal form: series, then steps."""
    return "\n".join(
        [
            f"benchkit history: {view.db}: {view.metric} over {view.commits} commits, "
            f"{len(view.series)} series",
            f"  {_method(view)}",
            "",
            "Series:",
            _text_table(series_table(view)),
            "",
            "Steps:",
            _text_table(steps_table(view)),
            "",
        ]
    )


def _md_table(frame: pd.DataFrame, marks: bool = False) -> str:
    if frame.empty:
        return "No steps."
    frame = frame.copy()
    if marks and "verdict" in frame:
        frame["verdict"] = [_MARKS.get(v, v) for v in frame["verdict"]]
    head = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in frame.itertuples(index=False):
        cells = ["" if pd.isna(v) else str(v).replace("|", "\\|") for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_markdown(view: HistoryView, images: dict[str, str] | None = None) -> str:
    """The Markdown form (for ``$GITHUB_STEP_SUMMARY``); with ``images`` (series title →
    PNG file name) it links the figures too."""
    regressions = sum(len(s.regressions) for s in view.series)
    icon = "🔴" if regressions else "✅"
    lines = [
        f"### {icon} benchkit history: {view.metric}",
        "",
        f"`{view.db}`: {view.commits} commits, {len(view.series)} series, "
        f"{regressions} regression{'s' * (regressions != 1)} among the steps.",
        "",
        f"_{_method(view)}._",
        "",
        "**Steps**",
        "",
        _md_table(steps_table(view), marks=True),
        "",
        "**Series**",
        "",
        _md_table(series_table(view)),
        "",
    ]
    for title, name in (images or {}).items():
        lines += [f"![{title}]({name})", ""]
    return "\n".join(lines)


def figure(series: Series) -> Figure:
    """The series over its commits, with levels and steps marked."""
    fig = Figure(figsize=(10, 4.2), dpi=100, layout="constrained")
    ax = fig.subplots()
    xs, ys = [], []
    for i, point in enumerate(series.points):
        for v in point.values:
            if isinstance(v, float) and math.isfinite(v):
                xs.append(i)
                ys.append(v)
    ax.scatter(xs, ys, s=10, alpha=0.35, color="tab:blue", label="runs")
    medians = [p.median for p in series.points]
    ax.plot(range(len(medians)), medians, "o-", ms=3, lw=0.8, color="tab:blue", label="median")
    for start, stop, level in series.levels:
        if math.isfinite(level):
            ax.hlines(level, start - 0.4, stop - 0.6, color="black", lw=1.6)
    for step in series.steps:
        color = _VERDICT_COLORS.get(step.verdict, "tab:gray")
        ax.axvline(step.index - 0.5, color=color, ls="--", lw=1.2)
        first = next(i for i, p in enumerate(series.points) if p.commit == step.first)
        last = next(i for i, p in enumerate(series.points) if p.commit == step.last)
        if last > first:
            ax.axvspan(first - 0.5, last - 0.5, color=color, alpha=0.12)
        ax.annotate(
            f"{step.verdict} {_change(step)}".strip(),
            (step.index - 0.5, 1.0),
            xycoords=("data", "axes fraction"),
            ha="left",
            va="top",
            fontsize=8,
            color=color,
            rotation=90,
        )
    every = max(1, math.ceil(len(series.points) / 25))
    ticks = list(range(0, len(series.points), every))
    ax.set_xticks(ticks, [series.points[i].short[:7] for i in ticks], rotation=60, fontsize=7)
    ax.set_xlim(-0.7, len(series.points) - 0.3)
    ax.set_ylabel(series.metric)
    ax.set_title(series.title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    return fig


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:120]


def write(view: HistoryView, out: Path) -> Path:
    """Write ``history.md``, ``history.html`` and a PNG per series into ``out``; returns the
    Markdown file's path.

    :raises BenchkitError: ``out`` is a file.
    """
    if out.exists() and not out.is_dir():
        raise BenchkitError(f"--out {out} is a file, not a folder")
    out.mkdir(parents=True, exist_ok=True)
    images: dict[str, str] = {}
    for series in view.series:
        name = f"{_slug(series.workload)}-{series.fingerprint}-{_slug(view.metric)}.png"
        fig = figure(series)
        fig.savefig(out / name, format="png")
        images[series.title] = name
    index = out / "history.md"
    index.write_text(render_markdown(view, images), encoding="utf-8")
    (out / "history.html").write_text(_html(view, images, out), encoding="utf-8")
    return index


def _html(view: HistoryView, images: dict[str, str], folder: Path) -> str:
    steps = steps_table(view)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>benchkit history: {html.escape(view.metric)}</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;"
        "padding:0 1em;line-height:1.45}img{max-width:100%;border:1px solid #ddd}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;"
        "padding:.25em .5em}tr.regressed td{background:#fde8e8}"
        "tr.improved td{background:#e8f6e8}</style></head><body>",
        f"<h1>benchkit history: {html.escape(view.metric)}</h1>",
        f"<p><code>{html.escape(view.db)}</code>: {view.commits} commits, "
        f"{len(view.series)} series.</p>",
        f"<p><em>{html.escape(_method(view))}.</em></p>",
        "<h2>Steps</h2>",
    ]
    if steps.empty:
        parts.append("<p>No steps.</p>")
    else:
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in steps.columns)
        body = [
            f'<tr class="{html.escape(str(row.verdict))}">'
            + "".join(f"<td>{html.escape(str(v))}</td>" for v in row)
            + "</tr>"
            for row in steps.itertuples(index=False)
        ]
        parts.append(f"<table><tr>{head}</tr>{''.join(body)}</table>")
    parts += ["<h2>Series</h2>", series_table(view).to_html(index=False, na_rep="")]
    for title, name in images.items():
        data = base64.b64encode((folder / name).read_bytes()).decode("ascii")
        parts.append(
            f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(title)}">'
            f"<figcaption>{html.escape(title)}</figcaption></figure>"
        )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
