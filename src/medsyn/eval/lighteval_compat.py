"""Narrow, self-disabling fixes that let lighteval 0.13 run with the versions MEDSYN pins.

Each fix names its upstream problem and checks that the problem is still there before it
changes anything, so it switches itself off once upstream is fixed. ``medsyn lighteval ...``
(the lighteval CLI) and ``medsyn eval``/``demo`` apply them; nothing else is changed.
(``xxhash<4``, the third known breakage, is a pin in pyproject.toml, not a runtime fix.)
"""

from __future__ import annotations

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
    return applied


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
