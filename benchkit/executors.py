"""Executors: how ``benchkit run`` carries out a suite's runs, and the API for writing one.

An executor is a plugin (hook ``benchkit_register_executors``): ``serial`` runs the cases one
after another in the ``benchkit`` process (the default); ``dask`` spreads them over a Dask
cluster (``benchkit_plugins.executors``). Either way the runs come back as
:class:`~benchkit.run_result.RunResult` objects, in the order they finish, and the run stage
(:func:`benchkit.runner.run_suite`) hands each to the one result-set writer, in the
``benchkit`` process.

This module is public, like :mod:`benchkit.testing`: an executor that runs cases in other
processes or on other machines uses it to describe a case as data and to run it there:

- :func:`task_spec` describes one case as plain data (the suite's text, the run id, what this
  machine expects of the worker); nothing is shipped as pickled code;
- :func:`run_task`, called on the worker (an importable function, so a distributed engine
  sends only its name), parses the suite itself, finds the case, checks that its plugins are
  the ones this machine has, runs it and returns its result as a dict (:func:`result_from_dict`
  turns it back). It records where it ran, how many runs of the suite shared its host while
  it ran (:mod:`benchkit.host_ledger`) and the worker's environment fingerprint;
- :func:`worker_facts` and :func:`facts_differences` check a worker against this machine
  before anything runs (benchkit version, hook API, each plugin's package, version and
  status), and :func:`differences_table` says what differs.

The types an executor handles (:class:`Case`, :class:`RunResult`, :class:`Registry`,
:class:`DeviceCache`, :class:`Progress`) are importable from here too, and
:func:`~benchkit.interrupts.deferred`: Ctrl-C, SIGTERM and SIGHUP stop a suite, and an
executor that talks to other processes holds them back while it does, so they are raised
between two of its steps.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import platform
import socket
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from benchkit.cases import DeviceCache
from benchkit.environment import cpu_name, stamp_run
from benchkit.errors import BenchkitError, describe_exception
from benchkit.host_ledger import HostLedger
from benchkit.interrupts import deferred
from benchkit.registry import Registry, call_plugin, load_registry
from benchkit.run_result import RunResult
from benchkit.runner import Executor, Progress, SerialExecutor, case_result, run_case
from benchkit.suite import Case, Suite, parse_suite
from benchkit.version import API_VERSION, __version__

__all__ = [
    "DEVICE_RESOURCES",
    "Case",
    "DeviceCache",
    "Executor",
    "ExecutorContext",
    "Progress",
    "Registry",
    "RunResult",
    "SerialExecutor",
    "build_executor",
    "case_digest",
    "case_result",
    "clear_host_ledger",
    "deferred",
    "differences_table",
    "executor_runs_here",
    "executor_session",
    "facts_differences",
    "plugin_fingerprint",
    "result_from_dict",
    "result_to_dict",
    "run_task",
    "task_spec",
    "worker_facts",
]

#: The worker resource a case on a device of this type needs (``dask worker --resources
#: GPU=1``): GPU runs go only to GPU workers, one per GPU.
DEVICE_RESOURCES = {"cuda": "GPU", "mps": "MPS"}


@dataclass
class ExecutorContext:
    """What an executor's factory learns about the suite run it serves, beyond its options."""

    suite: Suite
    #: ``--threads``: torch's CPU threads in every process that runs a case
    threads: int | None = None
    #: ``--batch-sizes``, as the suite was parsed with it (``None``: the suite's own)
    batch_sizes: list[int | None] | None = None
    #: ``--quiet``: say nothing but errors
    quiet: bool = False


