"""Reference figures: what a source printed, side by side with what benchkit measured.

A suite may list the figures a source document printed, so a run says whether benchkit
reproduces them::

    [[references]]
    id = "sine-loss"                # optional; default ref1, ref2, ...
    source = "sine MLP script (RTX 3050 laptop GPU, unseeded)"
    where = { model = "sine_mlp", dataset = "sine", precision = "fp32" }
    metric = "loss"                 # see below
    epochs = [0, 100, 200]
    values = [0.505204, 0.000351, 0.000070]
    tolerance = "seeds"             # seeds, rel=X, abs=X, digits=N or decimals=N
    printed = "decimals=6"          # optional: how the source printed its values
    note = "the source set no seed"  # optional, shown with the rows

``metric`` is read from the result set's tables:

- with ``epochs``: a curve series of ``curves.csv`` (``loss``, ``valid_loss``), or a column of
  ``trace.csv`` (``prediction``, ``weight_after`` ...; the cases need ``trace = true``);
- with ``steps``: a series of ``series.csv`` (e.g. ``valid_predicted``), at those steps;
- with neither: a column of ``results.csv`` (``weight``, ``test_loss`` ...); ``values`` then
  holds one number.

``tolerance`` says what agreeing means:

- ``seeds``: the source value lies within the spread (lowest to highest) of the measured
  seeds; for sources that set no seed, compared with at least two seeds (use five or more).
  With ``printed``, the spread's ends are first rounded as the source rounded its figures: a
  value printed as 3.0428 stands for anything from 3.04275 to 3.04285;
- ``rel=X`` / ``abs=X``: every measured seed is within ``X`` of the source value, relative
  to it or absolute;
- ``digits=N`` / ``decimals=N``: every measured seed, rounded to ``N`` significant digits
  (or ``N`` decimals), prints as the source value does: agreement to the printed digits.

:func:`evaluate_references` gives one row of ``references.csv`` per reference, point
(epoch or step), precision and device: the source value, the value of each seed, their median
and spread, and a verdict, ``reproduced``, ``outside`` or ``not measured``, with a one-line
reason. :func:`references_table` formats them for the terminal.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

#: Filter columns a reference's ``where`` may use (those a claim may use).
FILTER_COLUMNS = ("model", "dataset", "precision", "device", "seed", "variant")
REFERENCE_KEYS = {
    "id",
    "source",
    "where",
    "metric",
    "epochs",
    "steps",
    "values",
    "tolerance",
    "printed",
    "note",
}
#: Curve series a reference with ``epochs`` reads from ``curves.csv``; any other metric with
#: ``epochs`` is a ``trace.csv`` column.
CURVE_SERIES = ("loss", "valid_loss")
TOLERANCE_KINDS = ("seeds", "rel", "abs", "digits", "decimals")
VERDICTS = ("reproduced", "outside", "not measured")
REFERENCE_COLUMNS = [
    "reference",
    "source",
    "model",
    "dataset",
    "precision",
    "device",
    "metric",
    "epoch",
    "step",
    "source_value",
    "seeds",
    "per_seed",
    "median",
    "low",
    "high",
    "tolerance",
    "printed",
    "verdict",
    "reason",
    "note",
]


@dataclass(frozen=True)
class Tolerance:
    """How close a measured value must be to the source's: ``kind`` is one of
    :data:`TOLERANCE_KINDS`; ``amount`` the relative or absolute distance, or the number of
    digits or decimals."""

    kind: str
    amount: float = 0.0

    @property
    def text(self) -> str:
        """As a suite writes it: ``seeds``, ``rel=0.01``, ``decimals=6``."""
        if self.kind == "seeds":
            return "seeds"
        if self.kind in ("digits", "decimals"):
            return f"{self.kind}={int(self.amount)}"
        return f"{self.kind}={self.amount:g}"

    def describe(self) -> str:
        """In words, for the terminal table."""
        if self.kind == "seeds":
            return "within the spread of the seeds"
        return f"every seed {self.agreement()}"

    def agreement(self) -> str:
        """What a point tolerance asks of a value: ``to 6 decimals``."""
        return {
            "seeds": "within the spread of the seeds",
            "rel": f"within {self.amount:g} of the source, relative",
            "abs": f"within {self.amount:g} of the source",
            "digits": f"to {int(self.amount)} significant digits",
            "decimals": f"to {int(self.amount)} decimals",
        }[self.kind]

    def format(self, value: float) -> str:
        """``value`` as this tolerance reads it (the printed digits, or 6 significant)."""
        if math.isnan(value):
            return "-"
        if self.kind == "decimals":
            return f"{value:.{int(self.amount)}f}"
        if self.kind == "digits":
            return f"{value:.{int(self.amount)}g}"
        return f"{value:.6g}"

    def rounded(self, value: float) -> float:
        """``value`` as a source printing to these digits or decimals would print it."""
        if self.kind == "decimals":
            return float(f"{value:.{int(self.amount)}f}")
        if self.kind == "digits":
            return float(f"{value:.{int(self.amount) - 1}e}")
        return value

    def agrees(self, source: float, measured: float) -> bool:
        """Whether one measured value agrees with the source's (point tolerances)."""
        if self.kind == "rel":
            return abs(measured - source) <= self.amount * abs(source)
        if self.kind == "abs":
            return abs(measured - source) <= self.amount
        if self.kind == "digits":
            places = int(self.amount) - 1
            return f"{measured:.{places}e}" == f"{source:.{places}e}"
        if self.kind == "decimals":
            return self.format(measured) == self.format(source)
        raise ValueError("the seeds tolerance compares a spread, not one value")


