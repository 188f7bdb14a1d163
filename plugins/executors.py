"""Built-in executors: ``serial`` (the default: one run after another in this process) and
``dask`` (the runs spread over a Dask cluster, from two local worker processes to a GPU fleet).

The Dask executor is built on Dask distributed and nothing of our own for processes: a
``LocalCluster`` of single-threaded worker processes (``--workers N``), or an existing
scheduler (``--scheduler tcp://HOST:PORT`` or ``BENCHKIT_SCHEDULER``), which is how Slurm
(``dask-jobqueue``) and Kubernetes (``dask-kubernetes``) clusters are used. Each run is one
Dask task calling :func:`benchkit.executors.run_task` with the case described as data; the
worker parses the suite itself. What this module adds on top of Dask:

- **a check before anything runs**: every worker must have this machine's benchkit, hook API
  and plugins (package, version, status) and run one thread; a mismatch is refused with a
  table of what differs. Workers that join later are checked the same way and left out;
- **placement**: a case on ``cuda`` needs the worker resource ``GPU=1`` (``mps``: ``MPS=1``).
  Runs whose timings gate go one at a time per host (the host as its workers report it),
  placed by this client: Dask resources belong to a worker, not to a host. With
  ``--share-hosts`` Dask places them freely and each row says how many runs shared its host;
- **faults**: a run whose worker dies is ``error: worker lost (HOST)``, or is run once more
  with ``--retries 1``; the suite goes on. Tasks that were only waiting on that worker are
  placed again. Ctrl-C cancels what has not finished; the finished runs are already written.

See docs/scaling-out.md.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import queue
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import benchkit
from benchkit.errors import BenchkitError, describe_exception
from benchkit.executors import (
    DEVICE_RESOURCES,
    Case,
    DeviceCache,
    ExecutorContext,
    Progress,
    Registry,
    RunResult,
    SerialExecutor,
    case_result,
    clear_host_ledger,
    deferred,
    differences_table,
    facts_differences,
    plugin_fingerprint,
    result_from_dict,
    result_to_dict,
    run_task,
    task_spec,
    worker_facts,
)

benchkit_api = "1.2"  # benchkit_register_executors

INSTALL_HINT = "pip install 'benchkit[dask]'"
SCHEDULER_ENV = "BENCHKIT_SCHEDULER"
#: what run.json's executor entry says about each worker
_DESCRIBED = ("name", "host", "nthreads", "resources", "torch", "python", "cpu", "gpus")
#: seconds between looks at the cluster (finished runs wake the loop at once)
TICK = 0.25


def _serial(options: dict[str, Any], context: ExecutorContext) -> SerialExecutor:
    return SerialExecutor()


def _dask(options: dict[str, Any], context: ExecutorContext) -> DaskExecutor:
    return DaskExecutor(options, context)


@benchkit.hookimpl
def benchkit_register_executors(register):
    """``serial`` and ``dask``."""
    register("serial", _serial, description="one run after another in this process (default)")
    register(
        "dask",
        _dask,
        options={
            "workers": None,
            "scheduler": None,
            "share_hosts": False,
            "retries": 0,
            "gpu_workers": None,
            "connect_timeout": 30.0,
        },
        description="runs spread over a Dask cluster: a local one (--workers N) or an "
        "existing scheduler (--scheduler ADDRESS)",
    )


def import_distributed() -> Any:
    """The ``distributed`` module, or a :class:`BenchkitError` with the install command."""
    try:
        import distributed
    except ImportError as exc:
        raise BenchkitError(
            f"--executor dask needs Dask distributed, which is not installed here ({exc}); "
            f"install it with: {INSTALL_HINT}"
        ) from None
    return distributed


async def _close_workers(nannies: list[Any], timeout: float) -> None:
    """Close a local cluster's worker processes, killing any still alive after ``timeout``."""
    await asyncio.gather(*(n.close(timeout=timeout) for n in nannies), return_exceptions=True)


