"""Mistral 3 (Mistral-Small-3.1/3.2): a Pixtral tower on variable-size images, its patches merged 2×2.

Each image keeps its aspect ratio (resized to multiples of patch · merge), so its feature count depends on its
size: the chat template's ``[IMG]`` becomes rows of ``[IMG]`` each ended by ``[IMG_BREAK]``, the last by
``[IMG_END]``, and only the ``[IMG]`` tokens take features (prefix sharing counts an image's ``[IMG]`` tokens
by its feature count, across its rows). The fast path keeps each image's expansion beside
its features, and the tower needs ``image_sizes``. transformers' PixtralProcessor imports its torchvision image
processor; without torchvision it is built on the PIL one (:func:`pixtral_processor_class`).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Sequence

import torch
from PIL import Image

from medsyn.eval.backends.families.base import Family, ImageEntry, vision_output


def pixtral_processor_class():
    """transformers' PixtralProcessor class, also where torchvision is not installed.

    Its module imports one function, ``get_resize_output_image_size``, from the torchvision image processor's
    module, and transformers hands out a placeholder without torchvision. The PIL image processor's module
    defines the same function, so the processor's module is imported with that module standing in.
    """
    from transformers.utils import is_torchvision_available

    if is_torchvision_available():
        from transformers.models.pixtral.processing_pixtral import PixtralProcessor

        return PixtralProcessor
    name = "transformers.models.pixtral.processing_pixtral"
    if name not in sys.modules:
        torchvision_module = "transformers.models.pixtral.image_processing_pixtral"
        sys.modules[torchvision_module] = importlib.import_module("transformers.models.pixtral.image_processing_pil_pixtral")
        try:
            importlib.import_module(name)
        finally:
            del sys.modules[torchvision_module]
    return sys.modules[name].PixtralProcessor


class Mistral3(Family):
    name = "Mistral 3"
    model_types = ("mistral3",)
    fast_paths = frozenset({"reuse_image_features", "share_prefix"})
    processor_needs = ("patch_size", "spatial_merge_size", "replace_image_token")
    note = (
        "Mistral-Small-3.1/3.2; variable-size images (`[IMG]` rows, `[IMG_BREAK]`, `[IMG_END]`); the shipped "
        "template's default system prompt names today's date (the response cache is keyed by the rendered prompt)"
    )

    def load_processor(self, path: str):
        from transformers.utils import is_torchvision_available

        if is_torchvision_available():
            return super().load_processor(path)
        return pixtral_processor_class().from_pretrained(path)

    @torch.inference_mode()
    def encode_images(self, model, processor, images: list[Image.Image], device: torch.device) -> list[ImageEntry]:
        """Each image's features, with the text its ``[IMG]`` slot expands to (``extras["expansion"]``)."""
        processed = processor.image_processor(
            images=images, patch_size=processor.patch_size * processor.spatial_merge_size, return_tensors="pt"
        )  # what the processor passes: sizes in multiples of the merged patch
        encoded = vision_output(model, processed, device, len(images), self.name).pooler_output
        entries = []
        for i, features in enumerate(encoded):
            expansion = processor.replace_image_token(processed, image_idx=i)
            if expansion.count(processor.image_token) != features.shape[0]:
                raise ValueError(f"{self.name}: an image of {features.shape[0]} features expands to "
                                 f"{expansion.count(processor.image_token)} {processor.image_token} tokens")  # fmt: skip
            entries.append(ImageEntry(features, extras={"expansion": expansion}))
        return entries

    def expanded_inputs(self, processor, slot_id: int, texts: list[str], entries: Sequence[ImageEntry]) -> dict[str, Any]:
        """The processor's tokenization of ``texts`` with each ``[IMG]`` slot replaced by its image's expansion."""
        slot = processor.image_token
        found = sum(text.count(slot) for text in texts)
        if found != len(entries):
            raise ValueError(f"{len(texts)} prompts: {len(entries)} images given, {found} image slots in the text")
        expansions = iter(entry.extras["expansion"] for entry in entries)
        expanded = []
        for text in texts:
            first, *rest = text.split(slot)
            expanded.append(first + "".join(next(expansions) + part for part in rest))
        return dict(processor.tokenizer(expanded, padding=True, return_tensors="pt"))


FAMILIES = [Mistral3()]
