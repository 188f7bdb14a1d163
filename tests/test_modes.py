"""Execution modes: a suite dimension registered through a hook, with one-off work kept apart.

The tolerance a compiled step is held to: the per-epoch training loss of a compiled run
agrees with eager's within a relative 1e-3 (inductor reorders and fuses float32 arithmetic;
on the sine MLP's 1000 epochs we measured at most 2.2e-4), and exactly with a backend that
only traces (``aot_eager``) on the single neuron.
"""

from __future__ import annotations

import time

import benchkit_plugins.devices as devices
import benchkit_plugins.losses as losses
import benchkit_plugins.optimizers as optimizers
import benchkit_plugins.precisions as precisions
import benchkit_plugins.schedules as schedules
import benchkit_plugins.single_neuron as single_neuron
import pytest
import torch

import benchkit
from benchkit.cases import build_mode
from benchkit.errors import SuiteError
from benchkit.registry import load_registry
from benchkit.resultset import load
from benchkit.suite import filter_cases, parse_suite
from benchkit.testing import isolated_registry, run_quick

COMPILE_TOLERANCE = 1e-3


class SlowStart(benchkit.Mode):
    """Counts the steps it runs; its first call does a second of one-off work."""

    warmup_calls = 1

    def __init__(self, options):
        self.pause = options["pause"]
        self.calls = 0
        self.seconds = 0.0

    def wrap(self, step, device):
        def run(*args):
            if self.calls == 0:
                start = time.perf_counter()
                time.sleep(self.pause)
                self.seconds += time.perf_counter() - start
            self.calls += 1
            return step(*args)

        return run

    @property
    def setup_seconds(self):
        return self.seconds


class ModePlugin:
    def __init__(self) -> None:
        self.built: list[SlowStart] = []

    @benchkit.hookimpl
    def benchkit_register_modes(self, register):
        def slow_start(options):
            mode = SlowStart(options)
            self.built.append(mode)
            return mode

        register("slow_start", slow_start, options={"pause": 0.5}, description="a slow first step")


def test_hook_benchkit_register_modes_wraps_every_step_and_keeps_one_off_time_apart():
    plugin = ModePlugin()
    registry = isolated_registry(single_neuron, plugin)
    eager = run_quick(registry, "single_neuron", "line", epochs=20)
    slow = run_quick(registry, "single_neuron", "line", epochs=20, mode="slow_start")
    (mode,) = plugin.built  # a fresh instance per run
    assert mode.calls == 20  # full batch: one step per epoch, every one through the mode
    assert (slow.status, slow.mode) == ("ok", "slow_start")
    assert slow.mode_setup_seconds == pytest.approx(mode.seconds) and mode.seconds >= 0.5
    assert slow.train_seconds < 0.5  # the pause is not in the run's time
    assert slow.epoch_seconds[0] < 0.5
    assert slow.curve == eager.curve  # the same steps, bit for bit
    assert eager.mode_setup_seconds is None  # eager does no one-off work: empty column


def test_a_mode_says_why_it_cannot_run_and_the_run_is_skipped():
    result = run_quick(load_registry(), "single_neuron", "line", epochs=2, mode="cudagraphs")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: cudagraphs runs")
    assert result.status == "skipped"
    assert result.status_detail == (
        "mode cudagraphs unsupported on cpu in fp32: CUDA graphs need a CUDA device; cpu is not one"
    )


def test_compile_with_a_tracing_backend_gives_eager_curve_and_times_its_compile_apart():
    registry = load_registry()
    eager = run_quick(registry, "single_neuron", "line", epochs=30)
    compiled = run_quick(
        registry,
        "single_neuron",
        "line",
        epochs=30,
        mode="compile",
        mode_options={"backend": "aot_eager"},
    )
    assert compiled.status == "ok", compiled.status_detail
    assert compiled.mode_setup_seconds > 0
    # the compile (seconds) is out of the timeline: the first epoch is a step, not a compile
    assert compiled.epoch_seconds[0] < compiled.mode_setup_seconds / 4
    for a, b in zip(eager.curve, compiled.curve, strict=True):
        assert b == pytest.approx(a, rel=1e-6)


@pytest.mark.slow
def test_compiled_sine_mlp_follows_the_eager_curve_within_the_stated_tolerance():
    registry = load_registry()
    eager = run_quick(registry, "sine_mlp", "sine", epochs=300)
    compiled = run_quick(registry, "sine_mlp", "sine", epochs=300, mode="compile")
    assert compiled.status == "ok", compiled.status_detail
    worst = max(abs(b - a) / abs(a) for a, b in zip(eager.curve, compiled.curve, strict=True))
    assert worst <= COMPILE_TOLERANCE
    assert compiled.mode_setup_seconds > 0 and compiled.train_seconds > 0


def test_a_bad_compile_option_is_one_clear_line():
    result = run_quick(
        load_registry(),
        "single_neuron",
        "line",
        epochs=2,
        mode="compile",
        mode_options={"backend": "no_such_backend"},
    )
    assert result.status == "error"
    assert result.status_detail.startswith("mode compile: unknown backend 'no_such_backend'; ")
    assert "inductor" in result.status_detail


