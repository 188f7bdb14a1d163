"""Under mutation testing (``tox -e mutation``), make ``benchkit_plugins`` the mutated copy.

mutmut copies ``benchkit/`` and ``plugins/`` into ``mutants/``, mutates them there and runs the
tests with ``mutants/`` first on ``sys.path``. ``benchkit`` is then found there, but
``benchkit_plugins`` is the name the *installed* package maps to the original ``plugins/``
folder, so the mutated built-in plugins would never run. mutmut also recognises a mutated
function by its module's name, which it derives from the file's path (``plugins.sine_mlp``).

So, when ``benchkit`` itself was imported from ``mutants/``, this module imports every module
of ``mutants/plugins`` under its own name and registers it as ``benchkit_plugins.NAME`` too;
the entry points (``benchkit_plugins.sine_mlp``) then load the mutated copy. Anywhere else it
does nothing. ``conftest.py`` imports it before anything imports a built-in plugin.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

import benchkit


def use_mutated_plugins() -> bool:
    """Alias ``benchkit_plugins`` to ``mutants/plugins`` when running under mutmut; returns
    whether it did."""
    root = Path(benchkit.__file__).resolve().parent.parent
    if root.name != "mutants" or not (root / "plugins" / "__init__.py").is_file():
        return False
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    package = importlib.import_module("plugins")
    sys.modules["benchkit_plugins"] = package
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"plugins.{info.name}")
        sys.modules[f"benchkit_plugins.{info.name}"] = module
        setattr(package, info.name, module)
    return True


use_mutated_plugins()
