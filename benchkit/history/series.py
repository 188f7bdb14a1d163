"""A metric over commits, per workload and environment, and the steps in it.

:func:`build_series` turns the history (:func:`benchkit.history.load`) into one
:class:`Series` per suite, workload and environment fingerprint: the commits in order, with
the values their runs measured. Then, by the metric's kind (the rule table of
:mod:`benchkit.compare`):

- **noisy** metrics (throughput, wall time) and **memory**: the per-commit medians go to the
  step detector (:mod:`benchkit.history.step_detect`); each step gets the ratio of the two
  levels' medians with a 95 % bootstrap interval (the per-commit medians either side,
  resampled: :func:`benchkit.stats.bootstrap_ratio_of_medians`; the spread within a commit,
  e.g. between seeds, is already in its median), and is a *regression* when it moved the
  worse way and the interval excludes no change;
- **deterministic** metrics (epochs to a target, losses, quality metrics): no noise to see
  through, so every commit whose values differ from the previous commit's is a step, at
  exactly that commit.

Commits are ordered by committer time where git knew the commit when it was recorded, else
by the time the run started. Result sets from a dirty tree are left out unless asked for:
they are not any commit's. A step's ``exact`` flag says that the last commit at the old level
is the first parent of the first commit at the new one, so the change is that one commit;
otherwise it lies in the git range ``before..after``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from benchkit.compare import never_is_worst, rule_for
from benchkit.errors import BenchkitError
from benchkit.history.step_detect import DEFAULT_BETA, DEFAULT_MIN_SIZE, detect, segment

SHORT = 10  # characters of a commit hash shown


@dataclass
class Point:
    """One commit of a series: the values of its runs (every seed, every result set
    recorded at that commit) and their median."""

    commit: str
    parent: str | None
    when: str
    values: list[float | str]
    by_seed: dict[str, float | str] = field(default_factory=dict)  # deterministic metrics

    @property
    def short(self) -> str:
        """The commit's hash, shortened."""
        return self.commit[:SHORT]

    @property
    def median(self) -> float:
        """Median of the values (NaN when none is a number)."""
        numbers = [v for v in self.values if isinstance(v, float) and math.isfinite(v)]
        return float(np.median(numbers)) if numbers else math.nan


@dataclass
class Step:
    """A change of level between ``points[index - 1]`` and ``points[index]``.

    ``first``/``last``: the earliest and latest commit that could have started it (the
    detector's support interval; both ``after`` for a deterministic metric). ``ratio``,
    ``low``, ``high``: new level over old, with its 95 % interval (noisy metrics). ``verdict``:
    ``regressed``, ``improved``, ``changed`` (no better direction, or seeds moved both
    ways) or ``unclear`` (the interval includes no change). ``detail``: for a deterministic
    metric, which seeds changed and how.
    """

    index: int
    before: str
    after: str
    exact: bool
    first: str
    last: str
    level_before: float
    level_after: float
    ratio: float | None
    low: float | None
    high: float | None
    verdict: str
    detail: str = ""

    @property
    def commits(self) -> str:
        """The commit (when exact) or git range the change lies in."""
        if self.exact:
            return self.after[:SHORT]
        return f"{self.before[:SHORT]}..{self.after[:SHORT]}"


@dataclass
class Series:
    """A metric over commits for one suite, workload and environment."""

    suite: str
    workload: str
    fingerprint: str
    metric: str
    kind: str
    better: str
    points: list[Point]
    steps: list[Step] = field(default_factory=list)
    levels: list[tuple[int, int, float]] = field(default_factory=list)  # start, stop, level
    note: str = ""

    @property
    def title(self) -> str:
        """``workload (suite, environment)``."""
        return f"{self.workload} ({self.suite}, env {self.fingerprint})"

    @property
    def regressions(self) -> list[Step]:
        """The steps that made the metric worse."""
        return [s for s in self.steps if s.verdict == "regressed"]


_FILTERS = ("model", "dataset", "precision", "device")


