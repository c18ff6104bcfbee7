"""The model families the transformers backend runs, each tested end to end (``tests/test_families.py``).

:func:`family_for` maps a transformers ``model_type`` to its :class:`~.base.Family`; a type no family claims
gets :data:`~.base.UNVERIFIED` (the plain path, with a warning). :func:`support_table` renders the README's
support table from the same registry the test matrix runs over.
"""

from __future__ import annotations

from medsyn.eval.backends.families import deepseek_vl, gemma3, glm4v, idefics, internvl, llava, mistral3, mllama, phi4, qwen
from medsyn.eval.backends.families.base import FAST_PATHS, UNVERIFIED, Family

FAMILIES: tuple[Family, ...] = tuple(
    family for module in (llava, qwen, glm4v, internvl, deepseek_vl, gemma3, idefics, mllama, mistral3, phi4) for family in module.FAMILIES
)
_BY_TYPE = {model_type: family for family in FAMILIES for model_type in family.model_types}


def family_for(model_type: str) -> Family:
    """The family that runs ``model_type``, or UNVERIFIED."""
    return _BY_TYPE.get(model_type, UNVERIFIED)


FAST_PATH_TITLES = {
    "reuse_image_features": "image features reused",
    "share_prefix": "prefix sharing",
    "packed_vision_attention": "packed vision attention",
    "aligned_vision_mlp": "aligned vision MLP",
}


def support_table() -> str:
    """The README's support table: family × (FDx, DDx, ES posterior, image placement, each fast path)."""
    head = ["Family", "model_type", "FDx", "DDx", "ES posterior", "image placement", *FAST_PATH_TITLES.values(), "notes"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for family in FAMILIES:
        runs = "refused" if family.refusal else "✓"
        cells = [family.name, ", ".join(f"`{t}`" for t in family.model_types), runs, runs, runs,
                 "refused" if family.refusal else "checked",
                 *("✓" if name in family.fast_paths else "–" for name in FAST_PATHS),
                 family.refusal or family.note]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


__all__ = ["FAMILIES", "FAST_PATHS", "Family", "UNVERIFIED", "family_for", "support_table"]