def parse_tolerance(text: Any) -> Tolerance:
    """``"seeds"``, ``"rel=0.01"``, ``"abs=1e-6"``, ``"digits=7"`` or ``"decimals=6"``.

    :raises ValueError: anything else, with what to write instead.
    """
    usage = "write seeds, rel=X, abs=X, digits=N or decimals=N"
    if not isinstance(text, str):
        raise ValueError(f"expected a string, got {text!r}; {usage}")
    if text.strip() == "seeds":
        return Tolerance("seeds")
    kind, eq, amount = (part.strip() for part in text.partition("="))
    if not eq or kind not in TOLERANCE_KINDS[1:]:
        raise ValueError(f"unknown tolerance {text!r}; {usage}")
    try:
        number = float(amount)
    except ValueError:
        raise ValueError(f"tolerance {text!r}: {amount!r} is not a number") from None
    if kind in ("digits", "decimals"):
        if not number.is_integer() or number < (1 if kind == "digits" else 0) or number > 17:
            raise ValueError(f"tolerance {text!r}: {kind} is a whole number from 1 (0) to 17")
    elif not math.isfinite(number) or number < 0:
        raise ValueError(f"tolerance {text!r}: the distance is a number >= 0")
    return Tolerance(kind, number)


@dataclass(frozen=True)
class Reference:
    """A parsed ``[[references]]`` table: what ``source`` printed for ``metric``.

    ``epochs`` or ``steps`` (at most one) hold where each of ``values`` was printed; with
    neither, ``values`` holds the one value of a ``results.csv`` column."""

    id: str
    source: str
    metric: str
    values: tuple[float, ...]
    tolerance: Tolerance
    where: dict[str, Any] = field(default_factory=dict)
    epochs: tuple[int, ...] = ()
    steps: tuple[int, ...] = ()
    note: str = ""
    printed: Tolerance | None = None  # digits or decimals the source printed

    @property
    def display(self) -> Tolerance:
        """How values are shown and, for ``seeds``, rounded: as the source printed them."""
        if self.printed is not None:
            return self.printed
        return self.tolerance

    @property
    def table(self) -> str:
        """The result-set table the metric is read from: ``curves``, ``trace``, ``series``
        or ``results``."""
        if self.epochs:
            return "curves" if self.metric in CURVE_SERIES else "trace"
        return "series" if self.steps else "results"

    def points(self) -> list[tuple[int | None, int | None, float]]:
        """``(epoch, step, source value)`` per printed value."""
        if self.epochs:
            return [(e, None, v) for e, v in zip(self.epochs, self.values, strict=True)]
        if self.steps:
            return [(None, s, v) for s, v in zip(self.steps, self.values, strict=True)]
        return [(None, None, self.values[0])]


