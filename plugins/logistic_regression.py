"""``logistic_regression``: the lecture's admissions model, GRE and GPA → admitted or not.

The source fits scikit-learn's ``LogisticRegression(max_iter=1000)`` (lbfgs, an L2 penalty
with C = 1, the intercept unpenalised) to a 400-row table and prints the coefficients
``[[0.00276914 0.68500788]]`` and the intercept ``[-4.7569233]``. Here:

- dataset ``admissions``: the two features standardised (mean 0, standard deviation 1 over the
  table, as scikit-learn's ``StandardScaler``), the 0/1 label as the target. By default a
  seeded synthetic table of 400 applicants: GRE and GPA drawn near the published table's
  (GRE 588 ± 116 in steps of 20 within 200–800, GPA 3.39 ± 0.38 within 2.26–4.0, correlation
  0.38), the label drawn from the logistic law with the source's coefficients. The table is
  drawn from its own generator (option ``sample_seed``), so every run seed trains on the same
  400 applicants and only the initial weights differ. ``path`` reads the real table instead: a
  CSV file with columns ``admit``, ``gre`` and ``gpa`` (others, such as ``rank``, are ignored).
- model ``logistic_regression``: ``nn.Linear(2, 1)`` on the standardised features, trained with
  ``bce_with_logits``, full batch. With ``penalty = "l2"`` (the default, as scikit-learn's) the
  gradient of scikit-learn's penalty ``||w||² / (2 C)`` on the *raw-scale* coefficients, per
  sample, is added to the weight's gradient, so the optimum is scikit-learn's; the loss curve
  is the log loss alone. ``penalty = "none"`` fits the unpenalised maximum likelihood.
- metrics: ``accuracy`` on the table it was fitted to (as the source reports it), and the
  learned coefficients mapped back to the raw scale: ``coef_gre``, ``coef_gpa``,
  ``intercept``.

The penalty is added to the gradient, not to the loss, so a precision that scales the loss
(``amp_fp16``'s gradient scaler) scales the data term's gradient and not the penalty's: there
the penalty is weaker by the scale factor. Compare coefficients under ``amp_fp16`` with
``penalty = "none"``.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import torch
from torch import nn

import benchkit
from benchkit import Data, Metric, Recipe, Split
from benchkit.errors import BenchkitError

#: The source's fitted coefficients: GRE, GPA and the intercept (scikit-learn, C = 1).
SOURCE_COEFFICIENTS = (0.00276914, 0.68500788, -4.7569233)
APPLICANTS = 400
FEATURES = ("gre", "gpa")
#: The synthetic table's feature law, near the published table's.
GRE_MEAN, GRE_STD, GRE_RANGE, GRE_STEP = 588.0, 116.0, (200.0, 800.0), 20.0
GPA_MEAN, GPA_STD, GPA_RANGE = 3.39, 0.38, (2.26, 4.0)
CORRELATION = 0.38

#: Plain gradient descent (full batch) on standardised features: README.md ("Logistic
#: regression on admissions") says why these reach scikit-learn's optimum.
RECIPE = Recipe(loss="bce_with_logits", optimizer="sgd", lr=2.0, epochs=100)


def synthetic_table(sample_seed: int) -> torch.Tensor:
    """``APPLICANTS`` rows of (admit, gre, gpa), float64, drawn from a generator seeded with
    ``sample_seed``; the label follows the logistic law with :data:`SOURCE_COEFFICIENTS`."""
    gen = torch.Generator().manual_seed(sample_seed)
    z = torch.randn(APPLICANTS, 2, generator=gen, dtype=torch.float64)
    gre = GRE_MEAN + GRE_STD * z[:, 0]
    gpa = GPA_MEAN + GPA_STD * (CORRELATION * z[:, 0] + math.sqrt(1 - CORRELATION**2) * z[:, 1])
    gre = (gre / GRE_STEP).round().clamp(*(r / GRE_STEP for r in GRE_RANGE)) * GRE_STEP
    gpa = (gpa.clamp(*GPA_RANGE) * 100).round() / 100
    w_gre, w_gpa, b = SOURCE_COEFFICIENTS
    probability = torch.sigmoid(b + w_gre * gre + w_gpa * gpa)
    admit = (torch.rand(APPLICANTS, generator=gen, dtype=torch.float64) < probability).double()
    return torch.stack([admit, gre, gpa], dim=1)


def read_table(path: str) -> torch.Tensor:
    """The rows of (admit, gre, gpa) of a CSV file, float64.

    :raises BenchkitError: the file is missing or unreadable, lacks a column, holds a value
        that is not a number, an admit value other than 0 or 1, or no rows.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise BenchkitError(
            f"admissions: {file}: no such file (options.path names a CSV file with columns "
            "admit, gre, gpa)"
        )
    try:
        with file.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = [c.strip() for c in reader.fieldnames or []]
            missing = [c for c in ("admit", *FEATURES) if c not in columns]
            if missing:
                raise BenchkitError(
                    f"admissions: {file}: no column {', '.join(map(repr, missing))} (columns "
                    f"found: {', '.join(columns) or 'none'}); the file needs admit, gre, gpa"
                )
            rows = []
            for line, raw in enumerate(reader, start=2):
                row = {k.strip(): v for k, v in raw.items() if k is not None}
                rows.append([_number(file, line, row, c) for c in ("admit", *FEATURES)])
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise BenchkitError(f"admissions: {file}: cannot read it as CSV: {exc}") from None
    if not rows:
        raise BenchkitError(f"admissions: {file}: no rows below the header")
    table = torch.tensor(rows, dtype=torch.float64)
    bad = ((table[:, 0] != 0) & (table[:, 0] != 1)).nonzero()
    if len(bad):
        line = int(bad[0, 0]) + 2
        raise BenchkitError(
            f"admissions: {file}: line {line}: admit is {table[line - 2, 0]:g}; write 0 or 1"
        )
    return table


