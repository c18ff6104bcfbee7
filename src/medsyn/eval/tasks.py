"""LightEval task definitions and metrics for MEDSYN (one source for the task file and the CLI).

Tasks, for each language ``<lang>`` in en/zh:

* ``medsyn:fdx_<lang>`` — FDx multiple choice, condition ``full``, free-text answer;
* ``medsyn:fdx_<lang>_text`` / ``_no_history`` / ``_random_history`` — the ablations of DESIGN §5;
* ``medsyn:ddx_<lang>`` — open-ended ranked differential, judged on the 0-5 scale;
* ``medsyn:es_<lang>`` — Evidence Sensitivity: every case expanded into its 1 + 2·|types|
  conditions, answered by the option-letter posterior (log-likelihood).

Metrics call the same code as the ``evaluate`` module (``medsyn.metrics.scoring``, ``medsyn.metrics.sensitivity``).
"""

from __future__ import annotations

import functools
import json
import logging
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
from lighteval.metrics.metrics_sample import SampleLevelComputation
from lighteval.metrics.utils.metric_utils import SampleLevelMetricGrouping
from lighteval.tasks.lighteval_task import LightevalTaskConfig
from lighteval.tasks.requests import Doc, SamplingMethod

from medsyn.data.build import checked_revision, load_split, manifest_cases
from medsyn.data.locations import resolve_dataset
from medsyn.data.schema import FULL, LANGUAGES, NO_HISTORY, OPTION_LETTERS, RANDOM_HISTORY, TEXT, es_conditions
from medsyn.eval.es_index import es_index
from medsyn.eval.prompts import PROMPT_VERSION, render
from medsyn.metrics.scoring import score_ddx, score_fdx
from medsyn.metrics.sensitivity import evidence_sensitivity, low_letter_mass, posterior, posterior_failed, usable_es_rows

logger = logging.getLogger(__name__)

TASK_VERSION = PROMPT_VERSION
"""Bumped whenever a prompt or the task data changes (follows the prompt version)."""
JUDGE_ENV = "MEDSYN_JUDGE"
FDX_GENERATION_SIZE = 1024
DDX_GENERATION_SIZE = 512
FDX_ABLATIONS = {"text": TEXT, "no_history": NO_HISTORY, "random_history": RANDOM_HISTORY}
LENGTH_TOKENIZER_ENV = "MEDSYN_LENGTH_TOKENIZER"
"""A tokenizer (local folder or Hub id) in whose tokens ``random_history`` matches the textual CE's length: the
evaluated model's (``medsyn eval`` sets it for the transformers backend); unset, a model-independent count."""
INTERVENTION_ENV = "MEDSYN_INTERVENTION"
"""JSON ``{lang: {suffix: condition}}``: extra FDx tasks ``medsyn:fdx_<lang>_<suffix>`` (medsyn.eval.intervention)."""


def make_doc(row: dict[str, Any], condition: str, task: str, task_name: str) -> Doc:
    """The lighteval Doc of one case under one condition (images interleaved via IMAGE_MARK in the query).

    A ``random_history`` doc records ``random_history_length_ratio``: the replacement's length over the textual
    CE's, in the tokens of :data:`LENGTH_TOKENIZER_ENV`'s tokenizer where set. An ES doc records
    ``es_conditions``: how many conditions its case's sweep has (so an incomplete case is recognised).
    """
    tokenizer = length_tokenizer(os.environ.get(LENGTH_TOKENIZER_ENV, "")) if condition == RANDOM_HISTORY else None
    prompt = render(row, condition, task, length_tokenizer=tokenizer)
    extra = {"random_history_length_ratio": prompt.length_ratio} if condition == RANDOM_HISTORY else {}
    if task == "es":
        extra["es_conditions"] = len(es_conditions(row["evidence_types"]))
    letters = list(OPTION_LETTERS[: len(row["options"])])
    return Doc(
        query=prompt.query,
        choices=[row["final_diagnosis"]] if task == "ddx" else letters,
        gold_index=0 if task == "ddx" else letters.index(row["answer"]),
        images=prompt.images(row),
        task_name=task_name,
        specific={
            "case_id": row["case_id"],
            "condition": condition,
            "language": row["language"],
            "task": task,
            "options": list(row["options"]),
            "answer": row["answer"],
            "final_diagnosis": row["final_diagnosis"],
            "n_images": len(prompt.image_indices),
            **extra,
        },
    )


@functools.lru_cache(maxsize=2)
def length_tokenizer(name: str) -> Any:
    """The tokenizer named by :data:`LENGTH_TOKENIZER_ENV`, or None when unset."""
    if not name:
        return None
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(name)


def fdx_prompt(line: dict[str, Any], task_name: str = "", condition: str = FULL) -> Doc:
    return make_doc(line, condition, "fdx", task_name)


def ddx_prompt(line: dict[str, Any], task_name: str = "") -> Doc:
    return make_doc(line, FULL, "ddx", task_name)


