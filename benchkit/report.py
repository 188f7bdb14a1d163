"""``benchkit report``: a self-contained report folder from one or more result sets.

The folder holds ``report.md`` (Markdown, images beside it as PNG files), the PNG files, and
``report.html``, a single page with the same content and the images embedded, so it can be
mailed or attached to a CI run as one file.

Sections: the result sets and their environments; a summary table per set; training loss
curves per workload; the rollout of workloads that record one (``series.csv`` series
``NAME_actual``/``NAME_predicted``, or a ``rollout.csv`` with ``run_id, step, actual,
predicted``); epochs to the target per precision; throughput CPU vs GPU; peak memory; the
sources' printed figures beside benchkit's (``references.csv``, also drawn over the loss
curves); the roofline of throughput sets (:mod:`benchkit.roofline_plot`); and the claim
verdicts of sets that have a ``claims.csv``. A figure that cannot be drawn is left out with a
line saying why.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from benchkit import plots
from benchkit.errors import BenchkitError
from benchkit.resultset import ResultSet
from benchkit.roofline_plot import roofline

_CLAIM_COLUMNS = [
    "claim",
    "criterion",
    "device",
    "expect",
    "a_value",
    "b_value",
    "verdict",
    "p_value",
    "explanation",
    "set",
]


@dataclass
class Section:
    """A heading with paragraphs, preformatted blocks, tables and images (file names)."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    blocks: list[str] = field(default_factory=list)
    tables: list[pd.DataFrame] = field(default_factory=list)
    images: list[tuple[str, str]] = field(default_factory=list)  # (file name, alt text)


def _combined(
    result_sets: list[ResultSet],
) -> tuple[pd.DataFrame, pd.DataFrame | None, dict[str, pd.DataFrame]]:
    names: list[str] = []
    for rs in result_sets:
        name = rs.label
        while name in names:
            name += "'"
        names.append(name)
    results, curves, extras = [], [], {}
    for name, rs in zip(names, result_sets, strict=True):
        results.append(rs.rows.assign(set=name))
        if rs.curves is not None:
            curves.append(rs.curves.assign(set=name))
        for key, table in rs.extras.items():
            extras.setdefault(key, []).append(table.assign(set=name))
    combined = pd.concat(results, ignore_index=True)
    combined["seed"] = pd.to_numeric(combined["seed"], errors="coerce")
    return (
        combined,
        pd.concat(curves, ignore_index=True) if curves else None,
        {k: pd.concat(v, ignore_index=True) for k, v in extras.items()},
    )


