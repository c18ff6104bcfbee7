"""report.md: the banner of a run that is no finding, judged-case counts beside the rates, judge failures by cause."""

from __future__ import annotations

from pathlib import Path

from medsyn.eval.pipeline import Sample
from medsyn.eval.report import failure_cause, write_report
from medsyn.eval.tiny_model import TINY_MODEL_NAME


def _block(n: int, fdx: float, ddx: float | None, judge_failures: int) -> dict:
    return {
        "n": n, "fdx_accuracy": fdx, "fdx_accuracy_ci": [0.0, 1.0], "parse_failures": 0,
        "ddx_coverage": ddx, "ddx_coverage_ci": None if ddx is None else [0.0, 1.0], "judge_failures": judge_failures,
        "ddx_fdx_gap": None if ddx is None else ddx - fdx, "es_image": None, "es_text": None, "es_gap": None,
        "es_gap_ci": None, "es_parse_failures": None, "evidence_sensitivity": {},
        "conditions": {"full": fdx, "text": None, "no_history": None, "random_history": None},
    }  # fmt: skip


def _results(model: str, dataset: str) -> dict:
    return {
        "dataset": {"name": dataset, "revision": "0" * 64, "n_cases": {"en": 2, "zh": 2}},
        "model": {"name": model, "type": "open", "params_b": 1.0},
        "judge": "lexical",
        "image_budget": {"max_pixels": None},
        "results": {"en": _block(2, 0.5, None, 2), "zh": _block(2, 1.0, 0.5, 0), "overall": _block(4, 0.75, 0.5, 2)},
        "command": "medsyn eval",
        "created_at": "2026-01-01T00:00:00Z",
    }


def _samples() -> list[Sample]:
    samples = []
    for lang, case, gold, ddx in [("en", "e1", "Pneumonia", "1. 龘靐齉"), ("en", "e2", "Gout", "1. 齉龘"),
                                  ("zh", "z1", "肺炎", "1. 肺炎"), ("zh", "z2", "痛风", "1. 偏头痛")]:  # fmt: skip
        spec = {"case_id": case, "language": lang, "answer": "A", "options": ["x", "y"], "final_diagnosis": gold}
        samples.append(Sample("fdx", spec | {"task": "fdx", "condition": "full"}, "q", 0, "Answer: A", None))
        samples.append(Sample("fdx", spec | {"task": "fdx", "condition": "text"}, "q", 0, "Answer: B", None))
        samples.append(Sample("ddx", spec | {"task": "ddx", "condition": "full"}, "q", 0, ddx, None))
    return samples


def test_random_model_on_mini_gets_the_banner_and_counts(tmp_path: Path) -> None:
    text = write_report(_results(TINY_MODEL_NAME, "MEDSYN-mini"), tmp_path, _samples()).read_text(encoding="utf-8")
    banner = next(line for line in text.splitlines() if line.startswith("> "))
    assert "random untrained model: its scores are noise" in banner and "MEDSYN-mini" in banner and "not a benchmark" in banner
    assert "| en | 2 | 50.0 % (1/2) [0.0, 100.0] | 0 | n/a (0 of 2 judged) | 2 |" in text
    assert "| zh | 2 | 100.0 % (2/2) [0.0, 100.0] | 0 | 50.0 % (1/2) [0.0, 100.0] | 0 |" in text
    assert "| overall | 4 | 75.0 % (3/4) [0.0, 100.0] | 0 | 50.0 % (1/2) [0.0, 100.0] | 2 |" in text
    # both English failures share one cause: gold and list in different languages for the lexical judge
    cause = next(line for line in text.splitlines() if line.startswith("* en: 2 — 2 ("))
    assert "different languages" in cause and "Pneumonia" not in cause
    assert "image budget model default" not in text and "images as stored" in text
    for plot in ("ddx_vs_fdx.png", "evidence_sensitivity.png"):
        assert (tmp_path / plot).stat().st_size > 0


def test_real_model_on_a_benchmark_has_no_banner(tmp_path: Path) -> None:
    text = write_report(_results("org/model-7b", "MEDSYN"), tmp_path, _samples()).read_text(encoding="utf-8")
    assert not any(line.startswith("> ") for line in text.splitlines())


def test_failure_cause_drops_the_case_specific_parts() -> None:
    a = failure_cause("lexical judge: gold 'Gout' and 1 of 3 candidates (first '痛风') are in different languages")
    b = failure_cause("lexical judge: gold \"Crohn's disease\" and 2 of 10 candidates (first 'x') are in different languages")
    assert a == b == "lexical judge: gold … and N of N candidates (first …) are in different languages"


def test_the_report_says_how_the_model_ran(tmp_path: Path) -> None:
    results = _results("llava-hf/llava-v1.6-mistral-7b-hf", "MEDSYN")
    assert "Ran as" not in write_report(results, tmp_path / "endpoint", _samples()).read_text()
    results["model"]["setup"] = {"family": "LLaVA-Next", "model_type": "llava_next", "template": "medsyn-inline",
                                 "image_slot": "<image>\n", "fast_paths": {"reuse_image_features": "on"}}
    text = write_report(results, tmp_path / "transformers", _samples()).read_text()
    assert "Ran as LLaVA-Next (`llava_next`); chat template: images rendered inline" in text
