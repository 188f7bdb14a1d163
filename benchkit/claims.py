"""Claims: statements a suite tests against its own measurements.

A suite states a claim, which metric it is about, the two sides being compared (filters over
the result table) and the relation it expects between them::

    [[claims]]
    text = "If torch.float32 is used, it will take longer to converge ..."
    source = "single-neuron float16 experiment"
    where = { model = "single_neuron", dataset = "single_point" }
    a = { precision = "fp32" }
    b = { precision = "fp16" }
    metric = "epochs_to"          # epochs to each criterion of the cases; or a results column
    expect = "a > b"              # <, <=, >, >=
    aggregate = "median"          # over seeds: median, mean, min, max, "every" (seed by
                                  # seed), or "test" (a one-sided rank test over the seeds)

After the runs, each claim is evaluated per criterion (for ``epochs_to``) and per device, giving
one row of ``claims.csv``: both sides' figures, a verdict (``holds``, ``does not hold``,
``not measured``) and a one-line explanation.

``aggregate = "test"`` asks whether the difference is more than chance. It runs a one-sided
Mann-Whitney U test of the seeds of ``a`` against those of ``b`` in the direction ``expect``
states (which must be ``<`` or ``>``), at level ``alpha`` (default 0.05), with at least
``min_seeds`` seeds a side (default 10; fewer make the verdict inconclusive). The verdict is
``supported`` (p < alpha), ``refuted`` (the opposite direction has p < alpha) or
``inconclusive``, with the p-value and the effect: the difference of the medians with a seeded
95 % bootstrap interval (``claims.csv`` columns ``p_value``, ``effect``, ``effect_low``,
``effect_high``, ``alpha``).

For ``epochs_to``, a run that never meets a criterion (or diverged first) counts as taking
longer than any run that does (in a test, as infinitely many epochs); if neither side meets it,
the claim is not measured there.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from benchkit.criteria import parse_criterion
from benchkit.stats import bootstrap_median_difference, mann_whitney_u

VERDICTS = ("holds", "does not hold", "supported", "refuted", "inconclusive", "not measured")
AGGREGATES = ("median", "mean", "min", "max", "every", "test")
#: A test claim's defaults: the level of the test, and the fewest seeds a side it decides on.
DEFAULT_ALPHA = 0.05
DEFAULT_MIN_SEEDS = 10
RELATIONS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
FILTER_COLUMNS = ("model", "dataset", "precision", "device", "seed", "variant", "mode")
CLAIM_KEYS = {
    "id",
    "text",
    "source",
    "where",
    "a",
    "b",
    "metric",
    "expect",
    "aggregate",
    "criteria",
    "alpha",
    "min_seeds",
}
CLAIM_COLUMNS = [
    "claim",
    "text",
    "source",
    "metric",
    "criterion",
    "device",
    "expect",
    "a",
    "a_value",
    "a_runs",
    "b",
    "b_value",
    "b_runs",
    "verdict",
    "explanation",
]
#: Columns ``claims.csv`` adds after :data:`CLAIM_COLUMNS`, filled for ``aggregate = "test"``.
TEST_COLUMNS = ["p_value", "effect", "effect_low", "effect_high", "alpha"]


@dataclass(frozen=True)
class Claim:
    """A parsed claim. ``a_filter``/``b_filter`` include the shared ``where`` filter."""

    id: str
    text: str
    source: str
    metric: str
    relation: str
    aggregate: str
    a_filter: dict[str, Any] = field(default_factory=dict)
    b_filter: dict[str, Any] = field(default_factory=dict)
    criteria: tuple[str, ...] = ()  # restrict epochs_to to these; empty = every criterion
    alpha: float = DEFAULT_ALPHA  # aggregate = "test": the level of the one-sided test
    min_seeds: int = DEFAULT_MIN_SEEDS  # aggregate = "test": fewest seeds a side

    def label(self, side: str) -> str:
        """A side's own filter as text (``precision=fp32``)."""
        own = self.a_filter if side == "a" else self.b_filter
        other = self.b_filter if side == "a" else self.a_filter
        diff = {k: v for k, v in own.items() if other.get(k) != v}
        return " ".join(f"{k}={_fmt_filter(v)}" for k, v in diff.items()) or side