def select(
    frame: pd.DataFrame,
    metric: str,
    filters: dict[str, Sequence[str]] | None = None,
    suite: str | None = None,
    include_dirty: bool = False,
) -> pd.DataFrame:
    """The rows of the history that hold ``metric`` and pass the filters.

    :raises BenchkitError: the metric is not recorded, or nothing passes the filters.
    """
    if frame.empty:
        raise BenchkitError("the history database holds no runs yet")
    if metric not in frame.columns:
        known = sorted(c for c in frame.columns if c not in _LABELS)
        raise BenchkitError(f"no metric {metric!r} in the history; recorded: {', '.join(known)}")
    rows = frame[frame[metric].notna()]
    for column, wanted in (filters or {}).items():
        if wanted:
            rows = rows[rows[column].isin(list(wanted))]
    if suite:
        rows = rows[rows["suite"] == suite]
    if not include_dirty:
        rows = rows[rows["dirty"] == 0]
    if rows.empty:
        asked = ", ".join(f"{k} {','.join(v)}" for k, v in (filters or {}).items() if v)
        raise BenchkitError(
            f"no recorded run has {metric}"
            + (f" for {asked}" if asked else "")
            + (f" in suite {suite}" if suite else "")
            + ("" if include_dirty else " (sets from dirty trees are left out: --include-dirty)")
        )
    return rows


_LABELS = {
    "run",
    "set_id",
    "commit",
    "parent",
    "commit_time",
    "dirty",
    "started_at",
    "suite",
    "suite_sha256",
    "kind",
    "set_environment",
    "finished",
    "set_path",
    "run_id",
    "workload",
    "model",
    "dataset",
    "precision",
    "device",
    "seed",
    "variant",
    "device_name",
    "status",
    "status_detail",
    "fingerprint",
}


def build_series(
    rows: pd.DataFrame,
    metric: str,
    beta: float = DEFAULT_BETA,
    min_size: int = DEFAULT_MIN_SIZE,
) -> list[Series]:
    """One :class:`Series` per suite, workload and fingerprint of ``rows`` (from
    :func:`select`), with its steps."""
    rule = rule_for(metric)
    out = []
    for (suite, workload, fp), group in rows.groupby(
        ["suite", "workload", "fingerprint"], sort=False
    ):
        series = Series(str(suite), str(workload), str(fp), metric, rule.kind, rule.better, [])
        if rule.kind in ("noisy", "memory"):
            series.points = _points(group[group["status"] == "ok"], metric, by_seed_wanted=False)
            _noisy_steps(series, beta, min_size)
        else:
            series.points = _points(group, metric, by_seed_wanted=True)
            _exact_steps(series)
        if series.points:
            out.append(series)
    return out


def _points(group: pd.DataFrame, metric: str, by_seed_wanted: bool) -> list[Point]:
    points: list[Point] = []
    for commit, runs in group.groupby("commit", sort=False):
        when = runs["commit_time"].dropna()
        started = str(runs["started_at"].min())
        parent = runs["parent"].dropna()
        if by_seed_wanted:
            runs = runs.sort_values(["seed", "started_at"])
        values = [_value(v) for v in runs[metric]]
        # a deterministic metric compares each seed's value; a re-run at the same commit
        # that agrees adds nothing, one that disagrees shows as a change of its own
        by_seed: dict[str, float | str] = {}
        if by_seed_wanted:
            for seed, value in zip(runs["seed"], values, strict=True):
                key = str(seed)
                while key in by_seed and _show(by_seed[key]) != _show(value):
                    key += "'"
                by_seed[key] = value
        points.append(
            Point(
                str(commit),
                str(parent.iloc[0]) if len(parent) else None,
                str(when.iloc[0]) if len(when) else started,
                values,
                by_seed,
            )
        )
    return points


def _value(value: object) -> float | str:
    if isinstance(value, str):
        return value
    return float(value) if value is not None and not pd.isna(value) else math.nan


def _show(value: float | str) -> str:
    return value if isinstance(value, str) else repr(value)


def _exact(points: list[Point], index: int) -> bool:
    return points[index].parent is not None and points[index].parent == points[index - 1].commit


def _direction(better: str, before: float, after: float) -> str:
    if better == "none" or not (math.isfinite(before) and math.isfinite(after)):
        return "changed"
    if after == before:
        return "changed"
    worse = after > before if better == "lower" else after < before
    return "regressed" if worse else "improved"


