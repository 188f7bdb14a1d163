"""Built-in execution modes.

- ``eager``: every step runs as written (the default of every suite).
- ``compile``: the step function (forward, loss, backward and the optimizer's update) goes
  through ``torch.compile`` with the ``backend`` and ``mode`` options. Each run starts from an
  empty compile cache in memory (``torch._dynamo.reset()``), so its compile time does not depend
  on the runs before it (inductor's cache on disk still helps a second run). The seconds torch
  spends compiling, measured by torch's own compile-start/-end callbacks with the device idle,
  are the run's ``mode_setup_seconds``.
- ``cudagraphs``: the step is run eagerly ``warmup`` times (real steps, on a side stream, as
  CUDA requires before a capture), then captured once per input shape into a CUDA graph and
  replayed every later step. The capture's seconds are ``mode_setup_seconds``. CUDA only; the
  optimizer is made ``capturable`` where it has that option; autocast precisions are not
  supported (autocast's cast cache cannot be captured).
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from typing import Any

import torch

import benchkit
from benchkit import Device, Mode, Precision
from benchkit.errors import BenchkitError

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


class EagerMode(Mode):
    """Every step as written."""


class _DropProfilerNotice(logging.Filter):
    """Drops dynamo's "Profiler record function ... will be ignored": every torch optimizer's
    ``step`` opens a profiler range, which a compiled step leaves out. The notice says nothing
    about the run and would land in the middle of the progress lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Profiler record function")


_dynamo_context_log = logging.getLogger("torch._dynamo.variables.ctx_manager")
if not any(isinstance(f, _DropProfilerNotice) for f in _dynamo_context_log.filters):
    _dynamo_context_log.addFilter(_DropProfilerNotice())


class CompileMode(Mode):
    """``torch.compile`` of the step, with one-off compile time kept apart."""

    warmup_calls = 2  # the first step, and the second (whose optimizer state exists)

    def __init__(self, options: dict[str, Any]) -> None:
        self.backend = options["backend"]
        self.compile_mode = options["mode"]
        backends = torch._dynamo.list_backends(exclude_tags=())
        if self.backend not in backends:
            raise BenchkitError(
                f"mode compile: unknown backend {self.backend!r}; torch "
                f"{torch.__version__} has: {', '.join(backends)}"
            )
        if self.compile_mode not in COMPILE_MODES:
            raise BenchkitError(
                f"mode compile: unknown torch.compile mode {self.compile_mode!r}; valid: "
                f"{', '.join(COMPILE_MODES)}"
            )
        self._seconds = 0.0

    def unsupported_reason(self, device: Device, precision: Precision) -> str | None:
        if not torch._dynamo.is_dynamo_supported():
            return f"torch.compile is not supported by torch {torch.__version__} on this Python"
        cpu_inductor = self.backend == "inductor" and device.torch_device.type == "cpu"
        if cpu_inductor and not any(shutil.which(cxx) for cxx in ("g++", "c++", "clang++")):
            return "torch.compile's inductor needs a C++ compiler on the CPU; none on PATH"
        return None

    def wrap(self, step: Callable[..., Any], device: Device) -> Callable[..., Any]:
        torch._dynamo.reset()  # this run compiles afresh: its compile time is its own
        compiled = torch.compile(step, backend=self.backend, mode=self.compile_mode)
        handler = torch._dynamo.callback.callback_handler
        span: list[float] = []  # within one call: first compile start, last compile end

        def on_start(_args: Any) -> None:
            if not span:
                device.synchronize()  # the device idles while torch compiles: take it all out
                span.append(time.perf_counter())

        def on_end(_args: Any) -> None:
            del span[1:]
            span.append(time.perf_counter())

        def run(*args: Any) -> Any:
            handler.register_start_callback(on_start)
            handler.register_end_callback(on_end)
            try:
                return compiled(*args)
            finally:
                handler.remove_start_callback(on_start)
                handler.remove_end_callback(on_end)
                if len(span) == 2:
                    # A step with graph breaks compiles in pieces; what dynamo does between
                    # them on a first call is one-off too, so the whole span counts.
                    self._seconds += span[1] - span[0]
                span.clear()

        return run

    @property
    def setup_seconds(self) -> float:
        return self._seconds


