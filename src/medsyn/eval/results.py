"""The results file (DESIGN §7): lighteval's per-sample outputs scored with the ``evaluate`` module.

Rates are fractions in [0, 1]; a missing measurement is ``None`` (``null``), never 0.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

from medsyn import __version__
from medsyn.data.schema import FULL, GLOBAL_CONDITIONS, LANGUAGES, OPTION_LETTERS, RANDOM_HISTORY
from medsyn.eval.pipeline import Sample
from medsyn.metrics.judges import judge_record
from medsyn.metrics.sensitivity import usable_es_rows
from medsyn.metrics.stats import ES_GAP_CI, RATE_CI

METRIC_DIR = Path(str(resources.files("medsyn.metrics.medsyn_metric")))
"""The ``evaluate`` module, package data of ``medsyn.metrics`` (the Hub folder metrics/medsyn_metric links to it)."""
OVERALL = "overall"


def load_metrics(metric_dir: Path = METRIC_DIR) -> dict[str, Any]:
    """The three configs of the MEDSYN ``evaluate`` module, loaded offline from the installed package."""
    import evaluate

    return {config: evaluate.load(str(metric_dir), config) for config in ("fdx", "ddx", "evidence_sensitivity")}


def score_block(samples: list[Sample], metrics: dict[str, Any], judge: str) -> dict[str, Any]:
    """One language block of §7 from the samples of that language (or of all languages)."""
    fdx: dict[str, list[Sample]] = defaultdict(list)
    ddx, es = [], []
    for s in samples:
        {"fdx": fdx[s.specific["condition"]], "ddx": ddx, "es": es}[s.specific["task"]].append(s)
    block: dict[str, Any] = {"n": len({s.specific["case_id"] for s in samples})}
    if fdx.get(FULL):
        r = _fdx(metrics, fdx[FULL], confidence_interval=True)
        block |= {"fdx_accuracy": r["fdx_accuracy"], "fdx_accuracy_ci": r["fdx_accuracy_ci"], "parse_failures": r["parse_failures"]}
    else:
        block |= {"fdx_accuracy": None, "fdx_accuracy_ci": None, "parse_failures": None}
    if ddx:
        r = metrics["ddx"].compute(
            predictions=[s.text for s in ddx],
            references=[s.specific["final_diagnosis"] for s in ddx],
            languages=[s.specific["language"] for s in ddx],
            judge=judge,
            confidence_interval=True,
        )
        block |= {"ddx_coverage": r["ddx_coverage"], "ddx_coverage_ci": r["ddx_coverage_ci"], "judge_failures": r["judge_failures"],
                  "n_judged": r["n"] - r["judge_failures"]}  # fmt: skip
    else:
        block |= {"ddx_coverage": None, "ddx_coverage_ci": None, "judge_failures": None, "n_judged": None}
    gap = None
    if block["ddx_coverage"] is not None and block["fdx_accuracy"] is not None:
        gap = block["ddx_coverage"] - block["fdx_accuracy"]
    block["ddx_fdx_gap"] = gap
    block |= _es(metrics, es)
    block["conditions"] = {c: _fdx(metrics, fdx[c])["fdx_accuracy"] if fdx.get(c) else None for c in GLOBAL_CONDITIONS}
    return block


def _fdx(metrics: dict[str, Any], rows: list[Sample], confidence_interval: bool = False) -> dict[str, Any]:
    return metrics["fdx"].compute(
        predictions=[s.text for s in rows],
        references=[s.specific["answer"] for s in rows],
        options=[s.specific["options"] for s in rows],
        confidence_interval=confidence_interval,
    )


def _es(metrics: dict[str, Any], rows: list[Sample]) -> dict[str, Any]:
    """ES figures over the usable posteriors; ``es_parse_failures`` (posteriors that rest on no parsed answer),
    ``posterior_failures`` (letter mass below the threshold) and ``letter_mass`` ({mean, min}, None unmeasured)."""
    empty = {"es_image": None, "es_text": None, "es_gap": None, "es_gap_ci": None, "es_parse_failures": None,
             "posterior_failures": None, "letter_mass": None, "evidence_sensitivity": {}}  # fmt: skip
    if not rows:
        return empty
    from medsyn.metrics.sensitivity import posterior

    masses = [s.letter_mass for s in rows if s.letter_mass is not None]
    counts = {
        "es_parse_failures": sum(s.posterior_failed for s in rows),
        "posterior_failures": sum(s.low_letter_mass for s in rows),
        "letter_mass": {"mean": sum(masses) / len(masses), "min": min(masses)} if masses else None,
    }
    failed = [s.posterior_failed or s.low_letter_mass for s in rows]
    case_ids = [s.specific["case_id"] for s in rows]
    conditions = [s.specific["condition"] for s in rows]
    rows = [s for s, keep in zip(rows, usable_es_rows(case_ids, conditions, failed)) if keep]
    if not rows:
        return empty | counts
    r = metrics["evidence_sensitivity"].compute(
        predictions=[posterior(s.logprobs) for s in rows],
        references=[OPTION_LETTERS.index(s.specific["answer"]) for s in rows],
        case_ids=[s.specific["case_id"] for s in rows],
        conditions=[s.specific["condition"] for s in rows],
        confidence_interval=True,
    )
    return {key: r.get(key) for key in empty} | counts


def posterior_block(samples: list[Sample]) -> dict[str, Any] | None:
    """Top-level ``posterior`` of §7: how the ES posteriors were measured (None when no ES task ran).

    ``{"method": "logprobs" | "samples", "samples": N, "temperature": t, "identical_samples": count}``,
    where ``identical_samples`` counts posteriors whose N samples were all the same text; ``samples``,
    ``temperature`` and ``identical_samples`` are null for log-probabilities. Raises ValueError when
    the posteriors of one run were measured in different ways.
    """
    measured = [s.posterior_method for s in samples if s.specific["task"] == "es" and s.posterior_method]
    if not measured:
        return None
    kinds = {(m["method"], m["samples"], m["temperature"]) for m in measured}
    if len(kinds) > 1:
        raise ValueError(f"ES posteriors were measured in {len(kinds)} ways in one run ({sorted(kinds, key=str)}); "
                         "rerun with one posterior method (e.g. logprobs=false for the endpoint)")  # fmt: skip
    ((method, n, temperature),) = kinds
    identical = sum(m["identical_samples"] for m in measured) if method == "samples" else None
    return {"method": method, "samples": n, "temperature": temperature, "identical_samples": identical}


def random_history_block(samples: list[Sample], tokenizer: str | None) -> dict[str, Any] | None:
    """``random_history``: the tokenizer its length was matched in (None: the model-independent count) and how long
    the random text was against the textual CE it replaced (token ratio); None when no such doc was evaluated."""
    ratios = [s.specific.get("random_history_length_ratio") for s in samples if s.specific.get("condition") == RANDOM_HISTORY]
    ratios = [r for r in ratios if r is not None]
    if not ratios:
        return None
    return {"tokenizer": tokenizer, "length_ratio": {"mean": sum(ratios) / len(ratios), "min": min(ratios), "max": max(ratios)}}


def build_results(
    samples: Iterable[Sample],
    *,
    dataset: dict[str, Any],
    model: dict[str, Any],
    judge: str,
    max_pixels: int | None,
    command: str,
    metrics: dict[str, Any] | None = None,
    length_tokenizer: str | None = None,
    world_size: int = 1,
    docs_per_rank: list[int] | None = None,
) -> dict[str, Any]:
    """The whole §7 results dict: per-language blocks and ``overall``.

    ``length_tokenizer``: the tokenizer ``random_history`` was matched in (``medsyn.eval.tasks.LENGTH_TOKENIZER_ENV``);
    ``world_size``: the processes of a data-parallel run; ``docs_per_rank``: the docs each computed (None: not counted).
    """
    samples = list(samples)
    metrics = metrics or load_metrics()
    results = {}
    for lang in LANGUAGES:
        lang_samples = [s for s in samples if s.specific["language"] == lang]
        if lang_samples:
            results[lang] = score_block(lang_samples, metrics, judge)
    results[OVERALL] = score_block(samples, metrics, judge)
    return {
        "medsyn_version": __version__,
        "dataset": dataset,
        "model": model,
        "judge": judge_record(judge),
        "ci": {"fdx_accuracy": RATE_CI, "ddx_coverage": RATE_CI, "es_gap": {**ES_GAP_CI, "seed": 0}},
        "image_budget": {"max_pixels": max_pixels},
        "posterior": posterior_block(samples),
        "random_history": random_history_block(samples, length_tokenizer),
        "world_size": world_size,
        "docs_per_rank": docs_per_rank,
        "results": results,
        "created_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": command,
    }


def dataset_info(
    dataset_dir: Path, name: str | None = None, *, languages: Iterable[str] = LANGUAGES, max_cases: int | None = None
) -> dict[str, Any]:
    """``dataset`` of §7: name, revision (sha256 of manifest.json), and the cases evaluated per language.

    ``languages`` are those evaluated and ``max_cases`` the ``--max-samples`` limit: a subset run
    records its subset, so it never passes for a full run of the revision (medsyn.metrics.results_schema).
    """
    from medsyn.data.build import dataset_revision, manifest_cases

    cases, evaluated = manifest_cases(dataset_dir), set(languages)
    n_cases = {lang: len(cases.get(lang, [])[:max_cases]) for lang in LANGUAGES if lang in evaluated}
    return {
        "name": name or dataset_dir.name,
        "revision": dataset_revision(dataset_dir),
        "n_cases": {lang: n for lang, n in n_cases.items() if n},
    }


def write_results(results: dict[str, Any], path: Path) -> None:
    """Validate against the §7 schema (medsyn.metrics.results_schema) and write; raise ValueError listing problems."""
    from medsyn.metrics.results_schema import validate_results

    problems = validate_results(results)
    if problems:
        raise ValueError("results do not match DESIGN §7:\n" + "\n".join(problems))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