def _matches(case: Any, where: dict[str, Any]) -> bool:
    for column, wanted in where.items():
        values = wanted if isinstance(wanted, list) else [wanted]
        if getattr(case, column) not in values:
            return False
    return True


def _indices(raw: Any, key: str, fail: Callable[[str, str], Exception]) -> tuple[int, ...]:
    ok = isinstance(raw, list) and raw
    ok = ok and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in raw)
    if not ok:
        raise fail(key, f"expected a non-empty array of whole numbers >= 0, got {raw!r}")
    return tuple(raw)


def parse_reference(
    raw: dict[str, Any],
    index: int,
    fail: Callable[[str, str], Exception],
    cases: Sequence[Any],
) -> Reference:
    """Validate one ``[[references]]`` table against the suite's cases;
    ``fail(key, message)`` builds the suite error.

    :param cases: the suite's cases (:class:`benchkit.suite.Case`): ``where`` must match at
        least one, their epochs must reach the reference's, and trace columns need traced
        cases.
    """
    where = f"references[{index}]"
    for key in raw:
        if key not in REFERENCE_KEYS:
            valid = ", ".join(sorted(REFERENCE_KEYS))
            raise fail(f"{where}.{key}", f"unknown key; valid keys: {valid}")
    for key in ("source", "metric", "values", "tolerance"):
        if key not in raw:
            raise fail(
                f"{where}.{key}",
                "missing (a reference needs source, metric, values and tolerance)",
            )
    for key in ("id", "source", "metric", "note"):
        if key in raw and (not isinstance(raw[key], str) or not raw[key].strip()):
            raise fail(f"{where}.{key}", f"expected a non-empty string, got {raw[key]!r}")
    filters = raw.get("where", {})
    if not isinstance(filters, dict):
        raise fail(f"{where}.where", f"expected a table of filters, got {filters!r}")
    for column, value in filters.items():
        if column not in FILTER_COLUMNS:
            raise fail(
                f"{where}.where.{column}",
                f"not a filter column; valid: {', '.join(FILTER_COLUMNS)}",
            )
        if not isinstance(value, str | int | list) or isinstance(value, bool):
            raise fail(f"{where}.where.{column}", f"expected a value or an array, got {value!r}")
    values = raw["values"]
    if (
        not isinstance(values, list)
        or not values
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    ):
        raise fail(f"{where}.values", f"expected a non-empty array of numbers, got {values!r}")
    if "epochs" in raw and "steps" in raw:
        raise fail(f"{where}.steps", "give epochs (curves, trace) or steps (series), not both")
    epochs = _indices(raw["epochs"], f"{where}.epochs", fail) if "epochs" in raw else ()
    steps = _indices(raw["steps"], f"{where}.steps", fail) if "steps" in raw else ()
    at = epochs or steps
    if at and len(at) != len(values):
        name = "epochs" if epochs else "steps"
        raise fail(
            f"{where}.values",
            f"{len(values)} values for {len(at)} {name}: give one value per {name[:-1]}",
        )
    if not at and len(values) != 1:
        raise fail(
            f"{where}.values",
            f"{len(values)} values but no epochs or steps: a results.csv column has one value "
            "per run",
        )
    try:
        tolerance = parse_tolerance(raw["tolerance"])
    except ValueError as exc:
        raise fail(f"{where}.tolerance", str(exc)) from None
    printed = None
    if "printed" in raw:
        try:
            printed = parse_tolerance(raw["printed"])
        except ValueError as exc:
            raise fail(f"{where}.printed", str(exc)) from None
        if printed.kind not in ("digits", "decimals"):
            raise fail(f"{where}.printed", "write digits=N or decimals=N: how the source printed")
    matched = [c for c in cases if _matches(c, filters)]
    if not matched:
        shown = ", ".join(f"{k}={v}" for k, v in filters.items()) or "(none)"
        raise fail(f"{where}.where", f"matches no case of the suite (filters: {shown})")
    reference = Reference(
        id=raw.get("id", f"ref{index + 1}"),
        source=raw["source"],
        metric=raw["metric"],
        values=tuple(float(v) for v in values),
        tolerance=tolerance,
        where=dict(filters),
        epochs=epochs,
        steps=steps,
        note=raw.get("note", ""),
        printed=printed,
    )
    if epochs:
        short = min(c.recipe.epochs for c in matched)
        if max(epochs) >= short:
            raise fail(
                f"{where}.epochs",
                f"epoch {max(epochs)} is past the last epoch of a matching case "
                f"({short} epochs, numbered from 0)",
            )
    if reference.table == "trace" and not all(c.trace for c in matched):
        raise fail(
            f"{where}.metric",
            f"{reference.metric!r} at epochs is a trace.csv column: set trace = true on the "
            f"cases it matches, or use one of {', '.join(CURVE_SERIES)}",
        )
    if tolerance.kind == "seeds":
        for group in _groups(matched):
            if len({c.seed for c in group}) < 2:
                raise fail(
                    f"{where}.tolerance",
                    "'seeds' compares with the spread of the seeds: the cases it matches need "
                    "at least two seeds (five or more say more)",
                )
    return reference


