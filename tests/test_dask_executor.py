"""The ``dask`` executor on real Dask clusters on this machine (loopback addresses only).

One local cluster of two single-threaded worker processes serves most tests: ``0`` and
``gpu-0``, the second with a fake ``GPU=1`` resource on the CPU. It is started by the
executor itself (``--workers 2 --gpu-workers 1``); other tests connect to its scheduler as
``--scheduler`` would. One test starts ``dask scheduler`` and ``dask worker`` as separate
processes. Needs the extra: ``pip install -e '.[dask]'`` (tox installs it).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

if os.environ.get("BENCHKIT_REQUIRE_DASK"):  # tox and CI: a missing extra fails, never skips
    import distributed  # noqa: F401
else:
    pytest.importorskip("distributed", reason="the dask extra: pip install -e '.[dask]'")

from benchkit_plugins.executors import DaskExecutor

from benchkit.cases import DeviceCache
from benchkit.cli import main
from benchkit.compare import Options, compare
from benchkit.errors import BenchkitError
from benchkit.executors import ExecutorContext, SerialExecutor, executor_session
from benchkit.registry import load_registry
from benchkit.resultset import ResultSetWriter, load
from benchkit.runner import run_suite
from benchkit.suite import parse_suite

LOOPBACK = "127.0.0.1"

TINY = """
[suite]
name = "tiny"

[matrix]
devices = ["cpu"]
precisions = ["fp32", "fp16"]
seeds = [0, 1]

[[cases]]
model = "single_neuron"
dataset = "line"
target_loss = 0.3
recipe = { epochs = 25 }
"""

# one longer run (a few seconds) for a worker to be killed in the middle of
WITH_VICTIM = (
    TINY
    + """
[[cases]]
model = "sine_mlp"
dataset = "sine"
precisions = ["fp32"]
seeds = [0]
recipe = { epochs = 300 }
"""
)
VICTIM = "sine_mlp/sine/fp32/cpu/seed0"

WITH_CUDA = TINY.replace('devices = ["cpu"]', 'devices = ["cpu", "cuda"]')


def write_suite(tmp_path: Path, text: str, name: str = "tiny") -> Path:
    folder = tmp_path / "suites" / name
    folder.mkdir(parents=True)
    (folder / "suite.toml").write_text(text)
    return folder


@pytest.fixture(scope="module")
def registry():
    return load_registry()


@pytest.fixture(scope="module")
def cluster(registry, tmp_path_factory):
    """The executor's own local cluster: worker ``0`` and worker ``gpu-0`` (GPU=1, fake)."""
    folder = write_suite(tmp_path_factory.mktemp("cluster"), TINY)
    context = ExecutorContext(parse_suite(folder, registry), threads=1, quiet=True)
    executor = DaskExecutor({"workers": 2, "gpu_workers": 1}, context)
    executor.start()
    yield executor
    executor.close()


def executor_for(cluster, suite, **options) -> DaskExecutor:
    """A client of the shared cluster, as ``--scheduler ADDRESS`` makes one."""
    context = ExecutorContext(suite, threads=1, quiet=True)
    address = cluster.client.scheduler.address
    executor = DaskExecutor({"scheduler": address, **options}, context)
    executor.start()
    return executor


def run(executor, suite, registry, out, progress=None):
    """``run_suite`` with ``executor``, entered and left as ``benchkit run`` does."""
    with executor_session(executor):
        writer = ResultSetWriter(out, {"kind": "convergence", "suite": {"text": suite.text}})
        outcome = run_suite(
            suite,
            suite.cases,
            registry,
            DeviceCache(registry),
            writer,
            progress=progress,
            executor=executor,
        )
    return outcome.frame


class Recorder:
    """Progress that remembers where each run started and can act on it."""

    def __init__(self, on_placed=None, on_finish=None):
        self.placed_on: dict[str, str] = {}
        self.finished: list[str] = []
        self.on_placed, self.on_finish = on_placed, on_finish

    def start(self, index, case):
        pass

    def epoch(self, epoch, loss):
        pass

    def placed(self, index, case, where):
        self.placed_on[case.run_id] = where
        if self.on_placed:
            self.on_placed(case, where)

    def counts(self, done, running, queued):
        pass

    def finish(self, result):
        self.finished.append(result.run_id)
        if self.on_finish:
            self.on_finish(result)


# --- the same results, spread out ---------------------------------------------------------------


def test_dask_gives_the_serial_runs_deterministic_results(cluster, registry, tmp_path):
    suite = parse_suite(write_suite(tmp_path, TINY), registry)
    serial = run(SerialExecutor(), suite, registry, tmp_path / "serial")
    spread = run(executor_for(cluster, suite, share_hosts=True), suite, registry, tmp_path / "d")
    assert sorted(spread["run_id"]) == sorted(serial["run_id"])
    assert set(spread["worker"].astype(str)) <= {"0", "gpu-0"}
    assert (spread["timings_shared"] == (spread["host_runs"] > 1)).all()
    comparison = compare(load(tmp_path / "serial"), load(tmp_path / "d"), Options(strict=True))
    deterministic = [f for f in comparison.findings if f.kind in ("deterministic", "status")]
    assert deterministic and all(f.verdict == "same" for f in deterministic)
    assert comparison.exit_code == 0  # shared timings never gate


