"""ES-guided intervention (medsyn.eval.intervention, ``medsyn eval --intervention es-gap:K``)."""

from __future__ import annotations

import json

import pytest

from medsyn.cli import main
from medsyn.data.build import checked_revision, load_split
from medsyn.data.schema import parse_condition
from medsyn.eval import intervention
from medsyn.eval.pipeline import Sample
from medsyn.eval.prompts import IMAGE_MARK, render
from medsyn.eval.tasks import INTERVENTION_ENV, task_table
from medsyn.metrics.stats import mean_bootstrap_ci

GAPS = {"laboratory": 0.05, "ct": 0.30, "mri": -0.10, "pathology": 0.20, "ultrasound": 0.01}


def _results(gaps=GAPS, lang="en") -> dict:
    per_type = {t: {"image": 0.1, "text": 0.1 + g, "gap": g} for t, g in gaps.items()}
    return {"model": {"name": "m"}, "results": {lang: {"evidence_sensitivity": per_type}}}


@pytest.fixture(scope="module")
def row(built_fixture):
    split = load_split(built_fixture, "en", checked_revision(built_fixture))
    return next(r for r in split if r["case_id"] == "en-0001")  # ct (1 image), pathology (1 image)


def test_multi_type_text_condition_converts_exactly_the_named_types(row):
    assert parse_condition("text:ct+pathology").ce_types == ("ct", "pathology")
    one = render(row, "text:ct")
    both = render(row, "text:ct+pathology")
    assert one.query.count(IMAGE_MARK) == 1 and "Spiculated 3-cm mass" in one.query
    assert "Glandular neoplasm" not in one.query
    assert both.query.count(IMAGE_MARK) == 0 and both.image_indices == []
    assert "Spiculated 3-cm mass" in both.query and "Glandular neoplasm" in both.query
    assert render(row, "text:mri+laboratory").query == render(row, "full").query  # types the case lacks: no change
    for bad in ("text:ct+ct", "text:ct+brain", "absent:ct+mri", "text:"):
        with pytest.raises(ValueError, match="condition"):
            parse_condition(bad)


def test_es_gap_chooses_the_largest_gaps_and_the_control_is_seeded():
    chosen = intervention.choose_types(_results(), "en", 2, seed=0)
    assert chosen["intervention"] == ["ct", "pathology"]
    assert intervention.choose_types(_results(), "en", 3)["intervention"] == ["laboratory", "ct", "pathology"]
    controls = {tuple(intervention.choose_types(_results(), "en", 2, seed=s)["intervention_control"]) for s in range(20)}
    assert len(controls) > 1 and all(set(c) <= set(GAPS) and len(c) == 2 for c in controls)
    again = [intervention.choose_types(_results(), "en", 2, seed=7)["intervention_control"] for _ in range(3)]
    assert again[0] == again[1] == again[2]
    control = intervention.choose_types(_results(), "en", 2)["intervention_control"]
    assert intervention.plan(_results(), ["en"], 2) == {
        "en": {"intervention": "text:ct+pathology", "intervention_control": "text:" + "+".join(control)}}
    with pytest.raises(ValueError, match="K=6 but only 5 CE types"):
        intervention.choose_types(_results(), "en", 6)
    with pytest.raises(ValueError, match="no 'zh' block"):
        intervention.choose_types(_results(), "zh", 1)
    with pytest.raises(ValueError, match="es-gap:K"):
        intervention.parse_spec("es-gap:0")


def _sample(case: str, condition: str, letter: str) -> Sample:
    spec = {"case_id": case, "condition": condition, "language": "en", "task": "fdx", "options": ["a", "b"], "answer": "A"}
    task = "medsyn:fdx_en" if condition == "full" else "medsyn:fdx_en_intervention"
    return Sample(task, spec, "q", 0, f"Answer: {letter}", None)


def test_paired_interval_is_computed_by_case():
    cases = [f"c{i}" for i in range(10)]
    full = {c: "A" if i < 5 else "B" for i, c in enumerate(cases)}  # c0-c4 right
    treated = {c: "A" if i in (0, 1, 2, 3, 5, 6, 7) else "B" for i, c in enumerate(cases)}  # c4 lost, c5-c7 gained
    condition = "text:ct+mri"
    samples = [_sample(c, "full", full[c]) for c in cases] + [_sample(c, condition, treated[c]) for c in reversed(cases)]
    out = intervention.report(samples, {"en": {"intervention": condition}}, seed=3)["en"]
    diffs = [float(treated[c] == "A") - float(full[c] == "A") for c in sorted(cases)]
    assert out["fdx_accuracy_full"] == 0.5
    assert out["intervention"]["fdx_accuracy"] == 0.7
    assert out["intervention"]["change"] == pytest.approx(0.2)
    assert out["intervention"]["change_ci"] == pytest.approx(list(mean_bootstrap_ci(diffs, seed=3)))
    assert out["intervention"]["n"] == 10
    same = [_sample(c, "full", "A") for c in cases] + [_sample(c, condition, "A") for c in reversed(cases)]
    assert intervention.report(same, {"en": {"intervention": condition}})["en"]["intervention"]["change_ci"] == [0, 0]
    with pytest.raises(ValueError, match="one condition only"):
        intervention.report(samples[:-1], {"en": {"intervention": condition}})


def test_the_run_own_results_file_is_refused(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps(_results()))
    with pytest.raises(ValueError, match="this run's own results file"):
        intervention.load_es_results(tmp_path / "results.json", tmp_path)
    (tmp_path / "no_es.json").write_text(json.dumps({"results": {"en": {"evidence_sensitivity": {}}}}))
    with pytest.raises(ValueError, match="no per-type Evidence Sensitivity"):
        intervention.load_es_results(tmp_path / "no_es.json", tmp_path / "run")


def test_task_table_adds_the_intervention_tasks(built_fixture, monkeypatch):
    monkeypatch.setenv(INTERVENTION_ENV, json.dumps({"en": {"intervention": "text:ct+pathology"}}))
    tasks = {t.name: t for t in task_table(built_fixture)}
    assert "medsyn:fdx_en_intervention" in tasks and "medsyn:fdx_zh_intervention" not in tasks
    assert tasks["medsyn:fdx_en_intervention"].prompt_function.keywords == {"condition": "text:ct+pathology"}


def test_eval_with_intervention_writes_the_paired_changes(tiny_model, built_fixture, tmp_path, monkeypatch):
    monkeypatch.delenv(INTERVENTION_ENV, raising=False)
    (tmp_path / "es.json").write_text(json.dumps(_results({"ct": 0.3, "pathology": 0.1, "mri": 0.2})))
    out = tmp_path / "run"
    code = main(["eval", "--model", str(tiny_model), "--model-args", f"max_new_tokens=4,response_cache_dir={tmp_path}",
                 "--dataset", str(built_fixture), "--tasks", "en", "--out", str(out),
                 "--intervention", "es-gap:1", "--es-results", str(tmp_path / "es.json")])  # fmt: skip
    assert code == 0
    result = json.loads((out / "intervention.json").read_text())["languages"]["en"]
    assert result["intervention"]["condition"] == "text:ct"
    assert result["intervention_control"]["condition"] == intervention.plan(
        _results({"ct": 0.3, "pathology": 0.1, "mri": 0.2}), ["en"], 1)["en"]["intervention_control"]
    for suffix in ("intervention", "intervention_control"):
        block = result[suffix]
        assert block["n"] == 2
        assert block["change"] == pytest.approx(block["fdx_accuracy"] - result["fdx_accuracy_full"])
        assert block["change_ci"][0] <= block["change"] <= block["change_ci"][1]