def _number(file: Path, line: int, row: dict[str, str | None], column: str) -> float:
    text = (row.get(column) or "").strip()
    try:
        value = float(text)
    except ValueError:
        raise BenchkitError(
            f"admissions: {file}: line {line}: {column} value {text!r} is not a number"
        ) from None
    if not math.isfinite(value):
        raise BenchkitError(f"admissions: {file}: line {line}: {column} value {text!r}")
    return value


def admissions(options: dict) -> Data:
    """The table (synthetic or ``path``'s), features standardised, the label as the target."""
    table = (
        read_table(options["path"]) if options["path"] else synthetic_table(options["sample_seed"])
    )
    raw = table[:, 1:]
    mean, std = raw.mean(0), raw.std(0, unbiased=False)
    if (std == 0).any():
        constant = FEATURES[int((std == 0).nonzero()[0, 0])]
        raise BenchkitError(f"admissions: every row has the same {constant}: nothing to fit")
    inputs = ((raw - mean) / std).float()
    return Data(
        train=Split((inputs,), table[:, :1].float()),
        info={"in_features": 2, "mean": mean, "std": std, "features": FEATURES},
    )


class PenalisedLinear(nn.Linear):
    """``nn.Linear(features, 1)`` whose weight's gradient gains ``l2 * weight`` (one ``l2``
    per input feature), the gradient of ``sum(l2 * weight**2) / 2``."""

    def __init__(self, in_features: int, l2: torch.Tensor) -> None:
        super().__init__(in_features, 1)
        self.register_buffer("l2", l2.reshape(1, in_features).float())
        if bool((l2 != 0).any()):
            self.weight.register_hook(self._add_penalty)

    def _add_penalty(self, grad: torch.Tensor) -> torch.Tensor:
        return grad + self.l2.to(grad.dtype) * self.weight.detach().to(grad.dtype)


def build(data: Data, options: dict) -> nn.Module:
    """The linear logit on standardised features, with scikit-learn's penalty when asked.

    scikit-learn minimises ``||w||² / 2 + C · Σ log loss`` over the raw coefficients ``w``;
    divided by ``C · n`` that is the mean log loss (the recipe's loss) plus
    ``||w||² / (2 C n)``. A raw coefficient is the standardised one over its feature's
    standard deviation ``s``, so the penalty on a standardised weight is
    ``l2 = 1 / (C · n · s²)``.
    """
    penalty, c = options["penalty"], options["C"]
    if penalty not in ("l2", "none"):
        raise BenchkitError(f"logistic_regression: penalty {penalty!r}: write 'l2' or 'none'")
    if penalty == "l2" and not c > 0:
        raise BenchkitError(f"logistic_regression: C must be positive, got {c}")
    std = data.info["std"]
    n = len(data.train)
    l2 = 1.0 / (c * n * std**2) if penalty == "l2" else torch.zeros_like(std)
    return PenalisedLinear(data.info["in_features"], l2)


def raw_coefficients(model: nn.Module, data: Data) -> dict[str, float]:
    """The learned weights and bias mapped back to the raw features (float64)."""
    weight = model.weight.detach().double().cpu().reshape(-1) / data.info["std"]
    intercept = float(model.bias.detach().double().cpu()[0] - (weight * data.info["mean"]).sum())
    out = {f"coef_{name}": float(w) for name, w in zip(data.info["features"], weight, strict=True)}
    out["intercept"] = intercept
    return out


def evaluate(model: nn.Module, data: Data, context) -> dict[str, float]:
    """Accuracy on the fitted table (logit > 0 means admitted) and the raw-scale
    coefficients."""
    logits = model(*data.train.inputs).float()
    predicted = (logits > 0).float()
    accuracy = float((predicted == data.train.target.float()).float().mean())
    return {"accuracy": accuracy, **raw_coefficients(model, data)}


@benchkit.hookimpl
def benchkit_register_datasets(register):
    """The admissions table."""
    register(
        "admissions",
        admissions,
        options={"path": None, "sample_seed": 0},
        description="400 applicants: GRE, GPA → admit (seeded synthetic from the source's fit, "
        "or your CSV: admit, gre, gpa); features standardised",
    )


@benchkit.hookimpl
def benchkit_register_models(register):
    """Logistic regression with the recipe that reaches scikit-learn's optimum."""
    register(
        "logistic_regression",
        build,
        datasets={"admissions": RECIPE},
        evaluate=evaluate,
        options={"penalty": "l2", "C": 1.0},
        metrics={
            "accuracy": Metric(
                better="higher", description="share classified right, on the fitted table"
            ),
            "coef_gre": Metric(description="GRE coefficient, raw scale (per GRE point)"),
            "coef_gpa": Metric(description="GPA coefficient, raw scale (per GPA point)"),
            "intercept": Metric(description="intercept, raw scale"),
        },
        description="nn.Linear(2, 1) on standardised GRE, GPA; scikit-learn's L2 (C = 1)",
    )
