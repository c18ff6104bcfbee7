"""Narrow, self-disabling fixes that let lighteval 0.13 run with the versions MEDSYN pins.

Each fix names its upstream problem and checks that the problem is still there before it
changes anything, so it switches itself off once upstream is fixed. ``medsyn lighteval ...``
(the lighteval CLI) and ``medsyn eval``/``demo`` apply them; nothing else is changed.
One more is MEDSYN policy, not an upstream bug: ``--max-samples N`` gives a ``medsyn:`` task whole cases.
(``xxhash<4``, the third known breakage, is a pin in pyproject.toml, not a runtime fix.)
"""

from __future__ import annotations

import collections
import functools
import inspect
import logging
from importlib.metadata import version

logger = logging.getLogger(__name__)

LAST_AFFECTED_LIGHTEVAL = (0, 13, 0)
"""The newest lighteval release in which the registry imports every built-in task eagerly."""


def apply() -> list[str]:
    """Apply every fix whose upstream problem is present; return the names of those applied."""
    applied = []
    if _fix_list_models_model_name():
        applied.append("hf_hub_list_models_model_name")
    if _fix_offline_registry():
        applied.append("offline_custom_tasks_only")
    if _fix_average_of_unmeasured():
        applied.append("average_only_measured_metrics")
    if _whole_cases_under_max_samples():
        applied.append("medsyn_whole_cases_under_max_samples")
    return applied


def _zero_filled_average() -> bool:
    """Whether lighteval's ``<suite>:_average`` row reads a metric that a subtask never measured as 0.0."""
    from lighteval.logging.info_loggers import MetricsLogger

    probe = MetricsLogger()
    probe.metric_aggregated["s:a|0"]["m"] = 1.0
    probe.metric_aggregated["s:b|0"]["n"] = 1.0
    probe.aggregate(task_dict={}, bootstrap_iters=0)
    return probe.metric_aggregated["s:_average|0"].get("m") == 0.5


class _Measured(dict):
    """A task's metrics: a metric it did not measure reads as NaN and is not added."""

    def __missing__(self, key: str) -> float:
        return float("nan")


def _fix_average_of_unmeasured() -> bool:
    """lighteval 0.13's ``MetricsLogger.aggregate`` averages a suite's subtasks over the first subtask's
    metrics, reading a metric another subtask never measured from a ``defaultdict(float)``: an FDx task
    counts as ``es_gap`` 0.0 in ``medsyn:_average`` and gains that 0.0 in its own row. Each ``_average``
    metric becomes the mean over the subtasks that measured it, and no subtask gains a metric."""
    from lighteval.logging.info_loggers import MetricsLogger

    if getattr(MetricsLogger.aggregate, "_medsyn", False) or not _zero_filled_average():
        return False
    original = MetricsLogger.aggregate

    @functools.wraps(original)
    def aggregate(self, task_dict, bootstrap_iters: int = 1000):
        measured = collections.defaultdict(_Measured)
        measured.update({task: _Measured(metrics) for task, metrics in self.metric_aggregated.items()})
        self.metric_aggregated = measured
        original(self, task_dict, bootstrap_iters)
        for average in [name for name in measured if ":_average|" in name]:
            suite, fewshot = average.split(":_average|")
            subtasks = [m for name, m in measured.items() if name != average and "|" in name
                        and name.split("|")[0].split(":")[0] == suite and name.split("|")[1] == fewshot]  # fmt: skip
            names = dict.fromkeys(metric for m in subtasks for metric in m)
            measured[average] = _Measured(
                {metric: sum(m[metric] for m in subtasks if metric in m) / sum(metric in m for m in subtasks) for metric in names}
            )

    aggregate._medsyn = True
    MetricsLogger.aggregate = aggregate
    return True


