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
    """One evaluated doc: what the model saw (``specific``: case, condition, ...) and answered."""

    task: str
    specific: dict[str, Any]
    query: str
    n_images: int
    text: str | None
    logprobs: list[float] | None


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
    """Evaluate ``model`` (a LightevalModel) on ``tasks``; return the samples and lighteval's results dict."""
    if max_samples is not None and any(":es_" in name for name in tasks):
        raise ValueError("max_samples would cut a case's Evidence Sensitivity conditions apart; run the es_ tasks whole")
    lighteval_compat.apply()
    from lighteval.logging.evaluation_tracker import EvaluationTracker
    from lighteval.pipeline import ParallelismManager, Pipeline, PipelineParameters

    from .tasks import task_table

    task_module = types.ModuleType("medsyn_lighteval_tasks")
    task_module.TASKS_TABLE = task_table(dataset)
    tracker = EvaluationTracker(output_dir=str(output_dir), save_details=True)
    params = PipelineParameters(
        launcher_type=ParallelismManager.CUSTOM,
        custom_tasks_directory=task_module,
        max_samples=max_samples,
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
                )
            )
    return samples, pipeline.get_results()