def _noisy_steps(series: Series, beta: float, min_size: int) -> None:
    points = [p for p in series.points if math.isfinite(p.median)]
    series.points = points
    if not points:
        return
    if len(points) < 2 * min_size:
        series.note = (
            f"{len(points)} commit{'s' * (len(points) != 1)}: steps need at least "
            f"{2 * min_size} ({min_size} on each side)"
        )
        series.levels = [(0, len(points), float(np.median([p.median for p in points])))]
        return
    medians = np.array([p.median for p in points])
    positive = bool((medians > 0).all())
    fit = (
        detect(medians, beta=beta, min_size=min_size)
        if positive
        else segment(medians, beta=beta, min_size=min_size)
    )
    bounds = [*fit.starts, len(points)]
    series.levels = [
        (a, b, level) for a, b, level in zip(bounds[:-1], bounds[1:], fit.levels, strict=True)
    ]
    for r, at in enumerate(fit.steps, start=1):
        left, right = bounds[r - 1], bounds[r + 1]
        # the levels' uncertainty as the detector sees it: commit to commit
        before = [[points[i].median] for i in range(left, at)]
        after = [[points[i].median] for i in range(at, right)]
        lo_index, hi_index = fit.support[r - 1]
        step = Step(
            index=at,
            before=points[at - 1].commit,
            after=points[at].commit,
            exact=_exact(points, at),
            first=points[lo_index].commit,
            last=points[hi_index].commit,
            level_before=fit.levels[r - 1],
            level_after=fit.levels[r],
            ratio=None,
            low=None,
            high=None,
            verdict="changed",
        )
        if positive:
            _interval(step, before, after, series.better)
        series.steps.append(step)


def _interval(step: Step, before: list[list[float]], after: list[list[float]], better: str) -> None:
    from benchkit.stats import bootstrap_ratio_of_medians

    try:
        interval = bootstrap_ratio_of_medians(before, after)
    except ValueError:
        return
    step.ratio, step.low, step.high = interval.ratio, interval.low, interval.high
    step.level_before, step.level_after = interval.medians
    verdict = _direction(better, *interval.medians)
    step.verdict = verdict if interval.excludes_one() or verdict == "changed" else "unclear"


def _same(a: float | str, b: float | str) -> bool:
    return _show(a) == _show(b)


def _seed_direction(better: str, before: float | str, after: float | str, metric: str) -> str:
    """How one seed's value moved: ``regressed``, ``improved`` or ``changed``."""
    if isinstance(before, str) or isinstance(after, str):
        return "changed"
    if never_is_worst(metric):  # an empty epoch means "never": worse than any epoch
        before = math.inf if math.isnan(before) else before
        after = math.inf if math.isnan(after) else after
    return _direction(better, before, after)


def _exact_steps(series: Series) -> None:
    points = series.points
    start = 0
    for i in range(1, len(points)):
        old, new = points[i - 1].by_seed, points[i].by_seed
        seeds = [k for k in dict.fromkeys([*old, *new]) if k in old and k in new]
        moved = [k for k in seeds if not _same(old[k], new[k])]
        if not moved and set(old) == set(new):
            continue
        directions = {_seed_direction(series.better, old[k], new[k], series.metric) for k in moved}
        verdict = directions.pop() if len(directions) == 1 else "changed"
        detail = ", ".join(
            f"seed {k}: {_fmt(old[k], series.metric)} → {_fmt(new[k], series.metric)}"
            for k in moved[:3]
        )
        if len(moved) > 3:
            detail += f" and {len(moved) - 3} more"
        if set(old) != set(new):
            detail = "; ".join(x for x in (detail, "other seeds measured") if x)
            verdict = verdict if moved else "changed"
        series.steps.append(
            Step(
                index=i,
                before=points[i - 1].commit,
                after=points[i].commit,
                exact=_exact(points, i),
                first=points[i].commit,
                last=points[i].commit,
                level_before=points[i - 1].median,
                level_after=points[i].median,
                ratio=None,
                low=None,
                high=None,
                verdict=verdict,
                detail=detail,
            )
        )
        series.levels.append((start, i, points[i - 1].median))
        start = i
    if points:
        series.levels.append((start, len(points), points[-1].median))


def _fmt(value: float | str, metric: str) -> str:
    if isinstance(value, str):
        return value
    if math.isnan(value):
        return "never" if never_is_worst(metric) else "-"
    return f"{value:.6g}"
