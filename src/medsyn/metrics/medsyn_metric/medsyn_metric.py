# Copyright 2026 The MEDSYN release authors. Licensed under the Apache License, Version 2.0.
"""MEDSYN metric: FDx accuracy, DDx coverage and Evidence Sensitivity.

A thin `evaluate` wrapper: every computation lives in the `medsyn` package
(`medsyn.metrics.scoring`, `medsyn.metrics.sensitivity`, `medsyn.metrics.stats`), so LightEval tasks, reports
and this module give the same numbers.
"""

import datasets
import evaluate
import numpy

import medsyn.metrics.scoring  # From: git+https://github.com/medsyn-benchmark/medsyn
import medsyn.metrics.sensitivity  # From: git+https://github.com/medsyn-benchmark/medsyn
import medsyn.metrics.stats  # From: git+https://github.com/medsyn-benchmark/medsyn
from medsyn.data.citation import CITATION  # From: git+https://github.com/medsyn-benchmark/medsyn

_DESCRIPTION = """\
Metrics of MEDSYN, a multilingual (English, Chinese), multimodal benchmark of complex clinical cases.
Config `fdx`: final-diagnosis multiple-choice accuracy from free-text answers; answers that cannot be
extracted are parse failures, counted wrong and reported. Config `ddx`: differential-diagnosis coverage,
the share of cases whose top-k list holds an item a judge scores >= threshold on the 0-5 DDx scale;
cases the judge cannot score are judge failures, reported apart and left out of the coverage. Config
`evidence_sensitivity`: how much each visual clinical-evidence type moves the answer posterior when shown
as images versus as text findings, and the text-image gap.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: config `fdx`: model outputs (text or a letter). Config `ddx`: raw DDx text or a list of
        diagnoses. Config `evidence_sensitivity`: option probabilities of each row (a list of floats summing to 1).
    references: config `fdx`: gold option letter. Config `ddx`: final diagnosis. Config
        `evidence_sensitivity`: gold option index (int).
    options (`fdx`, optional): the option texts of each row, so an answer may name an option by its text;
        it also sets each row's number of options (letters beyond it are not answers).
    judge (`ddx`): "lexical" (offline, deterministic; default), "openai:MODEL[@BASE_URL]", "litellm:MODEL",
        or a dict {"model", "base_url", "api_key_env", ...}.
    top_k (`ddx`): items of each list that are judged; default 10.
    threshold (`ddx`): score that counts as covered; default 4.
    languages (`ddx`, optional): "en" / "zh" per row, or one for all; default "en".
    case_ids, conditions (`evidence_sensitivity`): the case and condition ("full", "absent:<type>",
        "text:<type>", ...) of each row.
    divergence (`evidence_sensitivity`): "js" (default), "kl", "tv" or "gold_drop".
    confidence_interval: also return a 95 % interval (`*_ci`) and its method (`ci`); default False.
        `fdx_accuracy_ci` and `ddx_coverage_ci` are Wilson score intervals (they keep their width at 0 % and
        100 %); `es_gap_ci` is a seeded percentile bootstrap over cases.
    seed: the bootstrap seed of `es_gap_ci`; default 0.
Returns:
    `fdx`: fdx_accuracy (0..1), parse_failures, n.
    `ddx`: ddx_coverage (0..1, over judged cases; None if none), mean_best_score, judge_failures, n.
    `evidence_sensitivity`: evidence_sensitivity ({type: {"image", "text", "gap"}}), es_image, es_text,
        es_gap, n_cases.
    Bad input (length mismatch, unknown condition, probabilities that are not a distribution, a case
    without its `full` row, a missing (None) or boolean row, ...) raises ValueError naming the row;
    `predictions=None`, a boolean threshold or top_k, ... raise ValueError naming the argument.
Examples:

    FDx accuracy from free text, English and Chinese; the third output is a parse failure:

    >>> fdx = evaluate.load("medsyn_metric", "fdx")
    >>> fdx.compute(predictions=["The answer is (B).", "答案：C", "I cannot tell."], references=["B", "A", "A"])
    {'fdx_accuracy': 0.3333333333333333, 'parse_failures': 1, 'n': 3}

    An answer may give the option's text instead of its letter:

    >>> fdx.compute(predictions=["Epidural hematoma"], references=["B"],
    ...             options=[["Chronic subdural hematoma", "Epidural hematoma"]])
    {'fdx_accuracy': 1.0, 'parse_failures': 0, 'n': 1}

    With its interval: a Wilson score interval, which stays wide at 100 % accuracy on few cases:

    >>> r = fdx.compute(predictions=["A", "B", "C", "A"], references=["A", "B", "C", "A"], confidence_interval=True)
    >>> r["fdx_accuracy"], [round(x, 3) for x in r["fdx_accuracy_ci"]], r["ci"]
    (1.0, [0.51, 1.0], {'method': 'wilson', 'level': 0.95})

    DDx coverage with the offline lexical judge (an abbreviation, then a list that misses):

    >>> ddx = evaluate.load("medsyn_metric", "ddx")
    >>> ddx.compute(predictions=["1. Aortic dissection\\n2. Acute MI - ST elevation", "1. Migraine\\n2. Tension headache"],
    ...             references=["Acute myocardial infarction", "Subarachnoid hemorrhage"])
    {'ddx_coverage': 0.5, 'mean_best_score': 2.5, 'judge_failures': 0, 'n': 2}

    Evidence Sensitivity of one case with one CE type (total variation, to keep the numbers short):

    >>> es = evaluate.load("medsyn_metric", "evidence_sensitivity")
    >>> es.compute(predictions=[[1.0, 0.0], [0.5, 0.5], [0.75, 0.25]], references=[0, 0, 0],
    ...            case_ids=["en-0001"] * 3, conditions=["full", "absent:ct", "text:ct"], divergence="tv")
    {'evidence_sensitivity': {'ct': {'image': 0.5, 'text': 0.25, 'gap': -0.25}}, 'es_image': 0.5, 'es_text': 0.25, 'es_gap': -0.25, 'n_cases': 1}
"""