def build_executor(
    registry: Registry, name: str, options: Mapping[str, Any], context: ExecutorContext
) -> Executor:
    """The executor ``name`` built with ``options`` (the registered defaults updated with
    these) for the suite run ``context``.

    :raises BenchkitError: ``name`` is not registered (the error lists those that are), an
        option is one the executor does not take (named as its command-line flag, with the
        executors that take it), the factory refuses (a missing optional dependency), or
        an executor other than ``serial`` is asked to run a throughput or memory suite.
    """
    suite = context.suite
    if name != "serial" and suite.kind != "convergence":
        raise BenchkitError(
            f"--executor {name} runs convergence suites; {suite.name} is a {suite.kind} suite, "
            "whose measurements need the machine to themselves: run it without --executor"
        )
    builtin = name == "serial" and "serial" not in registry.names("executor")
    # the default works without the built-in plugin too (disabled, or an isolated registry)
    declared = {} if builtin else registry.get("executor", name).options
    unknown = sorted(set(options) - set(declared))
    if unknown:
        flags = ", ".join("--" + key.replace("_", "-") for key in unknown)
        takers = sorted(
            n
            for n in registry.names("executor")
            if set(unknown) <= set(registry.get("executor", n).options)
        )
        hint = f"; pass --executor {' or '.join(takers)}" if takers else ""
        raise BenchkitError(f"{flags}: executor {name!r} takes no such option{hint}")
    if builtin:
        return SerialExecutor()
    registration = registry.get("executor", name)
    merged = {**registration.options, **options}
    return call_plugin(registry, "executor", name, "", registration.factory, merged, context)


