"""The examples in src/medsyn docstrings run as doctests, so they stay true."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import medsyn

METRIC_MODULE = "medsyn.metrics.medsyn_metric.medsyn_metric"
"""The ``evaluate`` module: its examples load it by name, so test_metric_module runs them as huggingface/evaluate does."""
MODULES = sorted(m.name for m in pkgutil.walk_packages(medsyn.__path__, "medsyn.") if m.name != METRIC_MODULE)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"
