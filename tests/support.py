"""Helpers shared by the tests (importable: pytest puts tests/ on sys.path, see pyproject.toml)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def load_module(name: str, path: str | Path, register: bool = False) -> ModuleType:
    """The Python file ``path`` (a script, or another test file's fakes) as a module named ``name``.

    ``register``: also put it in sys.modules (dataclasses defined in it look their module up there).
    """
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    if register:
        sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