_FEATURES = {
    "fdx": datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
    "ddx": [
        datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
        datasets.Features({"predictions": datasets.List(datasets.Value("string")), "references": datasets.Value("string")}),
    ],
    "evidence_sensitivity": datasets.Features(
        {"predictions": datasets.List(datasets.Value("float64")), "references": datasets.Value("int64")}
    ),
}
_ARGUMENTS = {
    "fdx": {"options"},
    "ddx": {"judge", "top_k", "threshold", "languages"},
    "evidence_sensitivity": {"case_ids", "conditions", "divergence"},
}


def _as_list(interval):
    """A CI as JSON-ready [low, high], or None."""
    return None if interval is None else list(interval)


def _check_rows(name, values):
    """Refuse a missing column, and None or boolean rows (evaluate would crash on them or cast them to 1/0 or 'True')."""
    if values is None:
        raise ValueError(f"{name} is None: pass one entry per row")
    for i, value in enumerate(values):
        parts = value if isinstance(value, (list, tuple)) else [value]
        if value is None or any(isinstance(x, (bool, numpy.bool_)) or x is None for x in parts):
            raise ValueError(f"row {i}: {name}: {value!r} is not a valid entry (None or a boolean)")


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MedsynMetric(evaluate.Metric):
    """FDx accuracy, DDx coverage and Evidence Sensitivity of MEDSYN."""

    def _info(self):
        if self.config_name not in _FEATURES:
            raise KeyError(f"unknown config {self.config_name!r}: expected one of {', '.join(_FEATURES)}")
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=_FEATURES[self.config_name],
            homepage="https://arxiv.org/abs/2602.21950",
            codebase_urls=["https://github.com/medsyn-benchmark/medsyn"],
            reference_urls=["https://arxiv.org/abs/2602.21950"],
        )

    def _infer_feature_from_batch(self, batch):
        """An empty batch fits any input format of the `ddx` config (evaluate would read its first row)."""
        if isinstance(self.features, list) and len(batch["predictions"]) == 0:
            return self.features[0]
        return super()._infer_feature_from_batch(batch)

    def add_batch(self, *, predictions=None, references=None, **kwargs):
        """Add rows after checking them (evaluate appends the arguments' description to this docstring)."""
        _check_rows("predictions", predictions)
        _check_rows("references", references)
        super().add_batch(predictions=predictions, references=references, **kwargs)

    def add(self, *, prediction=None, reference=None, **kwargs):
        """Add one row after checking it (evaluate appends the arguments' description to this docstring)."""
        _check_rows("prediction", [prediction])
        _check_rows("reference", [reference])
        super().add(prediction=prediction, reference=reference, **kwargs)

    def _compute(
        self,
        predictions,
        references,
        options=None,
        judge=None,
        top_k=None,
        threshold=None,
        languages=None,
        case_ids=None,
        conditions=None,
        divergence=None,
        confidence_interval=False,
        seed=0,
    ):
        arguments = {"options": options, "judge": judge, "top_k": top_k, "threshold": threshold, "languages": languages,
                     "case_ids": case_ids, "conditions": conditions, "divergence": divergence}
        foreign = {name for name, value in arguments.items() if value is not None} - _ARGUMENTS[self.config_name]
        if foreign:
            raise ValueError(f"config {self.config_name!r} does not take {', '.join(sorted(foreign))}")
        if not isinstance(confidence_interval, bool):
            raise ValueError(f"confidence_interval must be True or False, got {confidence_interval!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        rate_ci = {"ci": dict(medsyn.metrics.stats.RATE_CI)}
        if self.config_name == "fdx":
            result = medsyn.metrics.scoring.score_fdx(predictions, references, options=options)
            output = {key: result[key] for key in ("fdx_accuracy", "parse_failures", "n")}
            if confidence_interval:
                output |= {"fdx_accuracy_ci": _as_list(medsyn.metrics.stats.wilson_ci(result["correct"]))} | rate_ci
            return output
        if self.config_name == "ddx":
            result = medsyn.metrics.scoring.score_ddx(
                predictions, references, judge=judge or "lexical", top_k=10 if top_k is None else top_k,
                threshold=4 if threshold is None else threshold, languages=languages,
            )
            output = {key: result[key] for key in ("ddx_coverage", "mean_best_score", "judge_failures", "n")}
            if confidence_interval:
                output |= {"ddx_coverage_ci": _as_list(medsyn.metrics.stats.wilson_ci(result["covered"]))} | rate_ci
            return output
        if case_ids is None or conditions is None:
            raise ValueError("config 'evidence_sensitivity' needs case_ids and conditions for every row")
        result = medsyn.metrics.sensitivity.evidence_sensitivity(
            predictions, references, case_ids, conditions, divergence=divergence or "js"
        )
        output = {key: result[key] for key in ("evidence_sensitivity", "es_image", "es_text", "es_gap", "n_cases")}
        if confidence_interval:
            output["es_gap_ci"] = _as_list(medsyn.metrics.stats.es_gap_ci(result["per_case"], seed=seed))
            output["ci"] = {**medsyn.metrics.stats.ES_GAP_CI, "seed": seed}
        return output
