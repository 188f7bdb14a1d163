"""The ``rnn`` plugin: the forecaster's shape and size, the ramp and prices datasets, the CSV
loader's errors and the test metrics. Factories are called directly, without the runner."""

from __future__ import annotations

import benchkit_plugins.rnn as rnn
import pandas as pd
import pytest
import torch
from torch import nn

from benchkit import Data, EvalContext
from benchkit.device import Device
from benchkit.errors import BenchkitError
from benchkit.precision import Precision
from benchkit.registry import PluginHost, PluginInfo
from benchkit.testing import check_plugin, isolated_registry, run_quick

WINDOW = 20
NEEDED = rnn.WARMUP + WINDOW + rnn.MIN_WINDOWS


def prices(seed: int = 0, **options) -> Data:
    torch.manual_seed(seed)
    return rnn.prices({**rnn.PRICES_OPTIONS, **options})


def write_csv(path, rows, header="Date,Close"):
    """A CSV file with ``header`` and one ``date,close`` line per row."""
    path.write_text(header + "\n" + "".join(f"{d},{c}\n" for d, c in rows))
    return path


def daily_rows(n: int, start: float = 100.0, step: float = 1.0):
    """``n`` consecutive days from 2020-01-01 with closes start, start + step, …"""
    dates = [str(d.date()) for d in pd.date_range("2020-01-01", periods=n)]
    return [(d, start + step * i) for i, d in enumerate(dates)]


def test_registration_goes_through_the_registry():
    host = PluginHost()
    host.add(rnn, PluginInfo(name="rnn"))
    registry = host.collect()
    assert not registry.failures()
    assert registry.names("dataset") == ["prices", "ramp"]
    model = registry.get("model", "rnn")
    ramp, price = model.datasets["ramp"], model.datasets["prices"]
    assert (ramp.loss, ramp.optimizer, ramp.lr, ramp.batch_size, ramp.epochs, ramp.shuffle) == (
        "mse",
        "adam",
        None,
        1,
        10,
        False,
    )
    assert (price.loss, price.lr, price.batch_size, price.epochs, price.shuffle) == (
        "mse",
        1e-3,
        32,
        50,
        True,
    )
    assert registry.get("dataset", "prices").options == rnn.PRICES_OPTIONS


def test_model_has_2701_parameters_with_one_input():
    model = rnn.build(rnn.ramp({}), {"hidden": 50})
    assert sum(p.numel() for p in model.parameters()) == 2701
    assert isinstance(model.rnn, nn.RNN) and model.rnn.nonlinearity == "tanh"
    assert model.rnn.batch_first and model.rnn.hidden_size == 50


def test_forward_shapes():
    data = prices(days=200)
    model = rnn.build(data, {"hidden": 50})
    x = data.train.inputs[0][:7]
    assert x.shape == (7, WINDOW, 4)
    assert model(x).shape == (7, 1)
    ramp = rnn.ramp({})
    assert rnn.build(ramp, {"hidden": 50})(ramp.train.inputs[0]).shape == (4, 1)


def test_ramp_is_cut_before_windowing_as_the_lecture_does():
    data = rnn.ramp({})
    # values 10..50 train, 60, 70 validate, 80, 90 test: 4 / 1 / 1 windows
    assert (len(data.train), len(data.valid), len(data.test)) == (4, 1, 1)

    def unscaled(t):
        return (t.flatten() * 80 + 10).round().tolist()

    assert unscaled(data.train.inputs[0]) == [10, 20, 30, 40]
    assert unscaled(data.train.target) == [20, 30, 40, 50]
    assert (unscaled(data.valid.inputs[0]), unscaled(data.valid.target)) == ([60], [70])
    assert (unscaled(data.test.inputs[0]), unscaled(data.test.target)) == ([80], [90])
    assert data.test.target.item() == 1.0  # scaled over the whole series: (v - 10) / 80
    assert data.info["in_features"] == 1
    assert data.info["test_actual"].tolist() == [90.0]


