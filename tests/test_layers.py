"""The package's layers import only downward, with no cycle, and ``medsyn.metrics`` stays free of the model stack.

Layers, lowest first: ``medsyn.data`` → ``medsyn.metrics`` → ``medsyn.eval`` → ``medsyn.publish`` → the CLI
(``medsyn.cli``, ``medsyn.commands``). Every import counts, the ones inside functions included.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
LAYERS = ("medsyn.data", "medsyn.metrics", "medsyn.eval", "medsyn.publish")
TOP = len(LAYERS)
"""The rank of the CLI and the package root, above every layer."""
MODEL_STACK = ("torch", "transformers", "lighteval")
EVALUATE_MODULE = "medsyn.metrics.medsyn_metric.medsyn_metric"
"""The ``evaluate`` module's script: ``import evaluate`` loads transformers (and torch) where installed, so it
is left out of the import check; nothing in the package imports it (evaluate.load reads it as a file)."""


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def rank(module: str) -> int:
    """The layer of ``module`` (an index into LAYERS), or TOP for the CLI and the package root."""
    for i, layer in enumerate(LAYERS):
        if module == layer or module.startswith(layer + "."):
            return i
    return TOP


def imports(module: str) -> set[str]:
    """The medsyn modules that ``module`` imports anywhere in its source (resolved to modules that exist)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            raise AssertionError(f"{module}: relative import (use absolute medsyn.* imports)")
        else:
            continue
        found |= {n for n in names if n in MODULES and n != module}
    return found


def test_every_module_has_a_layer_and_the_layers_exist() -> None:
    assert all(layer in MODULES for layer in LAYERS)
    assert {m for m in MODULES if rank(m) == TOP} == {"medsyn", "medsyn.cli", "medsyn.commands"}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_a_module_imports_only_its_own_layer_or_lower_ones(module: str) -> None:
    upward = sorted(m for m in imports(module) if rank(m) > rank(module) and m != "medsyn")
    assert upward == [], f"{module} (layer {rank(module)}) imports higher layers: {upward}"


def test_no_import_cycle() -> None:
    graph = {m: imports(m) - {"medsyn"} for m in MODULES}
    # a module's own package __init__ is imported with it, not a cycle
    graph = {m: {d for d in deps if not m.startswith(d + ".")} for m, deps in graph.items()}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(dep):] + [dep]))
            if dep not in state:
                visit(dep, path + [dep])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_metrics_imports_without_the_model_stack() -> None:
    metrics = sorted(m for m in MODULES if rank(m) <= LAYERS.index("medsyn.metrics") and m != EVALUATE_MODULE)
    assert not any(EVALUATE_MODULE in imports(m) for m in MODULES)
    code = (
        "import importlib, sys\n"
        f"for name in {metrics!r}: importlib.import_module(name)\n"
        f"print(sorted(m for m in {MODEL_STACK!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"medsyn.metrics (or medsyn.data) pulled in {out.strip()}"


def test_the_layer_check_catches_an_upward_import(tmp_path: Path, monkeypatch) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from medsyn.eval.tasks import task_table\n")
    monkeypatch.setitem(MODULES, "medsyn.data.bad", bad)
    assert rank("medsyn.data.bad") == 0 and imports("medsyn.data.bad") == {"medsyn.eval.tasks"}
    with pytest.raises(AssertionError, match="imports higher layers"):
        test_a_module_imports_only_its_own_layer_or_lower_ones("medsyn.data.bad")
