"""The `evaluate` module metrics/medsyn_metric: doctests run the way huggingface/evaluate runs its modules' examples."""

from __future__ import annotations

import doctest
import importlib
import inspect
import re
from pathlib import Path
from unittest.mock import patch

import evaluate
import numpy as np
import pytest
from support import load_module

from medsyn.metrics.scoring import score_fdx
from medsyn.metrics.sensitivity import evidence_sensitivity

MODULE_DIR = Path(__file__).resolve().parents[1] / "metrics" / "medsyn_metric"


def load(config: str) -> evaluate.Metric:
    return evaluate.load(str(MODULE_DIR), config)


def test_kwargs_description_examples_pass_as_doctests() -> None:
    # as huggingface/evaluate's tests/test_metric_common.py: import the module evaluate prepared, point
    # evaluate.load("<name>") at the local folder, run doctest.testmod and re-raise what it caught
    factory = evaluate.loading.evaluation_module_factory(str(MODULE_DIR))
    module = importlib.import_module(factory.module_path)
    parameters = inspect.signature(module.MedsynMetric._compute).parameters
    assert all(p.kind != p.VAR_KEYWORD for p in parameters.values())
    real_load = evaluate.load

    def load_local(name, *args, **kwargs):
        assert name == "medsyn_metric"
        return real_load(str(MODULE_DIR), *args, **kwargs)

    with patch("evaluate.load", side_effect=load_local):
        try:
            results = doctest.testmod(module, verbose=False, raise_on_error=True)
        except doctest.UnexpectedException as error:
            raise error.exc_info[1]
    assert results.failed == 0 and results.attempted >= 7


def test_module_imports_and_space_requirements() -> None:
    # evaluate.load checks the module's imports; for medsyn (not on PyPI) its install hint is the "# From:" URL
    imports = evaluate.loading.get_imports(str(MODULE_DIR / "medsyn_metric.py"))
    sources = {path for kind, name, path, _ in imports if kind == "library" and name == "medsyn"}
    assert sources == {"git+https://github.com/medsyn-benchmark/medsyn"}
    assert "pip install git+https://github.com/medsyn-benchmark/medsyn" in (MODULE_DIR / "README.md").read_text()
    # the Space pip-installs requirements.txt and gets medsyn/ beside app.py (medsyn.publish.hub.plan_space): the
    # requirements name the third-party packages on the metric's path, never medsyn itself
    lines = [line.split("#")[0].strip() for line in (MODULE_DIR / "requirements.txt").read_text().splitlines()]
    names = {re.split(r"[<>=!~;\[ ]", line)[0].lower() for line in lines if line}
    assert "medsyn" not in names
    assert {"evaluate", "datasets", "numpy", "scipy", "simple-icd-10-cm", "openai", "gradio"} <= names


def test_module_matches_core_on_random_rows() -> None:
    rng = np.random.default_rng(0)
    letters = "ABCDE"
    predictions = [f"The answer is {letters[i]}." if i < 5 else "no idea" for i in rng.integers(0, 6, 200)]
    references = [letters[i] for i in rng.integers(0, 5, 200)]
    core = score_fdx(predictions, references)
    assert load("fdx").compute(predictions=predictions, references=references) == {
        "fdx_accuracy": core["fdx_accuracy"], "parse_failures": core["parse_failures"], "n": 200}

    rows = []
    for case in range(20):
        for condition in ["full", "absent:ct", "text:ct", "absent:pathology", "text:pathology"]:
            rows.append((f"c{case}", condition, rng.dirichlet(np.ones(4)).tolist()))
    args = ([r[2] for r in rows], [1] * len(rows), [r[0] for r in rows], [r[1] for r in rows])
    core_es = evidence_sensitivity(*args, divergence="kl")
    module_es = load("evidence_sensitivity").compute(
        predictions=args[0], references=args[1], case_ids=args[2], conditions=args[3], divergence="kl")
    assert module_es["es_gap"] == pytest.approx(core_es["es_gap"], abs=1e-12)
    assert module_es["evidence_sensitivity"].keys() == {"ct", "pathology"}


def test_empty_input_gives_null_figures_in_fdx_and_ddx() -> None:
    assert load("fdx").compute(predictions=[], references=[]) == {"fdx_accuracy": None, "parse_failures": 0, "n": 0}
    assert load("ddx").compute(predictions=[], references=[]) == {
        "ddx_coverage": None, "mean_best_score": None, "judge_failures": 0, "n": 0}
    assert load("ddx").compute(predictions=[], references=[], confidence_interval=True)["ddx_coverage_ci"] is None


def test_infinite_kl_is_an_error_naming_the_row() -> None:
    with pytest.raises(ValueError, match=r"row 1 \(case 'c', condition 'absent:ct'\).*KL divergence from row 0 is infinite"):
        load("evidence_sensitivity").compute(
            predictions=[[1, 0], [0, 1], [1, 0]], references=[0, 0, 0], case_ids=["c"] * 3,
            conditions=["full", "absent:ct", "text:ct"], divergence="kl", confidence_interval=True)


