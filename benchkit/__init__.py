"""benchkit: a plugin-based benchmarking toolkit for small PyTorch models.

Everything a plugin author needs is importable from here: :data:`hookimpl` to mark hook
functions; the types plugins register or receive (:class:`Recipe`, :class:`Data`,
:class:`Split`, :class:`EvalContext`, :class:`Precision`, :class:`Device`,
:class:`Metric`, :class:`Mode`); the error to raise for a mistake the user can fix
(:class:`BenchkitError`); :func:`cpu_name` for device plugins; and :data:`API_VERSION`.
``benchkit.errors``, ``benchkit.testing`` and ``benchkit.executors`` (for executor plugins) are
public too.
"""

import pluggy

from benchkit.device import Device
from benchkit.environment import cpu_name
from benchkit.errors import BenchkitError
from benchkit.metric import Metric
from benchkit.mode import Mode
from benchkit.precision import Precision
from benchkit.version import API_VERSION, __version__
from benchkit.workload import Data, EvalContext, Recipe, Split

hookimpl = pluggy.HookimplMarker("benchkit")
"""Marker for plugin hook functions: ``@benchkit.hookimpl``."""

__all__ = [
    "API_VERSION",
    "BenchkitError",
    "Data",
    "Device",
    "EvalContext",
    "Metric",
    "Mode",
    "Precision",
    "Recipe",
    "Split",
    "__version__",
    "cpu_name",
    "hookimpl",
]
