"""Dask's preload for the workers of the local cluster ``benchkit run --workers N`` starts.

Dask imports this module in each worker process as it starts and calls :func:`dask_setup`.
It imports nothing heavy, so that a worker restarted after a crash is back quickly.
"""

from __future__ import annotations

import signal
from typing import Any


def dask_setup(worker: Any) -> None:
    """Ignore Ctrl-C and a closed terminal (SIGHUP) in this worker: a terminal sends them to
    the local workers too, and they are benchkit's to handle (it stops the suite, keeps the
    finished runs and closes the cluster, these workers included)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
