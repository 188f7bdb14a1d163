"""A benchkit plugin for hook API 1.1: robust line fitting with a loss and an optimizer of its
own, a dataset offered to benchkit's built-in ``single_neuron``, and a declared metric.

benchkit loads :mod:`benchkit_example_plugin_1_1.plugin` through the entry point in
``pyproject.toml``; nothing here needs importing by hand.
"""

__version__ = "0.1.0"