def _fmt_filter(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def parse_claim(
    raw: dict[str, Any], index: int, fail: Callable[[str, str], Exception], criteria: set[str]
) -> Claim:
    """Validate one ``[[claims]]`` table; ``fail(key, message)`` builds the suite error."""
    where = f"claims[{index}]"
    for key in raw:
        if key not in CLAIM_KEYS:
            raise fail(
                f"{where}.{key}", f"unknown key; valid keys: {', '.join(sorted(CLAIM_KEYS))}"
            )
    for key in ("text", "a", "b", "metric", "expect"):
        if key not in raw:
            raise fail(f"{where}.{key}", "missing (a claim needs text, a, b, metric, expect)")
    filters = {}
    for key in ("where", "a", "b"):
        table = raw.get(key, {})
        if not isinstance(table, dict):
            raise fail(f"{where}.{key}", f"expected a table of filters, got {table!r}")
        for column, value in table.items():
            if column not in FILTER_COLUMNS:
                raise fail(
                    f"{where}.{key}.{column}",
                    f"not a filter column; valid: {', '.join(FILTER_COLUMNS)}",
                )
            if not isinstance(value, str | int | list) or isinstance(value, bool):
                raise fail(
                    f"{where}.{key}.{column}", f"expected a value or an array, got {value!r}"
                )
        filters[key] = table
    expect = raw["expect"]
    parts = expect.split() if isinstance(expect, str) else []
    if len(parts) != 3 or parts[0] != "a" or parts[2] != "b" or parts[1] not in RELATIONS:
        raise fail(
            f"{where}.expect",
            f"expected 'a OP b' with OP one of {', '.join(RELATIONS)}, got {expect!r}",
        )
    aggregate = raw.get("aggregate", "median")
    if aggregate not in AGGREGATES:
        raise fail(f"{where}.aggregate", f"unknown {aggregate!r}; valid: {', '.join(AGGREGATES)}")
    metric = raw["metric"]
    if not isinstance(metric, str):
        raise fail(f"{where}.metric", f"expected a string, got {metric!r}")
    wanted = raw.get("criteria", [])
    if not isinstance(wanted, list) or not all(isinstance(c, str) for c in wanted):
        raise fail(f"{where}.criteria", "expected an array of criteria strings")
    try:  # compare canonical spellings: "loss<=1e-6" is "loss <= 1e-06"
        wanted = [parse_criterion(c).text for c in wanted]
    except ValueError as exc:
        raise fail(f"{where}.criteria", str(exc)) from None
    unknown = [c for c in wanted if c not in criteria]
    if unknown:
        raise fail(
            f"{where}.criteria",
            f"{', '.join(unknown)} is not a criterion of the suite's "
            f"cases; they have: {', '.join(sorted(criteria)) or 'none'}",
        )
    for key in ("text", "source", "id"):
        if key in raw and not isinstance(raw[key], str):
            raise fail(f"{where}.{key}", f"expected a string, got {raw[key]!r}")
    alpha, min_seeds = _test_settings(raw, where, aggregate, parts[1], fail)
    return Claim(
        id=raw.get("id", f"claim{index + 1}"),
        text=raw["text"],
        source=raw.get("source", ""),
        metric=metric,
        relation=parts[1],
        aggregate=aggregate,
        a_filter={**filters["where"], **filters["a"]},
        b_filter={**filters["where"], **filters["b"]},
        criteria=tuple(wanted),
        alpha=alpha,
        min_seeds=min_seeds,
    )


def _test_settings(
    raw: dict[str, Any],
    where: str,
    aggregate: str,
    relation: str,
    fail: Callable[[str, str], Exception],
) -> tuple[float, int]:
    """``alpha`` and ``min_seeds`` of a test claim, checked; other claims may not set them."""
    if aggregate != "test":
        for key in ("alpha", "min_seeds"):
            if key in raw:
                raise fail(f"{where}.{key}", 'applies only to aggregate = "test"')
        return DEFAULT_ALPHA, DEFAULT_MIN_SEEDS
    if relation not in ("<", ">"):
        raise fail(
            f"{where}.expect",
            f"a test supports 'a < b' or 'a > b', not 'a {relation} b': no test can show that "
            "two sides are equal; state the direction, or use another aggregate",
        )
    alpha = raw.get("alpha", DEFAULT_ALPHA)
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 0.5:
        raise fail(f"{where}.alpha", f"expected a level between 0 and 0.5, got {alpha!r}")
    min_seeds = raw.get("min_seeds", DEFAULT_MIN_SEEDS)
    if isinstance(min_seeds, bool) or not isinstance(min_seeds, int) or min_seeds < 2:
        raise fail(f"{where}.min_seeds", f"expected an integer of at least 2, got {min_seeds!r}")
    return float(alpha), min_seeds


def _select(frame: pd.DataFrame, filters: dict[str, Any]) -> pd.DataFrame:
    mask = pd.Series(True, index=frame.index)
    for column, value in filters.items():
        values = value if isinstance(value, list) else [value]
        mask &= frame[column].isin(values)
    return frame[mask]


def _aggregate(values: list[float], how: str) -> float:
    if how == "min":
        return min(values)
    if how == "max":
        return max(values)
    if how == "mean":
        return sum(values) / len(values)
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    low, high = ordered[mid - 1], ordered[mid]
    return low if low == high else (low + high) / 2


def _fmt(value: float, metric: str) -> str:
    if math.isinf(value):
        return "never"
    if metric == "epochs_to":
        return f"epoch {value:g}"
    return f"{value:.4g}"


@dataclass
class _Side:
    label: str
    values: dict[int, float]  # by seed; inf = criterion never met
    runs: int
    note: str = ""


def _side(claim: Claim, side: str, rows: pd.DataFrame, metric_values: pd.Series) -> _Side:
    """Per-seed values of one side; skipped, errored and timed-out runs are left out and
    noted."""
    label = claim.label(side)
    usable = rows[rows["status"].isin(["ok", "diverged"])]
    notes = []
    for status in ("skipped", "error", "timeout"):
        n = int((rows["status"] == status).sum())
        if n:
            notes.append(f"{n} {status}")
    diverged = int((usable["status"] == "diverged").sum())
    if diverged:
        notes.append(f"{diverged} diverged")
    values = {}
    for idx, row in usable.iterrows():
        v = metric_values.get(idx, float("nan"))
        if claim.metric == "epochs_to":
            v = float("inf") if pd.isna(v) else float(v)
        elif pd.isna(v):
            continue
        values[int(row["seed"])] = float(v)
    return _Side(label, values, len(rows), ", ".join(notes))


def _verdict(claim: Claim, a: _Side, b: _Side) -> tuple[str, float, float, str, dict[str, float]]:
    """Verdict, both aggregated values, the explanation, and a test claim's statistics."""
    relate = RELATIONS[claim.relation]
    nan = float("nan")
    missing = [s.label for s in (a, b) if not s.values]
    if missing:
        notes = "; ".join(f"{s.label}: {s.note}" for s in (a, b) if s.note)
        why = f"no usable runs for {' and '.join(missing)}" + (f" ({notes})" if notes else "")
        return "not measured", nan, nan, why, {}
    pooled = "median" if claim.aggregate in ("every", "test") else claim.aggregate
    a_val = _aggregate(list(a.values.values()), pooled)
    b_val = _aggregate(list(b.values.values()), pooled)
    notes = "; ".join(f"{s.label}: {s.note}" for s in (a, b) if s.note)
    suffix = f" [{notes}]" if notes else ""
    if claim.aggregate == "every":
        seeds = sorted(set(a.values) & set(b.values))
        # a seed where neither side met the criterion says nothing about the relation
        decisive = [s for s in seeds if not (math.isinf(a.values[s]) and math.isinf(b.values[s]))]
        if not decisive:
            why = "the two sides share no seed" if not seeds else "no seed met it on either side"
            return "not measured", a_val, b_val, why + suffix, {}
        held = [s for s in decisive if relate(a.values[s], b.values[s])]
        verdict = "holds" if len(held) == len(decisive) else "does not hold"
        pairs = ", ".join(
            f"seed {s}: {_fmt(a.values[s], claim.metric)} vs {_fmt(b.values[s], claim.metric)}"
            for s in decisive
        )
        why = (
            f"{a.label} {claim.relation} {b.label} for {len(held)} of {len(decisive)} seeds "
            f"({pairs})"
        )
        skipped = len(seeds) - len(decisive)
        if skipped:
            why += f"; {skipped} seed(s) met it on neither side"
        return verdict, a_val, b_val, why + suffix, {}
    if claim.aggregate == "test":
        all_missed = all(math.isinf(v) for side in (a, b) for v in side.values.values())
        if claim.metric == "epochs_to" and all_missed:
            why = f"neither {a.label} nor {b.label} met it in any seed within the epochs run"
            return "not measured", a_val, b_val, why + suffix, {}
        verdict, why, columns = _tested(claim, a, b)
        return verdict, a_val, b_val, why + suffix, columns
    if claim.metric == "epochs_to" and math.isinf(a_val) and math.isinf(b_val):
        why = f"neither {a.label} nor {b.label} met it within the epochs run ({claim.aggregate})"
        return "not measured", a_val, b_val, why + suffix, {}
    verdict = "holds" if relate(a_val, b_val) else "does not hold"
    tie = " (a tie)" if a_val == b_val else ""
    why = (
        f"{a.label} {_fmt(a_val, claim.metric)} vs {b.label} {_fmt(b_val, claim.metric)} "
        f"({claim.aggregate} of {len(a.values)} and {len(b.values)} runs){tie}"
    )
    return verdict, a_val, b_val, why + suffix, {}


def _tested(claim: Claim, a: _Side, b: _Side) -> tuple[str, str, dict[str, float]]:
    """The verdict of a one-sided Mann-Whitney U test of ``a``'s seeds against ``b``'s; the
    explanation (test, p-value, level, seeds, the effect with its interval); and the
    ``claims.csv`` columns ``p_value``, ``effect``, ``effect_low``, ``effect_high``,
    ``alpha``."""
    forward = "greater" if claim.relation == ">" else "less"
    backward = "less" if forward == "greater" else "greater"
    xs, ys = list(a.values.values()), list(b.values.values())
    test = mann_whitney_u(xs, ys, forward)
    opposite = mann_whitney_u(xs, ys, backward)
    effect = bootstrap_median_difference(xs, ys)
    fewest = min(len(xs), len(ys))
    if fewest < claim.min_seeds:
        verdict = "inconclusive"
    elif test.p_value < claim.alpha:
        verdict = "supported"
    elif opposite.p_value < claim.alpha:
        verdict = "refuted"
    else:
        verdict = "inconclusive"
    flipped = {"<": ">", ">": "<"}[claim.relation]
    if verdict == "refuted":
        finding = (
            f"the opposite holds: {a.label} {flipped} {b.label}, p = {_p(opposite.p_value)} "
            f"< α = {claim.alpha:g}"
        )
    else:
        side = "<" if test.p_value < claim.alpha else "≥"
        finding = (
            f"{a.label} {claim.relation} {b.label}: p = {_p(test.p_value)} {side} "
            f"α = {claim.alpha:g}"
        )
        if verdict == "inconclusive":
            finding += f", the opposite {flipped}: p = {_p(opposite.p_value)}"
    unit = " epochs" if claim.metric == "epochs_to" else ""
    misses = ""
    never = {s.label: sum(math.isinf(v) for v in s.values.values()) for s in (a, b)}
    if claim.metric == "epochs_to" and any(never.values()):
        counts = ", ".join(f"{n} {label}" for label, n in never.items())
        misses = f"; never met (counted as infinite): {counts}"
    why = (
        f"{finding} (one-sided Mann-Whitney U = {test.u:g}, {test.method}, "
        f"{len(xs)} and {len(ys)} seeds); median difference {_signed(effect.difference)}{unit} "
        f"[{effect.confidence * 100:g} % bootstrap interval {_signed(effect.low)}, "
        f"{_signed(effect.high)}]{misses}"
    )
    if fewest < claim.min_seeds:
        why += f"; inconclusive by design: {fewest} seeds, the test needs {claim.min_seeds}"
    columns = {
        "p_value": test.p_value,
        "effect": effect.difference,
        "effect_low": effect.low,
        "effect_high": effect.high,
        "alpha": claim.alpha,
    }
    return verdict, why, columns


def _p(value: float) -> str:
    return f"{value:.2g}" if value < 0.001 else f"{value:.3f}"


def _signed(value: float) -> str:
    if math.isinf(value):
        return "+inf" if value > 0 else "-inf"
    return f"{value:+.4g}"


def evaluate_claims(
    claims: list[Claim], results: pd.DataFrame, criteria: pd.DataFrame
) -> pd.DataFrame:
    """One row per claim × criterion × device (``claims.csv``).

    :param results: ``results.csv`` rows.
    :param criteria: ``criteria.csv`` rows (``run_id, criterion, epoch``), for ``epochs_to``.
    """
    rows = []
    for claim in claims:
        if claim.metric == "epochs_to":
            if claim.criteria:
                names = list(claim.criteria)
            else:  # every criterion the claim's runs recorded, in the suite's order
                runs = set(_select(results, claim.a_filter)["run_id"]) | set(
                    _select(results, claim.b_filter)["run_id"]
                )
                mine = criteria[criteria["run_id"].isin(runs)] if len(criteria) else criteria
                names = list(pd.unique(mine["criterion"])) if len(mine) else []
            per_metric = {}
            for name in names:
                sub = criteria[criteria["criterion"] == name].set_index("run_id")["epoch"]
                per_metric[name] = results["run_id"].map(sub)
        elif claim.metric in results.columns:
            per_metric = {"": results[claim.metric]}
        else:
            per_metric = {}
        devices = sorted(
            set(_select(results, claim.a_filter)["device"])
            | set(_select(results, claim.b_filter)["device"])
        )
        base = {
            "claim": claim.id,
            "text": claim.text,
            "source": claim.source,
            "metric": claim.metric,
            "expect": f"a {claim.relation} b",
            "a": claim.label("a"),
            "b": claim.label("b"),
        }
        if not per_metric or not devices:
            why = (
                f"metric {claim.metric!r} is not in the results"
                if not per_metric
                else "no run matches either side"
            )
            rows.append(
                {
                    **base,
                    "criterion": "",
                    "device": "",
                    "verdict": "not measured",
                    "explanation": why,
                }
            )
            continue
        for name, values in per_metric.items():
            for device in devices:
                on_device = results[results["device"] == device]
                a = _side(claim, "a", _select(on_device, claim.a_filter), values)
                b = _side(claim, "b", _select(on_device, claim.b_filter), values)
                verdict, a_val, b_val, why, statistics = _verdict(claim, a, b)
                rows.append(
                    {
                        **base,
                        "criterion": name,
                        "device": device,
                        "a_value": a_val,
                        "a_runs": len(a.values),
                        "b_value": b_val,
                        "b_runs": len(b.values),
                        "verdict": verdict,
                        "explanation": why,
                        **statistics,
                    }
                )
    return pd.DataFrame(rows, columns=CLAIM_COLUMNS + TEST_COLUMNS)


def verdict_table(claims: pd.DataFrame) -> str:
    """The verdicts for the terminal: one block per claim."""
    lines = []
    for claim_id, group in claims.groupby("claim", sort=False):
        first = group.iloc[0]
        lines.append(f'{claim_id}: "{first["text"]}"')
        if first["source"]:
            lines.append(f"  source: {first['source']}")
        alphas = group["alpha"] if "alpha" in group else pd.Series(dtype=float)
        tested = pd.to_numeric(alphas, errors="coerce").dropna()
        how = f" (one-sided test over seeds, α = {tested.iloc[0]:g})" if len(tested) else ""
        lines.append(
            f"  metric: {first['metric']}, expected: {first['a']} {first['expect'][2:-2]} "
            f"{first['b']}{how}"
        )
        for _, row in group.iterrows():
            where = " ".join(
                x for x in (row["criterion"], f"on {row['device']}" if row["device"] else "") if x
            )
            lines.append(f"  {row['verdict'].upper():>14}  {where}: {row['explanation']}")
    return "\n".join(lines)