@pytest.mark.gpu
def test_cudagraphs_replays_the_eager_steps_on_a_gpu():
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    registry = load_registry()
    eager = run_quick(registry, "sine_mlp", "sine", epochs=50, device="cuda")
    graphed = run_quick(registry, "sine_mlp", "sine", epochs=50, device="cuda", mode="cudagraphs")
    assert graphed.status == "ok", graphed.status_detail
    assert graphed.mode_setup_seconds > 0
    for a, b in zip(eager.curve, graphed.curve, strict=True):
        assert b == pytest.approx(a, rel=1e-4)


# --- modes in suites ------------------------------------------------------------------------


def write(tmp_path, text):
    path = tmp_path / "suite.toml"
    path.write_text(text)
    return path


HEAD = '[matrix]\ndevices = ["cpu"]\nprecisions = ["fp32"]\nseeds = [0]\n'
CASE = '[[cases]]\nmodel = "single_neuron"\ndataset = "line"\n'


def test_modes_expand_the_matrix_and_eager_runs_keep_their_ids(tmp_path):
    registry = load_registry()
    plain = parse_suite(write(tmp_path, HEAD + CASE), registry)
    (before,) = plain.cases
    assert (before.mode, before.run_id) == ("eager", "single_neuron/line/fp32/cpu/seed0")
    suite = parse_suite(write(tmp_path, HEAD + 'modes = ["eager", "compile"]\n' + CASE), registry)
    assert [c.run_id for c in suite.cases] == [
        "single_neuron/line/fp32/cpu/seed0",
        "single_neuron/line/fp32/cpu/seed0/compile",
    ]
    assert suite.cases[0] == before  # naming eager changes nothing
    assert suite.cases[1].mode_options == {"backend": "inductor", "mode": "default"}
    (compiled,) = filter_cases(suite.cases, modes=["compile"])
    assert compiled.mode == "compile"
    with pytest.raises(SuiteError, match="--mode cudagraphs matches nothing in the suite"):
        filter_cases(suite.cases, modes=["cudagraphs"])


def test_mode_options_are_checked_and_set_the_variant(tmp_path):
    registry = load_registry()
    case = CASE + 'modes = ["eager", "compile"]\n'
    suite = parse_suite(
        write(tmp_path, HEAD + case + 'mode_options = { compile = { backend = "aot_eager" } }\n'),
        registry,
    )
    eager, compiled = suite.cases
    assert eager.variant == "" and eager.run_id == "single_neuron/line/fp32/cpu/seed0"
    assert compiled.mode_options["backend"] == "aot_eager"
    assert '"mode_options": {"backend": "aot_eager"}' in compiled.variant
    for bad, key, message in (
        ("mode_options = { compile = { backend = 1 } }", "mode_options.compile.backend", "string"),
        ("mode_options = { compile = { speed = 1 } }", "mode_options.compile.speed", "no such"),
        ("mode_options = { cudagraphs = {} }", "mode_options.cudagraphs", "does not run in"),
        ('modes = ["jit"]', "modes", "unknown mode 'jit'; valid: compile, cudagraphs, eager"),
        ("trace = true", "trace", "run it in eager"),
    ):
        text = HEAD + (CASE if bad.startswith("modes") else case) + bad + "\n"
        with pytest.raises(SuiteError) as caught:
            parse_suite(write(tmp_path, text), registry)
        assert f"cases[0].{key}: " in str(caught.value) and message in str(caught.value)


def test_the_shipped_suites_name_modes():
    registry = load_registry()
    modes = parse_suite("suites/modes", registry)
    assert {c.mode for c in modes.cases} == {"eager", "compile", "cudagraphs"}
    throughput = parse_suite("suites/throughput", registry)
    assert {(c.model, c.mode) for c in throughput.cases if c.mode != "eager"} == {
        ("sine_mlp", "compile"),
        ("sine_mlp", "cudagraphs"),
    }


def test_a_result_set_from_before_modes_reads_as_eager():
    baseline = load("results/baselines/convergence-cpu")
    assert "mode" in baseline.key_columns
    assert set(baseline.rows["mode"]) == {"eager"}


def test_a_registry_without_the_modes_plugin_still_runs_eager(tmp_path):
    parts = (devices, precisions, losses, optimizers, schedules)
    registry = isolated_registry(single_neuron, *parts, builtins=False)
    assert registry.entries["mode"] == {}
    (case,) = parse_suite(write(tmp_path, HEAD + CASE), registry).cases
    assert type(build_mode(registry, case)) is benchkit.Mode
    assert run_quick(registry, "single_neuron", "line", epochs=2).status == "ok"


def test_a_result_set_with_modes_reads_them_back_as_words_and_matches_on_them(tmp_path):
    from benchkit.compare import compare
    from benchkit.resultset import ResultSetWriter
    from benchkit.run_result import RunResult

    writer = ResultSetWriter(tmp_path / "set", {"kind": "convergence"})
    for mode in ("eager", "compile"):
        run_id = "m/d/fp32/cpu/seed0" + ("" if mode == "eager" else "/compile")
        writer.add(
            RunResult(run_id, "m", "d", "fp32", "cpu", 0, mode=mode, final_loss=0.5, epochs=3)
        )
    writer.close()
    loaded = load(tmp_path / "set")
    assert list(loaded.rows["mode"]) == ["eager", "compile"]
    assert loaded.unreadable == {}
    assert compare(loaded, load(tmp_path / "set")).matched == 2