@dataclass
class _Worker:
    """A live worker as the client sees it."""

    address: str
    name: str
    host: str
    nthreads: int
    resources: dict[str, float]


@dataclass
class _Task:
    """One case on its way through the cluster (an attempt has a future)."""

    index: int
    case: Case
    tries: int = 0
    lost_on: list[str] = field(default_factory=list)
    future: Any = None
    key: str = ""
    host: str = ""  # the host it was placed on (runs one at a time per host)
    workers: list[str] | None = None
    started: dict[str, Any] | None = None  # the worker's announcement: name, address, host
    ended: bool = False  # the worker announced that the run ended (its result may be in transit)
    fetch_failures: int = 0  # results that ended but could not be fetched (their worker died)
    announced: bool = False  # progress.start was called


class DaskExecutor:
    """Runs a suite's cases as Dask tasks (see the module docstring)."""

    name = "dask"
    runs_here = False  # the workers build their own devices; run.json lists them per worker

    def __init__(self, options: dict[str, Any], context: ExecutorContext) -> None:
        self.distributed = import_distributed()
        self.context = context
        workers, scheduler = options.get("workers"), options.get("scheduler")
        if workers is not None and scheduler:
            raise BenchkitError(
                "--workers starts a local Dask cluster and --scheduler uses an existing one: "
                "pass one of them"
            )
        if scheduler is None and workers is None:
            scheduler = os.environ.get(SCHEDULER_ENV) or None
        if workers is not None and (not isinstance(workers, int) or workers < 1):
            raise BenchkitError(f"--workers must be at least 1, got {workers}")
        retries = options.get("retries", 0)
        if not isinstance(retries, int) or retries < 0:
            raise BenchkitError(f"--retries must be 0 or more, got {retries}")
        gpu_workers = options.get("gpu_workers")
        if gpu_workers is not None and (not isinstance(gpu_workers, int) or gpu_workers < 0):
            raise BenchkitError(f"--gpu-workers must be 0 or more, got {gpu_workers}")
        if gpu_workers and scheduler:
            raise BenchkitError(
                "--gpu-workers applies to the local cluster of --workers; workers of an "
                "existing scheduler say their own resources (dask worker --resources GPU=1)"
            )
        self.workers = workers
        self.scheduler = scheduler
        self.share_hosts = bool(options.get("share_hosts"))
        self.retries = retries
        self.gpu_workers = gpu_workers
        self.connect_timeout = float(options.get("connect_timeout") or 30.0)
        self.client: Any = None
        self.cluster: Any = None
        self._facts: dict[str, dict[str, Any]] = {}
        self._excluded: dict[str, str] = {}  # address -> why its runs go elsewhere
        self._here: dict[str, Any] = {}
        self._inflight: dict[str, _Task] = {}
        self._started = False
        # A local cluster starts in the background from here on: its worker processes
        # import torch while benchkit prepares the suite; start() waits for it.
        self._launch: threading.Thread | None = None
        self._launch_error: BaseException | None = None
        self._lost_worker_timeout: Any = None  # the dask.config setting, undone by close()
        self._answers: dict[str, Any] = {}  # worker_facts asked while the cluster started
        self._warm = sorted({case.device for case in context.suite.cases})
        if not self.scheduler:
            self._launch = threading.Thread(
                target=self._launch_local, name="benchkit-dask-start", daemon=True
            )
            self._launch.start()

    # --- the cluster ---------------------------------------------------------------------

    def __enter__(self) -> DaskExecutor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Connect to the scheduler, or wait for the local cluster; check every worker."""
        if self._started:
            return
        try:
            if self._launch is not None:
                self._launch.join()
                self._launch = None
                if self._launch_error is not None:
                    raise self._launch_error
            elif self.client is None:
                self._connect()
            self._here = worker_facts()
            self._check_workers(self._live(), refuse=True)
        except BaseException:
            self.close()
            raise
        self._started = True
        if not self.context.quiet:
            print(f"benchkit: {self._summary()}", file=sys.stderr)

    def _connect(self) -> None:
        distributed = self.distributed
        try:
            self.client = distributed.Client(
                self.scheduler, timeout=self.connect_timeout, set_as_default=False
            )
        except (OSError, TimeoutError, ValueError) as exc:
            raise BenchkitError(
                f"cannot reach the Dask scheduler at {self.scheduler} ({describe_exception(exc)}"
                "); start one with `dask scheduler`, or check --scheduler / "
                f"{SCHEDULER_ENV}"
            ) from None
        try:
            self.client.wait_for_workers(1, timeout=self.connect_timeout)
        except TimeoutError:
            raise BenchkitError(
                f"the Dask scheduler at {self.scheduler} has no workers after "
                f"{self.connect_timeout:g} s; start some with "
                f"`dask worker {self.scheduler} --nthreads 1`"
            ) from None

    def _launch_local(self) -> None:
        try:
            self._start_local()
        except BaseException as exc:  # start() raises it in the caller's thread
            self._launch_error = exc

    def _start_local(self) -> None:
        import dask

        distributed = self.distributed
        total = self.workers or os.cpu_count() or 1
        gpus = self.gpu_workers
        if gpus is None:
            import torch

            gpus = 1 if torch.cuda.is_available() else 0
        gpus = min(gpus, total)
        settings = {
            # a run on a worker that dies is ours to report or retry, not Dask's to rerun
            "distributed.scheduler.allowed-failures": 0,
            # one task per single-threaded worker at a time: the rest wait at the scheduler
            "distributed.scheduler.worker-saturation": 1.0,
            # Dask starts workers with MALLOC_TRIM_THRESHOLD_=65536, so glibc hands every
            # freed tensor above 64 KiB back to the kernel and the next step faults its pages
            # in again: a small model's step ran 1.7x slower (docs/scaling-out.md). None
            # unsets it.
            "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
        }
        # Read whenever a worker dies (until close()): a restarted worker that imports torch
        # on a busy machine may need more than Dask's 15 s before the cluster gives it up.
        self._lost_worker_timeout = dask.config.set(
            {"distributed.deploy.lost-worker-timeout": "300s"}
        )
        with dask.config.set(settings):
            self.cluster = distributed.LocalCluster(
                n_workers=total - gpus,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                silence_logs=logging.CRITICAL,
                preload=["benchkit_plugins.dask_preload"],  # Ctrl-C is benchkit's
            )
            for i in range(gpus):
                options = dict(self.cluster.new_spec["options"], resources={"GPU": 1})
                if gpus > 1:  # each GPU worker sees its own GPU as cuda:0
                    options["env"] = {"CUDA_VISIBLE_DEVICES": str(i)}
                spec = {"cls": self.cluster.new_spec["cls"], "options": options}
                self.cluster.worker_spec[f"gpu-{i}"] = spec
            if gpus:
                self.cluster.sync(self.cluster._correct_state)
        self.client = distributed.Client(self.cluster, set_as_default=False)
        timeout = max(120.0, self.connect_timeout)
        try:
            self.client.wait_for_workers(total, timeout=timeout)
        except TimeoutError:
            raise BenchkitError(
                f"the local Dask cluster did not start {total} workers within {timeout:g} s"
            ) from None
        # still in the background: the workers load benchkit, its plugins and torch now
        self._answers = self.client.run(worker_facts, self._warm, on_error="return")

    def close(self) -> None:
        """Cancel what is still queued or running; close the client and the local cluster."""
        if self._launch is not None:  # never started: let the launch finish, then close it
            self._launch.join()
            self._launch = None
        self._started = False
        client, cluster = self.client, self.cluster
        self.client = self.cluster = None
        if client is not None:
            futures = [t.future for t in self._inflight.values() if t.future is not None]
            with contextlib.suppress(Exception):
                if futures:
                    client.cancel(futures)
            with contextlib.suppress(Exception):
                client.close()
        if self._lost_worker_timeout is not None:
            self._lost_worker_timeout.__exit__(None, None, None)
            self._lost_worker_timeout = None
        if cluster is not None:
            with contextlib.suppress(Exception):
                # every result is written: a worker process gets a second to exit, not
                # Dask's five (torch's teardown alone can take longer on a busy machine)
                cluster.sync(_close_workers, list(cluster.workers.values()), 1.0)
            with contextlib.suppress(Exception):
                cluster.close()
        self._inflight = {}

    def describe(self) -> dict[str, Any]:
        """The executor for ``run.json``: the scheduler, the placement and each worker."""
        return {
            "name": self.name,
            "scheduler": self.client.scheduler.address if self.client else self.scheduler,
            "local_cluster": self.scheduler is None,
            "share_hosts": self.share_hosts,
            "retries": self.retries,
            "workers": {
                address: {key: facts.get(key) for key in _DESCRIBED}
                for address, facts in sorted(self._facts.items())
            },
        }

    def _summary(self) -> str:
        workers = self._live()
        hosts = sorted({w.host for w in workers.values()})
        gpu = sum(1 for w in workers.values() if w.resources.get("GPU", 0) >= 1)
        where = "a local cluster" if self.scheduler is None else f"scheduler {self.scheduler}"
        text = (
            f"dask: {len(workers)} worker{'s' * (len(workers) != 1)} "
            f"({gpu} with GPU=1) on {len(hosts)} host{'s' * (len(hosts) != 1)} "
            f"({', '.join(hosts)}) through {where}; "
        )
        if self.share_hosts:
            return text + "runs share hosts (--share-hosts): their timings are marked shared"
        return text + (
            "runs go one at a time per host so that their timings can gate; --share-hosts "
            "runs them side by side (timings marked shared)"
        )

    def _live(self) -> dict[str, _Worker]:
        """The workers the scheduler knows now, by address."""
        info = self.client.scheduler_info()["workers"]
        out = {}
        for address, w in info.items():
            facts = self._facts.get(address, {})
            out[address] = _Worker(
                address=address,
                name=str(w.get("name", address)),
                host=str(facts.get("host") or w.get("host", address)),
                nthreads=int(w.get("nthreads", 1)),
                resources=dict(w.get("resources") or {}),
            )
        return out

    def _check_workers(self, live: dict[str, _Worker], refuse: bool) -> list[str]:
        """Ask every worker not seen before what it runs with. At the start (``refuse``) any
        difference stops the command with a table; later ones leave the worker out and return
        a warning each."""
        new = [a for a in live if a not in self._facts and a not in self._excluded]
        if not new:
            return []
        answers = {a: self._answers.pop(a) for a in new if a in self._answers}
        ask = [a for a in new if a not in answers]
        if ask:
            answers.update(
                self.client.run(worker_facts, self._warm, workers=ask, on_error="return")
            )
        rows = []
        for address in new:
            there = answers.get(address, RuntimeError("the worker left before answering"))
            worker = live[address]
            diffs = facts_differences(self._here, there)
            if worker.nthreads != 1:
                diffs.append(("threads per worker", "1", str(worker.nthreads)))
            if diffs:
                label = worker.name if worker.name == address else f"{worker.name} ({address})"
                rows.extend((label, *d) for d in diffs)
                self._excluded[address] = "; ".join(f"{w}: {t}" for w, _, t in diffs)
            else:
                facts = dict(there)
                facts.update(name=worker.name, nthreads=worker.nthreads)
                facts["resources"] = worker.resources
                self._facts[address] = facts
        if not rows:
            return []
        bad = len({r[0] for r in rows})
        message = (
            f"{bad} of {len(new)} Dask worker{'s' * (len(new) != 1)} differ from this machine "
            "(workers must run the same benchkit and plugins, one thread each: "
            "`dask worker ADDRESS --nthreads 1`):\n" + differences_table(rows)
        )
        if refuse:
            raise BenchkitError(message)
        return [message.replace("differ from", "that joined differ from") + "\nleft out"]

    # --- the runs ------------------------------------------------------------------------

    def results(
        self,
        cases: Sequence[Case],
        registry: Registry,
        devices: DeviceCache,
        progress: Progress | None = None,
    ) -> Iterator[RunResult]:
        """Submit the cases as Dask tasks and yield each result as it finishes."""
        self.start()
        distributed = self.distributed
        token = uuid.uuid4().hex[:12]
        topic = f"benchkit-runs-{token}"
        events: queue.SimpleQueue = queue.SimpleQueue()
        self.client.subscribe_topic(topic, events.put)
        plugins = plugin_fingerprint(registry)
        waiting = collections.deque(_Task(i, c) for i, c in enumerate(cases, 1))
        inflight = self._inflight = {}
        run = _Run(self, token, topic, plugins, progress, len(cases))
        completed = False
        try:
            while waiting or inflight:
                ready: list[RunResult] = []
                warnings: list[str] = []
                stopped: KeyboardInterrupt | None = None
                try:
                    # Ctrl-C (or SIGTERM, SIGHUP) waits for the end of this block: raised in
                    # the middle of Dask's code it could be lost (a finaliser swallows it)
                    with deferred():
                        live = self._live()
                        warnings = self._check_workers(live, refuse=False)
                        ready += run.reap(live, waiting)  # a left-out worker is not a lost one
                        usable = {a: w for a, w in live.items() if a not in self._excluded}
                        ready += run.place(usable, waiting)
                        if inflight:
                            with contextlib.suppress(TimeoutError), self.client.as_current():
                                distributed.wait(
                                    [t.future for t in inflight.values()],
                                    timeout=TICK,
                                    return_when="FIRST_COMPLETED",
                                )
                            run.read_events(events)
                            ready += run.collect(waiting)
                except KeyboardInterrupt as exc:
                    # the runs that finished are kept; one whose worker went with the same
                    # signal (a terminal closed) was interrupted, not lost
                    stopped = exc
                    ready = [r for r in ready if not r.status_detail.startswith("worker lost")]
                for warning in warnings if not self.context.quiet else ():
                    print(f"benchkit: warning: {warning}", file=sys.stderr)
                for result in ready:
                    yield result  # written by the run stage before the progress shows it
                    if progress is not None:
                        progress.finish(result)
                if stopped is not None:
                    raise stopped
            completed = True
        finally:
            run.stop(completed)


class _Run:
    """The bookkeeping of one suite run on the cluster: what waits, what runs where."""

    def __init__(
        self,
        executor: DaskExecutor,
        token: str,
        topic: str,
        plugins: dict[str, str],
        progress: Progress | None,
        total: int,
    ) -> None:
        self.ex = executor
        self.client = executor.client
        self.token = token
        self.topic = topic
        self.plugins = plugins
        self.progress = progress
        self.total = total
        self.done = 0
        self.attempts = 0
        self.no_workers_since: float | None = None

    @property
    def inflight(self) -> dict[str, _Task]:
        return self.ex._inflight

    # placing

    def _eligible(self, task: _Task, workers: Sequence[_Worker]) -> list[_Worker]:
        resource = DEVICE_RESOURCES.get(task.case.device.partition(":")[0])
        if resource is None:
            return list(workers)
        return [w for w in workers if w.resources.get(resource, 0) >= 1]

    def place(self, live: dict[str, _Worker], waiting: collections.deque) -> Iterator[RunResult]:
        """Submit what may run now; skip runs no live worker can ever take."""
        if not live:
            yield from self._no_workers(waiting)
            return
        self.no_workers_since = None
        if self.ex.share_hosts:
            for task in list(waiting):
                if self._eligible(task, list(live.values())):
                    waiting.remove(task)
                    restrict = sorted(live) if self.ex._excluded else None
                    self._submit(task, restrict, host="")
        else:
            by_host: dict[str, list[_Worker]] = collections.defaultdict(list)
            for worker in live.values():
                by_host[worker.host].append(worker)
            busy = {t.host for t in self.inflight.values()}
            for host in sorted(by_host):
                if host in busy:
                    continue
                for task in waiting:
                    eligible = self._eligible(task, by_host[host])
                    if eligible:
                        waiting.remove(task)
                        self._submit(task, sorted(w.address for w in eligible), host=host)
                        break
        if not self.inflight:  # nothing runs, and what waits fits no worker: never will
            while waiting:
                task = waiting.popleft()
                resource = DEVICE_RESOURCES.get(task.case.device.partition(":")[0], "")
                result = case_result(task.case)
                result.status = "skipped"
                result.status_detail = (
                    f"no Dask worker offers the resource {resource}=1 that {task.case.device} "
                    f"runs need; start one with `dask worker SCHEDULER --nthreads 1 "
                    f"--resources {resource}=1`"
                )
                yield self._finish(task, result)

    def _no_workers(self, waiting: collections.deque) -> Iterator[RunResult]:
        """No worker is left: wait for one (a local cluster restarts them) for a while, then
        report what could not run."""
        now = time.monotonic()
        if self.no_workers_since is None:
            self.no_workers_since = now
            return
        if now - self.no_workers_since < self.ex.connect_timeout or self.inflight:
            time.sleep(TICK)
            return
        while waiting:
            task = waiting.popleft()
            result = case_result(task.case)
            result.status = "error"
            result.status_detail = f"not run: no Dask worker left for {self.ex.connect_timeout:g} s"
            yield self._finish(task, result)

    def _submit(self, task: _Task, workers: list[str] | None, host: str) -> None:
        self.attempts += 1
        task.key = f"benchkit-{self.token}-{task.index}-{self.attempts}"
        task.host, task.workers, task.started, task.ended = host, workers, None, False
        spec = task_spec(
            self.ex.context,
            task.case,
            token=self.token,
            key=task.key,
            plugins=self.plugins,
            topic=self.topic,
            share_hosts=self.ex.share_hosts,
        )
        resource = DEVICE_RESOURCES.get(task.case.device.partition(":")[0])
        task.future = self.client.submit(
            run_task,
            spec,
            key=task.key,
            pure=False,
            workers=workers,
            allow_other_workers=False,
            resources={resource: 1} if resource else None,
            retries=0,
        )
        self.inflight[task.key] = task

    # watching

    def read_events(self, events: queue.SimpleQueue) -> None:
        """Runs that started on a worker (the worker announces each before it starts)."""
        changed = False
        while True:
            try:
                _, message = events.get_nowait()
            except queue.Empty:
                break
            task = self.inflight.get(message.get("key"))
            if task is None:
                continue
            if message.get("event") == "end":
                task.ended = True
                continue
            if task.started is not None and not task.ended:
                continue
            # a start, or a start again: Dask computes a finished run once more when the
            # worker that held its result died before the result was fetched
            task.started, task.ended = message, False
            self._announce(task)
            if self.progress is not None and hasattr(self.progress, "placed"):
                self.progress.placed(task.index, task.case, f"{message['name']}@{message['host']}")
            changed = True
        if changed:
            self._counts()

    def reap(self, live: dict[str, _Worker], waiting: collections.deque) -> Iterator[RunResult]:
        """Runs whose worker is gone: lost (or retried); tasks that only waited there go
        back to the queue."""
        for task in list(self.inflight.values()):
            if task.started is not None and not task.ended:
                if task.started.get("address") not in live:
                    yield from self._lost(task, str(task.started.get("host")), waiting)
            elif task.workers is not None and not any(a in live for a in task.workers):
                self._cancel(task)  # restricted to a host that has no worker left
                waiting.appendleft(task)

    def collect(self, waiting: collections.deque) -> Iterator[RunResult]:
        """Results of the tasks that finished."""
        for key, task in list(self.inflight.items()):
            future = task.future
            if not future.done():
                continue
            if future.status == "finished":
                try:
                    payload = future.result()
                except (Exception, asyncio.CancelledError) as exc:
                    # the worker that held the result died before it was fetched: the run
                    # ended, its result did not arrive; run it again (twice at most)
                    task.fetch_failures += 1
                    if task.fetch_failures <= 2:
                        self._cancel(task)
                        waiting.appendleft(task)
                        continue
                    payload = {"result": self._error(task, f"result lost: {exc!r}")}
                del self.inflight[key]
                yield self._finish(task, result_from_dict(payload["result"]))
            elif future.status == "error":
                exc = future.exception()
                if type(exc).__name__ == "KilledWorker":
                    if task.started is None or task.ended:  # not running there: place again
                        self._cancel(task)
                        waiting.appendleft(task)
                        continue
                    host = str(task.started.get("host"))
                    yield from self._lost(task, host, waiting)
                    continue
                del self.inflight[key]
                payload = self._error(task, describe_exception(exc))
                yield self._finish(task, result_from_dict(payload))
            else:  # cancelled by someone else (the scheduler restarted): place it again
                self._cancel(task)
                waiting.appendleft(task)

    def _error(self, task: _Task, detail: str) -> dict[str, Any]:
        """The row of a run whose task failed, as a worker would have sent it."""
        where = task.started or {}
        result = case_result(task.case)
        result.worker, result.worker_host = where.get("name", ""), where.get("host", "")
        result.status = "error"
        result.status_detail = f"worker {where.get('name', '?')} on {where.get('host', '?')}: "
        result.status_detail += detail
        return result_to_dict(result)

    def _lost(self, task: _Task, host: str, waiting: collections.deque) -> Iterator[RunResult]:
        worker = str((task.started or {}).get("name", ""))
        self._cancel(task)
        task.lost_on.append(host)
        if task.tries < self.ex.retries:
            task.tries += 1
            waiting.appendleft(task)
            if self.progress is not None and not self.ex.context.quiet:
                print(
                    f"benchkit: {task.case.run_id}: worker lost ({host}); running it again "
                    f"(retry {task.tries} of {self.ex.retries})",
                    file=sys.stderr,
                )
            return
        result = case_result(task.case)
        result.worker, result.worker_host = worker, host
        result.status = "error"
        result.status_detail = f"worker lost ({host})"
        if len(task.lost_on) > 1:
            result.status_detail += (
                f" after {len(task.lost_on) - 1} retr{'y' if len(task.lost_on) == 2 else 'ies'}"
                f" (lost before on {', '.join(task.lost_on[:-1])})"
            )
        yield self._finish(task, result)

    def _cancel(self, task: _Task) -> None:
        self.inflight.pop(task.key, None)
        if task.future is not None:
            with contextlib.suppress(Exception):
                self.client.cancel([task.future])
        task.future, task.started, task.ended = None, None, False

    # telling

    def _announce(self, task: _Task) -> None:
        if self.progress is not None and not task.announced:
            self.progress.start(task.index, task.case)
            task.announced = True

    def _counts(self) -> None:
        if self.progress is None or not hasattr(self.progress, "counts"):
            return
        running = sum(1 for t in self.inflight.values() if t.started and not t.ended)
        self.progress.counts(self.done, running, self.total - self.done - running)

    def _finish(self, task: _Task, result: RunResult) -> RunResult:
        self.done += 1
        self._announce(task)
        self._counts()
        return result

    def stop(self, completed: bool) -> None:
        """Cancel what did not finish (Ctrl-C, an error); forget the events; remove the host
        ledgers (on every worker's host after a complete run; here, always)."""
        futures = [t.future for t in self.inflight.values() if t.future is not None]
        with contextlib.suppress(Exception):
            if futures:
                self.client.cancel(futures)
        self.inflight.clear()
        with contextlib.suppress(Exception):
            self.client.unsubscribe_topic(self.topic)
        if completed:
            with contextlib.suppress(Exception):
                self.client.run(clear_host_ledger, self.token, on_error="ignore")
        clear_host_ledger(self.token)
