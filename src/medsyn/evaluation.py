"""Running MEDSYN tasks through lighteval's Pipeline, in-process, with any LightevalModel.

One pipeline runs every requested task, so the model loads once and lighteval groups all
generative docs (FDx, DDx) and all log-likelihood docs (ES) into one request list each.
lighteval writes its results and per-sample details under ``output_dir``; the details are
also returned here for scoring with the ``evaluate`` module.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import lighteval_compat


@dataclass
class Sample:
    """One evaluated doc: what the model saw (``specific``: case, condition, ...) and answered.

    ``posterior_failed``: the answer posterior rests on no parsed answer (see :func:`posterior_failed`).
    """

    task: str
    specific: dict[str, Any]
    query: str
    n_images: int
    text: str | None
    logprobs: list[float] | None
    posterior_failed: bool = False


def posterior_failed(response: Any) -> bool:
    """True when a log-likelihood response's posterior rests on no parsed answer.

    The endpoint backend counts ``unparseable_samples`` out of ``n_samples`` (no option letter
    among the top tokens, or no sampled answer with a letter) and falls back to a uniform
    posterior: that posterior is a guess, not the model's answer. Other backends never fail.
    """
    return getattr(response, "unparseable_samples", 0) >= getattr(response, "n_samples", 1) > 0


def usable_es_rows(case_ids: list[str], conditions: list[str], failed: list[bool]) -> list[bool]:
    """Which Evidence Sensitivity rows to score: a (case, CE type) pair whose ``full``,
    ``absent:<type>`` or ``text:<type>`` posterior failed is left out whole, so no ES value
    rests on a guessed posterior; a case whose ``full`` posterior failed is left out whole.
    """
    from .schema import FULL, parse_condition

    types = [parse_condition(name).ce_type for name in conditions]
    lost_case = {c for c, name, bad in zip(case_ids, conditions, failed) if bad and name == FULL}
    lost_pair = {(c, t) for c, t, bad in zip(case_ids, types, failed) if bad and t is not None}
    return [
        not bad and c not in lost_case and (c, t) not in lost_pair
        for c, t, bad in zip(case_ids, types, failed)
    ]


def all_task_names(languages: list[str], *, ablations: bool = True, ddx: bool = True, es: bool = True) -> list[str]:
    """The MEDSYN task names for ``languages`` (``medsyn:fdx_en``, ...)."""
    from .tasks import FDX_ABLATIONS

    names = []
    for lang in languages:
        names.append(f"medsyn:fdx_{lang}")
        if ablations:
            names += [f"medsyn:fdx_{lang}_{suffix}" for suffix in FDX_ABLATIONS]
        if ddx:
            names.append(f"medsyn:ddx_{lang}")
        if es:
            names.append(f"medsyn:es_{lang}")
    return names


def run_lighteval(
    model,
    tasks: list[str],
    dataset: str | Path | None,
    output_dir: str | Path,
    *,
    max_samples: int | None = None,
) -> tuple[list[Sample], dict[str, Any]]:
    """Evaluate ``model`` (a LightevalModel) on ``tasks``; return the samples and lighteval's results dict.

    ``max_samples``: only the first N cases of each language, in every task (an ES task keeps
    all conditions of those cases), not lighteval's first N docs of each task.
    """
    lighteval_compat.apply()
    from lighteval.logging.evaluation_tracker import EvaluationTracker
    from lighteval.pipeline import ParallelismManager, Pipeline, PipelineParameters

    from .tasks import task_table

    task_module = types.ModuleType("medsyn_lighteval_tasks")
    task_module.TASKS_TABLE = task_table(dataset, max_cases=max_samples)
    tracker = EvaluationTracker(output_dir=str(output_dir), save_details=True)
    params = PipelineParameters(
        launcher_type=ParallelismManager.CUSTOM,
        custom_tasks_directory=task_module,
        bootstrap_iters=0,  # MEDSYN's own seeded case-level bootstrap gives the CIs (medsyn.stats)
    )
    pipeline = Pipeline(
        tasks=",".join(f"{name}|0" for name in tasks),
        pipeline_parameters=params,
        evaluation_tracker=tracker,
        model=model,
    )
    pipeline.evaluate()
    pipeline.save_and_push_results()
    samples = []
    for task_name, details in tracker.details_logger.details.items():
        for detail in details:
            doc, response = detail.doc, detail.model_response
            samples.append(
                Sample(
                    task=task_name.split("|")[0],
                    specific=dict(doc.specific),
                    query=doc.query,
                    n_images=len(doc.images or []),
                    text=response.text[0] if response.text else None,
                    logprobs=list(response.logprobs) if response.logprobs else None,
                    posterior_failed=bool(response.logprobs) and posterior_failed(response),
                )
            )
    return samples, pipeline.get_results()
