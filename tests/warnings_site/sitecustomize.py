"""Imported at start-up by the suite's subprocesses (``tests.conftest.subprocess_env`` puts this folder on
their PYTHONPATH): installs pyproject.toml's ``[tool.pytest.ini_options] filterwarnings`` "error::" entries,
module prefixes as pytest reads them, so a deprecation in a child fails as it does in-process. The one home
of the filters stays pyproject.toml."""

import pathlib
import tomllib
import warnings

_PYPROJECT = pathlib.Path(__file__).resolve().parents[2] / "pyproject.toml"
_CATEGORIES = {"DeprecationWarning": DeprecationWarning, "PendingDeprecationWarning": PendingDeprecationWarning,
               "FutureWarning": FutureWarning}


def install() -> int:
    """Adds the "error::Category:module" filters; returns how many."""
    entries = tomllib.loads(_PYPROJECT.read_text())["tool"]["pytest"]["ini_options"]["filterwarnings"]
    n = 0
    for entry in entries:
        action, _, category, module = (entry.split(":") + [""] * 4)[:4]
        if action == "error" and category in _CATEGORIES:
            warnings.filterwarnings("error", category=_CATEGORIES[category], module=module)
            n += 1
    return n


INSTALLED = install()
