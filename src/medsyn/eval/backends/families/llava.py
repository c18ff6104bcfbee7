"""The LLaVA families: Llava (1.5), LLaVA-Next and LLaVA-OneVision.

llava-hf's checkpoints ship chat templates that render all images first; the backend's
:class:`~medsyn.eval.backends.placement.Prompter` renders their images inline instead (checked).
LLaVA-Next and LLaVA-OneVision tile each image (anyres): ``image_sizes`` counts images, not tiles, and goes to the
vision tower with the pixels.
"""

from __future__ import annotations

import torch
from PIL import Image

from medsyn.eval.backends.families.base import Family, ImageEntry, vision_output


class Llava(Family):
    name = "Llava (1.5)"
    model_types = ("llava",)
    fast_paths = frozenset({"reuse_image_features", "share_prefix"})
    note = ("llava-hf template puts images first: rendered inline at each CE; HuatuoGPT-Vision runs in its llava-hf "
            "conversion (`llava`), not as released (`llava_qwen2`, remote code)")


class LlavaNext(Family):
    name = "LLaVA-Next"
    model_types = ("llava_next",)
    fast_paths = frozenset({"reuse_image_features", "share_prefix"})
    note = "llava-hf template rendered inline; anyres tiles, reused features carry each image's newline rows"


class LlavaOnevision(Family):
    name = "LLaVA-OneVision"
    model_types = ("llava_onevision",)
    nested_images = True
    """Images per prompt: the processor and model tile a prompt's image only when it is the prompt's only one (as
    LLaVA-OneVision was trained), so an image's features depend on whether it is alone (:meth:`image_contexts`)."""
    fast_paths = frozenset({"reuse_image_features", "share_prefix"})
    note = ("llava-hf template rendered inline; a prompt's only image is anyres-tiled, multi-image prompts' images are "
            "not (as trained): reused features are keyed by which of the two an image is")

    def image_contexts(self, prompt_images: list[Image.Image]) -> list[str]:
        return ["alone"] if len(prompt_images) == 1 else ["beside others"] * len(prompt_images)

    @torch.inference_mode()
    def encode_in_context(self, model, processor, images: list[Image.Image], device: torch.device, context: str) -> list[ImageEntry]:
        """Each image's features as the model makes them in its context: anyres-tiled when alone in its prompt, its base
        tile only beside others (a lone image of that context is encoded beside a copy of itself, then the copy dropped)."""
        prompts = [[image] for image in images] if context == "alone" else [images if len(images) > 1 else images * 2]
        processed = processor.image_processor(images=prompts, return_tensors="pt")  # pixels as the processor makes them
        encoded = vision_output(model, processed, device, sum(map(len, prompts)), self.name).pooler_output
        return [ImageEntry(features) for features in encoded[: len(images)]]


FAMILIES = [Llava(), LlavaNext(), LlavaOnevision()]
