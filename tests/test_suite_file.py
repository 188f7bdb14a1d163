"""Suite files: a TOML file says which models, datasets, precisions, devices and seeds to run.

``parse_suite(path, registry)`` checks everything against the loaded plugins before anything
runs, and expands the file into one :class:`benchkit.suite.Case` per run. Every mistake is a
:class:`SuiteError` of the form ``FILE: KEY: what is wrong; the valid choices``.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from pathlib import Path

import pytest

from benchkit import Recipe
from benchkit.errors import SuiteError
from benchkit.suite import filter_cases, parse_seeds, parse_suite, resolve_path

CONVERGENCE = Path(__file__).resolve().parents[1] / "suites" / "convergence"

#: A matrix every case below expands over: one device, one precision, one seed.
MATRIX = """\
[matrix]
devices = ["cpu"]
precisions = ["fp32"]
seeds = [0]
"""

LINE_CASE = """\
[[cases]]
model = "single_neuron"
dataset = "line"
"""

SINE_CASE = """\
[[cases]]
model = "sine_mlp"
dataset = "sine"
"""


@pytest.fixture
def write_suite(tmp_path):
    """``write_suite(text, name="suite.toml")`` writes a suite file and returns its path."""

    def write(text: str, name: str = "suite.toml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    return write


@pytest.fixture(scope="module")
def convergence(benchkit_registry):
    """The shipped convergence suite, parsed against every installed plugin."""
    return parse_suite(CONVERGENCE, benchkit_registry)


# --- the shipped suite ------------------------------------------------------------------------


def test_the_convergence_suite_parses(convergence):
    assert convergence.name == "convergence"
    assert convergence.path == CONVERGENCE / "suite.toml"
    assert convergence.description == "Convergence of the seed workloads per precision and device"
    assert convergence.sha256 == hashlib.sha256(convergence.path.read_bytes()).hexdigest()


def test_the_convergence_suite_crosses_every_workload_with_the_matrix(convergence):
    workloads = [
        ("single_neuron", "single_point"),
        ("single_neuron", "line"),
        ("single_neuron", "celsius"),
        ("sine_mlp", "sine"),
        ("rnn", "ramp"),
        ("rnn", "prices"),
        ("lstm_seq2seq", "synthetic_translation"),
        ("logistic_regression", "admissions"),
    ]
    expected = [
        (model, dataset, precision, device, seed)
        for (model, dataset), device, precision, seed in itertools.product(
            workloads, ["cpu", "cuda", "mps"], ["fp32", "fp16", "bf16"], [0, 1, 2]
        )
    ]
    got = [(c.model, c.dataset, c.precision, c.device, c.seed) for c in convergence.cases]
    assert got == expected  # cases in file order; device, then precision, then seed
    assert len({c.run_id for c in convergence.cases}) == len(got) == 8 * 27


def test_recipes_and_options_default_to_the_model_registration(convergence):
    sine = next(c for c in convergence.cases if c.dataset == "sine")
    assert sine.recipe == Recipe(loss="mse", optimizer="adam", lr=1e-3, epochs=1000)
    assert sine.options == {"points": 2000, "window": 20}
    assert sine.model_options == {"hidden": 64}
    assert sine.target_loss == 1e-3
    assert sine.variant == ""
    assert sine.run_id == "sine_mlp/sine/fp32/cpu/seed0"

    line = next(c for c in convergence.cases if c.dataset == "line")
    assert line.recipe == Recipe(loss="l1", optimizer="sgd", lr=0.01, epochs=500)
    assert line.target_loss == 0.01


# --- finding the file -------------------------------------------------------------------------


def test_a_suite_is_a_folder_a_file_or_a_path_without_toml(tmp_path, write_suite):
    folder_suite = write_suite(MATRIX + LINE_CASE, "nightly/suite.toml")
    file_suite = write_suite(MATRIX + LINE_CASE, "quick.toml")

    assert resolve_path(tmp_path / "nightly") == folder_suite
    assert resolve_path(folder_suite) == folder_suite
    assert resolve_path(tmp_path / "quick.toml") == file_suite
    assert resolve_path(tmp_path / "quick") == file_suite
    assert resolve_path(str(tmp_path / "quick")) == file_suite


def test_a_suite_is_named_after_its_folder_or_file(benchkit_registry, write_suite):
    folder = write_suite(MATRIX + LINE_CASE, "nightly/suite.toml").parent
    assert parse_suite(folder, benchkit_registry).name == "nightly"
    quick = write_suite(MATRIX + LINE_CASE, "quick.toml")
    assert parse_suite(quick, benchkit_registry).name == "quick"
    named = write_suite('[suite]\nname = "smoke"\n' + MATRIX + LINE_CASE, "other.toml")
    assert parse_suite(named, benchkit_registry).name == "smoke"


def test_a_missing_suite_names_what_was_tried(tmp_path):
    with pytest.raises(SuiteError) as caught:
        resolve_path(tmp_path / "nightly")
    message = str(caught.value)
    assert f"suite '{tmp_path / 'nightly'}' not found" in message
    assert f"looked for {tmp_path / 'nightly'}, {tmp_path / 'nightly.toml'}" in message
    assert "pass a suite folder such as suites/convergence or a .toml file" in message


def test_a_folder_without_suite_toml_is_missing(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SuiteError, match=re.escape(f"looked for {tmp_path / 'empty/suite.toml'}")):
        resolve_path(tmp_path / "empty")


# --- every mistake names the file, the key and the choices ------------------------------------


def test_invalid_toml_names_the_file(benchkit_registry, write_suite):
    path = write_suite(MATRIX + '[[cases]]\nmodel = "single_neuron\n')
    with pytest.raises(SuiteError, match=rf"^{re.escape(str(path))}: not valid TOML: "):
        parse_suite(path, benchkit_registry)


def sha1_8(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def case(*lines: str, base: str = LINE_CASE) -> str:
    """A suite with MATRIX and one case: ``base`` plus ``lines``."""
    return MATRIX + base + "".join(line + "\n" for line in lines)


SUITE_ERRORS = [
    # (id, suite text, key, what the message says after the key)
    (
        "top-level-key",
        "[matrx]\n" + case(),
        "matrx",
        "unknown key; valid keys: cases, claims, compare, matrix, references, suite",
    ),
    (
        "suite-key",
        '[suite]\ntitle = "x"\n' + case(),
        "suite.title",
        "unknown key; valid keys: criteria, description, kind, name",
    ),
    (
        "suite-name-type",
        "[suite]\nname = 3\n" + case(),
        "suite.name",
        "expected string, got 3",
    ),
    (
        "matrix-key",
        MATRIX + "seed = [1]\n" + LINE_CASE,
        "matrix.seed",
        "unknown key; valid keys: batch_sizes, devices, modes, precisions, seeds",
    ),
    (
        "case-key",
        case("epoch = 3"),
        "cases[0].epoch",
        "unknown key; valid keys: batch_sizes, criteria, dataset, devices, max_seconds, "
        "mode_options, model, model_options, modes, options, precisions, recipe, seeds, "
        "target_loss, trace",
    ),
    (
        "recipe-field",
        case("recipe = { epoch = 3 }"),
        "cases[0].recipe.epoch",
        "unknown recipe field; valid: batch_size, epochs, ignore_index, loss, loss_options, lr, "
        "optimizer, optimizer_options, schedule, schedule_options, shuffle",
    ),
    (
        "recipe-int",
        case('recipe = { epochs = "ten" }'),
        "cases[0].recipe.epochs",
        "expected integer, got 'ten'",
    ),
    (
        "recipe-bool-for-int",
        case("recipe = { epochs = true }"),
        "cases[0].recipe.epochs",
        "expected integer, got True",
    ),
    (
        "recipe-float-for-int",
        case("recipe = { batch_size = 8.0 }"),
        "cases[0].recipe.batch_size",
        "expected integer, got 8.0",
    ),
    (
        "recipe-bool",
        case("recipe = { shuffle = 1 }"),
        "cases[0].recipe.shuffle",
        "expected boolean, got 1",
    ),
    (
        "recipe-number",
        case('recipe = { lr = "fast" }'),
        "cases[0].recipe.lr",
        "expected number, got 'fast'",
    ),
    (
        "recipe-loss",
        case('recipe = { loss = "hinge" }'),
        "cases[0].recipe.loss",
        "unknown loss 'hinge'; valid: bce_with_logits, cross_entropy, huber, l1, mse, nll",
    ),
    (
        "recipe-optimizer",
        case('recipe = { optimizer = "lbfgs" }'),
        "cases[0].recipe.optimizer",
        "unknown optimizer 'lbfgs'; valid: adagrad, adam, adamw, rmsprop, sgd",
    ),
    (
        "recipe-schedule",
        case('recipe = { schedule = "warmup" }'),
        "cases[0].recipe.schedule",
        "unknown schedule 'warmup'; valid: cosine, exponential, onecycle, step",
    ),
    (
        "recipe-optimizer-option",
        case("recipe = { optimizer_options = { betas = [0.9, 0.99] } }"),
        "cases[0].recipe.optimizer_options.betas",
        "optimizer 'sgd' has no such option; valid: dampening, differentiable, foreach, fused, "
        "maximize, momentum, nesterov, weight_decay",
    ),
    (
        "recipe-optimizer-option-type",
        case("recipe = { optimizer_options = { nesterov = 1 } }"),
        "cases[0].recipe.optimizer_options.nesterov",
        "expected boolean, got 1",
    ),
    (
        "recipe-loss-option",
        case('recipe = { loss = "huber", loss_options = { beta = 0.5 } }'),
        "cases[0].recipe.loss_options.beta",
        "loss 'huber' has no such option; valid: delta",
    ),
    (
        "recipe-schedule-options-without-schedule",
        case("recipe = { schedule_options = { gamma = 0.5 } }"),
        "cases[0].recipe",
        "the recipe Recipe(loss='l1', optimizer='sgd', lr=0.01, epochs=500, schedule_options="
        "{'gamma': 0.5}): schedule_options without a schedule: name one (schedule = 'cosine')",
    ),
    (
        "recipe-options-of-the-old-loss",
        case('recipe = { loss = "mse", loss_options = { delta = 2.0 } }'),
        "cases[0].recipe.loss_options.delta",
        "loss 'mse' has no such option; valid: none",
    ),
    (
        "recipe-value",
        case("recipe = { epochs = 0 }"),
        "cases[0].recipe",
        "epochs must be at least 1, got 0",
    ),
    ("recipe-table", case("recipe = 5"), "cases[0].recipe", "expected table, got 5"),
    (
        "seed-type",
        case('seeds = [0, "a"]'),
        "cases[0].seeds",
        "expected integer, got 'a'",
    ),
    (
        "matrix-seed-bool",
        MATRIX.replace("seeds = [0]", "seeds = [true]") + LINE_CASE,
        "matrix.seeds",
        "expected integer, got True",
    ),
    (
        "target-loss",
        case('target_loss = "low"'),
        "cases[0].target_loss",
        "expected number, got 'low'",
    ),
    (
        "devices-not-array",
        case('devices = "cpu"'),
        "cases[0].devices",
        "expected a non-empty array, got 'cpu'",
    ),
    ("devices-empty", case("devices = []"), "cases[0].devices", "expected a non-empty array"),
    (
        "unknown-precision",
        MATRIX.replace('"fp32"', '"fp8"') + LINE_CASE,
        "matrix.precisions",
        "unknown precision 'fp8'; valid: amp_bf16, amp_fp16, bf16, fp16, fp32, fp64",
    ),
    (
        "unknown-device",
        case('devices = ["tpu"]'),
        "cases[0].devices",
        "unknown device 'tpu'; valid: cpu, cuda, mps",
    ),
    (
        "device-index",
        case('devices = ["cuda:x"]'),
        "cases[0].devices",
        "device index in 'cuda:x' must be a number, as in cuda:0",
    ),
    (
        "unknown-model",
        MATRIX + '[[cases]]\nmodel = "resnet"\ndataset = "line"\n',
        "cases[0].model",
        "unknown model 'resnet'; valid: ",
    ),
    (
        "model-type",
        MATRIX + '[[cases]]\nmodel = 3\ndataset = "line"\n',
        "cases[0].model",
        "expected string, got 3",
    ),
    (
        "unknown-dataset",
        MATRIX + '[[cases]]\nmodel = "single_neuron"\ndataset = "lines"\n',
        "cases[0].dataset",
        "unknown dataset 'lines'; valid: ",
    ),
    (
        "model-does-not-fit",
        MATRIX + '[[cases]]\nmodel = "single_neuron"\ndataset = "sine"\n',
        "cases[0].dataset",
        "model 'single_neuron' does not fit dataset 'sine'; it fits: celsius, line, single_point",
    ),
    (
        "dataset-option",
        case("options = { size = 10 }", base=SINE_CASE),
        "cases[0].options.size",
        "dataset 'sine' has no such option; valid: points, window",
    ),
    (
        "dataset-without-options",
        case("options = { n = 10 }"),
        "cases[0].options.n",
        "dataset 'line' has no such option; valid: none",
    ),
    (
        "model-option",
        case("model_options = { width = 8 }", base=SINE_CASE),
        "cases[0].model_options.width",
        "model 'sine_mlp' has no such option; valid: hidden",
    ),
    (
        "dataset-option-type",
        case('options = { window = "20" }', base=SINE_CASE),
        "cases[0].options.window",
        "expected integer, got '20'",
    ),
    (
        "model-option-type",
        case("model_options = { hidden = 6.4 }", base=SINE_CASE),
        "cases[0].model_options.hidden",
        "expected integer, got 6.4",
    ),
    ("options-table", case("options = 3"), "cases[0].options", "expected table, got 3"),
    (
        "missing-model",
        MATRIX + '[[cases]]\ndataset = "line"\n',
        "cases[0].model",
        "missing (every case names a model and a dataset)",
    ),
    (
        "missing-dataset",
        MATRIX + '[[cases]]\nmodel = "single_neuron"\n',
        "cases[0].dataset",
        "missing (every case names a model and a dataset)",
    ),
    (
        "no-cases",
        MATRIX,
        "cases",
        "a suite needs at least one [[cases]] table with model and dataset",
    ),
    (
        "no-devices",
        MATRIX.replace('devices = ["cpu"]\n', "") + LINE_CASE,
        "cases[0].devices",
        "no devices for this case: set [matrix] devices or the case's own",
    ),
    (
        "duplicated-case",
        MATRIX + LINE_CASE + LINE_CASE,
        "cases[1]",
        "run single_neuron/line/fp32/cpu/seed0 appears twice in the suite",
    ),
    (
        "duplicated-seed",
        case("seeds = [0, 1, 0]"),
        "cases[0]",
        "run single_neuron/line/fp32/cpu/seed0 appears twice in the suite",
    ),
]


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [pytest.param(text, key, message, id=id_) for id_, text, key, message in SUITE_ERRORS],
)
def test_a_suite_mistake_names_the_file_the_key_and_the_choices(
    benchkit_registry, write_suite, text, key, message
):
    path = write_suite(text)
    with pytest.raises(SuiteError) as caught:
        parse_suite(path, benchkit_registry)
    assert str(caught.value).startswith(f"{path}: {key}: {message}")


def test_unknown_names_list_every_registered_choice(benchkit_registry, write_suite):
    path = write_suite(MATRIX + '[[cases]]\nmodel = "resnet"\ndataset = "line"\n')
    with pytest.raises(SuiteError) as caught:
        parse_suite(path, benchkit_registry)
    valid = str(caught.value).split("valid: ")[1].split(", ")
    assert valid == benchkit_registry.names("model")
    assert {"single_neuron", "sine_mlp"} <= set(valid)


# --- what a case may set ----------------------------------------------------------------------


def test_recipe_overrides_apply_and_tell_the_run_apart(benchkit_registry, write_suite):
    path = write_suite(MATRIX + LINE_CASE + LINE_CASE + "recipe = { epochs = 5, lr = 0.5 }\n")
    plain, tuned = parse_suite(path, benchkit_registry).cases

    assert plain.recipe == Recipe(loss="l1", optimizer="sgd", lr=0.01, epochs=500)
    assert tuned.recipe == Recipe(loss="l1", optimizer="sgd", lr=0.5, epochs=5)
    assert plain.variant == ""
    assert tuned.variant == '{"recipe": {"epochs": 5, "lr": 0.5}}'
    # Both share model/dataset/precision/device/seed, so the tuned case's run_id ends in a short
    # hash of its overrides; the plain case keeps its id, so adding a variant renames nothing.
    assert plain.base_id == tuned.base_id == "single_neuron/line/fp32/cpu/seed0"
    assert plain.run_id == plain.base_id
    assert tuned.run_id == f"{tuned.base_id}/{sha1_8(tuned.variant)}"


def test_a_case_alone_in_its_run_keeps_the_plain_run_id(benchkit_registry, write_suite):
    # The hash appears only where two cases would share a run_id.
    path = write_suite(case("recipe = { epochs = 5 }"))
    (tuned,) = parse_suite(path, benchkit_registry).cases
    assert tuned.variant == '{"recipe": {"epochs": 5}}'
    assert tuned.run_id == "single_neuron/line/fp32/cpu/seed0"


def test_options_override_the_registered_defaults(benchkit_registry, write_suite):
    path = write_suite(
        case(
            "options = { window = 10 }",
            "model_options = { hidden = 8 }",
            "recipe = { lr = 1, batch_size = 64, shuffle = true }",
            base=SINE_CASE,
        )
    )
    (only,) = parse_suite(path, benchkit_registry).cases
    assert only.options == {"points": 2000, "window": 10}
    assert only.model_options == {"hidden": 8}
    assert only.recipe == Recipe(
        loss="mse", optimizer="adam", lr=1, epochs=1000, batch_size=64, shuffle=True
    )
    assert only.variant  # any override gives the case its own run_id


def test_a_case_overrides_the_matrix(benchkit_registry, write_suite):
    path = write_suite(
        case(
            'devices = ["cpu", "cuda:1"]', 'precisions = ["fp64"]', "seeds = [3]", "target_loss = 1"
        )
    )
    cases = parse_suite(path, benchkit_registry).cases
    assert [c.run_id for c in cases] == [
        "single_neuron/line/fp64/cpu/seed3",
        "single_neuron/line/fp64/cuda:1/seed3",
    ]
    assert cases[0].target_loss == 1.0


def test_a_case_may_supply_every_axis_without_a_matrix(benchkit_registry, write_suite):
    path = write_suite(LINE_CASE + 'devices = ["cpu"]\nprecisions = ["bf16"]\nseeds = [7]\n')
    (only,) = parse_suite(path, benchkit_registry).cases
    assert only.run_id == "single_neuron/line/bf16/cpu/seed7"


# --- narrowing a suite from the command line --------------------------------------------------


@pytest.mark.parametrize(
    ("selection", "count"),
    [
        ({"models": ["sine_mlp"]}, 27),
        ({"datasets": ["line", "celsius"]}, 54),
        ({"precisions": ["fp16"]}, 72),
        ({"seeds": [1]}, 72),
        ({"devices": ["cpu"]}, 72),
        ({"models": ["single_neuron"], "datasets": ["line"], "precisions": ["bf16"]}, 9),
        ({"datasets": ["sine"], "precisions": ["fp32"], "devices": ["cpu"], "seeds": [2]}, 1),
    ],
)
def test_each_filter_narrows_the_cases(convergence, selection, count):
    cases = filter_cases(convergence.cases, **selection)
    assert len(cases) == count
    for attr, wanted in selection.items():
        assert {getattr(c, attr[:-1]) for c in cases} == set(wanted)


@pytest.mark.parametrize(
    ("selection", "message"),
    [
        ({"models": ["resnet"]}, "--model resnet matches nothing in the suite; it has: "),
        (
            {"datasets": ["sin", "line"]},
            "--dataset sin matches nothing in the suite; it has: admissions, celsius, line, "
            "prices, ramp, sine, single_point, synthetic_translation",
        ),
        (
            {"precisions": ["fp64"]},
            "--precision fp64 matches nothing in the suite; it has: bf16, fp16, fp32",
        ),
        ({"seeds": [7]}, "--seeds 7 matches nothing in the suite; it has: 0, 1, 2"),
        ({"devices": ["tpu"]}, "--device tpu matches nothing in the suite; it has: cpu, cuda, mps"),
        # each filter is checked against the whole suite; together they must share a run
        (
            {"models": ["sine_mlp"], "datasets": ["line"]},
            "no run of the suite matches --model sine_mlp --dataset line together",
        ),
    ],
)
def test_a_filter_that_matches_nothing_lists_what_the_suite_has(convergence, selection, message):
    with pytest.raises(SuiteError, match=f"^{re.escape(message)}"):
        filter_cases(convergence.cases, **selection)


def test_a_device_index_runs_the_suites_cuda_cases_on_that_gpu(convergence):
    cases = filter_cases(convergence.cases, devices=["cuda:1"])
    assert len(cases) == 72
    assert {c.device for c in cases} == {"cuda:1"}
    assert "single_neuron/line/fp16/cuda:1/seed2" in {c.run_id for c in cases}
    # everything but the device is the suite's cuda case
    suite_cuda = [c for c in convergence.cases if c.device == "cuda"]
    assert [(c.model, c.dataset, c.precision, c.seed, c.recipe) for c in cases] == [
        (c.model, c.dataset, c.precision, c.seed, c.recipe) for c in suite_cuda
    ]


def test_a_device_index_the_suite_names_itself_is_matched_exactly(benchkit_registry, write_suite):
    path = write_suite(case('devices = ["cpu", "cuda:1"]'))
    cases = parse_suite(path, benchkit_registry).cases
    assert [c.device for c in filter_cases(cases, devices=["cuda:1"])] == ["cuda:1"]
    with pytest.raises(SuiteError, match="--device cuda matches nothing"):
        filter_cases(cases, devices=["cuda"])


@pytest.mark.parametrize(
    ("text", "seeds"),
    [
        ("0,1,2", [0, 1, 2]),
        ("0-2", [0, 1, 2]),
        ("1,3-4", [1, 3, 4]),
        ("5", [5]),
        (" 0 , 2 ", [0, 2]),
    ],
)
def test_parse_seeds_reads_lists_and_ranges(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a", "--seeds 'a': write seeds as 0,1,2 or 0-2"),
        ("0-", "--seeds '0-': write seeds as 0,1,2 or 0-2"),
        ("1.5", "--seeds '1.5': write seeds as 0,1,2 or 0-2"),
        ("0-2-4", "--seeds '0-2-4': write seeds as 0,1,2 or 0-2"),
        ("", "--seeds '': write seeds as 0,1,2 or 0-2"),
        (",", "--seeds ',': write seeds as 0,1,2 or 0-2"),
    ],
)
def test_parse_seeds_rejects_anything_else(text, message):
    with pytest.raises(SuiteError, match=f"^{re.escape(message)}$"):
        parse_seeds(text)


# --- regressions found in review ----------------------------------------------------------------


def test_parse_seeds_rejects_a_descending_range():
    with pytest.raises(SuiteError):
        parse_seeds("0,3-1")


def test_a_device_with_an_empty_index_is_rejected(benchkit_registry, write_suite):
    path = write_suite(case('devices = ["cuda:"]'))
    with pytest.raises(SuiteError, match="device index in 'cuda:' must be a number"):
        parse_suite(path, benchkit_registry)


def test_a_date_where_none_is_expected_is_a_suite_error(benchkit_registry, write_suite):
    path = write_suite(case("recipe = { optimizer_options = { since = 1979-05-27 } }"))
    with pytest.raises(SuiteError):
        parse_suite(path, benchkit_registry)


def test_a_device_filter_never_yields_a_run_twice(benchkit_registry, write_suite):
    path = write_suite(case('devices = ["cuda", "cuda:1"]'))
    cases = filter_cases(parse_suite(path, benchkit_registry).cases, devices=["cuda:1"])
    run_ids = [c.run_id for c in cases]
    assert len(run_ids) == len(set(run_ids))
