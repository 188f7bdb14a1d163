"""benchkit: a plugin-based benchmarking toolkit for small PyTorch models.

Plugin authors need these names from here: :data:`hookimpl` to mark hook functions, and the
types they register (:class:`Recipe`, :class:`Data`, :class:`Split`, :class:`Precision`,
:class:`Device`, :class:`Metric`).
"""

from importlib.metadata import PackageNotFoundError, version

import pluggy

from benchkit.device import Device
from benchkit.metric import Metric
from benchkit.precision import Precision
from benchkit.workload import Data, EvalContext, Recipe, Split

try:
    __version__ = version("benchkit")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

#: Version of the hook API. It grows when hooks or ``register`` keywords are added; a change
#: that breaks existing plugins bumps the major part.
API_VERSION = "1.1"

hookimpl = pluggy.HookimplMarker("benchkit")
"""Marker for plugin hook functions: ``@benchkit.hookimpl``."""

__all__ = [
    "API_VERSION",
    "Data",
    "Device",
    "EvalContext",
    "Metric",
    "Precision",
    "Recipe",
    "Split",
    "__version__",
    "hookimpl",
]
