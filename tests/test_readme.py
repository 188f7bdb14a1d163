"""The README's commands and example plugin are real."""

from __future__ import annotations

import re
import types
from pathlib import Path

from benchkit.testing import check_plugin

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_readme_example_plugin_registers_and_trains():
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    source = next(b for b in blocks if "benchkit_register_models" in b)
    module = types.ModuleType("readme_example")
    exec(compile(source, "README.md", "exec"), module.__dict__)
    results = check_plugin(module, epochs=5)
    assert [(r.model, r.dataset) for r in results] == [("tiny", "squares")]
    assert results[0].curve[-1] < results[0].curve[0]


def test_readme_shows_both_setup_commands():
    assert "benchkit run suites/convergence" in README
    assert "pip install tox && tox" in README
