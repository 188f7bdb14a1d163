"""Result tables over time: a history store, steps at the commit, interleaved A/B runs.

- :mod:`benchkit.history.store`: the SQLite database ``benchkit history add`` writes;
  :func:`load` reads it back as one DataFrame.
- :mod:`benchkit.history.step_detect`: change-point detection on a metric over commits.
"""

from typing import Any

__all__ = ["add", "default_path", "load", "load_criteria", "load_samples", "open_store"]


def __getattr__(name: str) -> Any:
    # the store (and pandas) load on first use: `benchkit --help` reads this package's parsers
    if name in __all__:
        from benchkit.history import store

        return getattr(store, name)
    raise AttributeError(f"module 'benchkit.history' has no attribute {name!r}")