def _groups(cases: Sequence[Any]) -> list[list[Any]]:
    by: dict[tuple[str, str], list[Any]] = {}
    for case in cases:
        by.setdefault((case.precision, case.device), []).append(case)
    return list(by.values())


def _select(frame: pd.DataFrame, filters: dict[str, Any]) -> pd.DataFrame:
    mask = pd.Series(True, index=frame.index)
    for column, value in filters.items():
        values = value if isinstance(value, list) else [value]
        if column == "seed":
            mask &= pd.to_numeric(frame[column], errors="coerce").isin(values)
        else:
            mask &= frame[column].astype(str).isin([str(v) for v in values])
    return frame[mask]


def _per_run(
    reference: Reference,
    epoch: int | None,
    step: int | None,
    runs: pd.DataFrame,
    tables: dict[str, pd.DataFrame | None],
) -> dict[str, float]:
    """The value of each run (by run_id) at one point; runs without one are left out."""
    name = reference.table
    if name == "results":
        if reference.metric not in runs.columns:
            return {}
        values = pd.to_numeric(runs[reference.metric], errors="coerce")
        return {r: float(v) for r, v in zip(runs["run_id"], values, strict=True) if pd.notna(v)}
    table = tables[name]
    if table is None or table.empty:
        return {}
    mine = table[table["run_id"].isin(runs["run_id"])]
    if name == "series":
        if not {"series", "step", "value"} <= set(mine.columns):
            return {}
        mine = mine[(mine["series"] == reference.metric) & (mine["step"] == step)]
        column = "value"
    else:
        if reference.metric not in mine.columns or "epoch" not in mine.columns:
            return {}
        mine = mine[mine["epoch"] == epoch]
        column = reference.metric
    values = pd.to_numeric(mine[column], errors="coerce")
    return {r: float(v) for r, v in zip(mine["run_id"], values, strict=True) if pd.notna(v)}


def _seed_of(runs: pd.DataFrame) -> dict[str, int]:
    seeds = pd.to_numeric(runs["seed"], errors="coerce")
    return {r: int(s) for r, s in zip(runs["run_id"], seeds, strict=True) if pd.notna(s)}


