"""The environment a result set was measured in, recorded in ``run.json``."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from benchkit.version import API_VERSION, __version__

if TYPE_CHECKING:
    from benchkit.run_result import RunResult


def git_commit(where: Path) -> dict[str, Any] | None:
    """The commit checked out around ``where`` and whether the tree has changes, if in git."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", *args], cwd=where, capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None
    status = git("status", "--porcelain")
    return {"commit": commit, "dirty": bool(status)}


def cpu_name() -> str:
    """The CPU model as the OS reports it."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def capture(
    suite_path: Path, argv: list[str], devices: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """Everything needed to tell two result sets' environments apart.

    :param suite_path: the suite file, to find the git commit of its tree.
    :param argv: the command line as typed.
    :param devices: per device name used, its display name and its own facts.
    """
    return {
        "benchkit": __version__,
        "api_version": API_VERSION,
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "os": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "devices": devices,
        "git": git_commit(suite_path.resolve().parent),
        "command": argv,
        "executable": Path(sys.executable).name,
    }


def process_fingerprint() -> dict[str, Any]:
    """What tells this process's timings and last bits apart from another's, as the
    ``env_*`` columns of a row (see :func:`stamp_run`)."""
    return {
        "env_torch": torch.__version__,
        "env_cpu": cpu_name(),
        "env_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "env_torch_threads": torch.get_num_threads(),
    }


def stamp_run(
    result: RunResult, worker: str = "", host_runs: int | None = 1, timings_shared: bool = False
) -> RunResult:
    """Record on ``result`` where it ran: this host, the worker (empty: the ``benchkit``
    process itself), how many runs shared the host, and this process's fingerprint."""
    result.worker = worker
    result.worker_host = socket.gethostname()
    result.host_runs = host_runs
    result.timings_shared = timings_shared
    for key, value in process_fingerprint().items():
        setattr(result, key, value)
    return result