def test_confidence_intervals() -> None:
    result = load("fdx").compute(predictions=["A", "B", "C", "A"] * 5, references=["A"] * 20, confidence_interval=True, seed=3)
    low, high = result["fdx_accuracy_ci"]
    assert low <= result["fdx_accuracy"] <= high
    es = load("evidence_sensitivity").compute(
        predictions=[[0.6, 0.4], [0.5, 0.5], [0.9, 0.1]] * 2, references=[0] * 6,
        case_ids=["a"] * 3 + ["b"] * 3, conditions=["full", "absent:mri", "text:mri"] * 2, confidence_interval=True)
    assert len(es["es_gap_ci"]) == 2


def test_bad_input_raises_value_error_naming_the_row() -> None:
    with pytest.raises(ValueError, match=r"row 2 \(case 'c1', condition 'absent:skull'\): conditions"):
        load("evidence_sensitivity").compute(
            predictions=[[0.5, 0.5]] * 3, references=[0] * 3, case_ids=["c1"] * 3,
            conditions=["full", "absent:ct", "absent:skull"])
    with pytest.raises(ValueError, match=r"case 'c1' has no 'full' row"):
        load("evidence_sensitivity").compute(
            predictions=[[0.5, 0.5]] * 2, references=[0] * 2, case_ids=["c1"] * 2, conditions=["absent:ct", "text:ct"])
    with pytest.raises(ValueError, match=r"row 1 .*not a distribution"):
        load("evidence_sensitivity").compute(
            predictions=[[0.5, 0.5], [0.9, 0.9]], references=[0, 0], case_ids=["c1"] * 2, conditions=["full", "text"])
    with pytest.raises(ValueError, match=r"row 1: references: 'Z'"):
        load("fdx").compute(predictions=["A", "B"], references=["A", "Z"])
    with pytest.raises(ValueError, match="does not take judge"):
        load("fdx").compute(predictions=["A"], references=["A"], judge="lexical")
    with pytest.raises(ValueError, match="needs case_ids and conditions"):
        load("evidence_sensitivity").compute(predictions=[[0.5, 0.5]], references=[0])
    with pytest.raises(ValueError):  # evaluate's own length check
        load("ddx").compute(predictions=["x", "y"], references=["x"])
    with pytest.raises(KeyError, match="unknown config"):
        load("accuracy")


def test_card_publishes_the_judge_prompt() -> None:
    from medsyn.metrics.judges.llm import JUDGE_PROMPT_VERSION, JUDGE_SYSTEM, JUDGE_TEMPLATE

    card = (MODULE_DIR / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---\n") and "app_file: app.py" in card and "sdk: gradio" in card
    assert JUDGE_PROMPT_VERSION in card and JUDGE_SYSTEM in card
    assert JUDGE_TEMPLATE.replace("{{", "{").replace("}}", "}") in card


def test_space_app_computes_each_config() -> None:
    app = load_module("medsyn_metric_app", MODULE_DIR / "app.py")
    import json

    for config, arguments in app.EXAMPLES.items():
        result = app.compute(config, json.dumps(arguments))
        assert "error" not in result and result["n" if config != "evidence_sensitivity" else "n_cases"] >= 1
    assert "error" in app.compute("fdx", json.dumps({"predictions": ["A"], "references": ["Q"]}))
    assert app.build_demo() is not None


def test_rate_intervals_are_wilson_and_keep_their_width_at_the_boundaries() -> None:
    # a percentile bootstrap gave [0, 0] at 0 % and [1, 1] at 100 %
    ddx = load("ddx").compute(predictions=["1. Migraine"] * 6, references=["Subarachnoid hemorrhage"] * 6,
                              confidence_interval=True)
    assert ddx["ddx_coverage"] == 0.0 and ddx["ddx_coverage_ci"] == pytest.approx([0.0, 0.3903], abs=1e-4)
    assert ddx["ci"] == {"method": "wilson", "level": 0.95}
    fdx = load("fdx").compute(predictions=["A"] * 6, references=["A"] * 6, confidence_interval=True)
    assert fdx["fdx_accuracy_ci"] == pytest.approx([0.6097, 1.0], abs=1e-4)
    es = load("evidence_sensitivity").compute(
        predictions=[[0.6, 0.4], [0.5, 0.5], [0.9, 0.1]] * 2, references=[0] * 6, case_ids=["a"] * 3 + ["b"] * 3,
        conditions=["full", "absent:mri", "text:mri"] * 2, confidence_interval=True, seed=4)
    assert es["ci"] == {"method": "case-bootstrap-percentile", "level": 0.95, "n_resamples": 2000, "seed": 4}
    assert "ci" not in load("fdx").compute(predictions=["A"], references=["A"])
