"""The §7 results-file validator: valid files pass, every kind of problem is named."""

import copy
import json
from pathlib import Path

import pytest

from medsyn.data.schema import VISUAL_CE_TYPES
from medsyn.metrics.results_schema import validate_results

RESULTS = Path(__file__).parent / "data" / "results"


def _load(name: str = "example-open-7b.json") -> dict:
    return json.loads((RESULTS / name).read_text(encoding="utf-8"))


def _known(obj: dict) -> dict:
    return {obj["dataset"]["revision"]: {"name": obj["dataset"]["name"], "n_cases": dict(obj["dataset"]["n_cases"])}}


@pytest.mark.parametrize("name", sorted(p.name for p in RESULTS.glob("*.json")))
def test_example_files_are_valid(name):
    obj = _load(name)
    assert validate_results(obj) == []
    assert validate_results(obj, _known(obj)) == []


def test_design_example_shape_is_valid():
    """The example of DESIGN §7, with its elided zh/overall blocks filled in consistently."""
    block = {"n": 16, "fdx_accuracy": 0.25, "fdx_accuracy_ci": [0.06, 0.5], "parse_failures": 0,
             "ddx_coverage": 0.0, "ddx_coverage_ci": [0.0, 0.0], "judge_failures": 0,
             "ddx_fdx_gap": -0.25, "es_image": 0.01, "es_text": 0.02, "es_gap": 0.01, "es_gap_ci": [0.0, 0.02],
             "evidence_sensitivity": {"ct": {"image": 0.01, "text": 0.02, "gap": 0.01}},
             "conditions": {"full": 0.25, "text": 0.31, "no_history": 0.19, "random_history": 0.19}}
    obj = {"medsyn_version": "0.1.0",
           "dataset": {"name": "MEDSYN-mini", "revision": "abc", "n_cases": {"en": 16, "zh": 8}},
           "model": {"name": "tiny-llava-random", "type": "open", "params_b": 0.0002},
           "judge": "lexical", "image_budget": {"max_pixels": 1003520},
           "results": {"en": block, "zh": {**block, "n": 8}, "overall": {**block, "n": 24}},
           "created_at": "2026-11-26T12:00:00Z", "command": "medsyn demo --out results/demo"}
    assert validate_results(obj) == []


def test_es_parse_failures_may_be_left_out_by_files_written_before_the_key():
    obj = _load()
    for block in obj["results"].values():
        del block["es_parse_failures"]
    assert validate_results(obj, _known(obj)) == []
    obj["results"]["en"]["es_parse_failures"] = -1
    assert validate_results(obj) == ["results.en.es_parse_failures: must be a non-negative integer or null, got -1"]


