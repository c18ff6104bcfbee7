"""GLM-4.1V and GLM-4.5V: Qwen-style patch grids and 3-axis rotary positions (``get_rope_index``, the base hooks).

Their published templates do not open a ``<think>`` block after the prompt: the model opens one itself, which the
ES posterior shows as low letter mass (posterior failures), and a template that does open one is refused for ES.
"""

from __future__ import annotations

from medsyn.eval.backends.families.base import Family


class Glm4v(Family):
    name = "GLM-4.1V"
    model_types = ("glm4v",)
    fast_paths = frozenset({"reuse_image_features", "share_prefix"})
    note = "the published template leaves `<think>` to the model: its reasoning shows in ES as low letter mass (counted, left out of ES)"


class Glm4vMoe(Glm4v):
    name = "GLM-4.5V"
    model_types = ("glm4v_moe",)
    note = "mixture-of-experts decoder; thinks unless run with the model arg `enable_thinking=false`, which closes `<think>` (else low ES letter mass)"


FAMILIES = [Glm4v(), Glm4vMoe()]