def test_local_workers_keep_freed_memory_for_the_next_step(cluster):
    # Dask's default MALLOC_TRIM_THRESHOLD_=65536 hands each freed tensor's pages back to the
    # kernel, and a small model's step then ran 1.7x slower on a worker than in benchkit.
    seen = cluster.client.run(os.environ.get, "MALLOC_TRIM_THRESHOLD_")
    assert len(seen) == 2 and set(seen.values()) == {None}


def test_runs_whose_timings_gate_go_one_at_a_time_per_host(cluster, registry, tmp_path):
    suite = parse_suite(write_suite(tmp_path, TINY), registry)
    rows = run(executor_for(cluster, suite), suite, registry, tmp_path / "out")
    assert len(rows) == 4 and set(rows["status"]) == {"ok"}
    assert set(rows["host_runs"]) == {1} and not rows["timings_shared"].any()


def test_a_cuda_case_goes_only_to_a_worker_with_the_gpu_resource(cluster, registry, tmp_path):
    suite = parse_suite(write_suite(tmp_path, WITH_CUDA), registry)
    rows = run(executor_for(cluster, suite, share_hosts=True), suite, registry, tmp_path / "o")
    cuda = rows[rows["device"] == "cuda"]
    assert len(cuda) == 4 and set(cuda["worker"].astype(str)) == {"gpu-0"}
    # on this CPU machine the GPU worker has no CUDA: skipped there, with the device's reason
    import torch

    if not torch.cuda.is_available():
        assert set(cuda["status"]) == {"skipped"}
        assert cuda["status_detail"].str.startswith("device cuda unavailable").all()


# --- faults -----------------------------------------------------------------------------------


def kill_worker_of(cluster_executor, victim: str):
    """A progress hook that kills the worker process the victim run starts on, once."""
    killed: list[int] = []

    def on_placed(case, where):
        if case.run_id != victim or killed:
            return
        name = where.partition("@")[0]
        pids = [f["pid"] for f in cluster_executor._facts.values() if f["name"] == name]
        os.kill(pids[-1], signal.SIGKILL)
        killed.append(pids[-1])

    return on_placed, killed


def test_a_killed_worker_loses_only_its_run(cluster, registry, tmp_path):
    suite = parse_suite(write_suite(tmp_path, WITH_VICTIM), registry)
    executor = executor_for(cluster, suite, share_hosts=True)
    on_placed, killed = kill_worker_of(executor, VICTIM)
    rows = run(executor, suite, registry, tmp_path / "out", Recorder(on_placed))
    assert killed
    lost = rows[rows["status"] == "error"]
    assert list(lost["run_id"]) == [VICTIM]
    assert lost["status_detail"].iloc[0].startswith("worker lost (")
    assert len(rows) == 5 and (rows[rows["run_id"] != VICTIM]["status"] == "ok").all()
    assert len(pd.read_csv(tmp_path / "out" / "results.csv")) == 5


@pytest.mark.slow
def test_with_retries_the_lost_run_runs_again(cluster, registry, tmp_path, capsys):
    suite = parse_suite(write_suite(tmp_path, WITH_VICTIM), registry)
    executor = executor_for(cluster, suite, share_hosts=True, retries=1)
    executor.context.quiet = False
    on_placed, killed = kill_worker_of(executor, VICTIM)
    rows = run(executor, suite, registry, tmp_path / "out", Recorder(on_placed))
    err = capsys.readouterr().err
    assert killed and len(rows) == 5
    details = "; ".join(
        f"{r.run_id}: {r.status_detail}" for r in rows.itertuples() if r.status != "ok"
    )
    assert set(rows["status"]) == {"ok"}, f"{details}\n{err}"
    assert f"{VICTIM}: worker lost (" in err


def benchkit_tasks(dask_scheduler) -> int:
    """Tasks of benchkit runs the scheduler still holds (run on the scheduler)."""
    return sum(1 for key in dask_scheduler.tasks if str(key).startswith("benchkit-"))


def test_ctrl_c_cancels_the_queue_and_keeps_the_finished_runs(cluster, registry, tmp_path):
    suite = parse_suite(write_suite(tmp_path, WITH_VICTIM), registry)

    def interrupt(result):
        if len(finished) == 2:
            raise KeyboardInterrupt

    recorder = Recorder(on_finish=interrupt)
    finished = recorder.finished
    executor = executor_for(cluster, suite, share_hosts=True)  # every run submitted at once
    with pytest.raises(KeyboardInterrupt):
        run(executor, suite, registry, tmp_path / "out", recorder)
    meta = json.loads((tmp_path / "out" / "run.json").read_text())
    assert meta["interrupted"] is True and meta["finished"] is False
    kept = pd.read_csv(tmp_path / "out" / "results.csv")
    assert list(kept["run_id"]) == finished  # what progress showed as finished is kept
    client = cluster.client
    deadline = time.monotonic() + 10
    while client.run_on_scheduler(benchkit_tasks) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert client.run_on_scheduler(benchkit_tasks) == 0, "tasks left on the cluster"