def test_nulls_are_allowed_for_missing_measurements():
    obj = _load()
    for block in obj["results"].values():
        block.update(ddx_coverage=None, ddx_coverage_ci=None, judge_failures=None, ddx_fdx_gap=None,
                     es_image=None, es_text=None, es_gap=None, es_gap_ci=None, es_parse_failures=None,
                     evidence_sensitivity=None)
    obj["model"]["params_b"] = None
    assert validate_results(obj) == []


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda o: o["results"]["en"].update(fdx_accuracy=43.75), "results.en.fdx_accuracy: 43.75 is out of range"),
        (lambda o: o["results"]["en"].update(fdx_accuracy_ci=[0.5, 0.7]), "results.en.fdx_accuracy_ci: [0.5, 0.7] does not contain"),
        (lambda o: o["results"]["en"].update(ddx_coverage_ci=[0.9, 0.4]), "results.en.ddx_coverage_ci: low 0.9 is above high 0.4"),
        (lambda o: o["results"]["en"].update(parse_failures=17), "results.en.parse_failures: 17 is more than n = 16"),
        (lambda o: o["results"]["en"].update(ddx_fdx_gap=0.5), "results.en.ddx_fdx_gap: 0.5 is not ddx_coverage - fdx_accuracy"),
        (lambda o: o["results"]["en"].update(es_gap=0.5), "results.en.es_gap: 0.5 is not es_text - es_image"),
        (lambda o: o["results"]["en"].update(es_gap_ci=[0.1, -0.1]), "results.en.es_gap_ci: low 0.1 is above high -0.1"),
        (lambda o: o["results"]["en"].update(es_gap_ci=[0.1]), "results.en.es_gap_ci: must be [low, high]"),
        (lambda o: o["results"]["en"].update(es_image=float("nan")), "results.en.es_image: must be a finite number"),
        (lambda o: o["results"]["en"]["evidence_sensitivity"].update(xray={"image": 0, "text": 0, "gap": 0}),
         "results.en.evidence_sensitivity.xray: unknown CE type"),
        (lambda o: o["results"]["en"]["conditions"].update({"absent:foo": 0.1}), "results.en.conditions.absent:foo: unknown condition"),
        (lambda o: o["results"].update(fr=o["results"]["en"]), "results.fr: unknown language"),
        (lambda o: o["results"].pop("overall"), "results.overall: missing"),
        (lambda o: o["results"].pop("zh"), "results.zh: missing although dataset.n_cases.zh = 8"),
        (lambda o: o["results"]["en"].update(n=15), "results.en.n: 15 does not match dataset.n_cases.en = 16"),
        (lambda o: o["results"]["overall"].update(n=23), "results.overall.n: 23 is not the sum of dataset.n_cases (24)"),
        (lambda o: o["results"]["en"].update(es_parse_failures=-1), "results.en.es_parse_failures: must be a non-negative integer"),
        (lambda o: o["results"]["en"].update(es_parse_failures=16 * (1 + 2 * len(VISUAL_CE_TYPES)) + 1),
         f"results.en.es_parse_failures: {16 * (1 + 2 * len(VISUAL_CE_TYPES)) + 1} is more than "
         f"{16 * (1 + 2 * len(VISUAL_CE_TYPES))} ({1 + 2 * len(VISUAL_CE_TYPES)} per case, n = 16)"),
        (lambda o: o["model"].update(type="closed"), "model.type: 'closed' is not one of open, proprietary, medical, reference"),
        (lambda o: o["model"].update(name=""), "model.name: must be a non-empty string"),
        (lambda o: o["model"].update(params_b=True), "model.params_b: must be a positive number"),
        (lambda o: o["dataset"]["n_cases"].update(fr=3), "dataset.n_cases.fr: unknown language"),
        (lambda o: o.update(accuracy=1.0), "accuracy: unknown key"),
        (lambda o: o.pop("judge"), "judge: missing"),
        (lambda o: o.update(created_at="yesterday"), "created_at: must be an ISO 8601 time"),
        (lambda o: o["results"]["en"].pop("es_gap_ci"), "results.en.es_gap_ci: missing"),
    ],
)
def test_each_problem_is_reported(edit, expected):
    obj = _load()
    edit(obj)
    problems = validate_results(obj)
    assert any(line.startswith(expected) for line in problems), problems


def test_every_problem_is_reported_not_just_the_first():
    obj = _load()
    obj["results"]["en"]["fdx_accuracy"] = 2.0
    obj["results"]["zh"]["ddx_coverage"] = -0.1
    obj["model"]["type"] = "closed"
    problems = validate_results(obj)
    assert len(problems) >= 3
    assert {p.split(":")[0] for p in problems} >= {"results.en.fdx_accuracy", "results.zh.ddx_coverage", "model.type"}


def test_es_gap_interval_may_exclude_the_point():
    """A case bootstrap of a macro mean over CE types can leave the point outside (few cases)."""
    obj = _load()
    obj["results"]["en"]["es_gap_ci"] = [0.04, 0.09]
    assert validate_results(obj) == []


def test_not_an_object():
    assert validate_results([1, 2]) == ["<file>: must be a JSON object, got list"]


def test_known_dataset_revision_and_counts():
    obj = _load()
    known = _known(obj)
    other = copy.deepcopy(obj)
    other["dataset"]["revision"] = "0" * 64
    assert validate_results(other, known)[0].startswith(f"dataset.revision: '{'0' * 64}' is not a known dataset revision")
    assert validate_results(other, {})[0].endswith("(known: none configured)")

    known[obj["dataset"]["revision"]]["n_cases"]["en"] = 20
    assert validate_results(obj, known) == ["dataset.n_cases.en: 16 does not match the 20 en cases of MEDSYN-mini at this "
                                            "revision (a run on some of a language's cases is not a full run)"]


def test_single_language_run_is_a_full_run_of_that_language():
    """An English-only run lists only en in n_cases: valid, and a full run of en at the known revision."""
    obj = _load()
    known = _known(obj)
    del obj["dataset"]["n_cases"]["zh"]
    del obj["results"]["zh"]
    obj["results"]["overall"] = copy.deepcopy(obj["results"]["en"])
    assert validate_results(obj) == []
    assert validate_results(obj, known) == []
    obj["dataset"]["n_cases"]["en"] = obj["results"]["en"]["n"] = obj["results"]["overall"]["n"] = 15
    assert validate_results(obj, known) == [
        "dataset.n_cases.en: 15 does not match the 16 en cases of MEDSYN-mini at this revision "
        "(a run on some of a language's cases is not a full run)"
    ]