def _judge(
    reference: Reference, source: float, by_seed: dict[int, float], notes: list[str]
) -> tuple[str, str]:
    """Verdict and reason for one point with at least one measured seed; ``notes`` (runs
    left out) end the reason."""
    tolerance = reference.tolerance
    fmt = reference.display.format
    suffix = f" ({', '.join(notes)})" if notes else ""
    values = list(by_seed.values())
    low, high = min(values), max(values)
    if tolerance.kind == "seeds":
        if len(values) < 2:
            return "not measured", f"1 seed has a value: a spread needs 2 or more{suffix}"
        spread = f"{len(values)} seeds {fmt(low)} … {fmt(high)}"
        if reference.printed is not None:
            low, high = reference.printed.rounded(low), reference.printed.rounded(high)
            spread += f", read to {reference.printed.text.replace('=', ' ')}"
        if low <= source <= high:
            return "reproduced", f"within the spread of {spread}{suffix}"
        side, nearest = ("below", low) if source < low else ("above", high)
        gap = abs(source - nearest) / abs(nearest) * 100 if nearest else math.inf
        return (
            "outside",
            f"source {fmt(source)} is {side} the spread of {spread} "
            f"({gap:.2g} % from the nearest){suffix}",
        )
    off = {s: v for s, v in by_seed.items() if not tolerance.agrees(source, v)}
    if not off:
        every = "the seed agrees" if len(values) == 1 else f"all {len(values)} seeds agree"
        return "reproduced", f"{every} {tolerance.agreement()}{suffix}"
    worst = max(off, key=lambda s: abs(off[s] - source))
    return (
        "outside",
        f"{len(off)} of {len(values)} seeds disagree; seed {worst}: {fmt(off[worst])} against "
        f"the source's {fmt(source)} ({tolerance.text}; difference "
        f"{off[worst] - source:+.3g}){suffix}",
    )


