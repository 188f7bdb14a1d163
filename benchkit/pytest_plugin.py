"""pytest plugin (entry point ``pytest11``): benchkit cases as pytest-benchmark tests.

A throughput suite is a folder with a ``suite.toml`` and test files such as::

    @pytest.mark.benchkit_kind("train_step")
    def test_train_step(benchmark, benchkit_case):
        benchkit_case.benchmark(benchmark, "train_step")

Each test says what it times with the ``benchkit_kind`` mark (``train_step`` or
``inference``): the kind is recorded as data, never guessed from the test's name.

The ``benchkit_case`` fixture is parametrized with every case of the ``suite.toml`` beside the
test file (narrowed by ``--benchkit-filter``), built through the registered plugins exactly as
``benchkit run`` builds a training run, moved to its device, and handed over as a
:class:`~benchkit.cases.PreparedCase` whose ``train_step``/``inference`` synchronise the
device before returning. :meth:`~benchkit.cases.PreparedCase.benchmark` times blocks of calls
with one wait for the device per block (sized as ``torch.utils.benchmark``'s
``blocked_autorange`` does); pytest-benchmark does the rounds and statistics, per call.
Before timing, the case's mode does its one-off work (compiling, capturing), timed apart.

A case that cannot run here is skipped with its reason: its device is absent, its precision
or mode says it cannot run there, or it fails inside torch where the same case in fp32 and
eager runs (a known device limit, such as the oneDNN LSTM under autocast float16 on the CPU).
Each benchmark's ``extra_info`` carries the case's key, the FLOPs and bytes of one call, the
mode's one-off seconds, and the device's peak FLOP/s in that dtype and memory bandwidth.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchkit.errors import BenchkitError

_SUITE_FILE = "suite.toml"


def pytest_addoption(parser: pytest.Parser) -> None:
    """benchkit's options for benchmark suites."""
    group = parser.getgroup("benchkit", "benchkit benchmark suites")
    group.addoption(
        "--benchkit-suite",
        help="suite file for benchkit_case (default: the suite.toml beside the test file)",
    )
    group.addoption(
        "--benchkit-filter",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="narrow the suite: model, dataset, precision, device or seeds",
    )
    group.addoption(
        "--benchkit-skips",
        help="write skipped and failed cases with their reasons to this JSON file",
    )
    group.addoption("--benchkit-threads", type=int, help="torch CPU threads for the benchmarks")
    group.addoption(
        "--benchkit-batch-sizes",
        metavar="recipe,1,16,...",
        help="sweep these batch sizes instead of the suite's",
    )


class _State:
    """Per-session caches: the registry, built devices and measured peaks."""

    def __init__(self) -> None:
        from benchkit.cases import DeviceCache
        from benchkit.registry import load_registry

        self.registry = load_registry()
        self.devices = DeviceCache(self.registry)
        self.peaks: dict[tuple[str, str], Any] = {}
        self.skips: list[dict[str, Any]] = []


_STATE_KEY = pytest.StashKey[_State]()


_KINDS = ("train_step", "inference")


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``benchkit_kind`` mark; apply ``--benchkit-threads`` before anything runs."""
    config.addinivalue_line(
        "markers",
        "benchkit_kind(kind): what a benchkit_case test times: train_step or inference",
    )
    threads = config.getoption("benchkit_threads", None)
    if threads:
        import torch

        torch.set_num_threads(threads)


def _state(config: pytest.Config) -> _State:
    if _STATE_KEY not in config.stash:
        config.stash[_STATE_KEY] = _State()
    return config.stash[_STATE_KEY]


def _filters(config: pytest.Config) -> dict[str, list]:
    from benchkit.suite import parse_seeds

    keys = {
        "model": "models",
        "dataset": "datasets",
        "precision": "precisions",
        "device": "devices",
        "seeds": "seeds",
        "mode": "modes",
    }
    out: dict[str, list] = {}
    for text in config.getoption("benchkit_filter"):
        key, _, values = text.partition("=")
        if key not in keys or not values:
            raise pytest.UsageError(
                f"--benchkit-filter {text!r}: write KEY=V1,V2 with KEY one of {', '.join(keys)}"
            )
        if key == "seeds":
            out["seeds"] = parse_seeds(values)
        else:
            out[keys[key]] = [v for v in values.split(",") if v]
    return out


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``benchkit_case`` with the suite's cases."""
    if "benchkit_case" not in metafunc.fixturenames:
        return
    from benchkit.suite import filter_cases, parse_batch_sizes, parse_suite

    config = metafunc.config
    suite_path = config.getoption("benchkit_suite") or Path(metafunc.definition.path).parent
    if Path(suite_path).is_dir():
        suite_path = Path(suite_path) / _SUITE_FILE
    try:
        sweep = config.getoption("benchkit_batch_sizes")
        sizes = parse_batch_sizes(sweep) if sweep else None
        suite = parse_suite(suite_path, _state(config).registry, batch_sizes=sizes)
        cases = filter_cases(suite.cases, **_filters(config))
    except BenchkitError as exc:
        raise pytest.UsageError(str(exc)) from None
    # a case's max_seconds caps the time pytest-benchmark spends on it (its own marker)
    params = [
        pytest.param(c, marks=pytest.mark.benchmark(max_time=c.max_seconds))
        if c.max_seconds is not None
        else c
        for c in cases
    ]
    metafunc.parametrize("benchkit_case", params, ids=[c.run_id for c in cases], indirect=True)


