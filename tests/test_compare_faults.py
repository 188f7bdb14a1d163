"""``benchkit compare`` on damaged tables and on result sets that were not made the same way:
it never crashes, judges what it can, and says what it cannot."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from _resultsets import copy_set, edit_meta, edit_results, scale_speed, shared_tiny_set

from benchkit.cli import main
from benchkit.compare import Options, compare
from benchkit.resultset import load

SINE0 = "sine_mlp/sine/fp32/cpu/seed0"
SINE1 = "sine_mlp/sine/fp32/cpu/seed1"


@pytest.fixture(scope="session")
def tiny_set(tmp_path_factory):
    return shared_tiny_set(tmp_path_factory)


def run_compare(capsys, *args: object) -> tuple[int, str, str]:
    code = main(["compare", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def findings(base, new, **options) -> list:
    return compare(load(base), load(new), Options(**options)).findings


def _raw_edit(folder, column, run_id, text):
    """Write ``text`` into one cell of results.csv, as a hand or a broken tool would."""
    frame = pd.read_csv(folder / "results.csv", dtype=str, keep_default_na=False)
    frame.loc[frame["run_id"] == run_id, column] = text
    frame.to_csv(folder / "results.csv", index=False)


def test_a_missing_run_id_column_exits_2_naming_file_and_column(tiny_set, tmp_path, capsys):
    new = copy_set(tiny_set, tmp_path / "new")
    edit_results(new, lambda frame: frame.drop(columns=["run_id"]))
    code, out, err = run_compare(capsys, tiny_set, new)
    assert code == 2 and out == ""
    assert err.strip() == (
        f"benchkit: error: {new / 'results.csv'}: missing key column run_id; is it a "
        "results.csv written by `benchkit run`?"
    )


def test_text_in_the_seed_column_exits_2_naming_file_column_and_line(tiny_set, tmp_path, capsys):
    new = copy_set(tiny_set, tmp_path / "new")
    _raw_edit(new, "seed", SINE1, "one")
    code, _, err = run_compare(capsys, tiny_set, new)
    assert code == 2
    assert f"{new / 'results.csv'}: column seed, line " in err and "'one'" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("column", ["peak_memory_bytes", "converged_epoch", "final_loss"])
def test_a_bad_cell_is_unreadable_for_its_row_only(tiny_set, tmp_path, capsys, column):
    new = copy_set(tiny_set, tmp_path / "new")
    _raw_edit(new, column, SINE0, "oops")
    code, out, err = run_compare(capsys, tiny_set, new)
    assert code == 0, out + err
    got = findings(tiny_set, new)
    bad = [f for f in got if f.verdict == "unreadable"]
    assert [(f.key, f.metric) for f in bad] == [(SINE0, column)]
    assert "unreadable value: new 'oops' is not a number" in bad[0].note
    others = [f for f in got if f.metric == column and f.key != SINE0]
    assert others and {f.verdict for f in others} == {"same"}
    assert "1 value unreadable" in out
    # a committed baseline's gate does not pass what it cannot judge
    code, _, _ = run_compare(capsys, tiny_set, new, "--strict", "--report-only", "noisy")
    assert code == 1


@pytest.mark.parametrize(
    ("column", "kind"), [("final_loss", "deterministic"), ("peak_memory_bytes", "memory")]
)
def test_bad_cells_on_both_sides_name_both_texts(tiny_set, tmp_path, column, kind):
    base, new = copy_set(tiny_set, tmp_path / "base"), copy_set(tiny_set, tmp_path / "new")
    _raw_edit(base, column, SINE0, "oops")
    _raw_edit(new, column, SINE0, "n/a?")
    (bad,) = [f for f in findings(base, new) if f.verdict == "unreadable"]
    assert (bad.key, bad.metric, bad.kind) == (SINE0, column, kind)
    assert (bad.baseline, bad.new) == ("oops", "n/a?")
    assert bad.note == (
        "unreadable value: baseline 'oops' and new 'n/a?' is not a number; this row's "
        f"{column} is not judged"
    )


@pytest.mark.parametrize("damaged", ["baseline", "new"])
def test_a_bad_cell_on_one_side_keeps_the_other_sides_figure(tiny_set, tmp_path, damaged):
    sides = {"baseline": tiny_set, "new": tiny_set}
    sides[damaged] = copy_set(tiny_set, tmp_path / damaged)
    _raw_edit(sides[damaged], "final_loss", SINE0, "oops")
    (bad,) = [f for f in findings(sides["baseline"], sides["new"]) if f.verdict == "unreadable"]
    figure = load(tiny_set).rows.set_index("run_id").loc[SINE0, "final_loss"]
    expected = (figure, "oops") if damaged == "new" else ("oops", figure)
    assert (bad.baseline, bad.new) == expected


def test_a_damaged_curves_table_leaves_the_rest_comparable(tiny_set, tmp_path, capsys):
    new = copy_set(tiny_set, tmp_path / "new")
    text = (new / "curves.csv").read_text().splitlines()
    text[5] = text[5].rsplit(",", 1)[0] + ",not-a-time"
    (new / "curves.csv").write_text("\n".join(text) + "\n")
    code, out, err = run_compare(capsys, tiny_set, new)
    assert code == 0, out + err


def test_another_target_loss_makes_epochs_to_target_not_comparable(tiny_set, tmp_path, capsys):
    new = copy_set(tiny_set, tmp_path / "new")

    def other_target(frame):
        frame["target_loss"] = frame["target_loss"] * 100
        frame["converged_epoch"] = frame["converged_epoch"] - 3

    edit_results(new, other_target)
    code, out, _ = run_compare(capsys, tiny_set, new)
    assert code == 0
    got = [f for f in findings(tiny_set, new) if f.metric == "converged_epoch"]
    assert got and {f.verdict for f in got} == {"not-comparable"}
    assert all(f.note.startswith("not comparable: target_loss ") for f in got)
    assert "improved" not in {f.verdict for f in findings(tiny_set, new)}
    assert "not comparable" in out


def test_another_recipe_makes_every_figure_of_the_row_not_comparable(tiny_set, tmp_path):
    new = copy_set(tiny_set, tmp_path / "new")

    def other_lr(frame):
        sine = frame["run_id"] == SINE0
        frame.loc[sine, "lr"] = 0.01
        frame.loc[sine, "final_loss"] = frame.loc[sine, "final_loss"] / 2
        frame.loc[sine, "rollout_mse"] = frame.loc[sine, "rollout_mse"] * 2

    edit_results(new, other_lr)
    got = {(f.key, f.metric): f for f in findings(tiny_set, new)}
    assert got[(SINE0, "final_loss")].verdict == "not-comparable"
    assert got[(SINE0, "rollout_mse")].verdict == "not-comparable"
    assert "recipe lr 0.001 → 0.01" in got[(SINE0, "final_loss")].note
    assert got[(SINE0, "lr")].verdict == "changed"  # the setting itself is shown as it is


def test_result_sets_of_different_suites_are_said_to_be(tiny_set, tmp_path, capsys):
    new = copy_set(tiny_set, tmp_path / "new")

    def other_suite(meta):
        meta["suite"]["text"] += "\n# another suite\n"
        meta["suite"]["path"] = "suites/other/suite.toml"

    edit_meta(new, other_suite)
    code, out, _ = run_compare(capsys, tiny_set, new)
    assert code == 0
    assert "different suite texts" in out and "suites/other/suite.toml" in out


def test_a_changed_plugin_version_makes_differences_not_comparable(tiny_set, tmp_path, capsys):
    new = copy_set(tiny_set, tmp_path / "new")

    def newer_plugin(meta):
        meta["plugins"]["sine_mlp"]["version"] = "9.9.9"

    edit_meta(new, newer_plugin)

    def moved(frame):
        frame.loc[frame["model"] == "sine_mlp", "final_loss"] *= 1.5

    edit_results(new, moved)
    code, out, _ = run_compare(capsys, tiny_set, new, "--report-only", "noisy")
    assert code == 0, out
    got = [f for f in findings(tiny_set, new) if f.metric == "final_loss"]
    sine = [f for f in got if f.key.startswith("sine_mlp") and f.baseline == f.baseline]
    changed = [f for f in sine if f.verdict != "same"]
    assert changed and {f.verdict for f in changed} == {"not-comparable"}
    assert all(
        "from plugin sine_mlp (benchkit 0.1.0) → sine_mlp (benchkit 9.9.9)" in f.note
        for f in changed
    )
    assert {f.verdict for f in got if f.key.startswith("single_neuron")} == {"same"}


def test_contended_runs_show_timings_but_never_gate(tiny_set, tmp_path, capsys):
    base = copy_set(tiny_set, tmp_path / "base")
    new = copy_set(tiny_set, tmp_path / "new")
    from _resultsets import steady_timings

    steady_timings(base)
    steady_timings(new)
    scale_speed(new, 0.5)  # half as fast: a regression on a quiet machine

    def busy(frame):
        frame["contended"] = frame["model"] == "sine_mlp"

    edit_results(new, busy)
    code, out, _ = run_compare(capsys, base, new)
    noisy = {f.key: f for f in findings(base, new) if f.metric == "samples_per_second"}
    sine = noisy["sine_mlp/sine/fp32/cpu"]
    assert sine.verdict == "regressed" and not sine.gated and not sine.fails
    assert "contended" in sine.note and "not gated" in sine.note
    assert noisy["single_neuron/single_point/fp32/cpu"].gated  # quiet runs still gate
    assert "shared the CPU with other processes (contended)" in out
    assert code == 1  # the quiet single_neuron runs regressed too


def test_a_row_without_a_readable_status_is_compared_not_crashed(tiny_set, tmp_path, capsys):
    new = copy_set(tiny_set, tmp_path / "new")
    _raw_edit(new, "status", SINE0, "")
    code, _, err = run_compare(capsys, tiny_set, new)
    assert code in (0, 1) and "Traceback" not in err


def test_a_damaged_run_json_environment_is_not_a_crash(tiny_set, tmp_path, capsys):
    new = copy_set(tiny_set, tmp_path / "new")
    meta = json.loads((new / "run.json").read_text())
    meta["environment"] = ["not", "a", "table"]
    meta["suite"] = "a string"
    (new / "run.json").write_text(json.dumps(meta))
    code, _, err = run_compare(capsys, tiny_set, new)
    assert code in (0, 1) and "error" not in err
