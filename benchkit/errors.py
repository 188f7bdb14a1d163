"""Errors a user can cause. The CLI turns each into one clear message and a non-zero exit."""

import os
import traceback


def describe_exception(exc: BaseException) -> str:
    """One line for the user: a :class:`BenchkitError`'s own message, else the exception's
    type and message and where it was raised (the last frame: the plugin's own code)."""
    if isinstance(exc, BenchkitError):
        return str(exc)
    text = f"{type(exc).__name__}: {exc}"
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        text += f" (at {os.path.basename(frames[-1].filename)}:{frames[-1].lineno})"
    return text


class BenchkitError(Exception):
    """An error with a message meant for the user: what went wrong and what to do."""


class SuiteError(BenchkitError):
    """A suite file that cannot be read, or that names something that does not exist."""


class PluginError(BenchkitError):
    """A plugin that failed to load or registered something invalid."""


class OutputError(BenchkitError):
    """A result set that cannot be written: a full disk, a read-only or foreign folder, a
    path under a file. The message names the path and the cause."""