def _whole_cases_under_max_samples() -> bool:
    """lighteval's ``--max-samples N`` shuffles a task's docs (seed 42) and takes N, so an ES task would get
    conditions of a case without its ``full`` row. A ``medsyn:`` task instead takes every doc of its first N
    cases in dataset order (the ES index lists a case's conditions together), as ``medsyn eval --max-samples``."""
    from lighteval.tasks.lighteval_task import LightevalTask

    if getattr(LightevalTask.get_docs, "_medsyn", False):
        return False
    original = LightevalTask.get_docs
    signature = inspect.signature(original)
    if list(signature.parameters)[:2] != ["self", "max_samples"]:
        raise RuntimeError(f"lighteval's LightevalTask.get_docs{signature} no longer takes max_samples, which MEDSYN wraps "
                           "to keep whole cases under --max-samples; install the tested lighteval (constraints.txt)")  # fmt: skip

    @functools.wraps(original)
    def get_docs(self, max_samples: int | None = None):
        if not max_samples or not self.name.startswith("medsyn:"):
            return original(self, max_samples)
        docs = sorted(original(self, None), key=lambda doc: int(doc.id))
        cases = list(dict.fromkeys(doc.specific["case_id"] for doc in docs))[:max_samples]
        keep = set(cases)
        logger.info("%s: --max-samples %d takes whole cases: %d docs of %s", self.name, max_samples,
                    sum(doc.specific["case_id"] in keep for doc in docs), ", ".join(cases))  # fmt: skip
        return [doc for doc in docs if doc.specific["case_id"] in keep]

    get_docs._medsyn = True
    LightevalTask.get_docs = get_docs
    return True


def _fix_list_models_model_name() -> bool:
    """huggingface_hub >= 1.0 removed ``HfApi.list_models(model_name=...)``; lighteval 0.13's
    ``JudgeLLM`` (metrics_sample.py) still passes it while built-in tasks are imported, so every
    registry load fails with TypeError. Map the keyword to ``search=`` (its old meaning)."""
    from huggingface_hub import HfApi

    if "model_name" in inspect.signature(HfApi.list_models).parameters or getattr(HfApi.list_models, "_medsyn", False):
        return False
    original = HfApi.list_models

    @functools.wraps(original)
    def list_models(self, *args, model_name: str | None = None, **kwargs):
        if model_name is not None:
            kwargs.setdefault("search", model_name)
        return original(self, *args, **kwargs)

    list_models._medsyn = True
    HfApi.list_models = list_models
    return True


def _fix_offline_registry() -> bool:
    """lighteval <= 0.13 imports every built-in task module to build its registry, and
    ``tiny_benchmarks`` downloads a pickle from GitHub at import time: offline, every run fails
    with ConnectionError even when only custom tasks are asked for. Offline, with custom tasks
    given, load only those."""
    from huggingface_hub import constants
    from lighteval.tasks.registry import Registry

    lighteval_version = tuple(int(p) for p in version("lighteval").split(".")[:3] if p.isdigit())
    if lighteval_version > LAST_AFFECTED_LIGHTEVAL or getattr(Registry.load_all_task_configs, "_medsyn", False):
        return False
    original = Registry.load_all_task_configs

    def load_all_task_configs(custom_tasks=None, load_multilingual: bool = False):
        if custom_tasks is None or not constants.is_offline_mode():
            return original(custom_tasks=custom_tasks, load_multilingual=load_multilingual)
        logger.info("offline: loading only the custom tasks (lighteval's built-in tasks need the network to import)")
        return Registry._extract_configs(Registry.create_custom_tasks_module(custom_tasks))

    load_all_task_configs._medsyn = True
    Registry.load_all_task_configs = staticmethod(load_all_task_configs)
    return True


def lighteval_main(argv: list[str]) -> int:
    """Run the lighteval CLI (``lighteval ARGS``) with the fixes applied."""
    import sys

    apply()
    from lighteval.__main__ import app

    sys.argv = ["lighteval", *argv]
    try:
        app()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0
