"""DeepSeek-VL: a SigLIP tower (the 7B adds a SAM tower on a high-resolution copy), an MLP aligner and a Llama decoder;
a fixed number of image tokens per image, images in place in the published chat template."""

from __future__ import annotations

from typing import Any, Sequence

import torch
from PIL import Image

from medsyn.eval.backends.families.base import Family, ImageEntry


class DeepseekVL(Family):
    """DeepSeek-VL 1.3B (``deepseek_vl``). Its forward reshapes the image features it is given, so they go back as one
    (images, tokens, hidden) tensor, not the per-image tuple other families take."""

    name = "DeepSeek-VL"
    model_types = ("deepseek_vl",)
    fast_paths = frozenset({"reuse_image_features", "share_prefix"})
    note = "576 tokens per image (384 px); image features fed back as one stacked tensor"

    @torch.inference_mode()
    def encode_images(self, model, processor, images: list[Image.Image], device: torch.device) -> list[ImageEntry]:
        """Each image's aligned features, from every pixel input the image processor makes (the 7B's high-res copy too)."""
        image_processor = processor.image_processor
        processed = image_processor(images=images, return_tensors="pt")
        pixels = {name: processed[name].to(device, model.dtype) for name in image_processor.model_input_names}
        features = model.model.get_image_features(**pixels, return_dict=True).pooler_output
        return [ImageEntry(image_features) for image_features in features]

    def features_input(self, entries: Sequence[ImageEntry]) -> dict[str, Any]:
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        return {"image": BaseModelOutputWithPooling(pooler_output=torch.stack([e.features for e in entries]))}


class DeepseekVLHybrid(DeepseekVL):
    """DeepSeek-VL 7B (``deepseek_vl_hybrid``): SigLIP at 384 px and SAM at 1024 px, aligned into the same 576 tokens."""

    name = "DeepSeek-VL hybrid"
    model_types = ("deepseek_vl_hybrid",)
    note = "the 7B: a SAM tower on a 1024 px copy of each image beside SigLIP, both encoded once per image"


FAMILIES = [DeepseekVL(), DeepseekVLHybrid()]
