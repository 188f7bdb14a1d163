"""``benchkit report``: a self-contained report folder from one or more result sets.

The folder holds ``report.md`` (Markdown, images beside it as PNG files), the PNG files, and
``report.html``, a single page with the same content and the images embedded, so it can be
mailed or attached to a CI run as one file.

Sections: the result sets and their environments; a summary table per set; training loss
curves per workload; the rollout of workloads that record one (``series.csv`` series
``NAME_actual``/``NAME_predicted``, or a ``rollout.csv`` with ``run_id, step, actual,
predicted``); epochs to the target per precision; throughput CPU vs GPU; peak memory; the
roofline of throughput sets (:mod:`benchkit.roofline_plot`); and the claim verdicts of sets
that have a ``claims.csv``. A figure that cannot be drawn is left out
with a line saying why.
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

_CLAIM_COLUMNS = [
    "claim",
    "criterion",
    "device",
    "expect",
    "a_value",
    "b_value",
    "verdict",
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


def build_sections(
    result_sets: list[ResultSet], save: Callable[[Figure, str], None]
) -> list[Section]:
    """Draw every figure (``save(figure, file_name)`` writes it) and lay out the report.

    :raises BenchkitError: no result sets, or one that is not from ``benchkit run``.
    """
    if not result_sets:
        raise BenchkitError("report: give at least one result set")
    for rs in result_sets:
        if rs.kind != "benchkit":
            raise BenchkitError(f"{rs.path}: a report needs result sets from `benchkit run`")
    results, curves, extras = _combined(result_sets)
    sections = [_sets_section(result_sets)]

    def figure(section: Section, fig: Figure | None, name: str, alt: str, why: str) -> None:
        if fig is None:
            section.paragraphs.append(f"Not drawn: {why}.")
            return
        save(fig, name)
        section.images.append((name, alt))

    loss = Section("Loss curves")
    pairs = plots.workloads(results)
    if curves is None:
        loss.paragraphs.append(
            "Not drawn: none of the result sets has curves.csv (committed baselines leave it "
            "out to stay small; run the suite to get one)."
        )
    else:
        for model, dataset in pairs:
            figure(
                loss,
                plots.loss_curves(results, curves, model, dataset),
                f"loss-{_slug(model, dataset)}.png",
                f"{model} on {dataset}: loss curves",
                f"{model} on {dataset} has no finished run with a curve",
            )
    sections.append(loss)

    roll = Section("Rollout: actual vs predicted")
    rollout_rows = extras.get("rollout")
    if rollout_rows is None or rollout_rows.empty:
        roll.paragraphs.append(
            "Not drawn: no result set records rollout predictions (series.csv with "
            "rollout_actual and rollout_predicted, or rollout.csv); the report recomputes "
            "nothing."
        )
    else:
        wanted = results[results["run_id"].isin(rollout_rows["run_id"])]
        for model, dataset in plots.workloads(wanted):
            figure(
                roll,
                plots.rollout(results, rollout_rows, model, dataset),
                f"rollout-{_slug(model, dataset)}.png",
                f"{model} on {dataset}: rollout, actual vs predicted",
                f"no rollout rows for {model} on {dataset}",
            )
    sections.append(roll)

    for title, draw, name, why in (
        (
            "Convergence epochs by precision",
            plots.convergence_epochs,
            "convergence.png",
            "no workload with a target loss finished",
        ),
        (
            "Throughput: CPU vs GPU",
            plots.throughput,
            "throughput.png",
            "no finished run recorded a throughput",
        ),
        (
            "Peak memory",
            plots.peak_memory,
            "memory.png",
            "no finished run recorded its peak memory",
        ),
    ):
        section = Section(title)
        figure(section, draw(results), name, title, why)
        sections.append(section)

    if "arithmetic_intensity" in results:
        from benchkit.roofline_plot import roofline

        section = Section("Roofline")
        section.paragraphs.append(
            "Each measured step against its device's roofs: the peak FLOP/s of its dtype and "
            "the memory bandwidth times its arithmetic intensity (benchkit/roofline.py says how "
            "bytes are estimated). A point far below both roofs is bound by overhead: per-op "
            "launch and framework cost, not arithmetic or memory."
        )
        figure(
            section,
            roofline(results),
            "roofline.png",
            "roofline per device",
            "no finished throughput row has FLOPs, bytes and peaks",
        )
        sections.append(section)

    claims = extras.get("claims")
    if claims is not None and not claims.empty:
        section = Section("Claim verdicts")
        figure(
            section,
            plots.claims(claims),
            "claims.png",
            "claim verdicts",
            "claims.csv has no verdict column",
        )
        shown = [c for c in _CLAIM_COLUMNS if c in claims.columns]
        section.tables.append(claims[shown] if shown else claims)
        sections.append(section)
    return sections


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