def test_synthetic_prices_are_deterministic_per_seed():
    a, b, c = prices(0), prices(0), prices(1)
    for name in ("train", "valid", "test"):
        assert torch.equal(getattr(a, name).inputs[0], getattr(b, name).inputs[0])
        assert torch.equal(getattr(a, name).target, getattr(b, name).target)
    assert not torch.equal(a.train.inputs[0], c.train.inputs[0])
    assert torch.isfinite(a.info["closes"]).all() and (a.info["closes"] > 0).all()


def test_prices_splits_are_chronological():
    data = prices(0)
    days = rnn.PRICES_OPTIONS["days"]
    windows = days - rnn.WARMUP - WINDOW
    assert len(data.train) + len(data.valid) + len(data.test) == windows
    assert len(data.train) + len(data.valid) == int(0.8 * windows)
    assert len(data.valid) == int(0.8 * windows) - int(int(0.8 * windows) * 0.9)
    # consecutive windows overlap: window i+1 is window i shifted by one day
    x = torch.cat([data.train.inputs[0], data.valid.inputs[0], data.test.inputs[0]])
    assert torch.equal(x[1:, :-1], x[:-1, 1:])
    # the target of window i is the scaled close that starts the last row of window i+1
    y = torch.cat([data.train.target, data.valid.target, data.test.target])
    assert torch.equal(y[:-1, 0], x[1:, -1, 0])
    assert data.info["in_features"] == 4


def test_scaler_is_fitted_on_train_only(tmp_path):
    # a steadily rising series: later days exceed everything the training part saw
    path = write_csv(tmp_path / "up.csv", daily_rows(200))
    data = rnn.prices({**rnn.PRICES_OPTIONS, "path": str(path)})
    seen = torch.cat([data.train.inputs[0].reshape(-1, 4), data.train.target.repeat(1, 4)])
    assert seen[:, 0].min() == 0.0 and seen[:, 0].max() == 1.0
    assert data.train.inputs[0].min() >= 0 and data.train.inputs[0].max() <= 1
    assert data.test.target.min() > 1.0  # not squeezed into [0, 1]: no look-ahead
    assert data.valid.target.min() > 1.0
    # de-normalising the scaled targets gives the stored actual prices
    low, high = data.info["target_min"], data.info["target_max"]
    restored = data.test.target.double().flatten() * (high - low) + low
    assert torch.allclose(restored, data.info["test_actual"], atol=1e-3)


def test_csv_loader_reads_sorts_and_drops_gaps(tmp_path):
    rows = daily_rows(120)
    shuffled = rows[60:] + rows[:60]
    good = write_csv(tmp_path / "good.csv", rows)
    unsorted = write_csv(tmp_path / "unsorted.csv", shuffled)
    closes = rnn.read_closes(str(good), "Date", "Close")
    assert torch.equal(closes, rnn.read_closes(str(unsorted), "Date", "Close"))
    assert closes.dtype == torch.float64 and closes[0] == 100.0 and closes[-1] == 219.0
    gappy = write_csv(
        tmp_path / "gappy.csv", [*rows[:10], ("2021-01-01", ""), ("2021-01-02", "null"), *rows[10:]]
    )
    assert len(rnn.read_closes(str(gappy), "Date", "Close")) == 120
    renamed = write_csv(tmp_path / "renamed.csv", rows, header="Datum,Schluss")
    data = rnn.prices(
        {
            **rnn.PRICES_OPTIONS,
            "path": str(renamed),
            "date_column": "Datum",
            "close_column": "Schluss",
        }
    )
    assert len(data.train) > 0 and len(data.valid) > 0 and len(data.test) > 0


def test_csv_missing_file(tmp_path):
    with pytest.raises(BenchkitError, match=r"nope\.csv: no such file"):
        rnn.prices({**rnn.PRICES_OPTIONS, "path": str(tmp_path / "nope.csv")})


def test_csv_missing_column_lists_the_columns(tmp_path):
    path = write_csv(tmp_path / "cols.csv", daily_rows(80), header="Date,Price")
    with pytest.raises(
        BenchkitError,
        match=r"cols\.csv: no column 'Close' \(columns found: "
        r"Date, Price\)",
    ):
        rnn.prices({**rnn.PRICES_OPTIONS, "path": str(path)})


