"""``sine_mlp``: a next-value predictor on a two-tone sine, judged by autoregressive rollout.

The model sees a window of 20 values and predicts the 21st. After training it is rolled out:
starting from the true window ``series[1500:1520]`` it predicts 100 values one at a time, each
fed back as input, and ``rollout_mse`` is their mean squared error against
``series[1520:1620]`` (the "prediction drift").
"""

from __future__ import annotations

import torch
from torch import nn

import benchkit
import benchkit.errors
from benchkit import Data, Metric, Recipe, Split

ROLLOUT_START = 1500
ROLLOUT_STEPS = 100


def sine(options: dict) -> Data:
    """series = sin(t) + 0.1 sin(3t) on t = linspace(0, 80, N); windows of ``window`` values."""
    n, window = options["points"], options["window"]
    t = torch.linspace(0, 80, n)
    series = torch.sin(t) + 0.1 * torch.sin(3 * t)
    count = n - window - 1
    if count < 1:
        raise benchkit.errors.BenchkitError(
            f"sine: points={n} leaves no samples for window={window}"
        )
    x = torch.stack([series[i : i + window] for i in range(count)])
    y = series[window : window + count].unsqueeze(1)
    return Data(train=Split((x,), y), info={"series": series, "window": window})


def build(data: Data, options: dict) -> nn.Module:
    """Linear(window, 64) → ReLU → Linear(64, 64) → ReLU → Linear(64, 1)."""
    window, hidden = data.info["window"], options["hidden"]
    return nn.Sequential(
        nn.Linear(window, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, 1),
    )


def rollout(model: nn.Module, data: Data, context) -> dict[str, float | torch.Tensor]:
    """Autoregressive rollout over 100 steps from the true window at index 1500: its MSE, and
    the predicted and actual values as series (for plotting)."""
    series, window = data.info["series"], data.info["window"]
    end = ROLLOUT_START + window + ROLLOUT_STEPS
    if len(series) < end:
        return {}
    window_values = context.prepare(series[ROLLOUT_START : ROLLOUT_START + window])
    predictions = []
    for _ in range(ROLLOUT_STEPS):
        nxt = model(window_values.unsqueeze(0)).reshape(1)
        predictions.append(nxt)
        window_values = torch.cat([window_values[1:], nxt.to(window_values.dtype)])
    predicted = torch.cat(predictions).double().cpu()
    actual = series[ROLLOUT_START + window : end].double()
    return {
        "rollout_mse": float(torch.mean((predicted - actual) ** 2)),
        "rollout_predicted": predicted,
        "rollout_actual": actual,
    }


@benchkit.hookimpl
def benchkit_register_datasets(register):
    """The two-tone sine series."""
    register(
        "sine",
        sine,
        options={"points": 2000, "window": 20},
        description="sin(t) + 0.1 sin(3t), windows of 20 → next value (1979 samples)",
    )


@benchkit.hookimpl
def benchkit_register_models(register):
    """The three-layer MLP with the source's recipe."""
    register(
        "sine_mlp",
        build,
        datasets={"sine": Recipe(loss="mse", optimizer="adam", lr=1e-3, epochs=1000)},
        evaluate=rollout,
        metrics={
            "rollout_mse": Metric(
                better="lower", description="MSE of a 100-step autoregressive rollout"
            )
        },
        options={"hidden": 64},
        description="MLP 20→64→64→1 next-value predictor with rollout metric",
    )
