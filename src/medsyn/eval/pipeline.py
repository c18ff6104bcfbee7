"""Running MEDSYN tasks through lighteval's Pipeline, in-process, with any LightevalModel.

One pipeline runs every requested task, so the model loads once and lighteval groups all
generative docs (FDx, DDx) and all log-likelihood docs (ES) into one request list each.
lighteval writes its results and per-sample details under ``output_dir``, one level deep
(:func:`details_path`); the details are also returned here for scoring with the ``evaluate`` module.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medsyn.eval import distributed, lighteval_compat
from medsyn.eval.tasks import FDX_ABLATIONS, task_table
from medsyn.metrics.sensitivity import low_letter_mass, posterior_failed


@dataclass
class Sample:
    """One evaluated doc: what the model saw (``specific``: case, condition, ...) and answered.

    ``posterior_failed``: the answer posterior rests on no parsed answer (see :func:`posterior_failed`);
    ``low_letter_mass``: a parsed posterior whose letter mass is below the threshold (a posterior
    failure, :func:`medsyn.metrics.sensitivity.low_letter_mass`); ``letter_mass``: that mass (None when
    not measured); ``posterior_method``: how the posterior was measured, ``{"method", "samples",
    "temperature", "identical_samples"}`` (None for generated text).
    """

    task: str
    specific: dict[str, Any]
    query: str
    n_images: int
    text: str | None
    logprobs: list[float] | None
    posterior_failed: bool = False
    low_letter_mass: bool = False
    letter_mass: float | None = None
    posterior_method: dict[str, Any] | None = None


def posterior_fields(response: Any) -> dict[str, Any]:
    """The posterior fields of a Sample from a log-likelihood response (a PosteriorResponse, or any with ``logprobs``)."""
    if not response.logprobs:
        return {}
    method = getattr(response, "posterior_method", None)
    return {
        "posterior_failed": posterior_failed(response),
        "low_letter_mass": low_letter_mass(response),
        "letter_mass": getattr(response, "letter_mass", None),
        "posterior_method": None if method is None else {
            "method": method,
            "samples": response.n_samples if method == "samples" else None,
            "temperature": response.temperature,
            "identical_samples": response.identical_samples,
        },
    }  # fmt: skip


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


def details_path(output_dir: str | Path, task: str) -> Path:
    """Where a run keeps lighteval's details of ``task`` (``medsyn:fdx_en``): ``output_dir/details/fdx_en.parquet``."""
    return Path(output_dir) / "details" / f"{task.split('|')[0].removeprefix('medsyn:')}.parquet"


def _short_tracker(output_dir: str | Path):
    """lighteval's EvaluationTracker writing ``output_dir/results.json`` and ``output_dir/details/<task>.parquet``.

    lighteval's own layout nests both under the model name and a timestamp; a run folder holds one run,
    so a rerun replaces the files, and details of tasks it did not run are removed.
    """
    import json

    from lighteval.logging.evaluation_tracker import EnhancedJSONEncoder, EvaluationTracker

    class ShortLayoutTracker(EvaluationTracker):
        def save_results(self, date_id: str, results_dict: dict) -> None:
            Path(self.output_dir).mkdir(parents=True, exist_ok=True)
            text = json.dumps(results_dict, cls=EnhancedJSONEncoder, indent=2, ensure_ascii=False)
            (Path(self.output_dir) / "results.json").write_text(text, encoding="utf-8")

        def save_details(self, date_id: str, details_datasets: dict) -> None:
            folder = Path(self.output_dir) / "details"
            folder.mkdir(parents=True, exist_ok=True)
            for stale in folder.glob("*.parquet"):
                stale.unlink()
            for task_name, dataset in details_datasets.items():
                dataset.to_parquet(str(details_path(self.output_dir, task_name)))

    return ShortLayoutTracker(output_dir=str(output_dir), save_details=True)


def _in_task_order(sampling_docs: dict[Any, list]) -> dict[Any, list]:
    """lighteval's requests by request type and task name (each task's docs in their order).

    lighteval orders tasks as a set iterates, which differs from process to process; in a fixed order every
    run batches the same docs together, and the ranks of a data-parallel run send the same requests.
    """
    return {method: sorted(docs, key=lambda doc: doc.task_name) for method, docs in sorted(sampling_docs.items(), key=lambda item: item[0].name)}


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
    from lighteval.pipeline import ParallelismManager, Pipeline, PipelineParameters

    task_module = types.ModuleType("medsyn_lighteval_tasks")
    task_module.TASKS_TABLE = task_table(dataset, max_cases=max_samples)
    tracker = _short_tracker(output_dir)
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
    pipeline.sampling_docs = _in_task_order(pipeline.sampling_docs)
    pipeline.evaluate()
    if distributed.rank() == 0:  # the ranks of a data-parallel run hold the same results
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
                    **posterior_fields(response),
                )
            )
    return samples, pipeline.get_results()
