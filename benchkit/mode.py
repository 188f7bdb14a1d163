"""The interface an execution-mode plugin implements: how a case's step is executed.

A *mode* is a dimension of a suite like a precision: the same model, data and recipe, run as
written (``eager``), compiled (``compile``: ``torch.compile`` of the training step) or captured
once and replayed (``cudagraphs``). benchkit hands the mode each function it calls per step
(a training step: forward, loss, backward and the optimizer's update; or an inference call)
and calls what :meth:`Mode.wrap` returns instead.

The one-off work a mode does (compiling, capturing) is not part of the step's steady state:
the mode adds its seconds to :attr:`Mode.setup_seconds`, and benchkit takes them out of the
run's timeline (``train_seconds``, the per-epoch seconds, samples per second) and reports them
as their own column, ``mode_setup_seconds``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from benchkit.device import Device
    from benchkit.precision import Precision

StepFn = TypeVar("StepFn", bound=Callable[..., Any])

#: The mode a suite that names none runs in.
DEFAULT_MODE = "eager"


class Mode:
    """How benchkit executes a step. A mode factory receives the mode's options (the
    registered defaults, updated by a suite's ``mode_options``) and returns a fresh instance
    per run, so an instance may keep per-run state (compiled functions, captured graphs, the
    seconds spent making them).

    The default implementation is eager: every call runs as written, nothing is done once.
    Subclasses override what differs.
    """

    #: Calls of a wrapped function after which the one-off work is done (a compile of the
    #: first step and of the second, whose optimizer state exists; eager steps before a
    #: capture, and the capture). benchkit makes them before it times anything.
    warmup_calls: int = 0

    def unsupported_reason(self, device: Device, precision: Precision) -> str | None:
        """Why this mode cannot run on ``device`` under ``precision``, or ``None`` when it can.
        A run it returns a reason for is ``skipped`` with that reason."""
        return None

    def optimizer_options(self, optimizer: str) -> dict[str, Any]:
        """Options the recipe's optimizer (named ``optimizer``: ``"adam"`` …) needs under this
        mode, over the recipe's own: a captured step needs ``capturable=True``. Options the
        optimizer does not register are left out."""
        return {}

    def wrap(self, step: StepFn, device: Device) -> StepFn:
        """The callable benchkit calls instead of ``step``: same arguments, same result.

        ``step`` runs one training step (or one inference call) and returns a tensor on the
        device (the detached loss, or the output). benchkit calls ``wrap`` once per function
        and run, then calls the result every step. Time spent on one-off work (compiling,
        capturing) must be added to :attr:`setup_seconds`, measured on the host clock with
        the device idle (synchronise it first), so benchkit can take it out of the timeline.
        """
        return step

    @property
    def setup_seconds(self) -> float:
        """Seconds of one-off work done so far by this instance (compiling, capturing); 0 for
        a mode that does none."""
        return 0.0
