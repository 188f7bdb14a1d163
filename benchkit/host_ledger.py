"""Which runs of a suite shared a host: a ledger of small files on that host.

Dask places runs on workers, and several workers may live on one host (``--workers 2`` on a
laptop, ``dask worker --nworkers 4`` on a box). Runs that share a host's cores slow each other
down, so a row records how many runs of its suite were running on its host while it ran
(``host_runs``: itself included, 1 = alone). The worker knows this best, on the host itself:

- when a run starts it writes ``KEY.json`` (start time, process id) into the suite's ledger
  folder on this host (:func:`ledger_root`: the temporary directory, one folder per suite run);
- when it ends it adds its end time, then reads every entry: a run overlapped it when it
  started before this one ended and had not ended before this one started.

A run that starts while another is ending is seen by it: its file exists before it starts, and
the other reads the folder after it ended. An entry without an end whose process is gone (a
killed worker) counts only if it started during this run, since when it died is unknown.
Hosts are told apart by the temporary directory they see, which is what the operating system
calls the host: containers with their own ``/tmp`` on one machine count as separate hosts.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")
_FOLDER = "benchkit-host-runs"


def ledger_root(token: str) -> Path:
    """The ledger folder of the suite run ``token`` on this host."""
    return Path(tempfile.gettempdir()) / _FOLDER / _SAFE.sub("_", token)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists but belongs to someone else
        return True
    return True


class HostLedger:
    """The runs of one suite run on this host (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def for_token(cls, token: str) -> HostLedger:
        """The ledger of the suite run ``token`` in this host's temporary directory."""
        return cls(ledger_root(token))

    def _path(self, key: str) -> Path:
        return self.root / f"{_SAFE.sub('_', key)}.json"

    def _write(self, key: str, entry: dict[str, float | int]) -> None:
        path = self._path(key)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(entry), encoding="utf-8")
        os.replace(tmp, path)

    def begin(self, key: str, now: float | None = None) -> float | None:
        """Record that run ``key`` starts; return its start time, or ``None`` when the ledger
        cannot be written here (the run then does not know who shared its host)."""
        start = time.time() if now is None else now
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self._write(key, {"start": start, "pid": os.getpid()})
        except OSError:
            return None
        return start

    def end(self, key: str, start: float | None, now: float | None = None) -> int | None:
        """Record that run ``key`` ended; return how many runs of the suite were running on this
        host during it (itself included), or ``None`` when that is unknown."""
        if start is None:
            return None
        end = time.time() if now is None else now
        try:
            if not self.root.is_dir():  # the suite was cleaned up under us (cancelled)
                return None
            self._write(key, {"start": start, "end": end, "pid": os.getpid()})
            entries = [self._read(p) for p in self.root.glob("*.json")]
        except OSError:
            return None
        return sum(1 for e in entries if e is not None and _overlaps(e, start, end))

    @staticmethod
    def _read(path: Path) -> dict[str, float] | None:
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # removed or half-written meanwhile: it is not a finished entry
        return entry if isinstance(entry, dict) and "start" in entry else None

    def remove(self) -> None:
        """Delete the ledger (after the suite run, on every host)."""
        shutil.rmtree(self.root, ignore_errors=True)


def _overlaps(entry: dict[str, float], start: float, end: float) -> bool:
    other_start = float(entry["start"])
    if other_start > end:
        return False
    if "end" in entry:
        return float(entry["end"]) >= start
    if _pid_alive(int(entry.get("pid", -1))):
        return True  # still running
    return other_start >= start  # died at some unknown time: certain only if it began in ours