def _slug(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", "-".join(parts)).strip("-")


@dataclass(frozen=True)
class ReportInputs:
    """The report's result sets combined into one table of each kind; a ``set`` column names
    the set each row came from. ``extras`` holds the optional tables (``rollout``,
    ``claims``) of the sets that have them."""

    result_sets: list[ResultSet]
    results: pd.DataFrame
    curves: pd.DataFrame | None
    extras: dict[str, pd.DataFrame]

    def extra(self, name: str) -> pd.DataFrame | None:
        """An optional table, or ``None`` when no set has rows for it."""
        table = self.extras.get(name)
        return None if table is None or table.empty else table


@dataclass(frozen=True)
class FigureSpec:
    """One figure of a section: ``draw()`` returns it (``None``: nothing to draw, and
    ``why`` says so), saved as ``name`` with ``alt`` as its caption."""

    draw: Callable[[], Figure | None]
    name: str
    alt: str
    why: str


@dataclass(frozen=True)
class SectionSpec:
    """One section of the report, as a row of :data:`SECTIONS`.

    :param title: the heading.
    :param figures: the figures to draw from the inputs, in order.
    :param missing: a paragraph saying why the section has nothing to show (``None``: it
        has); when given, no figure is drawn.
    :param tables: tables shown under the figures.
    :param shown: whether the section appears at all.
    """

    title: str
    figures: Callable[[ReportInputs], list[FigureSpec]]
    missing: Callable[[ReportInputs], str | None] = lambda inputs: None
    tables: Callable[[ReportInputs], list[pd.DataFrame]] = lambda inputs: []
    shown: Callable[[ReportInputs], bool] = lambda inputs: True


def _one(
    draw: Callable[[pd.DataFrame], Figure | None], name: str, alt: str, why: str
) -> Callable[[ReportInputs], list[FigureSpec]]:
    """A section of one figure drawn from the combined results."""
    return lambda inputs: [FigureSpec(lambda: draw(inputs.results), name, alt, why)]


def _loss_figures(inputs: ReportInputs) -> list[FigureSpec]:
    curves = inputs.curves
    if curves is None:  # _no_curves says so
        return []
    return [
        FigureSpec(
            lambda model=model, dataset=dataset: plots.loss_curves(
                inputs.results, curves, model, dataset, inputs.extra("references")
            ),
            f"loss-{_slug(model, dataset)}.png",
            f"{model} on {dataset}: loss curves",
            f"{model} on {dataset} has no finished run with a curve",
        )
        for model, dataset in plots.workloads(inputs.results)
    ]


def _no_curves(inputs: ReportInputs) -> str | None:
    if inputs.curves is not None:
        return None
    return (
        "Not drawn: none of the result sets has curves.csv (committed baselines leave it "
        "out to stay small; run the suite to get one)."
    )


def _rollout_figures(inputs: ReportInputs) -> list[FigureSpec]:
    rollout_rows = inputs.extras["rollout"]
    wanted = inputs.results[inputs.results["run_id"].isin(rollout_rows["run_id"])]
    return [
        FigureSpec(
            lambda model=model, dataset=dataset: plots.rollout(
                inputs.results, rollout_rows, model, dataset
            ),
            f"rollout-{_slug(model, dataset)}.png",
            f"{model} on {dataset}: rollout, actual vs predicted",
            f"no rollout rows for {model} on {dataset}",
        )
        for model, dataset in plots.workloads(wanted)
    ]


def _no_rollout(inputs: ReportInputs) -> str | None:
    if inputs.extra("rollout") is not None:
        return None
    return (
        "Not drawn: no result set records rollout predictions (series.csv with "
        "rollout_actual and rollout_predicted, or rollout.csv); the report recomputes "
        "nothing."
    )


def _claims_figures(inputs: ReportInputs) -> list[FigureSpec]:
    claims = inputs.extras["claims"]
    return [
        FigureSpec(
            lambda: plots.claims(claims),
            "claims.png",
            "claim verdicts",
            "claims.csv has no verdict column",
        )
    ]


def _claims_tables(inputs: ReportInputs) -> list[pd.DataFrame]:
    claims = inputs.extras["claims"]
    shown = [c for c in _CLAIM_COLUMNS if c in claims.columns]
    return [claims[shown] if shown else claims]


def _reference_tables(inputs: ReportInputs) -> list[pd.DataFrame]:
    """One table per reference, precision, device (and set): the source's value beside the
    median and spread of benchkit's seeds, the verdict and its reason."""
    references = inputs.extras["references"]
    keys = [c for c in ("reference", "precision", "device", "set") if c in references.columns]
    tables = []
    for _, group in references.groupby(keys, sort=False, dropna=False):
        first = group.iloc[0]
        at = [
            f"epoch {int(e)}" if pd.notna(e) else (f"step {int(s)}" if pd.notna(s) else "end")
            for e, s in zip(group["epoch"], group["step"], strict=True)
        ]
        where = " ".join(str(first[c]) for c in ("precision", "device") if pd.notna(first[c]))
        tables.append(
            pd.DataFrame(
                {
                    "reference": [f"{first['reference']} ({first['metric']}, {where})"]
                    + [""] * (len(group) - 1),
                    "at": at,
                    "source": group["source_value"].map(lambda v: f"{v:.10g}").tolist(),
                    "benchkit (median)": group["median"]
                    .map(lambda v: "" if pd.isna(v) else f"{v:.10g}")
                    .tolist(),
                    "seeds": group["seeds"].tolist(),
                    "verdict": group["verdict"].tolist(),
                    "reason": group["reason"].tolist(),
                }
            )
        )
    return tables


def _no_figures(inputs: ReportInputs) -> list[FigureSpec]:
    """A section of tables only."""
    return []


#: The report after its first section (the result sets), one row per section.
SECTIONS: tuple[SectionSpec, ...] = (
    SectionSpec("Loss curves", _loss_figures, missing=_no_curves),
    SectionSpec("Rollout: actual vs predicted", _rollout_figures, missing=_no_rollout),
    SectionSpec(
        "Convergence epochs by precision",
        _one(
            plots.convergence_epochs,
            "convergence.png",
            "Convergence epochs by precision",
            "no workload with a target loss finished",
        ),
    ),
    SectionSpec(
        "Throughput: CPU vs GPU",
        _one(
            plots.throughput,
            "throughput.png",
            "Throughput: CPU vs GPU",
            "no finished run recorded a throughput",
        ),
    ),
    SectionSpec(
        "Peak memory",
        _one(
            plots.peak_memory,
            "memory.png",
            "Peak memory",
            "no finished run recorded its peak memory",
        ),
    ),
    SectionSpec(
        "Roofline",
        _one(
            roofline,
            "roofline.png",
            "Roofline per device: each measured step against its dtype's peak FLOP/s and the "
            "memory bandwidth times its arithmetic intensity (benchkit/roofline.py); far below "
            "both roofs is bound by overhead",
            "no finished throughput row has FLOPs, bytes and peaks",
        ),
        shown=lambda inputs: "arithmetic_intensity" in inputs.results,
    ),
    SectionSpec(
        "The sources' figures against benchkit's",
        _no_figures,
        tables=_reference_tables,
        shown=lambda inputs: inputs.extra("references") is not None,
    ),
    SectionSpec(
        "Claim verdicts",
        _claims_figures,
        tables=_claims_tables,
        shown=lambda inputs: inputs.extra("claims") is not None,
    ),
)


def build_sections(
    result_sets: list[ResultSet], save: Callable[[Figure, str], None]
) -> list[Section]:
    """Draw every figure (``save(figure, file_name)`` writes it) and lay out the report: the
    result sets, then one section per row of :data:`SECTIONS`.

    :raises BenchkitError: no result sets, or one that is not from ``benchkit run``.
    """
    if not result_sets:
        raise BenchkitError("report: give at least one result set")
    for rs in result_sets:
        if rs.kind != "benchkit":
            raise BenchkitError(f"{rs.path}: a report needs result sets from `benchkit run`")
    results, curves, extras = _combined(result_sets)
    inputs = ReportInputs(result_sets, results, curves, extras)
    sections = [_sets_section(result_sets)]
    for spec in SECTIONS:
        if spec.shown(inputs):
            sections.append(_build(spec, inputs, save))
    return sections


def _build(spec: SectionSpec, inputs: ReportInputs, save: Callable[[Figure, str], None]) -> Section:
    section = Section(spec.title)
    why = spec.missing(inputs)
    if why is not None:
        section.paragraphs.append(why)
    else:
        for figure in spec.figures(inputs):
            drawn = figure.draw()
            if drawn is None:
                section.paragraphs.append(f"Not drawn: {figure.why}.")
                continue
            save(drawn, figure.name)
            section.images.append((figure.name, figure.alt))
    section.tables.extend(spec.tables(inputs))
    return section


def _sets_section(result_sets: list[ResultSet]) -> Section:
    section = Section("Result sets")
    for rs in result_sets:
        env = rs.meta.get("environment") or {}
        suite = (rs.meta.get("suite") or {}).get("name", "?")
        devices = ", ".join(
            f"{name}: {info.get('name', info.get('reason', ''))}"
            for name, info in (env.get("devices") or {}).items()
        )
        git = env.get("git") or {}
        commit = (git.get("commit") or "")[:10] + (" (dirty)" if git.get("dirty") else "")
        section.paragraphs.append(
            f"**{rs.label}** ({rs.path}): suite {suite}, {len(rs.rows)} runs, started "
            f"{rs.meta.get('started_at', '?')}; torch {env.get('torch', '?')}, "
            f"{env.get('torch_threads', '?')} threads, CPU {env.get('cpu', '?')} "
            f"({env.get('cpu_capability', '?')}); devices {devices or '?'}; commit "
            f"{commit or '?'}."
        )
        section.blocks.append(_set_summary(rs))
    return section


def _set_summary(rs: ResultSet) -> str:
    """The terminal summary ``benchkit run`` printed for this kind of result set."""
    suite_kind = rs.meta.get("kind", "convergence")
    if suite_kind == "profile":
        from benchkit.profiling import profile_summary

        return profile_summary(rs.rows)
    if suite_kind == "throughput" or "step_median_seconds" in rs.rows:
        from benchkit.summary import throughput_summary

        return throughput_summary(rs.rows)
    if suite_kind == "memory" or "method" in rs.rows:
        from benchkit.summary import memory_summary

        return memory_summary(rs.rows)
    from benchkit.summary import summary_table

    return summary_table(rs.rows)


def _markdown(sections: list[Section]) -> str:
    lines = ["# benchkit report", ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        for paragraph in section.paragraphs:
            lines += [paragraph, ""]
        for block in section.blocks:
            lines += ["```text", block, "```", ""]
        for table in section.tables:
            lines += [_md_table(table), ""]
        for name, alt in section.images:
            lines += [f"![{alt}]({name})", ""]
    return "\n".join(lines)


def _md_table(table: pd.DataFrame) -> str:
    head = [str(c) for c in table.columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in table.itertuples(index=False):
        cells = ["" if pd.isna(v) else str(v).replace("|", "\\|") for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _inline(text: str) -> str:
    escaped = html.escape(text)
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)


def _html(sections: list[Section], folder: Path) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>benchkit report</title>',
        "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;"
        "padding:0 1em;line-height:1.45}img{max-width:100%;border:1px solid #ddd}"
        "pre{background:#f6f6f6;padding:.8em;overflow-x:auto;font-size:12px}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25em .5em}"
        "</style></head><body>",
        "<h1>benchkit report</h1>",
    ]
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        parts += [f"<p>{_inline(p)}</p>" for p in section.paragraphs]
        parts += [f"<pre>{html.escape(b)}</pre>" for b in section.blocks]
        parts += [t.to_html(index=False, na_rep="", escape=True) for t in section.tables]
        for name, alt in section.images:
            data = base64.b64encode((folder / name).read_bytes()).decode("ascii")
            parts.append(
                f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'
                f"<figcaption>{html.escape(alt)}</figcaption></figure>"
            )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_report(result_sets: list[ResultSet], out: Path) -> Path:
    """Write the report folder ``out``; returns the path of ``report.md`` (``report.html``
    lies beside it).

    :raises BenchkitError: ``out`` is a file, or a result set cannot be reported.
    """
    if out.exists() and not out.is_dir():
        raise BenchkitError(f"--out {out} is a file, not a folder")
    out.mkdir(parents=True, exist_ok=True)

    def save(fig: Figure, name: str) -> None:
        fig.savefig(out / name, format="png")

    sections = build_sections(result_sets, save)
    index = out / "report.md"
    index.write_text(_markdown(sections), encoding="utf-8")
    (out / "report.html").write_text(_html(sections, out), encoding="utf-8")
    return index
