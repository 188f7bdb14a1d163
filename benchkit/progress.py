"""Progress while a suite runs: a live line on a terminal, one line per run in logs."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from benchkit.run_result import RunResult
from benchkit.suite import Case


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


class Progress:
    """Reports case *i* of *n*, the epoch and the current loss.

    On a terminal the current run's line is rewritten in place (at most ten times a second);
    elsewhere (CI logs) only finished runs are printed, one line each, with no carriage
    returns. ``quiet`` prints nothing.
    """

    def __init__(self, total: int, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.total = total
        self.quiet = quiet
        self.live = not quiet and self.stream.isatty()
        self._label = ""
        self._epochs = 0
        self._last_draw = 0.0

    def start(self, index: int, case: Case) -> None:
        """A run begins."""
        self._epochs = case.recipe.epochs
        width = len(str(self.total))
        self._label = (
            f"[{index:>{width}}/{self.total}] {case.model}/{case.dataset} "
            f"{case.precision} {case.device} seed {case.seed}"
            + ("" if case.mode == "eager" else f" {case.mode}")
        )
        if self.live:
            self._draw(f"{self._label}  starting")

    def epoch(self, epoch: int, loss: float) -> None:
        """The runner read the curve up to ``epoch``; ``loss`` is that epoch's."""
        if not self.live:
            return
        now = time.monotonic()
        if now - self._last_draw >= 0.1:
            self._draw(f"{self._label}  epoch {epoch + 1}/{self._epochs}  loss {loss:.4g}")
            self._last_draw = now

    def finish(self, result: RunResult) -> None:
        """A run ended; print its one-line outcome."""
        if self.quiet:
            return
        if result.status in ("ok", "diverged"):
            outcome = (
                f"{result.status}  final {_fmt(result.final_loss)}  "
                f"epochs {result.epochs}  {_fmt(result.train_seconds)} s"
            )
            if result.status == "diverged":
                outcome += f"  (diverged at epoch {result.diverged_epoch})"
        else:
            outcome = f"{result.status}: {result.status_detail}"
        line = f"{self._label}  {outcome}"
        if self.live:
            self.stream.write("\r\x1b[2K" + line + "\n")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def _draw(self, text: str) -> None:
        self.stream.write("\r\x1b[2K" + text)
        self.stream.flush()
