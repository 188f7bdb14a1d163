"""Declared metrics: what a model's quality figures mean, so comparisons need not guess.

A model registers ``metrics={"name": Metric(...)}`` beside its ``evaluate`` function. Each
result set records the declarations of the models it ran (``run.json``, key ``metrics``), and
``benchkit compare`` judges a declared metric by its declaration before any rule it would read
from the metric's name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

BETTER = ("higher", "lower", "none")
KINDS = ("deterministic", "noisy")


@dataclass(frozen=True)
class Metric:
    """What one quality figure of a model means.

    :param better: ``"higher"`` (accuracy), ``"lower"`` (an error) or ``"none"`` (a learned
        coefficient: any change is a change, neither better nor worse).
    :param kind: ``"deterministic"`` (the same for the same seed on the same machine: compared
        exactly there, within a tolerance elsewhere) or ``"noisy"`` (a timing: compared by the
        median over seeds with a confidence interval).
    :param description: one line for ``benchkit show`` and reports.
    """

    better: str = "none"
    kind: str = "deterministic"
    description: str = ""

    def __post_init__(self) -> None:
        if self.better not in BETTER:
            raise ValueError(
                f"Metric(better={self.better!r}): write one of {', '.join(map(repr, BETTER))}"
            )
        if self.kind not in KINDS:
            raise ValueError(
                f"Metric(kind={self.kind!r}): write one of {', '.join(map(repr, KINDS))}"
            )
        if not isinstance(self.description, str):
            raise TypeError(f"Metric(description=...) takes a string, got {self.description!r}")

    def as_dict(self) -> dict[str, str]:
        """The declaration as ``run.json`` records it."""
        return asdict(self)


def declared_metrics(registry: Any, models: Iterable[str]) -> dict[str, dict[str, dict[str, str]]]:
    """``{model: {metric: {"better", "kind", "description"}}}`` for the models a suite ran, as
    ``run.json`` records it (models that declare nothing are left out)."""
    out: dict[str, dict[str, dict[str, str]]] = {}
    for model in sorted(set(models)):
        entry = registry.entries["model"].get(model)
        if entry is not None and entry.metrics:
            out[model] = {name: metric.as_dict() for name, metric in entry.metrics.items()}
    return out


def read_declarations(meta: Mapping[str, Any]) -> dict[str, dict[str, Metric]]:
    """The declarations a result set's ``run.json`` recorded, by model; entries that are not
    well-formed (written by a newer benchkit, edited by hand) are left out, so the metric falls
    back to the rules read from its name."""
    found: dict[str, dict[str, Metric]] = {}
    table = meta.get("metrics")
    if not isinstance(table, Mapping):
        return found
    for model, metrics in table.items():
        if not isinstance(metrics, Mapping):
            continue
        for name, spec in metrics.items():
            if not isinstance(spec, Mapping):
                continue
            try:
                metric = Metric(
                    better=spec.get("better", "none"),
                    kind=spec.get("kind", "deterministic"),
                    description=spec.get("description", ""),
                )
            except (TypeError, ValueError):
                continue
            found.setdefault(str(model), {})[str(name)] = metric
    return found