def option_values(items: Sequence[str]) -> dict[str, object]:
    """``--executor-option`` values: ``["seed=3", "label='x'"]`` → ``{"seed": 3, "label":
    "x"}``, each value read as TOML, a bare word as text."""
    import tomllib

    options: dict[str, object] = {}
    for item in items:
        key, eq, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not eq or not key.isidentifier():
            raise BenchkitError(f"--executor-option {item!r}: write KEY=VALUE, e.g. retries=1")
        try:
            options[key] = tomllib.loads(f"v = {text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            options[key] = text.strip()
    return options


def executor_runs_here(executor: Executor) -> bool:
    """Whether ``executor`` runs the cases in this process (it says ``runs_here = False`` when
    they run elsewhere: this process then builds no device)."""
    return bool(getattr(executor, "runs_here", True))


@contextlib.contextmanager
def executor_session(executor: Executor) -> Iterator[Executor]:
    """Enter ``executor`` if it is a context manager (one that holds a cluster), else just
    hand it over; leave it on the way out, Ctrl-C included."""
    if isinstance(executor, contextlib.AbstractContextManager):
        with executor as entered:
            yield entered if entered is not None else executor
    else:
        yield executor


# --- a case described as data ---------------------------------------------------------------


def case_digest(case: Case) -> str:
    """A short hash of everything the case says (recipe, options, criteria …): two processes
    that expand the same suite to the same case agree on it."""
    return hashlib.sha256(repr(case).encode()).hexdigest()[:16]


def plugin_fingerprint(registry: Registry) -> dict[str, str]:
    """Each loaded plugin's ``package version [status]``, by plugin name."""
    return {
        name: " ".join(x for x in (info.package, info.version, f"[{info.status}]") if x)
        for name, info in sorted(registry.plugins.items())
    }


def task_spec(
    context: ExecutorContext,
    case: Case,
    *,
    token: str,
    key: str,
    plugins: Mapping[str, str],
    topic: str = "",
    share_hosts: bool = False,
) -> dict[str, Any]:
    """One case as plain data for :func:`run_task` on another process or machine.

    :param token: names this suite run (the host ledger's folder, the events' topic).
    :param key: unique per attempt of this case (the engine's task key).
    :param plugins: :func:`plugin_fingerprint` of this machine: the worker must match it.
    :param topic: where the worker announces that the run starts (a Dask event topic).
    :param share_hosts: whether runs were allowed to share hosts (a row whose host ledger
        cannot be written is then marked as shared).
    """
    suite = context.suite
    return {
        "token": token,
        "key": key,
        "topic": topic,
        "share_hosts": share_hosts,
        "threads": context.threads,
        "plugins": dict(plugins),
        "suite": {
            "file": suite.path.name,
            "path": str(suite.path.resolve()),
            "text": suite.text,
            "sha256": suite.sha256,
            "batch_sizes": context.batch_sizes,
        },
        "case": {
            "run_id": case.run_id,
            "device": case.device,
            # the run stage sets these after parsing (--device cuda:1, --max-time)
            "max_seconds": case.max_seconds,
            "digest": case_digest(case),
        },
        "row": dataclasses.asdict(case_result(case)),
    }


def result_to_dict(result: RunResult) -> dict[str, Any]:
    """A result as plain data (what a worker sends back)."""
    return dataclasses.asdict(result)


def result_from_dict(data: Mapping[str, Any]) -> RunResult:
    """The result :func:`result_to_dict` described."""
    values = dict(data)
    values["criteria"] = {k: tuple(v) for k, v in values.get("criteria", {}).items()}
    return RunResult(**values)


# --- the worker side ----------------------------------------------------------------------------


@dataclass
class _WorkerState:
    """What a worker process keeps between the runs it is given."""

    registry: Registry | None = None
    devices: DeviceCache | None = None
    suites: dict[tuple[Any, ...], Suite] = dataclasses.field(default_factory=dict)

    def get_registry(self) -> Registry:
        if self.registry is None:
            self.registry = load_registry()
            self.devices = DeviceCache(self.registry)
        return self.registry


_STATE = _WorkerState()


def _where() -> dict[str, Any]:
    """This process as a worker: its name and address (empty outside Dask), host and pid."""
    name = address = ""
    try:
        from distributed import get_worker

        worker = get_worker()
        name, address = str(worker.name), str(worker.address)
    except (ImportError, ValueError):  # not on a Dask worker
        pass
    return {"worker": name, "address": address, "host": socket.gethostname(), "pid": os.getpid()}


def _announce(topic: str, message: dict[str, Any]) -> None:
    """Tell the client that a run starts, through the Dask event log when on a worker."""
    if not topic:
        return
    with contextlib.suppress(ImportError, ValueError):
        from distributed import get_worker

        get_worker().log_event(topic, message)


def worker_facts(warm: Sequence[str] = ()) -> dict[str, Any]:
    """What this process would run cases with: benchkit, the hook API, each plugin, torch,
    Python, the host and its CPU and GPUs. Loads the plugins once, and builds the devices
    named in ``warm`` (warming torch up on each that is present, as ``benchkit run`` does
    before its first run), so the first run here pays for neither."""
    registry = _STATE.get_registry()
    assert _STATE.devices is not None
    for name in warm:
        with contextlib.suppress(BenchkitError):  # a broken device plugin: its runs will say
            _STATE.devices.get(name)
    gpus = (
        [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if torch.cuda.is_available()
        else []
    )
    return {
        "benchkit": __version__,
        "api_version": API_VERSION,
        "plugins": plugin_fingerprint(registry),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "cpu": cpu_name(),
        "gpus": gpus,
    }


def facts_differences(
    here: Mapping[str, Any], there: Mapping[str, Any] | BaseException
) -> list[tuple[str, str, str]]:
    """``(what, here, there)`` for everything a worker must share with this machine: the
    benchkit version, the hook API and every plugin (package, version, status). ``there``
    may be the exception the worker raised instead of answering."""
    if isinstance(there, BaseException):
        return [("benchkit", str(here["benchkit"]), f"cannot run: {describe_exception(there)}")]
    rows = []
    for key, label in (("benchkit", "benchkit"), ("api_version", "hook API")):
        if str(here.get(key)) != str(there.get(key)):
            rows.append((label, str(here.get(key)), str(there.get(key))))
    mine, theirs = here.get("plugins", {}), there.get("plugins", {})
    for name in sorted(set(mine) | set(theirs)):
        if mine.get(name) != theirs.get(name):
            rows.append((f"plugin {name}", mine.get(name, "missing"), theirs.get(name, "missing")))
    return rows


def differences_table(rows: Sequence[tuple[str, str, str, str]]) -> str:
    """``(worker, what, here, there)`` rows as an aligned table with a header."""
    table = [("worker", "what", "here", "there"), *rows]
    widths = [max(len(str(row[i])) for row in table) for i in range(4)]
    return "\n".join(
        "  " + "  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
        for row in table
    )


def _suite(spec: Mapping[str, Any], registry: Registry) -> Suite:
    """The suite of ``spec``, parsed here: from its own path when this host has that file
    with the same contents (a shared file system, a local cluster), else from its text."""
    info = spec["suite"]
    batch_sizes = info.get("batch_sizes")
    cache_key = (info["sha256"], tuple(batch_sizes) if batch_sizes is not None else None)
    if cache_key in _STATE.suites:
        return _STATE.suites[cache_key]
    path = Path(info["path"])
    try:
        same = path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == info["sha256"]
    except OSError:
        same = False
    if same:
        suite = parse_suite(path, registry, batch_sizes=batch_sizes)
    else:
        with tempfile.TemporaryDirectory(prefix="benchkit-suite-") as tmp:
            copy = Path(tmp) / path.parent.name / info["file"]
            copy.parent.mkdir()
            copy.write_text(info["text"], encoding="utf-8")
            suite = parse_suite(copy, registry, batch_sizes=batch_sizes)
    _STATE.suites[cache_key] = suite
    return suite


def _find_case(suite: Suite, run_id: str, device: str) -> Case | None:
    for case in suite.cases:
        if case.run_id == run_id and case.device == device:
            return case
    for case in suite.cases:  # --device cuda:1 ran the suite's cuda cases on cuda:1
        moved = replace(case, device=device)
        if moved.run_id == run_id:
            return moved
    return None


def _run_spec(spec: Mapping[str, Any], where: Mapping[str, Any]) -> RunResult:
    """Run the case of ``spec`` here; every problem becomes the row's error, naming the
    worker."""
    worker = f"worker {where['worker'] or where['pid']} on {where['host']}"
    try:
        registry = _STATE.get_registry()
        mine = plugin_fingerprint(registry)
        for name, expected in sorted(spec["plugins"].items()):
            if mine.get(name) != expected:
                have = mine.get(name)
                state = f"is {have}" if have else "is not installed"
                raise BenchkitError(
                    f"{worker}: plugin {name} {state} here, {expected} on the benchkit "
                    "machine; install the same plugins on every worker"
                )
        extra = sorted(set(mine) - set(spec["plugins"]))
        if extra:
            raise BenchkitError(
                f"{worker}: plugin(s) {', '.join(extra)} are installed here but not on the "
                "benchkit machine; install the same plugins on every worker"
            )
        suite = _suite(spec, registry)
        wanted = spec["case"]
        case = _find_case(suite, wanted["run_id"], wanted["device"])
        if case is not None:
            case = replace(case, max_seconds=wanted.get("max_seconds"))
        if case is None or case_digest(case) != wanted["digest"]:
            what = "is not in the suite" if case is None else "expands differently"
            raise BenchkitError(
                f"{worker}: run {wanted['run_id']} {what} as parsed here; install the same "
                "benchkit and plugins on every worker"
            )
        if spec.get("threads"):
            torch.set_num_threads(int(spec["threads"]))
        assert _STATE.devices is not None
        return run_case(case, registry, _STATE.devices)
    except Exception as exc:
        result = RunResult(**spec["row"])
        result.status, result.status_detail = "error", describe_exception(exc)
        return result


def run_task(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Run one case described by :func:`task_spec`, on the worker that calls this; return
    ``{"result": <result_to_dict>, "where": {worker, address, host, pid}}``.

    Never raises for a problem with the case, the suite or the plugins here: the row is then
    ``error`` with a message naming this worker. On a Dask worker it announces, in the event
    topic of ``spec``, that the run starts and that it ended.
    """
    where = _where()
    started = time.time()
    # "name", not "worker": the scheduler sets an event's "worker" to the worker's address
    announcement = {"key": spec["key"], "event": "start", "name": where["worker"]}
    announcement.update((k, where[k]) for k in ("address", "host", "pid"))
    _announce(spec.get("topic", ""), {**announcement, "started": started})
    ledger = HostLedger.for_token(spec["token"])
    start = ledger.begin(spec["key"], started)
    try:
        result = _run_spec(spec, where)
    finally:
        host_runs = ledger.end(spec["key"], start)
    shared = host_runs > 1 if host_runs is not None else bool(spec.get("share_hosts"))
    stamp_run(result, where["worker"], host_runs, shared)
    # the run is done: if this worker dies before its result is fetched, the run was not lost
    # with it (Dask computes it again elsewhere)
    _announce(spec.get("topic", ""), {**announcement, "event": "end"})
    return {"result": result_to_dict(result), "where": where}


def clear_host_ledger(token: str) -> None:
    """Remove the host ledger of the suite run ``token`` on this host (after the suite)."""
    HostLedger.for_token(token).remove()