@pytest.fixture
def benchkit_case(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The suite case of this test, prepared on its device (see the module docs)."""
    from benchkit.cases import CaseUnavailable, PreparedCase, limit_reason
    from benchkit.peaks import device_peak

    state = _state(request.config)
    case = request.param
    kind = _kind(request.node)
    record = {
        "run_id": case.run_id,
        "kind": kind,
        **{k: getattr(case, k) for k in ("model", "dataset", "precision", "device", "seed")},
        "variant": case.variant,
        "mode": case.mode,
    }
    try:
        prepared = PreparedCase.build(case, state.registry, state.devices)
        flops = prepared.flops(kind)  # a first call: a case that cannot run fails here
        prepared.call(kind)  # the same through the mode
        moved = prepared.bytes(kind)
        setup = prepared.warm_up(kind)  # the mode's one-off work, timed apart
    except CaseUnavailable as exc:
        state.skips.append({**record, "status": "skipped", "reason": str(exc)})
        pytest.skip(str(exc))
    except Exception as exc:
        limit = limit_reason(case, state.registry, state.devices, exc)
        if limit:
            state.skips.append({**record, "status": "skipped", "reason": limit})
            pytest.skip(limit)
        first = (str(exc).strip().splitlines() or [""])[0]
        line = f"{type(exc).__name__}: {first}"
        state.skips.append({**record, "status": "error", "reason": line})
        if request.config.getoption("tbstyle") == "no":  # one line per case, no traceback
            pytest.fail(f"{case.run_id} {kind}: {line}", pytrace=False)
        raise
    benchmark = request.getfixturevalue("benchmark")
    dtype = prepared.precision.compute_dtype
    peak_key = (case.device, str(dtype))
    if peak_key not in state.peaks:
        state.peaks[peak_key] = device_peak(prepared.device, dtype)
    peak = state.peaks[peak_key]
    benchmark.extra_info.update(
        {
            "benchkit": True,
            "run_id": case.run_id,
            "kind": kind,
            "model": case.model,
            "dataset": case.dataset,
            "precision": case.precision,
            "device": case.device,
            "device_name": prepared.device.display_name(),
            "seed": case.seed,
            "variant": case.variant,
            "mode": case.mode,
            "mode_setup_seconds": setup or None,
            "batch_size": prepared.batch_size,
            "params": prepared.params,
            "flops_per_call": flops.flops,
            "flops_method": flops.method,
            "bytes_per_call": moved.total,
            "matmul_dtype": str(dtype).removeprefix("torch."),
            "peak_flops_per_second": peak.flops_per_second,
            "peak_shape": peak.shape,
            "peak_source": peak.source,
            "peak_fingerprint": peak.fingerprint,
            "memory_bandwidth_bytes_per_second": peak.bandwidth_bytes_per_second,
        }
    )
    yield prepared
    prepared.device.synchronize()


def _kind(node: pytest.Item) -> str:
    mark = node.get_closest_marker("benchkit_kind")
    kind = mark.args[0] if mark and mark.args else None
    if kind not in _KINDS:
        raise pytest.UsageError(
            f"{node.nodeid}: mark the test with @pytest.mark.benchkit_kind(KIND), KIND one of "
            f"{', '.join(_KINDS)}, to say what it times"
        )
    return kind


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Write the skipped cases where ``--benchkit-skips`` asks."""
    path = session.config.getoption("benchkit_skips")
    if path and _STATE_KEY in session.config.stash:
        Path(path).write_text(json.dumps(session.config.stash[_STATE_KEY].skips, indent=2))
