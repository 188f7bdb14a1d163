"""A benchkit plugin: the thermometer network of *Deep Learning with PyTorch*, chapter 6.

benchkit loads :mod:`benchkit_example_plugin.plugin` through the entry point in
``pyproject.toml``; nothing here needs importing by hand.
"""

__version__ = "0.1.0"
