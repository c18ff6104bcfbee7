"""The LLaVA families: Llava (1.5), LLaVA-Next and LLaVA-OneVision.

llava-hf's checkpoints ship chat templates that render all images first; the backend's
:class:`~medsyn.eval.backends.placement.Prompter` renders their images inline instead (checked).
LLaVA-Next and LLaVA-OneVision tile each image (anyres): ``image_sizes`` counts images, not tiles.
"""

from __future__ import annotations

import torch
from PIL import Image

from medsyn.eval.backends.families.base import Family, ImageEntry


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

    @torch.inference_mode()
    def encode_images(self, model, processor, images: list[Image.Image], device: torch.device) -> list[ImageEntry]:
        """Each image alone through the image processor and ``get_image_features``: its tiles and ``image_sizes`` give
        one feature block per image (base tile, then the unpadded tiles with a newline row after each feature row)."""
        processed = processor.image_processor(images=images, return_tensors="pt")
        config = model.config
        encoded = model.model.get_image_features(
            pixel_values=processed["pixel_values"].to(device, model.dtype),
            image_sizes=processed["image_sizes"].to(device),
            vision_feature_layer=config.vision_feature_layer,
            vision_feature_select_strategy=config.vision_feature_select_strategy,
            return_dict=True,
        ).pooler_output
        if len(encoded) != len(images):
            raise ValueError(f"{self.name}: the vision tower gave {len(encoded)} feature blocks for {len(images)} images")
        return [ImageEntry(features) for features in encoded]


class LlavaOnevision(Family):
    name = "LLaVA-OneVision"
    model_types = ("llava_onevision",)
    nested_images = True
    """Images per prompt: the processor and model tile a prompt's image only when it is the prompt's only one (as
    LLaVA-OneVision was trained), so an image's features depend on its prompt and are not reused (fast paths off)."""
    note = ("llava-hf template rendered inline; a prompt's only image is anyres-tiled, multi-image prompts' images are "
            "not (as trained): features depend on the prompt, so none are reused")


FAMILIES = [Llava(), LlavaNext(), LlavaOnevision()]
