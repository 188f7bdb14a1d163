"""Errors a user can cause. The CLI turns each into one clear message and a non-zero exit."""


class BenchkitError(Exception):
    """An error with a message meant for the user: what went wrong and what to do."""


class SuiteError(BenchkitError):
    """A suite file that cannot be read, or that names something that does not exist."""


class PluginError(BenchkitError):
    """A plugin that failed to load or registered something invalid."""
