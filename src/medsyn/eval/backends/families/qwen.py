"""The Qwen vision-language families: Qwen2-VL, Qwen2.5-VL and Qwen3-VL (3-axis rotary positions, patch grids).

Qwen3-VL also feeds each image's *deepstack* features (one block per chosen vision layer) into the first text
layers, so reusing its image features keeps them per image beside the merged features.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from PIL import Image

from medsyn.eval.backends.families.base import Family, ImageEntry, vision_output


class Qwen2_VL(Family):
    name = "Qwen2-VL"
    model_types = ("qwen2_vl",)
    fast_paths = frozenset({"reuse_image_features", "share_prefix"})
    note = "full-attention vision tower; 3-axis rotary positions"


class Qwen2_5_VL(Family):
    name = "Qwen2.5-VL"
    model_types = ("qwen2_5_vl",)
    fast_paths = frozenset({"reuse_image_features", "share_prefix", "packed_vision_attention", "aligned_vision_mlp"})
    note = "Lingshu; windowed vision attention packed per window size"


class Qwen3_VL(Family):
    name = "Qwen3-VL"
    model_types = ("qwen3_vl",)
    fast_paths = frozenset({"reuse_image_features", "share_prefix"})
    note = "Instruct template (the Thinking variant's `<think>` prompt is refused for ES); deepstack features kept per image when reused"

    @torch.inference_mode()
    def encode_images(self, model, processor, images: list[Image.Image], device: torch.device) -> list[ImageEntry]:
        """Each image's merged features, grid and deepstack features (one block per deepstack vision layer)."""
        processed = processor.image_processor(images=images, return_tensors="pt", device=device)
        grids = processed["image_grid_thw"].cpu()  # positions are computed on the host
        encoded = vision_output(model, processed, device, len(images), self.name)
        features, deepstack = encoded.pooler_output, encoded.deepstack_features
        if any(len(layer) != len(images) for layer in deepstack):
            raise ValueError(f"{self.name}: the vision tower gave deepstack features for other than {len(images)} images")
        return [
            ImageEntry(features[i], grids[i], {"deepstack": tuple(layer[i] for layer in deepstack)}) for i in range(len(images))
        ]

    def features_input(self, entries: Sequence[ImageEntry]) -> dict[str, Any]:
        """The model's own vision output type, its merged and deepstack features holding the batch's images in order."""
        from transformers.models.qwen3_vl.modeling_qwen3_vl import BaseModelOutputWithDeepstackFeatures

        layers = len(entries[0].extras["deepstack"])
        return {"image": BaseModelOutputWithDeepstackFeatures(
            pooler_output=tuple(e.features for e in entries),
            deepstack_features=[tuple(e.extras["deepstack"][k] for e in entries) for k in range(layers)],
        )}  # fmt: skip


FAMILIES = [Qwen2_VL(), Qwen2_5_VL(), Qwen3_VL()]
