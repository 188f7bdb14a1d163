"""Executors are plugins; the serial one is the default; cases travel to workers as data.

These tests need no Dask (tests/test_dask_executor.py runs the ``dask`` executor on a local
cluster). What a worker does is :func:`benchkit.executors.run_task`, called here in-process.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import sys

import benchkit_plugins.single_neuron as single_neuron
import pandas as pd
import pytest

import benchkit
from benchkit.cases import DeviceCache
from benchkit.cli import main
from benchkit.compare import Options, compare
from benchkit.errors import BenchkitError, PluginError
from benchkit.executors import (
    ExecutorContext,
    SerialExecutor,
    build_executor,
    case_digest,
    differences_table,
    facts_differences,
    plugin_fingerprint,
    result_from_dict,
    result_to_dict,
    run_task,
    task_spec,
    worker_facts,
)
from benchkit.host_ledger import HostLedger
from benchkit.progress import Progress
from benchkit.registry import load_registry
from benchkit.resultset import ResultSetWriter, load
from benchkit.runner import run_case, run_suite
from benchkit.suite import parse_suite
from benchkit.testing import isolated_registry

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


@pytest.fixture
def tiny_suite(tmp_path):
    folder = tmp_path / "suites" / "tiny"
    folder.mkdir(parents=True)
    (folder / "suite.toml").write_text(TINY)
    return folder


class ReversedExecutor:
    """Runs the cases serially, last first: results come back in another order."""

    name = "reversed"

    def __init__(self, options, context):
        self.options, self.context = options, context

    def results(self, cases, registry, devices, progress=None):
        yield from SerialExecutor().results(cases[::-1], registry, devices, progress)


class ReversedPlugin:
    @benchkit.hookimpl
    def benchkit_register_executors(self, register):
        register(
            "reversed", ReversedExecutor, options={"label": "r"}, description="last case first"
        )


# --- the hook ---------------------------------------------------------------------------------


def test_hook_benchkit_register_executors_builds_an_executor_that_run_suite_uses(
    tiny_suite, tmp_path
):
    registry = isolated_registry(single_neuron, ReversedPlugin())
    suite = parse_suite(tiny_suite, registry)
    context = ExecutorContext(suite, threads=1)
    executor = build_executor(registry, "reversed", {"label": "x"}, context)
    assert executor.options == {"label": "x"} and executor.context is context
    writer = ResultSetWriter(tmp_path / "out", {"kind": "convergence"})
    devices = DeviceCache(registry)
    outcome = run_suite(suite, suite.cases, registry, devices, writer, executor=executor)
    # every run is written, in the order the executor finished them
    assert list(outcome.frame["run_id"]) == [c.run_id for c in suite.cases[::-1]]
    assert list(pd.read_csv(tmp_path / "out" / "results.csv")["run_id"]) == list(
        outcome.frame["run_id"]
    )


def test_an_option_the_executor_does_not_take_is_refused_as_its_flag(tiny_suite):
    registry = isolated_registry(single_neuron, ReversedPlugin())
    context = ExecutorContext(parse_suite(tiny_suite, registry))
    with pytest.raises(BenchkitError, match=r"--workers: executor 'reversed' takes no such"):
        build_executor(registry, "reversed", {"workers": 2}, context)
    with pytest.raises(PluginError, match="unknown executor 'nope'; valid: reversed"):
        build_executor(registry, "nope", {}, context)


def test_register_checks_executor_options_like_dataset_options():
    class Bad:
        @benchkit.hookimpl
        def benchkit_register_executors(self, register):
            register("bad", lambda options, context: None, options=["workers"])

    registry = isolated_registry(Bad())
    assert "options must be a dict of each option" in registry.plugins["Bad"].error


def test_the_built_in_executors_come_through_the_entry_point():
    registry = load_registry()
    assert registry.get("executor", "serial").plugin == "executors"
    dask = registry.get("executor", "dask")
    assert {"workers", "scheduler", "share_hosts", "retries"} <= set(dask.options)


# --- the command line -------------------------------------------------------------------------


def test_serial_is_the_default_and_records_where_each_run_ran(tiny_suite, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", str(tiny_suite), "--threads", "1", "--out", str(out)]) == 0
    rows = pd.read_csv(out / "results.csv")
    assert rows["worker"].isna().all()  # the benchkit process itself
    assert set(rows["worker_host"]) == {socket.gethostname()}
    assert set(rows["host_runs"]) == {1} and not rows["timings_shared"].any()
    assert set(rows["env_torch_threads"]) == {1}
    assert rows["env_torch"].notna().all() and rows["env_cpu"].notna().all()
    assert "executor" not in json.loads((out / "run.json").read_text())


def test_serial_needs_no_plugin_disabling_the_executors_plugin_keeps_runs_working(
    tiny_suite, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("BENCHKIT_DISABLE_PLUGINS", "executors")
    out = tmp_path / "out"
    assert main(["run", str(tiny_suite), "--threads", "1", "--out", str(out), "--quiet"]) == 0
    assert len(pd.read_csv(out / "results.csv")) == 4
    assert main(["run", str(tiny_suite), "--out", str(tmp_path / "o2"), "--retries", "1"]) == 2
    assert "--retries: executor 'serial' takes no such option" in capsys.readouterr().err


def test_without_dask_the_dask_executor_exits_2_with_the_install_command(
    tiny_suite, tmp_path, capsys, monkeypatch
):
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` fails
    out = tmp_path / "out"
    code = main(["run", str(tiny_suite), "--executor", "dask", "--workers", "2", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert "--executor dask needs Dask distributed" in err
    assert "pip install 'benchkit[dask]'" in err
    assert not out.exists()  # refused before the result set was created


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--workers", "2"],
            "--workers: executor 'serial' takes no such option; pass --executor dask",
        ),
        (["--executor", "ray"], "unknown executor 'ray'; valid: dask, serial"),
        (["--executor-option", "oops"], "--executor-option 'oops': write KEY=VALUE"),
    ],
)
def test_executor_flags_that_cannot_apply_exit_2(tiny_suite, tmp_path, capsys, argv, message):
    assert main(["run", str(tiny_suite), "--out", str(tmp_path / "o"), *argv]) == 2
    assert message in capsys.readouterr().err


def test_the_dask_executor_refuses_throughput_and_memory_suites(tmp_path, capsys):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    suite = os.path.join(root, "suites", "memory")
    assert main(["run", suite, "--executor", "dask", "--out", str(tmp_path / "o")]) == 2
    assert "runs convergence suites; memory is a memory suite" in capsys.readouterr().err


def test_executor_options_from_the_command_line_are_toml_values():
    from benchkit.executors import option_values

    assert option_values(["retries=1", "label='x'", "share-hosts=true", "word=abc"]) == {
        "retries": 1,
        "label": "x",
        "share_hosts": True,
        "word": "abc",
    }


# --- a case as data, run on a "worker" (here: this process) ------------------------------------


@pytest.fixture
def spec_parts(tiny_suite):
    registry = load_registry()
    suite = parse_suite(tiny_suite, registry)
    return registry, suite, ExecutorContext(suite, threads=1)


def test_run_task_runs_the_case_the_spec_describes_as_run_case_does(spec_parts):
    registry, suite, context = spec_parts
    case = suite.cases[1]
    spec = task_spec(context, case, token="t-same", key="k1", plugins=plugin_fingerprint(registry))
    json.dumps(spec)  # plain data: nothing pickled, no code
    payload = run_task(spec)
    result = result_from_dict(payload["result"])
    reference = run_case(case, registry, DeviceCache(registry))
    assert result.status == "ok"
    assert (result.run_id, result.curve, result.final_loss, result.metrics) == (
        reference.run_id,
        reference.curve,
        reference.final_loss,
        reference.metrics,
    )
    assert payload["where"]["host"] == result.worker_host == socket.gethostname()
    assert result.host_runs == 1 and not result.timings_shared
    assert result.env_torch_threads == 1


def test_run_task_parses_the_suite_from_its_text_where_the_file_is_not(spec_parts, tmp_path):
    registry, suite, context = spec_parts
    spec = task_spec(
        context, suite.cases[0], token="t-text", key="k", plugins=plugin_fingerprint(registry)
    )
    spec["suite"]["path"] = str(tmp_path / "elsewhere" / "suite.toml")
    spec["suite"]["sha256"] = "not-cached-yet"
    assert result_from_dict(run_task(spec)["result"]).status == "ok"


def test_a_plugin_missing_on_the_worker_is_an_error_naming_worker_and_plugin(spec_parts):
    registry, suite, context = spec_parts
    expected = dict(plugin_fingerprint(registry), my_models="benchkit-my-models 1.2 [ok]")
    spec = task_spec(context, suite.cases[0], token="t-missing", key="k", plugins=expected)
    result = result_from_dict(run_task(spec)["result"])
    assert result.status == "error"
    assert result.status_detail.startswith(f"worker {os.getpid()} on {socket.gethostname()}:")
    assert "plugin my_models is not installed here, benchkit-my-models 1.2 [ok]" in (
        result.status_detail
    )
    assert (result.run_id, result.model) == (suite.cases[0].run_id, "single_neuron")


def test_a_case_the_worker_expands_differently_is_refused(spec_parts):
    registry, suite, context = spec_parts
    spec = task_spec(
        context, suite.cases[0], token="t-digest", key="k", plugins=plugin_fingerprint(registry)
    )
    spec["case"]["digest"] = case_digest(dataclasses.replace(suite.cases[0], seed=7))
    result = result_from_dict(run_task(spec)["result"])
    assert result.status == "error" and "expands differently as parsed here" in (
        result.status_detail
    )


def test_results_survive_the_trip_as_data(spec_parts):
    registry, suite, _ = spec_parts
    result = run_case(suite.cases[0], registry, DeviceCache(registry))
    result.criteria["loss <= 0.3"] = (3, 0.01)
    assert result_from_dict(json.loads(json.dumps(result_to_dict(result)))) == result


# --- checking workers before anything runs -----------------------------------------------------


def test_a_worker_that_differs_is_listed_in_a_table_of_what_differs():
    here = worker_facts()
    there = json.loads(json.dumps(here))
    there["benchkit"] = "0.0.9"
    there["plugins"]["rnn"] = there["plugins"]["rnn"].replace("[ok]", "[disabled]")
    del there["plugins"]["sine_mlp"]
    rows = facts_differences(here, there)
    assert rows == [
        ("benchkit", here["benchkit"], "0.0.9"),
        ("plugin rnn", here["plugins"]["rnn"], there["plugins"]["rnn"]),
        ("plugin sine_mlp", here["plugins"]["sine_mlp"], "missing"),
    ]
    assert facts_differences(here, json.loads(json.dumps(here))) == []
    table = differences_table([("tcp://10.0.0.5:4567", *row) for row in rows])
    lines = table.splitlines()
    assert lines[0].split() == ["worker", "what", "here", "there"]
    assert "plugin sine_mlp" in lines[3] and lines[3].rstrip().endswith("missing")
    broken = facts_differences(here, ModuleNotFoundError("No module named 'benchkit'"))
    assert broken[0][2].startswith("cannot run: ModuleNotFoundError")


# --- the host ledger: who shared a host --------------------------------------------------------


def test_the_host_ledger_counts_the_runs_that_overlapped_each_one(tmp_path):
    ledger = HostLedger(tmp_path / "ledger")
    a = ledger.begin("a", now=0.0)
    b = ledger.begin("b", now=1.0)
    assert ledger.end("b", b, now=2.0) == 2  # a was running
    c = ledger.begin("c", now=3.0)
    assert ledger.end("a", a, now=4.0) == 3  # b and c ran during a
    assert ledger.end("c", c, now=5.0) == 2  # a ended during c
    d = ledger.begin("d", now=6.0)
    assert ledger.end("d", d, now=7.0) == 1  # alone
    ledger.remove()
    assert not (tmp_path / "ledger").exists()
    assert ledger.end("e", 8.0, now=9.0) is None  # removed under it: unknown, never recreated


def test_a_run_whose_process_died_counts_only_if_it_began_during_another(tmp_path):
    ledger = HostLedger(tmp_path / "ledger")
    dead = 2**22 + 12345  # no such process
    (tmp_path / "ledger").mkdir()
    (tmp_path / "ledger" / "early.json").write_text(json.dumps({"start": 0.0, "pid": dead}))
    (tmp_path / "ledger" / "late.json").write_text(json.dumps({"start": 11.0, "pid": dead}))
    start = ledger.begin("mine", now=10.0)
    assert ledger.end("mine", start, now=12.0) == 2  # itself and late


# --- compare: shared timings never gate; each row's own fingerprint ------------------------------


def _result_set(tmp_path, name, speed, shared, threads):
    rows = []
    curves = []
    for seed in range(5):
        run_id = f"m/d/fp32/cpu/seed{seed}"
        rows.append(
            {
                "run_id": run_id,
                "model": "m",
                "dataset": "d",
                "precision": "fp32",
                "device": "cpu",
                "seed": seed,
                "variant": "",
                "status": "ok",
                "final_loss": 0.5,
                "train_samples": 100,
                "samples_per_second": speed,
                "timings_shared": shared,
                "env_torch_threads": threads,
            }
        )
        for epoch in range(30):
            curves.append({"run_id": run_id, "epoch": epoch, "seconds": (epoch + 1) * 100 / speed})
    folder = tmp_path / name
    folder.mkdir()
    pd.DataFrame(rows).to_csv(folder / "results.csv", index=False)
    pd.DataFrame(curves).to_csv(folder / "curves.csv", index=False)
    env = {"torch": "2", "cpu": "x", "cpu_capability": "AVX2", "torch_threads": 4}
    (folder / "run.json").write_text(json.dumps({"schema_version": 1, "environment": env}))
    return load(folder)


def test_compare_never_gates_on_timings_taken_on_a_shared_host(tmp_path):
    base = _result_set(tmp_path, "base", 1000.0, False, 1)
    slow_alone = _result_set(tmp_path, "alone", 500.0, False, 1)
    slow_shared = _result_set(tmp_path, "shared", 500.0, True, 1)
    assert compare(base, slow_alone).exit_code == 1
    comparison = compare(base, slow_shared, Options(strict=True))
    assert comparison.exit_code == 0
    speed = [f for f in comparison.findings if f.metric == "samples_per_second"]
    assert speed and not speed[0].gated and "shared host" in speed[0].note


def test_a_rows_own_fingerprint_wins_over_run_json(tmp_path):
    base = _result_set(tmp_path, "base", 1000.0, False, 1)
    other_threads = _result_set(tmp_path, "threads", 1000.0, False, 2)
    assert compare(base, _result_set(tmp_path, "same", 1000.0, False, 1)).environments_match
    assert not compare(base, other_threads).environments_match  # run.json says 4 for both


# --- progress: several runs at once ------------------------------------------------------------


def test_progress_names_the_worker_and_the_counts_of_each_finished_run(spec_parts, capsys):
    registry, suite, _ = spec_parts
    progress = Progress(len(suite.cases))
    first, second = suite.cases[0], suite.cases[1]
    progress.start(1, first)
    progress.start(2, second)
    progress.placed(2, second, "w1@hostb")
    progress.counts(1, 1, 2)
    progress.finish(
        dataclasses.replace(
            run_case(second, registry, DeviceCache(registry)), worker="w1", worker_host="hostb"
        )
    )
    line = capsys.readouterr().err.strip()
    assert line.startswith("[2/4] single_neuron/line fp32 cpu seed 1  ok")
    assert line.endswith("on w1@hostb  [running 1, queued 2]")