def evaluate_references(
    references: Sequence[Reference],
    results_frame: pd.DataFrame,
    curves_frame: pd.DataFrame | None,
    *,
    trace: pd.DataFrame | None = None,
    series: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One ``references.csv`` row per reference, point, precision and device.

    :param results_frame: ``results.csv`` rows (the runs, their status and metrics).
    :param curves_frame: ``curves.csv`` rows (``run_id, epoch, loss, valid_loss``).
    :param trace: ``trace.csv`` rows, for references to trace columns.
    :param series: ``series.csv`` rows, for references with ``steps``.
    """
    tables = {"curves": curves_frame, "trace": trace, "series": series}
    rows = []
    for reference in references:
        base = {
            "reference": reference.id,
            "source": reference.source,
            "metric": reference.metric,
            "tolerance": reference.tolerance.text,
            "printed": reference.printed.text if reference.printed else "",
            "note": reference.note,
        }
        matched = _select(results_frame, reference.where) if len(results_frame) else results_frame
        if matched.empty:
            for epoch, step, value in reference.points():
                rows.append(
                    {
                        **base,
                        "epoch": epoch,
                        "step": step,
                        "source_value": value,
                        "seeds": 0,
                        "verdict": "not measured",
                        "reason": "no run of this result set matches the reference",
                    }
                )
            continue
        for (precision, device), group in matched.groupby(["precision", "device"], sort=False):
            usable = group[group["status"].isin(["ok", "diverged"])]
            left_out = [
                f"{int((group['status'] == status).sum())} {status}"
                for status in ("skipped", "error")
                if (group["status"] == status).any()
            ]
            seeds = _seed_of(usable)
            where = {
                "model": "/".join(dict.fromkeys(group["model"].astype(str))),
                "dataset": "/".join(dict.fromkeys(group["dataset"].astype(str))),
                "precision": precision,
                "device": device,
            }
            for epoch, step, value in reference.points():
                per_run = _per_run(reference, epoch, step, usable, tables)
                by_seed = {seeds[r]: v for r, v in per_run.items() if r in seeds}
                notes = list(left_out)
                absent = len(usable) - len(by_seed)
                if by_seed and absent:
                    notes.append(f"{absent} run{'s' * (absent != 1)} without a value")
                if by_seed:
                    verdict, reason = _judge(reference, value, by_seed, notes)
                elif usable.empty:
                    verdict, reason = "not measured", f"no usable run ({', '.join(notes)})"
                else:
                    where_from = (
                        "results.csv"
                        if reference.table == "results"
                        else (f"{reference.table}.csv")
                    )
                    verdict = "not measured"
                    reason = f"{reference.metric!r} is not recorded in {where_from} for these runs"
                    reason += f" ({', '.join(notes)})" if notes else ""
                ordered = sorted(by_seed)
                measured = [by_seed[s] for s in ordered]
                rows.append(
                    {
                        **base,
                        **where,
                        "epoch": epoch,
                        "step": step,
                        "source_value": value,
                        "seeds": len(measured),
                        "per_seed": " ".join(f"{s}:{by_seed[s]:.10g}" for s in ordered),
                        "median": float(pd.Series(measured).median()) if measured else math.nan,
                        "low": min(measured) if measured else math.nan,
                        "high": max(measured) if measured else math.nan,
                        "verdict": verdict,
                        "reason": reason,
                    }
                )
    frame = pd.DataFrame(rows, columns=REFERENCE_COLUMNS)
    for column in ("epoch", "step", "seeds"):
        frame[column] = frame[column].astype("Int64")
    return frame


def _at(row: pd.Series) -> str:
    if pd.notna(row["epoch"]):
        return f"epoch {int(row['epoch'])}"
    if pd.notna(row["step"]):
        return f"step {int(row['step'])}"
    return "end"


def references_table(frame: pd.DataFrame) -> str:
    """``references.csv`` for the terminal: a block per reference, precision and device with
    the source's value beside benchkit's (median and spread of the seeds), and the reason of
    every row that is not reproduced; a count of the verdicts last."""
    if frame.empty:
        return "no references"
    lines = []
    for (reference, precision, device), group in frame.groupby(
        ["reference", "precision", "device"], sort=False, dropna=False
    ):
        first = group.iloc[0]
        tolerance = parse_tolerance(first["tolerance"])
        printed = first.get("printed")
        shown = parse_tolerance(printed) if isinstance(printed, str) and printed else tolerance
        on = " ".join(str(x) for x in (precision, device) if isinstance(x, str) and x)
        lines.append(
            f"{reference}: {first['source']} — {first['metric']}"
            + (f" on {first['model']}/{first['dataset']} {on}" if on else "")
            + f"; {tolerance.describe()}"
        )
        if isinstance(first["note"], str) and first["note"]:
            lines.append(f"  note: {first['note']}")
        table = pd.DataFrame(
            {
                "at": [_at(r) for _, r in group.iterrows()],
                "source": [shown.format(float(v)) for v in group["source_value"]],
                "benchkit": [shown.format(float(v)) for v in group["median"]],
                "spread": [
                    "" if pd.isna(lo) or lo == hi else f"{shown.format(lo)} … {shown.format(hi)}"
                    for lo, hi in zip(group["low"], group["high"], strict=True)
                ],
                "seeds": group["seeds"].fillna(0).astype(int).tolist(),
                "verdict": group["verdict"].tolist(),
            }
        )
        lines.extend("  " + line for line in table.to_string(index=False).splitlines())
        for _, row in group[group["verdict"] != "reproduced"].iterrows():
            lines.append(f"  {row['verdict']} at {_at(row)}: {row['reason']}")
    counts = frame["verdict"].value_counts()
    summary = ", ".join(f"{int(counts[v])} {v}" for v in VERDICTS if v in counts)
    lines.append(f"references: {summary} (of {len(frame)} figures)")
    return "\n".join(lines)
