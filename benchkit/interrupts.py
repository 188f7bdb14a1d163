"""Ctrl-C, ``SIGTERM`` and ``SIGHUP`` end a suite the same way.

CI time-outs and ``docker stop`` send ``SIGTERM``; closing a terminal sends ``SIGHUP``. Left to
their default, both end the process on the spot, without a word and without marking the result
set. While a suite runs, :func:`handle_interrupts` makes all three raise :class:`Interrupted`
(a ``KeyboardInterrupt``), so the run stage closes the result set as interrupted, keeps every
finished run and says how many. Inside :func:`deferred` (writing one run) a signal waits until
the block ends, so a run is never half written because of it.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

#: The signals handled like Ctrl-C, where the platform has them.
SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class Interrupted(KeyboardInterrupt):
    """The suite was stopped by a signal; :attr:`exit_code` is the shell's ``128 + N``."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        self.signum = int(signum)
        self.signal_name = signal.Signals(self.signum).name
        super().__init__(self.signal_name)

    @property
    def exit_code(self) -> int:
        """``128 + N`` (130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP)."""
        return 128 + self.signum


_state = threading.local()


def _depth() -> int:
    return getattr(_state, "depth", 0)


def _handler(signum: int, frame: FrameType | None) -> None:
    if _depth() > 0:
        _state.pending = signum
        return
    raise Interrupted(signum)


@contextmanager
def handle_interrupts() -> Iterator[None]:
    """Within the block, Ctrl-C, SIGTERM and SIGHUP raise :class:`Interrupted`. Only the main
    thread can handle signals; elsewhere (a suite run from a worker thread) nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _state.pending = None
    previous = {sig: signal.signal(sig, _handler) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _state.pending = None


@contextmanager
def deferred() -> Iterator[None]:
    """A signal that arrives within the block is raised when the block has ended (unless the
    block raised something else)."""
    _state.depth = _depth() + 1
    try:
        yield
    finally:
        _state.depth = _depth() - 1
    pending = getattr(_state, "pending", None)
    if pending is not None and _depth() == 0:
        _state.pending = None
        raise Interrupted(pending)
