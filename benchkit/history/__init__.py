"""Result tables over time: a history store, steps at the commit, interleaved A/B runs.

- :mod:`benchkit.history.store`: the SQLite database ``benchkit history add`` writes;
  :func:`load` reads it back as one DataFrame.
- :mod:`benchkit.history.step_detect`: change-point detection on a metric over commits.
"""

from benchkit.history.store import (
    add,
    default_path,
    load,
    load_criteria,
    load_samples,
    open_store,
)

__all__ = ["add", "default_path", "load", "load_criteria", "load_samples", "open_store"]