def es_prompt(
    line: dict[str, Any], task_name: str = "", dataset: str = "", language: str = "en", revision: str = ""
) -> Doc:
    """``line`` is a row of the ES index (case_id, condition); the case comes from the dataset, which must
    still be ``revision`` (the one the task table was made for)."""
    return make_doc(_case_row(dataset, language, revision, line["case_id"]), line["condition"], "es", task_name)


@functools.lru_cache(maxsize=8)
def _cases(dataset: str, language: str, revision: str):
    ds = load_split(dataset, language, revision)
    return ds, {case_id: i for i, case_id in enumerate(ds["case_id"])}


def _case_row(dataset: str, language: str, revision: str, case_id: str) -> dict[str, Any]:
    ds, index = _cases(dataset, language, revision)
    if case_id not in index:
        raise ValueError(f"{case_id}: case_id: in the ES index but not in the dataset {dataset} ({language})")
    return ds[index[case_id]]


# --- metrics ---------------------------------------------------------------------------


class FdxScore(SampleLevelComputation):
    """Per sample: correct (1/0) and parse failure (1/0) of the free-text answer."""

    def compute(self, doc: Doc, model_response, **kwargs) -> dict[str, float]:
        result = score_fdx([model_response.text[0]], [doc.specific["answer"]], [doc.specific["options"]])
        return {"fdx_accuracy": float(result["correct"][0]), "parse_failures": float(result["extracted"][0] is None)}


class DdxScore(SampleLevelComputation):
    """Per sample: covered (1/0, NaN on a judge failure), best judge score, judge failure (1/0)."""

    def compute(self, doc: Doc, model_response, **kwargs) -> dict[str, float]:
        result = score_ddx(
            [model_response.text[0]],
            [doc.specific["final_diagnosis"]],
            judge=os.environ.get(JUDGE_ENV, "lexical"),
            languages=[doc.specific["language"]],
        )
        best = result["best_score"][0]
        return {
            "ddx_coverage": np.nan if best is None else float(result["covered"][0]),
            "ddx_best_score": np.nan if best is None else float(best),
            "judge_failures": float(best is None),
        }


class EsRecord(SampleLevelComputation):
    """Per sample: the record (case, condition, option posterior, gold, failed, low_mass, expected) that ES aggregates.

    ``failed``: the posterior rests on no parsed answer (:func:`medsyn.metrics.sensitivity.posterior_failed`);
    ``low_mass``: its letter mass is below the threshold (:func:`medsyn.metrics.sensitivity.low_letter_mass`);
    ``expected``: the number of conditions of the case's sweep.
    """

    def compute(self, doc: Doc, model_response, **kwargs) -> dict[str, dict]:
        record = {
            "case_id": doc.specific["case_id"],
            "condition": doc.specific["condition"],
            "probs": posterior(model_response.logprobs),
            "gold": int(doc.gold_index),
            "failed": posterior_failed(model_response),
            "low_mass": low_letter_mass(model_response),
            "expected": doc.specific.get("es_conditions"),
        }
        return dict.fromkeys(ES_METRICS, record)


ES_METRICS = ("es_image", "es_text", "es_gap", "es_parse_failures", "posterior_failures", "es_incomplete_cases")


def incomplete_cases(records: list[dict]) -> set[str]:
    """The cases whose records are not their whole sweep: no ``full`` row, an ``absent:<type>`` without its
    ``text:<type>`` (or the reverse), or fewer conditions than the case's ``expected`` count."""
    conditions: dict[str, set[str]] = {}
    expected: dict[str, int | None] = {}
    for r in records:
        conditions.setdefault(r["case_id"], set()).add(r["condition"])
        expected[r["case_id"]] = r.get("expected")
    incomplete = set()
    for case_id, names in conditions.items():
        absent = {n.removeprefix("absent:") for n in names if n.startswith("absent:")}
        text = {n.removeprefix("text:") for n in names if n.startswith("text:")}
        count = expected[case_id]
        if FULL not in names or absent != text or (count is not None and len(names) != count):
            incomplete.add(case_id)
    return incomplete


def evidence_sensitivity_corpus(records: list[dict]) -> dict[str, float]:
    """es_image, es_text and es_gap from the usable ES records of a task; es_parse_failures, posterior_failures
    and es_incomplete_cases.

    A case that is not whole (:func:`incomplete_cases`: lighteval's ``--max-samples`` takes shuffled docs) is
    counted, logged and left out. ES data that :func:`~medsyn.metrics.sensitivity.evidence_sensitivity` still
    refuses is logged as an error and scored NaN, so the run's other tasks are still written.
    A failed posterior (no parsed answer, or too little letter mass) is counted and left out with its
    (case, CE type) pair (:func:`medsyn.metrics.sensitivity.usable_es_rows`); with nothing left the ES
    figures are NaN.
    It returns a dict, so lighteval stores all of them at once and computes no stderr for them:
    its record-level bootstrap would repeat (case, condition) rows, which ES rightly refuses.
    MEDSYN's case-level bootstrap (medsyn.metrics.stats) gives the CI instead.
    """
    partial = incomplete_cases(records)
    if partial:
        logger.warning("Evidence Sensitivity: %d incomplete case(s) left out (not every condition evaluated): %s",
                       len(partial), ", ".join(sorted(partial)))  # fmt: skip
        records = [r for r in records if r["case_id"] not in partial]
    counts = {"es_parse_failures": sum(r["failed"] for r in records), "posterior_failures": sum(r["low_mass"] for r in records),
              "es_incomplete_cases": len(partial)}  # fmt: skip
    failed = [r["failed"] or r["low_mass"] for r in records]
    keep = usable_es_rows([r["case_id"] for r in records], [r["condition"] for r in records], failed)
    records = [r for r, k in zip(records, keep) if k]
    if not records:
        return dict.fromkeys(ES_METRICS[:3], np.nan) | counts
    try:
        result = evidence_sensitivity(
            [r["probs"] for r in records],
            [r["gold"] for r in records],
            [r["case_id"] for r in records],
            [r["condition"] for r in records],
        )
    except ValueError as exc:
        logger.error("Evidence Sensitivity not scored (NaN): %s", exc)
        return dict.fromkeys(ES_METRICS[:3], np.nan) | counts
    figures = {name: np.nan if result[name] is None else float(result[name]) for name in ES_METRICS[:3]}
    return figures | counts