def test_csv_non_numeric_close_names_the_line(tmp_path):
    rows = daily_rows(80)
    rows[4] = (rows[4][0], "abc")
    path = write_csv(tmp_path / "bad.csv", rows)
    with pytest.raises(BenchkitError, match=r"bad\.csv: line 6: close value 'abc'"):
        rnn.prices({**rnn.PRICES_OPTIONS, "path": str(path)})


def test_csv_too_few_rows_says_how_many_are_needed(tmp_path):
    path = write_csv(tmp_path / "short.csv", daily_rows(NEEDED - 1))
    with pytest.raises(
        BenchkitError,
        match=rf"short\.csv: {NEEDED - 1} usable days, but at "
        rf"least {NEEDED} are needed",
    ):
        rnn.prices({**rnn.PRICES_OPTIONS, "path": str(path)})
    path = write_csv(tmp_path / "enough.csv", daily_rows(NEEDED))
    data = rnn.prices({**rnn.PRICES_OPTIONS, "path": str(path)})
    assert min(len(data.train), len(data.valid), len(data.test)) >= 1


def test_csv_bad_date_names_the_line(tmp_path):
    rows = daily_rows(80)
    rows[2] = ("someday", rows[2][1])
    path = write_csv(tmp_path / "dates.csv", rows)
    with pytest.raises(BenchkitError, match=r"dates\.csv: line 4: date 'someday'"):
        rnn.prices({**rnn.PRICES_OPTIONS, "path": str(path)})


class _Oracle(nn.Module):
    """Predicts the given values whatever the input."""

    def __init__(self, values: torch.Tensor) -> None:
        super().__init__()
        self.values = values

    def forward(self, x):
        return self.values.to(x.dtype)


def test_metrics_in_price_units():
    data = prices(0)
    context = EvalContext(Device(), Precision())
    perfect = rnn.forecast_metrics(_Oracle(data.test.target), data, context)
    assert perfect["test_mae"] < 1e-3 and perfect["test_r2"] > 0.999999
    shifted = data.test.target + 1.0 / (data.info["target_max"] - data.info["target_min"])
    off_by_one = rnn.forecast_metrics(_Oracle(shifted), data, context)  # one price unit too high
    assert off_by_one["test_mae"] == pytest.approx(1.0, abs=1e-3)
    assert off_by_one["test_rmse"] == pytest.approx(1.0, abs=1e-3)
    torch.manual_seed(0)
    model = rnn.build(data, {"hidden": 50}).eval()
    with torch.no_grad():
        metrics = rnn.forecast_metrics(model, data, context)
    assert set(metrics) == {"test_mae", "test_rmse", "test_r2"}
    assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values())


def test_a_few_epochs_lower_the_prices_loss():
    data = prices(0)
    torch.manual_seed(0)
    model = rnn.build(data, {"hidden": 50})
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = data.train.inputs[0], data.train.target

    def valid_loss():
        with torch.no_grad():
            return float(nn.functional.mse_loss(model(*data.valid.inputs), data.valid.target))

    before = valid_loss()
    for _ in range(3):
        for i in range(0, len(x), 32):
            loss = nn.functional.mse_loss(model(x[i : i + 32]), y[i : i + 32])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    assert valid_loss() < before / 2


def test_the_plugin_passes_the_author_checks_through_the_runner():
    results = check_plugin(rnn, epochs=2)
    assert sorted(r.dataset for r in results) == ["prices", "ramp"]
    for result in results:
        assert result.params == (2701 if result.dataset == "ramp" else 50 * 4 + 50 * 50 + 100 + 51)
        assert {"test_mae", "test_rmse", "test_r2"} <= set(result.metrics)


def test_a_bad_csv_is_an_error_row_naming_the_file(tmp_path):
    path = tmp_path / "prices.csv"
    path.write_text("Date,Close\n2024-01-01,abc\n")
    result = run_quick(isolated_registry(rnn), "rnn", "prices", options={"path": str(path)})
    assert result.status == "error"
    assert "prices.csv" in result.status_detail