def test_case_counts_that_cannot_be_checked_are_refused():
    """No n_cases and no language blocks: overall.n must still be the sum of n_cases."""
    obj = _load()
    known = _known(obj)
    obj["dataset"]["n_cases"] = {}
    del obj["results"]["en"], obj["results"]["zh"]
    obj["results"]["overall"]["n"] = 3
    assert validate_results(obj) == ["results.overall.n: 3 is not the sum of dataset.n_cases (0)"]
    assert validate_results(obj, known) == [
        "dataset.n_cases: no cases of MEDSYN-mini at this revision (en: 16, zh: 8)",
        "results.overall.n: 3 is not the sum of dataset.n_cases (0)",
    ]


def test_judge_record_ci_and_n_judged_of_the_2026_12_04_additions():
    obj = _load()
    obj["judge"] = {"name": "openai:gpt-5@https://api.openai.com/v1", "model": "gpt-5", "prompt_version": "medsyn-ddx-judge-v1"}
    obj["ci"] = {"fdx_accuracy": {"method": "wilson", "level": 0.95}, "ddx_coverage": {"method": "wilson", "level": 0.95},
                 "es_gap": {"method": "case-bootstrap-percentile", "level": 0.95, "n_resamples": 2000, "seed": 0}}
    for block in obj["results"].values():
        block["n_judged"] = block["n"] - block["judge_failures"]
    assert validate_results(obj) == []
    obj["judge"] = {"name": "lexical", "model": None, "prompt_version": None}
    assert validate_results(obj) == []
    obj["judge"] = {"model": "gpt-5", "prompt": "v1"}
    obj["ci"] = {"fdx_accuracy": {"method": "percentile", "level": 0.95}, "ddx_coverage": {"method": "wilson", "level": 95},
                 "es_gap": ["bootstrap"], "f1": {}}
    obj["results"]["zh"]["n_judged"] = obj["results"]["zh"]["n"]
    assert validate_results(obj) == [
        "judge.name: missing",
        "judge.prompt_version: missing",
        "judge.prompt: unknown key (expected one of name, model, prompt_version)",
        "ci.fdx_accuracy.method: 'percentile' is not one of wilson, case-bootstrap-percentile",
        "ci.ddx_coverage.level: must be a number between 0 and 1, got 95",
        "ci.es_gap: must be an object {method, level, ...}, got ['bootstrap']",
        "ci.f1: unknown rate (expected one of fdx_accuracy, ddx_coverage, es_gap)",
        f"results.zh.n_judged: {obj['results']['zh']['n']} judged + 1 "
        f"judge failures is more than n = {obj['results']['zh']['n']}",
    ]


def test_random_history_length_block_is_checked():
    obj = _load()
    obj["random_history"] = {"tokenizer": "Qwen/Qwen2.5-VL-7B-Instruct", "length_ratio": {"mean": 0.98, "min": 0.95, "max": 1.0}}
    assert validate_results(obj) == []
    obj["random_history"]["length_ratio"] = {"mean": 0.9, "min": 0.95, "max": 1.0}
    assert any("min <= mean <= max" in p for p in validate_results(obj))
    obj["random_history"] = {"tokenizer": None, "length_ratio": {"mean": float("nan"), "min": 0, "max": 1}, "x": 1}
    problems = validate_results(obj)
    assert any("random_history.x: unknown key" in p for p in problems) and any("numbers >= 0" in p for p in problems)


def test_the_model_setup_is_optional_null_or_a_well_formed_record():
    obj = _load()
    obj["model"].pop("setup", None)
    assert validate_results(obj, _known(obj)) == []
    obj["model"]["setup"] = None
    assert validate_results(obj, _known(obj)) == []
    obj["model"]["setup"] = {"family": "Qwen2.5-VL", "model_type": "qwen2_5_vl", "template": "shipped",
                             "image_slot": "<|vision_start|><|image_pad|><|vision_end|>",
                             "fast_paths": {"reuse_image_features": "on", "share_prefix": "off: not tested for X"}}
    assert validate_results(obj, _known(obj)) == []
    obj["model"]["setup"]["fast_paths"] = {"reuse_image_features": True}
    obj["model"]["setup"]["extra"] = 1
    assert validate_results(obj, _known(obj)) == [
        "model.setup.extra: unknown key (expected one of family, model_type, template, image_slot, fast_paths)",
        "model.setup.fast_paths: must map each fast path to a string (on, or off: why)",
    ]
