"""``rnn``: a one-layer Elman RNN time-series forecaster on a toy ramp and on daily closing prices.

The model reads a sequence of feature vectors, keeps the RNN's output at the last time step and
maps it to one value: the next (scaled) value of the series. ``nn.RNN(in, 50)`` (tanh) →
``nn.Linear(50, 1)``; with one input feature that is 2701 parameters.

- ``ramp``: the values 10, 20, …, 90 min-max scaled to [0, 1] over the whole series (the
  source's toy, where nothing is held out of the scaler); sequences of one time step, each value
  predicting the next. As the lecture does, the series is cut before it is windowed: its first
  80 % of the values (7) are train and validation, of which the first 80 % (5) train and the
  rest (2) validate; the last 2 values test. Each part gives one sample fewer than it has
  values: 4 train, 1 validation and 1 test sample (``docs/workloads.md``).
- ``prices``: a daily closing-price series. Features per day are [close, close 5 days earlier,
  10-day rolling mean, 10-day rolling std]; the first days, whose lag or rolling window is
  incomplete, are dropped. Windows of ``window`` (20) days predict the next day's scaled close.
  The first 80 % of the windows (chronologically) are the source's training part and the rest
  are test. The source had no validation set; here the last 10 % of the training part is
  carved off as ``valid`` so the curve has a validation loss (so ``train`` is 72 % of the
  windows). Each feature is min-max scaled with the minimum and maximum of the days the
  ``train`` windows and targets cover, never the later ones (no look-ahead), so validation and
  test values may fall outside [0, 1].

  With ``path`` unset the series is synthetic, drawn from torch's global RNG (which benchkit
  seeds per run), ``days`` long: a geometric random walk with drift whose volatility switches
  between a calm and a turbulent regime, plus a slow cyclical drift so the series is not pure
  noise. With ``path`` it is read from a CSV file with a date and a close column (e.g. a
  stock's daily export; column names are the options ``date_column`` and ``close_column``).
  Rows are sorted by date; empty close cells (and pandas' usual missing markers such as
  ``null``) are gaps and are dropped; anything else that is not a number is an error naming
  the line. ``days`` applies to the synthetic series only.

The quality metrics ``test_mae``, ``test_rmse`` and ``test_r2`` compare the test predictions,
de-normalised back to the series' own units (prices), with the true values, in float64.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import torch
from torch import nn

import benchkit
import benchkit.errors
from benchkit import Data, Metric, Recipe, Split

RAMP = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0]
LAG = 5
ROLLING = 10
#: Days lost at the start of the series to the lag and the rolling window.
WARMUP = max(LAG, ROLLING - 1)
TRAIN_FRACTION = 0.8
#: Share of ramp's training values held out for validation (cut before windowing).
RAMP_VALID_FRACTION = 0.2
#: Share of prices' training part held out for validation (not in the source).
VALID_FRACTION = 0.1
#: The fewest windows ``prices`` accepts, so train, validation and test are all non-empty.
MIN_WINDOWS = 10

PRICES_OPTIONS = {
    "path": None,
    "date_column": "Date",
    "close_column": "Close",
    "days": 600,
    "window": 20,
}


# --- ramp -------------------------------------------------------------------------------------


def _cut(n: int, fraction: float) -> int:
    """Index splitting ``n`` ordered samples into a first ``fraction`` and the rest, keeping
    at least one sample on each side."""
    return min(max(math.floor(n * fraction), 1), n - 1)


def _windows(values: torch.Tensor) -> Split:
    """Each value (one time step of one feature) predicts the next: len(values) - 1 samples."""
    return Split((values[:-1].reshape(-1, 1, 1),), values[1:].reshape(-1, 1))


def ramp(options: dict) -> Data:
    """10, 20, …, 90 scaled to [0, 1], cut into train / validation / test values (5 / 2 / 2)
    before windowing; each value (one time step) predicts the next: 4 / 1 / 1 samples."""
    values = torch.tensor(RAMP)
    low, high = values.min(), values.max()
    scaled = (values - low) / (high - low)
    trainval = _cut(len(values), TRAIN_FRACTION)
    train = _cut(trainval, 1 - RAMP_VALID_FRACTION)
    return Data(
        train=_windows(scaled[:train]),
        valid=_windows(scaled[train:trainval]),
        test=_windows(scaled[trainval:]),
        info={
            "in_features": 1,
            "target_min": float(low),
            "target_max": float(high),
            "test_actual": values[trainval + 1 :].double(),
        },
    )


# --- prices -----------------------------------------------------------------------------------


def synthetic_closes(days: int) -> torch.Tensor:
    """A seeded synthetic daily close series (float64), drawn from torch's global RNG.

    Log returns are drift + a slow cycle + noise whose volatility follows a two-state
    (calm / turbulent) Markov chain; the price starts at 100.
    """
    calm, turbulent, switch = 0.010, 0.025, 0.02
    drift = 2e-4
    t = torch.arange(days, dtype=torch.float64)
    phase = float(torch.rand(()) * 2 * math.pi)
    cycle = 1.5e-3 * torch.sin(2 * math.pi * t / 120 + phase)
    flips = torch.rand(days, dtype=torch.float64) < switch
    regime = torch.cumsum(flips.long(), 0) % 2  # 0 calm, 1 turbulent
    vol = torch.where(regime == 0, torch.tensor(calm, dtype=torch.float64), turbulent)
    noise = torch.randn(days, dtype=torch.float64)
    log_returns = drift + cycle + vol * noise
    log_returns[0] = 0.0
    return 100.0 * torch.exp(torch.cumsum(log_returns, 0))


def read_closes(path: str, date_column: str, close_column: str) -> torch.Tensor:
    """Closing prices from a CSV file, sorted by date, gaps dropped (float64).

    :raises benchkit.errors.BenchkitError: the file is missing or unreadable, lacks a column,
        has a date or close value that cannot be parsed.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise benchkit.errors.BenchkitError(f"prices: {file}: no such file")
    try:
        frame = pd.read_csv(file, dtype={close_column: str, date_column: str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise benchkit.errors.BenchkitError(
            f"prices: {file}: cannot read it as CSV: {exc}"
        ) from None
    missing = [c for c in (date_column, close_column) if c not in frame.columns]
    if missing:
        found = ", ".join(map(str, frame.columns)) or "none"
        raise benchkit.errors.BenchkitError(
            f"prices: {file}: no column {', '.join(map(repr, missing))} (columns found: {found});"
            " set the date_column / close_column options to the file's names"
        )
    raw_close = frame[close_column]
    close = pd.to_numeric(raw_close.str.strip(), errors="coerce")
    bad = close.isna() & raw_close.notna() & (raw_close.str.strip() != "")
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise benchkit.errors.BenchkitError(
            f"prices: {file}: line {row + 2}: close value {raw_close.iloc[row]!r} "
            f"in column {close_column!r} is not a number"
        )
    dates = pd.to_datetime(frame[date_column], errors="coerce")
    bad = dates.isna() & frame[date_column].notna()
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise benchkit.errors.BenchkitError(
            f"prices: {file}: line {row + 2}: date {frame[date_column].iloc[row]!r} "
            f"in column {date_column!r} cannot be parsed"
        )
    table = pd.DataFrame({"date": dates, "close": close}).dropna()
    table = table.sort_values("date", kind="stable")
    return torch.tensor(table["close"].to_numpy(dtype="float64"))


def features(closes: torch.Tensor) -> torch.Tensor:
    """[close, close lagged 5, 10-day rolling mean, 10-day rolling std] per day, with the first
    days (incomplete lag or window) dropped. float64, shape (days - WARMUP, 4)."""
    close = pd.Series(closes.numpy())
    table = pd.DataFrame(
        {
            "close": close,
            "lag": close.shift(LAG),
            "mean": close.rolling(ROLLING).mean(),
            "std": close.rolling(ROLLING).std(),
        }
    ).dropna()
    return torch.tensor(table.to_numpy(dtype="float64"))


def prices(options: dict) -> Data:
    """Windows of ``window`` days of four scaled features → the next day's scaled close."""
    window = int(options["window"])
    if window < 1:
        raise benchkit.errors.BenchkitError(f"prices: window must be at least 1, got {window}")
    path = options.get("path")
    if path:
        closes = read_closes(str(path), options["date_column"], options["close_column"])
        where = f"prices: {path}"
    else:
        closes = synthetic_closes(int(options["days"]))
        where = "prices (synthetic)"
    needed = WARMUP + window + MIN_WINDOWS
    if len(closes) < needed:
        raise benchkit.errors.BenchkitError(
            f"{where}: {len(closes)} usable days, but at least {needed} are needed "
            f"({WARMUP} for the lag and rolling features, {window} for the first window, "
            f"{MIN_WINDOWS} windows to split into train, validation and test)"
        )
    table = features(closes)
    count = len(table) - window
    trainval = _cut(count, TRAIN_FRACTION)
    train = _cut(trainval, 1 - VALID_FRACTION)
    fitted = table[: train + window]  # the days the training windows and targets cover
    low, high = fitted.min(0).values, fitted.max(0).values
    scaled = (table - low) / (high - low).clamp_min(1e-12)
    x = torch.stack([scaled[i : i + window] for i in range(count)]).float()
    y = scaled[window:, :1].float()
    return Data(
        train=Split((x[:train],), y[:train]),
        valid=Split((x[train:trainval],), y[train:trainval]),
        test=Split((x[trainval:],), y[trainval:]),
        info={
            "in_features": table.shape[1],
            "window": window,
            "target_min": float(low[0]),
            "target_max": float(high[0]),
            "test_actual": table[window + trainval :, 0].clone(),
            "closes": closes,
        },
    )


# --- model ------------------------------------------------------------------------------------


class Forecaster(nn.Module):
    """``nn.RNN`` (tanh, batch first) whose last time step's output feeds ``nn.Linear(h, 1)``."""

    def __init__(self, in_features: int, hidden: int) -> None:
        super().__init__()
        self.rnn = nn.RNN(in_features, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, time, features) → (batch, 1)."""
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


def build(data: Data, options: dict) -> nn.Module:
    """``nn.RNN(in_features, hidden)`` → ``nn.Linear(hidden, 1)``."""
    return Forecaster(data.info.get("in_features", 1), options["hidden"])


def forecast_metrics(model: nn.Module, data: Data, context) -> dict[str, float]:
    """MAE, RMSE and R² of the test predictions in the series' own units (float64, CPU)."""
    if data.test is None or "test_actual" not in data.info:
        return {}
    predicted = model(*data.test.inputs).reshape(-1).double().cpu()
    low, high = data.info["target_min"], data.info["target_max"]
    predicted = predicted * (high - low) + low
    actual = data.info["test_actual"].double()
    error = predicted - actual
    total = torch.sum((actual - actual.mean()) ** 2)
    r2 = 1 - torch.sum(error**2) / total if total > 0 else torch.tensor(float("nan"))
    return {
        "test_mae": float(error.abs().mean()),
        "test_rmse": float(torch.sqrt(torch.mean(error**2))),
        "test_r2": float(r2),
    }


@benchkit.hookimpl
def benchkit_register_datasets(register):
    """The ramp toy and the daily closing-price series."""
    register(
        "ramp",
        ramp,
        description="10, 20, …, 90 scaled; one step → next value; 4 train / 1 valid / 1 test",
    )
    register(
        "prices",
        prices,
        options=dict(PRICES_OPTIONS),
        description="daily closes (synthetic, or a Date/Close CSV from path); 4 features, "
        "20-day windows → next close",
    )


@benchkit.hookimpl
def benchkit_register_models(register):
    """The RNN forecaster with the source's recipe per dataset."""
    register(
        "rnn",
        build,
        datasets={
            "ramp": Recipe(loss="mse", optimizer="adam", lr=None, epochs=10, batch_size=1),
            "prices": Recipe(
                loss="mse", optimizer="adam", lr=1e-3, epochs=50, batch_size=32, shuffle=True
            ),
        },
        evaluate=forecast_metrics,
        metrics={
            "test_mae": Metric(better="lower", description="test mean absolute error, prices"),
            "test_rmse": Metric(better="lower", description="test root mean squared error"),
            "test_r2": Metric(better="higher", description="test coefficient of determination"),
        },
        options={"hidden": 50},
        description="nn.RNN(in, 50) tanh, last step → Linear(50, 1): next-value forecaster",
    )
