"""Convergence criteria: conditions on a loss curve, and the first epoch each is met.

A single target cannot tell reaching a tolerance apart from reaching exactly zero, and only the
second depends on the number format's resolution. A suite therefore lists several::

    criteria = ["loss <= 1e-4", "loss <= 1e-8", "loss == 0", "relative_loss <= 1e-6"]

Each is ``SERIES OP VALUE``: ``loss`` (training loss), ``valid_loss``, or ``relative_loss``
(training loss divided by the loss of epoch 0); ``<=``, ``<`` or ``==``; a number.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

SERIES = ("loss", "valid_loss", "relative_loss")
_PATTERN = re.compile(r"^\s*([a-z_]+)\s*(<=|<|==)\s*(\S+)\s*$")


@dataclass(frozen=True)
class Criterion:
    """One condition on a curve; ``text`` is its canonical spelling (``loss <= 1e-06``)."""

    series: str
    op: str
    value: float

    @property
    def text(self) -> str:
        """Canonical spelling, used as the key in ``criteria.csv`` and in claims."""
        return f"{self.series} {self.op} {self.value:g}"

    def met(self, x: float) -> bool:
        """Whether one value of the series satisfies the condition (NaN never does)."""
        if self.op == "<=":
            return x <= self.value
        if self.op == "<":
            return x < self.value
        return x == self.value

    def first_epoch(self, loss: Sequence[float], valid_loss: Sequence[float]) -> int | None:
        """The first epoch at which the condition holds, or ``None``."""
        if self.series == "valid_loss":
            values: Sequence[float] = valid_loss
        elif self.series == "relative_loss":
            if not loss or not math.isfinite(loss[0]) or loss[0] == 0:
                return None
            values = [v / loss[0] for v in loss]
        else:
            values = loss
        return next((i for i, v in enumerate(values) if self.met(v)), None)


def parse_criterion(text: str) -> Criterion:
    """``"loss <= 1e-6"`` → :class:`Criterion`; a :class:`ValueError` says what is wrong."""
    match = _PATTERN.match(text)
    if not match:
        raise ValueError(f"criterion {text!r} must read SERIES OP VALUE, as in 'loss <= 1e-6'")
    series, op, raw = match.groups()
    if series not in SERIES:
        raise ValueError(f"criterion {text!r}: series {series!r} is not one of {', '.join(SERIES)}")
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"criterion {text!r}: {raw!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"criterion {text!r}: the value must be finite")
    return Criterion(series, op, value)
