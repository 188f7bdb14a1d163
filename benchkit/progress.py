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

    Executors that run several cases at once (``--executor dask``) also say where each run
    started (:meth:`placed`) and how many runs are done, running and queued (:meth:`counts`);
    each finished run's line then names its worker and the counts.
    """

    def __init__(self, total: int, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.total = total
        self.quiet = quiet
        self.live = not quiet and self.stream.isatty()
        self._label = ""
        self._epochs = 0
        self._last_draw = 0.0
        self._labels: dict[str, str] = {}  # by run_id: runs may finish in any order
        self._counts: tuple[int, int, int] | None = None

    def start(self, index: int, case: Case) -> None:
        """A run begins."""
        self._epochs = case.recipe.epochs
        width = len(str(self.total))
        self._label = (
            f"[{index:>{width}}/{self.total}] {case.model}/{case.dataset} "
            f"{case.precision} {case.device} seed {case.seed}"
            + ("" if case.mode == "eager" else f" {case.mode}")
        )
        self._labels[case.run_id] = self._label
        if self.live:
            self._draw(f"{self._label}  starting")

    def placed(self, index: int, case: Case, where: str) -> None:
        """Run ``index`` started on a worker (``where``: its name and host)."""
        if self.live:
            self._draw(f"{self._labels.get(case.run_id, self._label)}  started on {where}")

    def counts(self, done: int, running: int, queued: int) -> None:
        """How many runs are done, running (on workers) and queued."""
        self._counts = (done, running, queued)
        if self.live:
            self._draw(self._counts_text())

    def _counts_text(self) -> str:
        done, running, queued = self._counts or (0, 0, 0)
        return f"done {done}/{self.total}  running {running}  queued {queued}"

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
        line = f"{self._labels.pop(result.run_id, self._label)}  {outcome}"
        if result.worker:  # ran on a worker, not in this process
            line += f"  on {result.worker}@{result.worker_host or '?'}"
        if self._counts is not None:
            _, running, queued = self._counts
            line += f"  [running {running}, queued {queued}]"
        if self.live:
            self.stream.write("\r\x1b[2K" + line + "\n")
            if self._counts is not None:
                self._draw(self._counts_text())
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def _draw(self, text: str) -> None:
        self.stream.write("\r\x1b[2K" + text)
        self.stream.flush()
