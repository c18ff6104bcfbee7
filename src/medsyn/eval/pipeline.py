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

from medsyn.eval import lighteval_compat
from medsyn.eval.tasks import FDX_ABLATIONS, task_table
from medsyn.metrics.sensitivity import posterior_failed


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


def all_task_names(languages: list[str], *, ablations: bool = True, ddx: bool = True, es: bool = True) -> list[str]:
    """The MEDSYN task names for ``languages`` (``medsyn:fdx_en``, ...)."""
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

    task_module = types.ModuleType("medsyn_lighteval_tasks")
    task_module.TASKS_TABLE = task_table(dataset, max_cases=max_samples)
    tracker = EvaluationTracker(output_dir=str(output_dir), save_details=True)
    params = PipelineParameters(
        launcher_type=ParallelismManager.CUSTOM,
        custom_tasks_directory=task_module,
        bootstrap_iters=0,  # MEDSYN's own seeded case-level bootstrap gives the CIs (medsyn.metrics.stats)
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
