"""docs/failure-modes.md and the tests stay in step: every test the table names exists, and
every test of the fault test files is in the table."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "failure-modes.md").read_text()
#: Test files whose every test is a row of the table.
FAULT_FILES = ("test_faults.py", "test_compare_faults.py", "test_properties.py")
EXIT_CODES = {"0", "1", "2", "3", "129", "130", "137", "143"}


def rows() -> list[list[str]]:
    """The table rows: fault, what benchkit does, exit, test."""
    out = []
    for line in DOC.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0] not in ("fault", "---"):
            out.append(cells)
    return out


def referenced() -> set[tuple[str, str]]:
    found = set()
    for *_, test in rows():
        match = re.fullmatch(r"`(test_\w+\.py)::(test_\w+)`", test)
        assert match, f"docs/failure-modes.md: write the test as `file.py::test_name`: {test}"
        found.add((match[1], match[2]))
    return found


def defined_tests(name: str) -> set[str]:
    tree = ast.parse((ROOT / "tests" / name).read_text())
    return {
        n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")
    }


def test_the_table_has_rows_of_four_cells():
    assert len(rows()) >= 50
    for fault, what, code, _ in rows():
        assert fault and what, "every row says the fault and what benchkit does"
        assert set(re.split(r",\s*", code)) <= EXIT_CODES, f"{fault}: exit {code!r}"


@pytest.mark.parametrize(("file", "test"), sorted(referenced()))
def test_every_test_named_in_the_table_exists(file, test):
    assert (ROOT / "tests" / file).is_file(), f"docs/failure-modes.md names {file}"
    assert test in defined_tests(file), f"docs/failure-modes.md names {file}::{test}"


@pytest.mark.parametrize("file", FAULT_FILES)
def test_every_fault_test_is_in_the_table(file):
    named = {test for f, test in referenced() if f == file}
    missing = sorted(defined_tests(file) - named)
    assert not missing, f"add a row to docs/failure-modes.md for {file}: {', '.join(missing)}"


def test_the_exit_codes_are_the_readmes():
    readme = (ROOT / "README.md").read_text()
    for phrase in ("`3` benchkit itself failed", "`128 + N`", "docs/failure-modes.md"):
        assert phrase in readme, phrase