def _nanmean(values: list[float]) -> float:
    values = [v for v in values if not np.isnan(v)]
    return float(np.mean(values)) if values else np.nan


FDX_METRIC = SampleLevelMetricGrouping(
    metric_name=["fdx_accuracy", "parse_failures"],
    higher_is_better={"fdx_accuracy": True, "parse_failures": False},
    category=SamplingMethod.GENERATIVE,
    sample_level_fn=FdxScore(),
    corpus_level_fn={"fdx_accuracy": np.mean, "parse_failures": np.sum},
)
DDX_METRIC = SampleLevelMetricGrouping(
    metric_name=["ddx_coverage", "ddx_best_score", "judge_failures"],
    higher_is_better={"ddx_coverage": True, "ddx_best_score": True, "judge_failures": False},
    category=SamplingMethod.GENERATIVE,
    sample_level_fn=DdxScore(),
    corpus_level_fn={"ddx_coverage": _nanmean, "ddx_best_score": _nanmean, "judge_failures": np.sum},
)
ES_METRIC = SampleLevelMetricGrouping(
    metric_name=list(ES_METRICS),
    higher_is_better={"es_image": True, "es_text": True, "es_gap": False, "es_parse_failures": False, "posterior_failures": False,
                      "es_incomplete_cases": False},
    category=SamplingMethod.LOGPROBS,
    sample_level_fn=EsRecord(),
    corpus_level_fn=evidence_sensitivity_corpus,
)


# --- the task table ----------------------------------------------------------------------


def _config(name: str, prompt: Callable, repo: Path, lang: str, metric, generation_size: int | None,
            keep: Callable[[dict], bool] | None) -> LightevalTaskConfig:  # fmt: skip
    return LightevalTaskConfig(
        name=f"medsyn:{name}",
        prompt_function=prompt,
        hf_repo=str(repo),
        hf_subset=lang,
        hf_avail_splits=["test"],
        hf_filter=keep,
        evaluation_splits=["test"],
        few_shots_split=None,
        metrics=[metric],
        generation_size=generation_size,
        stop_sequence=[],
        version=TASK_VERSION,
    )


def task_table(dataset: str | Path | None = None, max_cases: int | None = None) -> list[LightevalTaskConfig]:
    """Every MEDSYN task on ``dataset`` (default: ``$MEDSYN_DATASET`` or the built MEDSYN-mini).

    ``max_cases``: only the first N cases of each language (manifest order) in every task.
    """
    repo = resolve_dataset(dataset)
    revision = checked_revision(repo)  # before lighteval loads it: a folder mixing two builds is refused
    index = es_index(repo)
    cases, table = manifest_cases(repo), []
    for lang in LANGUAGES:
        keep = None if max_cases is None else _case_filter(cases.get(lang, [])[:max_cases])
        table.append(_config(f"fdx_{lang}", fdx_prompt, repo, lang, FDX_METRIC, FDX_GENERATION_SIZE, keep))
        interventions = json.loads(os.environ.get(INTERVENTION_ENV) or "{}").get(lang, {})
        for suffix, condition in {**FDX_ABLATIONS, **interventions}.items():
            prompt = functools.partial(fdx_prompt, condition=condition)
            table.append(_config(f"fdx_{lang}_{suffix}", prompt, repo, lang, FDX_METRIC, FDX_GENERATION_SIZE, keep))
        table.append(_config(f"ddx_{lang}", ddx_prompt, repo, lang, DDX_METRIC, DDX_GENERATION_SIZE, keep))
        es = functools.partial(es_prompt, dataset=str(repo), language=lang, revision=revision)
        table.append(_config(f"es_{lang}", es, index, lang, ES_METRIC, None, keep))
    return table


def _case_filter(case_ids: list[str]) -> Callable[[dict], bool]:
    """A row filter (dataset or ES index row) keeping the rows of ``case_ids``."""
    keep = frozenset(case_ids)
    return lambda row: row["case_id"] in keep