@pytest.mark.slow
def test_ctrl_c_on_the_command_line_exits_130_and_keeps_the_finished_runs(tmp_path):
    suite = write_suite(tmp_path, WITH_VICTIM.replace("epochs = 300", "epochs = 3000"))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "benchkit.cli", "run", str(suite), "--threads", "1"]
    command += ["--executor", "dask", "--workers", "2", "--out", str(out)]
    proc = subprocess.Popen(
        command,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        # a child of a non-interactive shell may inherit SIGINT ignored: restore the default
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    try:
        for line in proc.stderr:
            if "  ok  " in line:  # a run finished: stop the rest
                break
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: benchkit and its worker processes
        rest = proc.stderr.read()
        assert proc.wait(timeout=60) == 130, rest
    finally:
        if proc.poll() is None:
            proc.kill()
    meta = json.loads((out / "run.json").read_text())
    assert meta["interrupted"] is True
    kept = pd.read_csv(out / "results.csv")
    assert 1 <= len(kept) < 5 and set(kept["status"]) == {"ok"}
    assert f"kept {len(kept)} finished runs in {out}" in rest


# --- an existing scheduler --------------------------------------------------------------------


def dask_cli() -> list[str]:
    found = shutil.which("dask", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "dask"]


@contextlib.contextmanager
def processes():
    started: list[subprocess.Popen] = []

    def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        proc = subprocess.Popen(
            [*dask_cli(), *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
        )
        started.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in reversed(started):
            proc.terminate()
        for proc in reversed(started):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_for_workers(address: str, names: set[str], timeout: float = 60.0) -> None:
    from distributed import Client

    with Client(address, timeout=timeout, set_as_default=False) as client:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            have = {str(w["name"]) for w in client.scheduler_info()["workers"].values()}
            if names <= have:
                return
            time.sleep(0.2)
    raise AssertionError(f"workers {names} did not join {address} within {timeout} s")


@pytest.mark.slow
def test_scheduler_and_workers_started_as_separate_processes(tmp_path, capsys, monkeypatch):
    suite = write_suite(tmp_path, WITH_CUDA)
    scheduler_file = tmp_path / "scheduler.json"
    with processes() as start:
        start(
            "scheduler",
            "--host",
            LOOPBACK,
            "--port",
            "0",
            "--no-dashboard",
            "--scheduler-file",
            str(scheduler_file),
        )
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(scheduler_file.read_text())["address"]
        assert address.startswith(f"tcp://{LOOPBACK}:")
        worker = ["worker", address, "--nthreads", "1", "--host", LOOPBACK, "--no-dashboard"]
        start(*worker, "--name", "w0")
        wait_for_workers(address, {"w0"})

        out = tmp_path / "out"
        argv = ["run", str(suite), "--threads", "1", "--executor", "dask", "--out", str(out)]
        code = main([*argv, "--scheduler", address])
        err = capsys.readouterr().err
        assert code == 0, err
        rows = pd.read_csv(out / "results.csv")
        cpu, cuda = rows[rows["device"] == "cpu"], rows[rows["device"] == "cuda"]
        assert set(cpu["status"]) == {"ok"} and set(cpu["worker"]) == {"w0"}
        # no worker offers GPU=1: the cuda runs are skipped, saying how to start one
        assert set(cuda["status"]) == {"skipped"}
        assert cuda["status_detail"].str.contains("--resources GPU=1").all()
        meta = json.loads((out / "run.json").read_text())
        assert meta["executor"]["scheduler"] == address
        assert [w["name"] for w in meta["executor"]["workers"].values()] == ["w0"]

        # the same through BENCHKIT_SCHEDULER
        monkeypatch.setenv("BENCHKIT_SCHEDULER", address)
        assert main([*argv[:-1], str(tmp_path / "env"), "--device", "cpu"]) == 0
        assert set(pd.read_csv(tmp_path / "env" / "results.csv")["worker"]) == {"w0"}

        # a worker without one of our plugins: refused before anything runs, with a table
        start(*worker, "--name", "w-norrn", env={"BENCHKIT_DISABLE_PLUGINS": "rnn"})
        wait_for_workers(address, {"w0", "w-norrn"})
        capsys.readouterr()
        code = main([*argv[:-1], str(tmp_path / "refused"), "--device", "cpu"])
        err = capsys.readouterr().err
        assert code == 2
        assert "1 of 2 Dask workers differ from this machine" in err
        table = err[err.index("worker  ") :]
        assert "w-norrn" in table and "plugin rnn" in table and "[disabled]" in table
        assert not (tmp_path / "refused").exists()


def test_an_unreachable_scheduler_is_a_clear_error(registry, tmp_path):
    suite = parse_suite(write_suite(tmp_path, TINY), registry)
    context = ExecutorContext(suite, quiet=True)
    executor = DaskExecutor({"scheduler": f"tcp://{LOOPBACK}:9", "connect_timeout": 2.0}, context)
    with pytest.raises(
        BenchkitError, match=rf"cannot reach the Dask scheduler at tcp://{LOOPBACK}:9"
    ):
        executor.start()
