"""Tiny random vision-language models of every family the backend runs, built offline from each family's own
transformers config, model and processor classes, with the chat template its published checkpoints ship.

``BUILDERS[model_type](folder)`` writes a loadable model folder (weights, config, processor) and returns it.
"""

from __future__ import annotations

from tiny_vlms import deepseek_vl, gemma3, glm4v, idefics, internvl, llava, mistral3, mllama, phi4, qwen

BUILDERS = {t: b for module in (llava, qwen, glm4v, internvl, deepseek_vl, gemma3, idefics, mllama, mistral3, phi4) for t, b in module.BUILDERS.items()}
