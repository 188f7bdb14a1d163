"""The steps ``parse_suite`` is made of, one at a time: read → validate the top level →
validate a case → expand it over its matrix → tag shared run ids → claims.

Each step takes what the one before it returned, so a reader can follow a suite file into
its runs; ``tests/test_suite_file.py`` checks the whole, through ``parse_suite``.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from benchkit import Recipe
from benchkit.errors import SuiteError
from benchkit.suite import (
    Case,
    SuiteChecker,
    SuiteTop,
    expand_case,
    parse_claims,
    read_suite,
    tag_shared_ids,
    validate_case,
    validate_top,
)

MATRIX = {"devices": ["cpu"], "precisions": ["fp32"], "seeds": [0]}


@pytest.fixture
def check(benchkit_registry, tmp_path):
    """A checker whose messages name ``suite.toml`` in a temporary folder."""
    return SuiteChecker(tmp_path / "suite.toml", benchkit_registry)


def top(check: SuiteChecker, **doc) -> SuiteTop:
    doc.setdefault("matrix", MATRIX)
    doc.setdefault("cases", [{"model": "single_neuron", "dataset": "line"}])
    return validate_top(doc, check)


# --- step 1: read ---------------------------------------------------------------------------


def test_read_returns_the_path_the_text_and_the_document(tmp_path):
    (tmp_path / "nightly").mkdir()
    text = '[suite]\nname = "nightly"\n'
    (tmp_path / "nightly" / "suite.toml").write_text(text)
    path, read_text, doc = read_suite(tmp_path / "nightly")
    assert path == tmp_path / "nightly" / "suite.toml"
    assert read_text == text
    assert doc == {"suite": {"name": "nightly"}}


def test_read_rejects_invalid_toml_naming_the_file(tmp_path):
    (tmp_path / "bad.toml").write_text("[suite\n")
    with pytest.raises(SuiteError, match=r"bad\.toml: not valid TOML"):
        read_suite(tmp_path / "bad.toml")


def test_read_of_a_missing_suite_says_what_was_tried(tmp_path):
    with pytest.raises(SuiteError, match="looked for"):
        read_suite(tmp_path / "none")


# --- step 2: the top level ------------------------------------------------------------------


def test_top_level_tables_and_suite_criteria_are_checked_once(check):
    checked = top(check, suite={"criteria": ["loss<=1e-6"]})
    assert checked.matrix == MATRIX
    assert [c.text for c in checked.criteria] == ["loss <= 1e-06"]
    assert checked.cases == [{"model": "single_neuron", "dataset": "line"}]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"bogus": 1}, "bogus: unknown key"),
        ({"suite": {"colour": "red"}}, "suite.colour: unknown key"),
        ({"matrix": []}, "matrix: expected table"),
        ({"matrix": {"gpus": 1}}, "matrix.gpus: unknown key"),
        ({"compare": 3}, "compare: expected table"),
        ({"suite": {"criteria": ["loss ~ 1"]}}, "suite.criteria[0]"),
        ({"cases": []}, "cases: a suite needs at least one [[cases]]"),
    ],
)
def test_top_level_mistakes_name_the_key(check, doc, message):
    with pytest.raises(SuiteError) as caught:
        top(check, **doc)
    assert message in str(caught.value)
    assert str(caught.value).startswith(f"{check.path}: ")


# --- step 3: one case -----------------------------------------------------------------------


def test_a_case_is_validated_against_the_plugins_and_the_matrix(check):
    raw = {
        "model": "single_neuron",
        "dataset": "line",
        "recipe": {"epochs": 40},
        "seeds": [3, 4],
        "target_loss": 1,
    }
    spec = validate_case(raw, 0, top(check), check)
    assert (spec.model, spec.dataset, spec.where) == ("single_neuron", "line", "cases[0]")
    assert spec.recipe == Recipe(loss="l1", optimizer="sgd", lr=0.01, epochs=40)
    assert spec.overrides == {"recipe": {"epochs": 40}}  # what the file wrote: the variant
    assert (spec.devices, spec.precisions, spec.seeds) == (["cpu"], ["fp32"], [3, 4])
    assert spec.batches == [None]
    assert spec.target_loss == 1.0 and isinstance(spec.target_loss, float)


def test_a_case_takes_the_suite_criteria_unless_it_has_its_own(check):
    checked = top(check, suite={"criteria": ["loss <= 1"]})
    plain = validate_case({"model": "single_neuron", "dataset": "line"}, 0, checked, check)
    own = validate_case(
        {"model": "single_neuron", "dataset": "line", "criteria": ["loss == 0"]}, 1, checked, check
    )
    assert [c.text for c in plain.criteria] == ["loss <= 1"]
    assert [c.text for c in own.criteria] == ["loss == 0"]


def test_batch_sizes_from_the_command_line_replace_the_case_axis(check):
    checked = top(check, matrix={**MATRIX, "batch_sizes": [8]})
    raw = {"model": "single_neuron", "dataset": "line"}
    assert validate_case(raw, 0, checked, check).batches == [8]
    assert validate_case(raw, 0, checked, check, batch_sizes=[None, 2]).batches == [None, 2]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"model": "single_neuron"}, "cases[2].dataset: missing"),
        ({"model": "single_neuron", "dataset": "sine"}, "does not fit dataset 'sine'"),
        ({"model": "single_neuron", "dataset": "line", "recipe": {"lr": "a"}}, "recipe.lr"),
        ({"model": "single_neuron", "dataset": "line", "devices": ["cuda:x"]}, "device index"),
        ({"model": "single_neuron", "dataset": "line", "trace": 1}, "cases[2].trace"),
    ],
)
def test_case_mistakes_name_the_case_and_key(check, raw, message):
    with pytest.raises(SuiteError, match=message.replace("[", r"\[").replace(".", r"\.")):
        validate_case(raw, 2, top(check), check)


def test_a_case_without_an_axis_says_where_to_set_it(check):
    checked = top(check, matrix={"devices": ["cpu"], "precisions": ["fp32"]})
    with pytest.raises(SuiteError, match=r"cases\[0\]\.seeds: no seeds for this case"):
        validate_case({"model": "single_neuron", "dataset": "line"}, 0, checked, check)


# --- step 4: expansion ----------------------------------------------------------------------


def spec_of(check, **raw):
    raw = {"model": "single_neuron", "dataset": "line", **raw}
    return validate_case(raw, 0, top(check), check)


def test_expansion_runs_batch_then_device_then_precision_then_seed(check):
    spec = spec_of(
        check,
        devices=["cpu", "cuda"],
        precisions=["fp32", "fp16"],
        seeds=[0, 1],
        batch_sizes=["recipe", 4],
    )
    seen: set = set()
    cases = expand_case(spec, check, seen)
    got = [(c.batch, c.device, c.precision, c.seed) for c in cases]
    assert got == [
        (batch, device, precision, seed)
        for batch in (None, 4)
        for device in ("cpu", "cuda")
        for precision in ("fp32", "fp16")
        for seed in (0, 1)
    ]
    assert len(seen) == 16
    sized = [c for c in cases if c.batch == 4]
    assert all(c.recipe.batch_size == 4 for c in sized)
    assert all(c.variant == json.dumps({"batch_size": 4}) for c in sized)
    assert all(c.variant == "" for c in cases if c.batch is None)


def test_expansion_rejects_a_run_the_suite_already_has(check):
    seen: set = set()
    expand_case(spec_of(check), check, seen)
    with pytest.raises(SuiteError, match=r"cases\[0\]: run single_neuron/line/fp32/cpu/seed0"):
        expand_case(spec_of(check), check, seen)


def test_the_variant_is_what_the_file_overrode_in_canonical_json(check):
    spec = spec_of(check, model_options={}, recipe={"lr": 0.1, "epochs": 3})
    (case,) = expand_case(spec, check, set())
    assert case.variant == '{"recipe": {"epochs": 3, "lr": 0.1}}'


# --- step 5: tags ---------------------------------------------------------------------------


def case(variant: str = "", seed: int = 0) -> Case:
    return Case("m", "d", "fp32", "cpu", seed, Recipe(), variant=variant)


def test_only_a_variant_sharing_its_base_id_gets_a_tag():
    plain, variant, alone = case(), case('{"recipe": {"lr": 1}}'), case('{"x": 1}', seed=1)
    tagged = tag_shared_ids([plain, variant, alone])
    assert tagged[0].run_id == "m/d/fp32/cpu/seed0"
    digest = hashlib.sha1(variant.variant.encode()).hexdigest()[:8]
    assert tagged[1].run_id == f"m/d/fp32/cpu/seed0/{digest}"
    assert tagged[2].run_id == "m/d/fp32/cpu/seed1"  # no other run shares its id


# --- step 6: claims -------------------------------------------------------------------------


def test_claims_may_name_only_criteria_the_cases_record(check):
    cases = expand_case(spec_of(check, criteria=["loss <= 1e-3"]), check, set())
    claim = {"text": "t", "a": {}, "b": {}, "metric": "epochs_to", "expect": "a < b"}
    (parsed,) = parse_claims({"claims": [{**claim, "criteria": ["loss<=1e-3"]}]}, cases, check)
    assert parsed.id == "claim1" and parsed.criteria == ("loss <= 0.001",)
    with pytest.raises(SuiteError, match="is not a criterion of the suite's cases"):
        parse_claims({"claims": [{**claim, "criteria": ["loss == 0"]}]}, cases, check)


def test_claim_ids_are_unique(check):
    claim = {"id": "x", "text": "t", "a": {}, "b": {}, "metric": "final_loss", "expect": "a < b"}
    with pytest.raises(SuiteError, match="claim ids must be unique, got x, x"):
        parse_claims({"claims": [claim, claim]}, [], check)
    assert parse_claims({}, [], check) == []