class CudaGraphMode(Mode):
    """The step captured into a CUDA graph once per input shape and replayed."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.warmup = options["warmup"]
        self.warmup_calls = self.warmup + 1  # eager steps, then the capture
        if self.warmup < 1:
            raise BenchkitError(
                f"mode cudagraphs: warmup must be at least 1 (CUDA needs eager steps before a "
                f"capture), got {self.warmup}"
            )
        self._seconds = 0.0

    def unsupported_reason(self, device: Device, precision: Precision) -> str | None:
        if device.torch_device.type != "cuda":
            return f"CUDA graphs need a CUDA device; {device.name} is not one"
        if precision.compute_dtype != precision.dtype:
            return (
                "autocast precisions cannot be captured (autocast's weight-cast cache is not "
                "capture-safe); use a cast precision (fp32, fp16, bf16)"
            )
        return None

    def optimizer_options(self, optimizer: str) -> dict[str, Any]:
        return {"capturable": True}  # Adam and its kin keep their step count on the device

    def wrap(self, step: Callable[..., Any], device: Device) -> Callable[..., Any]:
        graphs: dict[tuple, tuple[list[Any], Any, Any]] = {}
        eager_calls: dict[tuple, int] = {}
        side = torch.cuda.Stream(device.torch_device)

        def key(args: tuple) -> tuple:
            return tuple(_signature(a) for a in args)

        def run(*args: Any) -> Any:
            k = key(args)
            entry = graphs.get(k)
            if entry is None:
                if eager_calls.get(k, 0) < self.warmup:
                    eager_calls[k] = eager_calls.get(k, 0) + 1
                    side.wait_stream(torch.cuda.current_stream(device.torch_device))
                    with torch.cuda.stream(side):
                        out = step(*args)
                    torch.cuda.current_stream(device.torch_device).wait_stream(side)
                    return out
                entry = graphs[k] = self._capture(step, args, device)
            static_args, graph, static_out = entry
            _copy_into(static_args, args)
            graph.replay()
            return _clone(static_out)

        return run

    def _capture(
        self, step: Callable[..., Any], args: tuple, device: Device
    ) -> tuple[list[Any], Any, Any]:
        device.synchronize()
        start = time.perf_counter()
        static_args = [_clone(a) for a in args]
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = step(*static_args)
        device.synchronize()
        self._seconds += time.perf_counter() - start
        return static_args, graph, static_out

    @property
    def setup_seconds(self) -> float:
        return self._seconds


def _signature(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return (tuple(value.shape), value.dtype)
    if isinstance(value, tuple | list):
        return tuple(_signature(v) for v in value)
    return value


def _clone(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, tuple | list):
        return type(value)(_clone(v) for v in value)
    return value


def _copy_into(static: Any, value: Any) -> None:
    if isinstance(static, torch.Tensor):
        static.copy_(value)
    elif isinstance(static, tuple | list):
        for s, v in zip(static, value, strict=True):
            _copy_into(s, v)


@benchkit.hookimpl
def benchkit_register_modes(register):
    """Eager execution, torch.compile of the step, and CUDA-graph capture and replay."""
    register("eager", lambda options: EagerMode(), description="every step as written")
    register(
        "compile",
        CompileMode,
        options={"backend": "inductor", "mode": "default"},
        description="torch.compile of the step (backend, mode); compile time kept apart",
    )
    register(
        "cudagraphs",
        CudaGraphMode,
        options={"warmup": 3},
        description="the step captured into a CUDA graph and replayed (CUDA only)",
    )
