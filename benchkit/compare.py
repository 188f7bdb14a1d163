"""``benchkit compare``: match two result sets and judge every metric by its own rule.

Rows are matched on their key (:data:`benchkit.resultset.KEY_COLUMNS` for a result set from
``benchkit run``; group, name and params for pytest-benchmark). Rows on one side only are
listed. Each metric is judged by the rule :func:`rule_for` gives it: the table
:data:`RULES` for benchkit's own columns, then the declaration the model's plugin made
(``metrics={"name": benchkit.Metric(...)}``, recorded in run.json), then, for an undeclared
metric, a rule read from its name:

- ``status``: ok → diverged → error is worse; a status change to or from ``skipped`` is a
  change, not a regression;
- ``deterministic`` (epochs to a criterion, losses, quality metrics, the setup): identical on
  matching environment fingerprints (or within the rule's tolerance); where the fingerprints
  differ, within the rule's cross-environment tolerance, and the output says so;
- ``noisy`` (throughput, wall time): per workload, seeds pooled. A regression only when the
  ratio of medians moves past the threshold *and* its bootstrap confidence interval excludes
  1; gated only when the fingerprints match (timings from other hardware are reported) and
  no run of the workload was timed on a shared host (``timings_shared``, ``--share-hosts``);
- ``memory``: relative threshold, ignoring changes below an absolute floor (32 MiB on the
  CPU, whose figure is resident-set growth; 1 MiB elsewhere). A CPU figure depends on the runs
  its process made before, so it gates only where both runs were made by the ``benchkit``
  process itself (in the suite's order), not on an executor's workers;
- ``reference`` (``references.csv``, a source's printed figures): a figure that was
  ``reproduced`` and no longer is regressed; one that now is, improved.

What cannot be judged is said, never guessed: timings of runs that shared the CPU with other
processes (``contended``) are shown but not gated; a cell that is not a number is an
``unreadable`` finding of that row alone; and where the two runs were not made the same way (a
different recipe or ``target_loss``, or the model, dataset, precision or device from another
plugin version) a difference is ``not-comparable``, with the reason, never an improvement or a
regression.

Thresholds come from the rule table, then the suite's ``[compare]`` table (recorded in the
new side's run.json), then ``--threshold`` on the command line, the later winning.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from benchkit.errors import BenchkitError
from benchkit.metric import Metric, read_declarations
from benchkit.resultset import (
    PLACEMENT_COLUMNS,
    ResultSet,
    Summary,
    is_contended,
    row_fingerprint,
    row_label,
    row_providers,
)
from benchkit.stats import RatioInterval, bootstrap_ratio_of_medians, notch_ratio_ci

MIB = 1024 * 1024
# A bootstrap over fewer repeats than this says little about noise: such timings only report.
MIN_REPEATS = 5
# With at least this many repeats a side, a slowdown must also show in the fastest repeats.
FAST_REPEATS_MIN = 20
CPU_MEMORY_FLOOR = 32 * MIB
MEMORY_FLOOR = 1 * MIB
EPOCHS_TO = "epochs_to["  # criteria.csv: epochs_to[loss <= 1e-08], one per criterion


def never_is_worst(metric: str) -> bool:
    """Epoch metrics whose empty value means "never": worse than any epoch."""
    return metric in ("converged_epoch", "zero_loss_epoch") or metric.startswith(EPOCHS_TO)


@dataclass(frozen=True)
class Rule:
    """How one metric is compared.

    :param kind: ``deterministic``, ``noisy`` or ``memory``.
    :param better: ``lower``, ``higher`` or ``none`` (any change is a change).
    :param threshold: deterministic: the tolerance when fingerprints match; noisy and
        memory: the relative change that counts.
    :param relative: whether ``threshold`` and ``cross`` are fractions of the baseline value
        (else absolute, in the metric's unit).
    :param cross: deterministic: the tolerance when fingerprints differ.
    :param floor: deterministic: the least cross-environment tolerance (absolute).
    """

    metric: str
    kind: str
    better: str
    threshold: float
    relative: bool
    cross: float = 0.0
    floor: float = 0.0
    unit: str = ""
    doc: str = ""


def _epoch(metric: str, better: str, doc: str) -> Rule:
    return Rule(metric, "deterministic", better, 0, False, cross=2, unit="epochs", doc=doc)


def _loss(metric: str, better: str, doc: str) -> Rule:
    return Rule(metric, "deterministic", better, 0.0, True, cross=0.05, floor=1e-6, doc=doc)


def _setup(metric: str, doc: str) -> Rule:
    return Rule(metric, "deterministic", "none", 0, False, doc=doc)


RULES: dict[str, Rule] = {
    r.metric: r
    for r in (
        _epoch("converged_epoch", "lower", "first epoch at or below the target; empty = never"),
        _epoch("zero_loss_epoch", "lower", "first epoch with loss exactly 0; empty = never"),
        _epoch("diverged_epoch", "higher", "epoch of the first non-finite loss"),
        _epoch("grads_nonfinite_epoch", "none", "diverged: first non-finite gradients"),
        _epoch("params_nonfinite_epoch", "none", "diverged: first non-finite parameters"),
        _setup("nonfinite_loss", "diverged: nan or inf"),
        _setup("epochs", "epochs run"),
        _loss("final_loss", "lower", "last training loss"),
        _loss("best_loss", "lower", "lowest training loss"),
        _setup("params", "parameter count"),
        _setup("train_samples", "training samples"),
        _setup("batch_size", "batch size"),
        _setup("optimizer", "optimizer"),
        _setup("lr", "learning rate"),
        _setup("target_loss", "the case's target"),
        Rule(
            "samples_per_second",
            "noisy",
            "higher",
            0.10,
            True,
            unit="samples/s",
            doc="per-epoch throughput after warm-up, seeds pooled",
        ),
        Rule(
            "train_seconds",
            "noisy",
            "lower",
            0.10,
            True,
            unit="s",
            doc="wall time of the run, one repeat per seed",
        ),
        Rule(
            "time",
            "noisy",
            "lower",
            0.10,
            True,
            unit="s",
            doc="pytest-benchmark: seconds per round (step latency)",
        ),
        Rule(
            "peak_memory_bytes",
            "memory",
            "lower",
            0.25,
            True,
            unit="bytes",
            doc="peak memory; changes under 32 MiB (CPU) / 1 MiB (others) ignored",
        ),
    )
}
# Metrics not in RULES: timings and memory by name; the rest deterministic, with the
# direction read from the name.
_FASTER = re.compile(r"per_second|throughput|_ops$|^ops$|fraction", re.I)
_SLOWER = re.compile(r"seconds|latency|_time$|^time$|_ms$", re.I)
_MEMORY = re.compile(r"memory|_bytes$", re.I)
_LOWER = re.compile(r"loss|mse|mae|rmse|error|perplexity", re.I)
_HIGHER = re.compile(r"accuracy|acc$|r2|match|bleu|f1", re.I)
# Columns that are labels, or derived from metrics already compared.
IGNORED = {
    "run_id",
    "device_name",
    "status",
    "status_detail",
    "time_to_target_seconds",  # = converged_epoch x step time: both compared
    "rounds",
    "step_iqr_seconds",  # a spread, not a timing
    "samples_per_second_iqr",  # likewise
    "contended",  # how the timings were taken: decides whether they gate
    "other_cpu_load",  # the figure behind contended
    *PLACEMENT_COLUMNS,  # where a run ran and its process's fingerprint (row_fingerprint)
}
#: The recipe as ``results.csv`` records it: runs made with different ones are not comparable.
RECIPE_COLUMNS = ("optimizer", "lr", "batch_size")
#: Metrics whose meaning depends on the case's target.
TARGET_METRICS = ("converged_epoch", "time_to_target_seconds")


def rule_for(metric: str, declared: Metric | None = None) -> Rule:
    """The rule of a metric: from :data:`RULES`; else from its plugin's declaration
    (``declared``: its direction, and its kind with that kind's default threshold); else,
    the documented fallback for undeclared metrics, a rule read from the name (timings and
    memory by name; ``*loss*``, ``*mse*`` … lower is better; ``*accuracy*``, ``*r2*`` …
    higher is better; anything else: any change is a change)."""
    if metric in RULES:
        return RULES[metric]
    if declared is not None:
        doc = f"declared by its plugin{': ' if declared.description else ''}"
        doc += declared.description
        if declared.kind == "noisy":
            return Rule(metric, "noisy", declared.better, 0.10, True, doc=doc)
        return _loss(metric, declared.better, doc)
    if metric.startswith(EPOCHS_TO):
        return _epoch(metric, "lower", "first epoch the criterion held (criteria.csv)")
    if _FASTER.search(metric) or _SLOWER.search(metric):
        better = "higher" if _FASTER.search(metric) else "lower"
        return Rule(metric, "noisy", better, 0.10, True, doc="timing (from its name)")
    if _MEMORY.search(metric):
        return Rule(
            metric, "memory", "lower", 0.25, True, unit="bytes", doc="memory (from its name)"
        )
    if _LOWER.search(metric):
        return _loss(metric, "lower", "workload metric")
    if _HIGHER.search(metric):
        return _loss(metric, "higher", "workload metric")
    return _loss(metric, "none", "workload metric")


@dataclass
class Thresholds:
    """Overrides of the rule table: ``{metric or kind: value}``, and for deterministic
    metrics ``{"metric.cross": value}``; later layers win. ``declared`` holds the metric
    declarations of the result sets, by model."""

    layers: list[dict[str, float]] = field(default_factory=list)
    declared: dict[str, dict[str, Metric]] = field(default_factory=dict)

    def rule(self, metric: str, model: str = "") -> Rule:
        """The rule of ``metric`` (of a row of ``model``) with the overrides applied."""
        base = rule_for(metric, self.declared.get(model, {}).get(metric))
        threshold, cross = base.threshold, base.cross
        for layer in self.layers:
            for name in (base.kind, metric):
                if name in layer:
                    threshold = layer[name]
                if f"{name}.cross" in layer:
                    cross = layer[f"{name}.cross"]
        return Rule(**{**base.__dict__, "threshold": threshold, "cross": cross})


def parse_threshold_args(items: Iterable[str]) -> dict[str, float]:
    """``["samples_per_second=0.2", "converged_epoch=1"]`` → a threshold layer.

    :raises BenchkitError: an item not written ``METRIC=NUMBER``, or a negative number.
    """
    out: dict[str, float] = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or not name.strip():
            raise BenchkitError(
                f"--threshold {item!r}: write METRIC=VALUE, e.g. samples_per_second=0.15"
            )
        out[name.strip()] = _number(value.strip(), f"--threshold {item!r}")
    return out


def _number(value: Any, where: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise BenchkitError(f"{where}: {value!r} is not a number") from None
    if not math.isfinite(number) or number < 0:
        raise BenchkitError(f"{where}: a threshold is a number >= 0, got {value!r}")
    return number


def suite_threshold_layer(table: Mapping[str, Any], where: str) -> dict[str, float]:
    """Flatten a suite's ``[compare]`` table: ``metric = value`` and a ``[compare.cross]``
    sub-table of cross-environment tolerances."""
    out: dict[str, float] = {}
    for key, value in table.items():
        if key == "cross" and isinstance(value, dict):
            for metric, tol in value.items():
                out[f"{metric}.cross"] = _number(tol, f"{where} [compare.cross] {metric}")
        else:
            out[key] = _number(value, f"{where} [compare] {key}")
    return out


def _check_names(layer: Mapping[str, float], known: set[str], where: str) -> None:
    for key in layer:
        name, _, suffix = key.partition(".")
        if name not in known or suffix not in ("", "cross"):
            valid = ", ".join(sorted(known))
            raise BenchkitError(f"{where}: unknown metric {key!r}; valid: {valid}")
        if suffix and rule_for(name).kind != "deterministic" and name != "deterministic":
            raise BenchkitError(
                f"{where}: {key!r}: only deterministic metrics have a cross tolerance"
            )


@dataclass
class Finding:
    """One judged metric of one run (or, for noisy metrics, one workload).

    ``change`` is ``new - baseline`` for absolute rules and ``new / baseline - 1`` for
    relative ones; ``low``/``high`` bound the relative change (noisy metrics). ``verdict``
    is one of ``same``, ``within``, ``noise``, ``unclear``, ``improved``, ``regressed``,
    ``changed``, ``only-baseline``, ``only-new``, ``not-comparable`` (the runs were not made
    the same way: ``note`` says how) and ``unreadable`` (a cell is not a number: ``note``
    quotes it). ``gated``: whether it may fail the comparison; ``fails``: whether it does.
    """

    key: str
    metric: str
    kind: str
    baseline: Any
    new: Any
    verdict: str
    gated: bool = True
    fails: bool = False
    change: float | None = None
    low: float | None = None
    high: float | None = None
    rule: str = ""
    note: str = ""


@dataclass
class Comparison:
    """The outcome of :func:`compare`."""

    baseline: str
    new: str
    matched: int
    findings: list[Finding]
    notes: list[str]
    strict: bool = False
    environments_match: bool = True
    repeats: str = ""

    @property
    def failures(self) -> list[Finding]:
        """The findings that fail the comparison."""
        return [f for f in self.findings if f.fails]

    @property
    def exit_code(self) -> int:
        """0 when nothing fails, 1 when something does."""
        return 1 if self.failures else 0

    def count(self, verdict: str) -> int:
        """How many findings have ``verdict``."""
        return sum(1 for f in self.findings if f.verdict == verdict)


@dataclass
class Options:
    """How to compare: threshold layers (suite, then command line), which kinds or metrics
    only report, and ``strict`` (any deterministic change and any unmatched row fail, so a
    committed baseline is regenerated whenever the numbers move)."""

    thresholds: dict[str, float] = field(default_factory=dict)
    report_only: set[str] = field(default_factory=set)
    strict: bool = False
    iterations: int = 2000
    seed: int = 0


_STATUS_RANK = {"ok": 2, "diverged": 1, "error": 0}


def compare(base: ResultSet, new: ResultSet, options: Options | None = None) -> Comparison:
    """Match the rows of ``base`` and ``new`` and judge each metric.

    :raises BenchkitError: the two are of different kinds, a side has two rows with the same
        key, no row is in common, or a threshold names an unknown metric.
    """
    options = options or Options()
    if base.kind != new.kind:
        raise BenchkitError(
            f"cannot compare a {base.kind} result ({base.path}) with a {new.kind} result "
            f"({new.path})"
        )
    keys = list(base.key_columns)
    if "run_id" not in keys and (_duplicated(base, keys) or _duplicated(new, keys)):
        keys.append("run_id")  # e.g. a batch-size sweep: same case, one run per batch
    base_rows, new_rows = _by_key(base, keys), _by_key(new, keys)
    matched = [k for k in base_rows if k in new_rows]
    if not matched:
        raise BenchkitError(
            f"no rows in common between {base.path} ({len(base_rows)} rows, e.g. "
            f"{_example(base_rows, keys)}) and {new.path} ({len(new_rows)} rows, e.g. "
            f"{_example(new_rows, keys)}); rows match on {', '.join(keys)}"
        )
    metrics = _metrics(base, new)
    known = set(metrics) | set(RULES) | {"deterministic", "noisy", "memory", "reference"}
    suite_layer = suite_threshold_layer(new.thresholds, f"{new.path} (suite)")
    _check_names(suite_layer, known, f"{new.path}: the suite's [compare] table")
    _check_names(options.thresholds, known, "--threshold")
    for item in options.report_only:
        if item not in known and item != "status":
            raise BenchkitError(
                f"--report-only {item!r}: not a kind or metric; valid: "
                f"status, {', '.join(sorted(known))}"
            )
    # the new side's declarations win: the plugin as installed now says what a metric means
    declared = read_declarations(base.meta)
    for model, declarations in read_declarations(new.meta).items():
        declared.setdefault(model, {}).update(declarations)
    thresholds = Thresholds([suite_layer, options.thresholds], declared)

    findings: list[Finding] = []
    notes: list[str] = []
    env_match_by_key: dict[tuple, bool] = {}
    incomparable: dict[tuple, Incomparable] = {}
    differences: dict[str, tuple[str, str]] = {}
    for key in matched:
        b, n = base_rows[key], new_rows[key]
        fb, fn = row_fingerprint(base, b), row_fingerprint(new, n)
        diff = {
            k: (fb.get(k, ""), fn.get(k, ""))
            for k in fb.keys() | fn.keys()
            if fb.get(k, "") != fn.get(k, "")
        }
        differences.update(diff)
        env_match_by_key[key] = not diff
        why = _incomparable(base, new, b, n)
        incomparable[key] = why
        cells = _Cells(
            base.unreadable.get(row_label(b, keys), {}), new.unreadable.get(row_label(n, keys), {})
        )
        findings.extend(
            _row_findings(key, b, n, metrics, thresholds, not diff, options, keys, why, cells)
        )
    findings.extend(
        _noisy_findings(
            base,
            new,
            matched,
            base_rows,
            new_rows,
            env_match_by_key,
            metrics,
            thresholds,
            options,
            incomparable,
        )
    )
    findings.extend(_reference_findings(base, new, options))
    findings.extend(_unmatched(base_rows, new_rows, keys, options.strict))
    environments_match = all(env_match_by_key.values())
    notes.append(
        _environment_note(
            environments_match,
            row_fingerprint(base, base_rows[matched[0]]),
            differences,
            timings_gate="noisy" not in options.report_only,
        )
    )
    for name, side in (("baseline", base), ("new", new)):
        if side.kind == "benchkit" and side.meta.get("finished") is False:
            notes.append(f"the {name} result set did not finish ({len(side.rows)} runs kept)")
    notes.extend(_suite_notes(base, new))
    contended = sum(
        1
        for key in matched
        if is_contended(base_rows[key].get("contended"))
        or is_contended(new_rows[key].get("contended"))
    )
    if contended:
        notes.append(
            f"{contended} matched run{'s' * (contended != 1)} shared the CPU with other "
            "processes (contended): their timings are shown but do not gate, because another "
            "process's load, not the code, may have moved them"
        )
    blocked = sum(1 for f in findings if f.verdict == "not-comparable")
    if blocked:
        notes.append(
            f"{blocked} figure{'s' * (blocked != 1)} not comparable: the runs were made "
            "differently (see each note); regenerate the baseline with the same settings"
        )
    unreadable = sum(1 for f in findings if f.verdict == "unreadable")
    if unreadable:
        notes.append(
            f"{unreadable} value{'s' * (unreadable != 1)} unreadable (not a number in the "
            "table): those rows' figures are not judged; the others are"
        )
    drift = _drift(findings)
    if drift:
        notes.append(drift)
    if options.report_only:
        notes.append(f"report only (never fail): {', '.join(sorted(options.report_only))}")
    repeats = base.repeats_from if base.repeats_from == new.repeats_from else "seeds"
    return Comparison(
        baseline=str(base.path),
        new=str(new.path),
        matched=len(matched),
        findings=findings,
        notes=notes,
        strict=options.strict,
        environments_match=environments_match,
        repeats=repeats,
    )


REFERENCE_KEY = ["reference", "precision", "device", "epoch", "step"]


def _reference_findings(base: ResultSet, new: ResultSet, options: Options) -> list[Finding]:
    """A source's figure (a ``references.csv`` row) that the baseline reproduced and the new
    set does not is a regression; the reverse an improvement. Rows are matched on
    :data:`REFERENCE_KEY`; rows on one side only are not judged."""
    tables = [side.extras.get("references") for side in (base, new)]
    if any(t is None or t.empty or not set(REFERENCE_KEY) <= set(t.columns) for t in tables):
        return []

    def text(value: Any) -> str:
        if isinstance(value, float) and value.is_integer():
            return str(int(value))  # an epoch read back as 100.0 where some rows have none
        return "" if pd.isna(value) else str(value)

    def by_key(table: pd.DataFrame) -> dict[tuple, pd.Series]:
        return {tuple(text(row[c]) for c in REFERENCE_KEY): row for _, row in table.iterrows()}

    before, after = by_key(tables[0]), by_key(tables[1])
    gated = "reference" not in options.report_only
    out = []
    for key, old in before.items():
        row = after.get(key)
        if row is None:
            continue
        was, now = str(old["verdict"]), str(row["verdict"])
        if was == now:
            verdict = "same"
        elif was == "reproduced":
            verdict = "regressed"
        elif now == "reproduced":
            verdict = "improved"
        else:
            verdict = "changed"
        reference, precision, device, epoch, step = key
        at = f"epoch {epoch}" if epoch else (f"step {step}" if step else "")
        label = " ".join(x for x in (reference, at, f"{precision}/{device}".strip("/")) if x)
        out.append(
            Finding(
                label,
                "reference",
                "reference",
                was,
                now,
                verdict,
                gated,
                _fails(verdict, gated, "reference", options.strict),
                rule="reproduced stays reproduced",
                note="" if verdict == "same" else str(row.get("reason", "")),
            )
        )
    return out


def _unmatched(
    base_rows: dict[tuple, pd.Series],
    new_rows: dict[tuple, pd.Series],
    keys: list[str],
    strict: bool,
) -> list[Finding]:
    """Rows on one side only: listed; failing under ``strict``."""
    out = []
    for side, rows, other in (("baseline", base_rows, new_rows), ("new", new_rows, base_rows)):
        for key, row in rows.items():
            if key in other:
                continue
            out.append(
                Finding(
                    key=row_label(row, keys),
                    metric="row",
                    kind="rows",
                    baseline=row["status"] if side == "baseline" else None,
                    new=row["status"] if side == "new" else None,
                    verdict=f"only-{side}",
                    gated=strict,
                    fails=strict,
                    note=f"only in the {side}",
                )
            )
    return out


def _environment_note(
    match: bool,
    fingerprint: Mapping[str, str],
    differences: Mapping[str, tuple[str, str]],
    timings_gate: bool,
) -> str:
    if match:
        timings = "timings gate" if timings_gate else "timings are reported (--report-only)"
        return (
            f"environments match ({_describe(fingerprint)}): deterministic metrics must be "
            f"identical; {timings}"
        )
    what = "; ".join(f"{k}: {b!r} → {n!r}" for k, (b, n) in sorted(differences.items()))
    return (
        f"environments differ ({what}): deterministic metrics are compared with "
        "cross-environment tolerances; timings are reported, not gated"
    )


def _drift(findings: list[Finding]) -> str:
    """A line on how throughput moved across all workloads: a shared shift is the machine
    (or a change that touches every workload), not one workload's regression."""
    changes = sorted(
        f.change for f in findings if f.metric == "samples_per_second" and f.change is not None
    )
    if len(changes) < 3:
        return ""
    median = changes[len(changes) // 2]
    return (
        f"throughput across {len(changes)} workloads moved by {median * 100:+.1f} % (median; "
        f"range {changes[0] * 100:+.1f} to {changes[-1] * 100:+.1f} %): a shift shared by all "
        "is the machine's load or a change that touches every workload"
    )


def _describe(fp: Mapping[str, str]) -> str:
    parts = []
    for key in ("torch", "cpu", "cpu_capability", "torch_threads", "device_name", "python"):
        value = fp.get(key)
        if value and not (key == "device_name" and value == fp.get("cpu")):
            parts.append(f"{key} {value}")
    return ", ".join(parts)


def _duplicated(result_set: ResultSet, keys: list[str]) -> bool:
    return bool(result_set.rows.duplicated(subset=keys).any())


def _by_key(result_set: ResultSet, keys: list[str]) -> dict[tuple, pd.Series]:
    out: dict[tuple, pd.Series] = {}
    for _, row in result_set.rows.iterrows():
        key = tuple(row.get(c, "") for c in keys)
        if key in out:
            raise BenchkitError(
                f"{result_set.path}: two rows share the key {dict(zip(keys, key, strict=True))}"
            )
        out[key] = row
    return out


def _example(rows: Mapping[tuple, pd.Series], keys: list[str]) -> str:
    if not rows:
        return "none"
    return row_label(next(iter(rows.values())), keys)


def _metrics(base: ResultSet, new: ResultSet) -> list[str]:
    skip = IGNORED | set(base.key_columns)
    names = [c for c in base.rows.columns if c not in skip]
    names += [c for c in new.rows.columns if c not in skip and c not in names]
    return names


def _missing(value: Any) -> bool:
    if isinstance(value, str):
        return value == ""
    return value is None or bool(pd.isna(value))


def _is_gated(rule: Rule, options: Options) -> bool:
    return rule.kind not in options.report_only and rule.metric not in options.report_only


def _fails(verdict: str, gated: bool, kind: str, strict: bool) -> bool:
    if not gated:
        return False
    if verdict == "regressed":
        return True
    if verdict in ("not-comparable", "unreadable"):
        return strict  # a gate on a committed baseline must not pass what it cannot judge
    changes = ("deterministic", "status", "reference")
    return strict and kind in changes and verdict in ("improved", "changed")


@dataclass
class Incomparable:
    """Why two matched runs' figures cannot be compared: ``every`` metric (another recipe, or
    plugin version) or only ``metrics`` named (another target)."""

    every: str = ""
    metrics: dict[str, str] = field(default_factory=dict)

    def reason(self, metric: str) -> str:
        """The reason for ``metric``; empty when it can be compared."""
        return self.metrics.get(metric, "") or (
            "" if metric in RECIPE_COLUMNS or metric == "target_loss" else self.every
        )


def _setting(value: Any) -> str:
    if _missing(value):
        return "-"
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return str(value)


def _incomparable(base: ResultSet, new: ResultSet, b: pd.Series, n: pd.Series) -> Incomparable:
    """How the two runs were made differently, as far as the result sets record it."""
    reasons = []
    for column in RECIPE_COLUMNS:
        if column in b.index and column in n.index and _setting(b[column]) != _setting(n[column]):
            reasons.append(f"recipe {column} {_setting(b[column])} → {_setting(n[column])}")
    pb, pn = row_providers(base, b), row_providers(new, n)
    for kind in pb.keys() & pn.keys():
        if pb[kind] != pn[kind]:
            reasons.append(f"{kind} {b.get(kind)} from plugin {pb[kind]} → {pn[kind]}")
    out = Incomparable(every="; ".join(sorted(reasons)))
    tb, tn = b.get("target_loss"), n.get("target_loss")
    if _setting(tb) != _setting(tn):
        for metric in TARGET_METRICS:
            out.metrics[metric] = f"target_loss {_setting(tb)} → {_setting(tn)}"
    return out


def _unreadable_finding(
    label: str, metric: str, kind: str, b: pd.Series, n: pd.Series, cells: tuple[str, str]
) -> Finding:
    where = " and ".join(
        f"{side} {text!r}" for side, text in zip(("baseline", "new"), cells, strict=True) if text
    )
    return Finding(
        label,
        metric,
        kind,
        cells[0] or b.get(metric),
        cells[1] or n.get(metric),
        "unreadable",
        note=f"unreadable value: {where} is not a number; this row's {metric} is not judged",
    )


def _row_findings(
    key: tuple,
    b: pd.Series,
    n: pd.Series,
    metrics: list[str],
    thresholds: Thresholds,
    same_env: bool,
    options: Options,
    keys: list[str],
    why: Incomparable | None = None,
    cells: _Cells | None = None,
) -> list[Finding]:
    label = row_label(b, keys)
    why = why or Incomparable()
    cells = cells or _Cells({}, {})
    out = []
    sb, sn = str(b["status"]), str(n["status"])
    status_gated = "status" not in options.report_only
    if sb != sn:
        rank_b, rank_n = _STATUS_RANK.get(sb), _STATUS_RANK.get(sn)
        if rank_b is None or rank_n is None:  # skipped (or a status this version does not know)
            verdict = "changed"
        else:
            verdict = "regressed" if rank_n < rank_b else "improved"
        detail = n.get("status_detail") if sn != "ok" else b.get("status_detail")
        out.append(
            Finding(
                label,
                "status",
                "status",
                sb,
                sn,
                verdict,
                status_gated,
                _fails(verdict, status_gated, "status", options.strict),
                note=str(detail) if isinstance(detail, str) else "",
            )
        )
        return out
    out.append(Finding(label, "status", "status", sb, sn, "same", status_gated))
    if sb in ("skipped", "error"):
        return out
    model = str(b.get("model", ""))
    for metric in metrics:
        rule = thresholds.rule(metric, model)
        if rule.kind == "noisy":
            continue
        if sb == "diverged" and rule.kind == "memory":
            continue  # a run cut short: its memory figure is not the workload's
        vb, vn = b.get(metric), n.get(metric)
        gated = _is_gated(rule, options)
        bad = cells.of(metric)
        if bad[0] != bad[1]:
            finding = _unreadable_finding(label, metric, rule.kind, b, n, bad)
            finding.gated = gated
            finding.fails = _fails(finding.verdict, gated, rule.kind, options.strict)
            out.append(finding)
            continue
        if _missing(vb) and _missing(vn):
            continue
        if rule.kind == "memory":
            finding = _memory(label, rule, vb, vn, str(b["device"]) if "device" in b else "")
        else:
            finding = _deterministic(label, rule, vb, vn, same_env)
        if finding is None:
            continue
        reason = why.reason(metric)
        if reason and finding.verdict != "same":
            finding.verdict = "not-comparable"
            finding.note = f"not comparable: {reason}"
        elif rule.kind == "memory" and gated:
            history = _process_history_differs(b, n)
            if history:
                gated = False
                finding.note = history
        finding.gated = gated
        finding.fails = _fails(finding.verdict, gated, rule.kind, options.strict)
        out.append(finding)
    return out


def _process_history_differs(b: Mapping[str, Any], n: Mapping[str, Any]) -> str:
    """Why a CPU memory figure of these two rows cannot gate, or ``""``.

    On the CPU the figure is the growth of the process that ran the run, which depends on the
    runs that process made before (what the allocator kept, libraries' first-use caches).
    Runs made by the ``benchkit`` process itself follow the suite's order on both sides; a run
    on an executor's worker followed whichever runs that worker was given.
    """
    if not str(b.get("device", "")).startswith("cpu"):
        return ""
    workers = [_text(row.get("worker")) for row in (b, n)]
    if not any(workers):
        return ""
    where = " / ".join(f"worker {w}" if w else "the benchkit process" for w in workers)
    return (
        f"not gated: CPU memory is a process's growth, which depends on the runs it made "
        f"before, and these ran in different processes' sequences ({where})"
    )


def _text(value: Any) -> str:
    """A cell as text, empty for a missing one."""
    return "" if _missing(value) else str(value)


def _direction(rule: Rule, delta: float) -> str:
    if rule.better == "none":
        return "changed"
    worse = delta > 0 if rule.better == "lower" else delta < 0
    return "regressed" if worse else "improved"


def _deterministic(label: str, rule: Rule, vb: Any, vn: Any, same_env: bool) -> Finding | None:
    tol = rule.threshold if same_env else rule.cross
    if same_env:
        text = "exact" if tol == 0 else f"±{_fmt_tol(rule, tol, 0.0)}"
    else:
        text = f"±{_fmt_tol(rule, tol, rule.floor)} (environments differ)"

    def finding(verdict: str, change: float | None = None, note: str = "") -> Finding:
        return Finding(
            label,
            rule.metric,
            "deterministic",
            vb,
            vn,
            verdict,
            change=change,
            rule=text,
            note=note,
        )

    if _missing(vb) or _missing(vn):
        if never_is_worst(rule.metric):
            return finding(
                "regressed" if _missing(vn) else "improved",
                note="never reached" if _missing(vn) else "now reached",
            )
        return finding("changed", note="missing in " + ("new" if _missing(vn) else "baseline"))
    if isinstance(vb, str) or isinstance(vn, str):
        return finding("same" if str(vb) == str(vn) else "changed")
    vb, vn = float(vb), float(vn)
    if vb == vn or (math.isnan(vb) and math.isnan(vn)):  # inf and nan included
        return finding("same", 0.0)
    delta = vn - vb
    change = delta
    if rule.relative:
        change = delta / abs(vb) if vb else math.copysign(math.inf, delta)
    allowed = tol * abs(vb) if rule.relative else tol
    if not same_env:
        allowed = max(allowed, rule.floor)
    if abs(delta) <= allowed:
        return finding("within", change)
    return finding(_direction(rule, delta), change)


def _fmt_tol(rule: Rule, tol: float, floor: float) -> str:
    if rule.relative:
        text = f"{tol * 100:g} %"
        return f"{text}, at least {floor:g}" if floor else text
    return f"{tol:g} {rule.unit}".strip()


def _memory(label: str, rule: Rule, vb: Any, vn: Any, device: str) -> Finding | None:
    if _missing(vb) or _missing(vn):
        return None
    vb, vn = float(vb), float(vn)
    floor = CPU_MEMORY_FLOOR if device.startswith("cpu") else MEMORY_FLOOR
    text = f"{rule.threshold * 100:g} % and > {floor // MIB} MiB"
    if vb == vn or not (math.isfinite(vb) and math.isfinite(vn)):
        same = vb == vn or (math.isnan(vb) and math.isnan(vn))
        verdict = "same" if same else "changed"
        return Finding(label, rule.metric, "memory", vb, vn, verdict, change=0.0, rule=text)
    delta = vn - vb
    change = delta / vb if vb else (math.inf if delta > 0 else 0.0)
    if delta == 0:
        verdict = "same"
    elif abs(delta) > floor and abs(change) > rule.threshold:
        verdict = _direction(rule, delta)
    else:
        verdict = "within"
    return Finding(label, rule.metric, "memory", vb, vn, verdict, change=change, rule=text)


def _group_key(row: pd.Series, result_set: ResultSet) -> tuple[str, ...]:
    """What the seeds of one workload share: the row's key columns but the seed, and for
    measurement tables the batch size and kind, all read from the row's own columns."""
    parts = [str(row[c]) for c in result_set.group_columns]
    for column in ("batch_size", "kind"):
        value = row.get(column)
        if result_set.kind == "benchkit" and column in result_set.rows.columns:
            parts.append("" if _missing(value) else str(value))
    return tuple(parts)


def _group_labels(keys: Iterable[tuple[str, ...]], result_set: ResultSet) -> dict[tuple, str]:
    """Readable labels for group keys, written like a run_id without its seed
    (``model/dataset/precision/device[/batchN][/kind]``). The variant (the suite's overrides,
    long JSON) is shown as a short hash only where two groups would otherwise read the same."""
    columns = list(result_set.group_columns)
    extra = [c for c in ("batch_size", "kind") if c in result_set.rows.columns]
    if result_set.kind != "benchkit":
        extra = []

    def plain(key: tuple[str, ...]) -> str:
        values = dict(zip([*columns, *extra], key, strict=True))
        parts = [
            values[c]
            for c in columns
            if c != "variant" and values[c] and (c, values[c]) != ("mode", "eager")
        ]
        if values.get("batch_size"):
            parts.append(f"batch{int(float(values['batch_size']))}")
        if values.get("kind"):
            parts.append(values["kind"])
        return "/".join(parts)

    keys = list(keys)
    seen: dict[str, int] = {}
    for key in keys:
        seen[plain(key)] = seen.get(plain(key), 0) + 1
    labels = {}
    for key in keys:
        label = plain(key)
        variant = dict(zip(columns, key, strict=False)).get("variant", "")
        if seen[label] > 1 and variant:
            label += "/" + hashlib.sha1(variant.encode()).hexdigest()[:8]
        labels[key] = label
    return labels


def _noisy_findings(
    base: ResultSet,
    new: ResultSet,
    matched: list[tuple],
    base_rows: dict[tuple, pd.Series],
    new_rows: dict[tuple, pd.Series],
    env_match: dict[tuple, bool],
    metrics: list[str],
    thresholds: Thresholds,
    options: Options,
    incomparable: dict[tuple, Incomparable] | None = None,
) -> list[Finding]:
    incomparable = incomparable or {}
    by_key: dict[tuple, list[tuple]] = {}
    for key in matched:
        if base_rows[key]["status"] == "ok" and new_rows[key]["status"] == "ok":
            by_key.setdefault(_group_key(base_rows[key], base), []).append(key)
    labels = _group_labels(by_key, base)
    groups = {labels[k]: keys for k, keys in by_key.items()}
    out = []
    order = list(RULES)
    for metric in sorted(metrics, key=lambda m: order.index(m) if m in order else len(order)):
        for group, keys in groups.items():
            rule = thresholds.rule(metric, str(base_rows[keys[0]].get("model", "")))
            if rule.kind != "noisy":
                continue
            finding = _noisy_group(
                base, new, metric, rule, group, keys, base_rows, new_rows, options
            )
            if finding is None:
                continue
            same_env = all(env_match[k] for k in keys)
            busy = [
                k
                for k in keys
                if is_contended(base_rows[k].get("contended"))
                or is_contended(new_rows[k].get("contended"))
            ]
            shared = [
                k
                for k in keys
                if is_contended(base_rows[k].get("timings_shared"))
                or is_contended(new_rows[k].get("timings_shared"))
            ]
            recipes = sorted({incomparable[k].every for k in keys if k in incomparable} - {""})
            finding.gated = (
                same_env and not busy and not shared and not recipes and _is_gated(rule, options)
            )
            if recipes:
                finding.verdict = "not-comparable"
                finding.note = f"not comparable: {recipes[0]}"
            elif busy:
                finding.note = "; ".join(
                    x
                    for x in (
                        f"contended: {len(busy)} of {len(keys)} runs shared the CPU with other "
                        "processes, so their timings are shown but not gated",
                        finding.note,
                    )
                    if x
                )
            elif shared:
                finding.note = "; ".join(
                    x
                    for x in (
                        f"timed on a shared host: {len(shared)} of {len(keys)} runs shared their "
                        "host with other runs of the suite (--share-hosts), so their timings are "
                        "shown but not gated",
                        finding.note,
                    )
                    if x
                )
            elif not same_env:
                finding.note = "; ".join(
                    x for x in ("environments differ: not gated", finding.note) if x
                )
            elif shared:
                finding.note = "; ".join(
                    x for x in ("timed on a shared host: not gated", finding.note) if x
                )
            finding.fails = _fails(finding.verdict, finding.gated, "noisy", options.strict)
            out.append(finding)
    return out


def _repeats(
    result_set: ResultSet, metric: str, rows: list[pd.Series], per_run: bool
) -> tuple[list[list[float]], list[Summary]]:
    """The repeats of ``metric`` over ``rows``: one list of samples per run, or the
    summaries of runs whose samples were not kept."""
    if per_run:
        values = [[float(r[metric])] for r in rows if metric in r and pd.notna(r[metric])]
        return values, []
    samples = result_set.samples.get(metric, {})
    summaries = result_set.summaries.get(metric, {})
    labels = [row_label(r, result_set.key_columns) for r in rows]
    return [samples[x] for x in labels if x in samples], [
        summaries[x] for x in labels if x in summaries
    ]


def _noisy_group(
    base: ResultSet,
    new: ResultSet,
    metric: str,
    rule: Rule,
    group: str,
    keys: list[tuple],
    base_rows: dict[tuple, pd.Series],
    new_rows: dict[tuple, pd.Series],
    options: Options,
) -> Finding | None:
    # Mixed sources (per-epoch samples on one side, none on the other): use each run's own
    # figure on both, so both sides' medians mean the same thing.
    per_run = base.repeats_from != new.repeats_from
    for side in (base, new):
        if not side.samples.get(metric) and not side.summaries.get(metric):
            per_run = True  # no repeats within a run recorded: the seeds are the repeats
    rb, sb = _repeats(base, metric, [base_rows[k] for k in keys], per_run)
    rn, sn = _repeats(new, metric, [new_rows[k] for k in keys], per_run)
    text = f"{rule.threshold * 100:g} % and 95 % CI"
    interval: RatioInterval | None = None
    try:
        if rb and rn:
            interval = bootstrap_ratio_of_medians(rb, rn, options.iterations, seed=options.seed)
        elif sb and sn and len(sb) == 1 and len(sn) == 1:
            interval = notch_ratio_ci(
                sb[0].median, sb[0].iqr, sb[0].rounds, sn[0].median, sn[0].iqr, sn[0].rounds
            )
    except ValueError:
        interval = None
    if interval is None:
        return None
    ratio = interval.ratio
    finding = Finding(
        group,
        metric,
        "noisy",
        *interval.medians,
        "noise",
        change=ratio - 1,
        low=interval.low - 1,
        high=interval.high - 1,
        rule=text,
    )
    fewest = min(interval.repeats)
    if fewest < MIN_REPEATS:
        finding.verdict, finding.low, finding.high = "unclear", None, None
        finding.note = (
            f"{fewest} repeat{'s' * (fewest != 1)} a side; judging noise needs {MIN_REPEATS}"
        )
        return finding
    slower = ratio < 1 if rule.better == "higher" else ratio > 1
    beyond = abs(ratio - 1) > rule.threshold
    if beyond and interval.excludes_one():
        finding.verdict = "regressed" if slower else "improved"
    elif beyond:
        finding.note = "CI includes no change"
    if finding.verdict == "regressed" and rb and rn and not per_run:
        fast = _fast_repeats_ratio(rb, rn, rule.better)
        if fast is not None and abs(fast - 1) <= rule.threshold:
            finding.verdict = "unclear"
            finding.note = (
                f"the fastest repeats moved {(fast - 1) * 100:+.1f} % only: some repeats were "
                "slowed, not all, as when another process shares the CPU; re-run on a quiet "
                "machine"
            )
    return finding


def _fast_repeats_ratio(
    base: list[list[float]], new: list[list[float]], better: str
) -> float | None:
    """new/base of the fastest repeats (the 95th percentile of a throughput, the 5th of a
    time), pooled over runs; ``None`` with too few repeats to tell.

    Another process sharing the CPU slows some repeats (those it overlaps) and leaves others
    nearly untouched; a slower code path slows every repeat, the fastest included.
    """
    pooled_base = np.concatenate([np.asarray(r, dtype=float) for r in base])
    pooled_new = np.concatenate([np.asarray(r, dtype=float) for r in new])
    if min(pooled_base.size, pooled_new.size) < FAST_REPEATS_MIN:
        return None
    q = 95 if better == "higher" else 5
    return float(np.percentile(pooled_new, q) / np.percentile(pooled_base, q))


@dataclass
class _Cells:
    """The unreadable cells of one matched row: metric → the text found, per side."""

    base: dict[str, str]
    new: dict[str, str]

    def of(self, metric: str) -> tuple[str, str]:
        """(baseline text, new text) of ``metric``'s cells; empty where readable."""
        return self.base.get(metric, ""), self.new.get(metric, "")


def _suite_notes(base: ResultSet, new: ResultSet) -> list[str]:
    """A line when the two sets were made from different suite texts."""
    if base.kind != "benchkit" or not base.suite_text or not new.suite_text:
        return []
    if base.suite_text == new.suite_text:
        return []

    def name(side: ResultSet) -> str:
        suite = side.meta.get("suite") if isinstance(side.meta.get("suite"), dict) else {}
        return str(suite.get("path") or suite.get("name") or side.label)

    return [
        f"the result sets come from different suite texts ({name(base)} → {name(new)}): rows "
        "are matched on their keys; figures of runs whose recipe or target differ are marked "
        "not comparable"
    ]
