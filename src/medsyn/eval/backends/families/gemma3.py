"""Gemma 3 (MedGemma's base): a SigLIP tower whose output is pooled to a fixed number of soft tokens per image.

The chat template writes ``<start_of_image>`` for an image; the processor expands it to
``\\n\\n<start_of_image>`` + N × ``<image_soft_token>`` + ``<end_of_image>\\n\\n`` and marks the soft tokens in
``token_type_ids``, which make the language model attend bidirectionally within each image, so the fast paths
rebuild both (prefix sharing: over the cached prefix and the suffix, :meth:`Gemma3.row_inputs`). The processor
takes one list of images per prompt.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from medsyn.eval.backends.families.base import Family, ImageEntry


class Gemma3(Family):
    name = "Gemma 3"
    model_types = ("gemma3",)
    nested_images = True
    fast_paths = frozenset({"reuse_image_features", "share_prefix"})
    join_features = staticmethod(torch.stack)
    processor_needs = ("boi_token",)
    note = (
        "MedGemma; `token_type_ids` (bidirectional attention within an image) rebuilt for reused features and "
        "shared prefixes; pan-and-scan refused"
    )

    def load_processor(self, path: str):
        processor = super().load_processor(path)
        if processor.image_processor.do_pan_and_scan:
            raise ValueError(
                f"{path}: Gemma 3 pan-and-scan crops are not supported (an image would reach the model as several, "
                "uncounted); set do_pan_and_scan to false in the image processor config"
            )
        return processor

    def expanded_inputs(self, processor, slot_id: int, texts: list[str], entries: Sequence[ImageEntry]) -> dict[str, Any]:
        """The processor's ids and ``token_type_ids``: each ``<start_of_image>`` wrapped as the processor wraps it,
        with one soft token that the base expansion repeats to the image's feature count."""
        tokenizer = processor.tokenizer
        wrapped = f"\n\n{processor.boi_token}{tokenizer.image_token}{tokenizer.eoi_token}\n\n"
        texts = [text.replace(processor.boi_token, wrapped) for text in texts]
        inputs = super().expanded_inputs(processor, tokenizer.image_token_id, texts, entries)
        inputs.pop("mm_token_type_ids", None)
        inputs["token_type_ids"] = (inputs["input_ids"] == tokenizer.image_token_id).long()
        return inputs

    def row_inputs(self, model, input_ids: torch.Tensor, past: int) -> dict[str, Any]:
        """``token_type_ids`` (soft tokens 1) as wide as the attention mask: the model's blockwise mask reads them by
        key column, cached columns included (0 there: their images lie wholly before the rows)."""
        image = (input_ids == model.config.image_token_id).long()
        return {"token_type_ids": torch.nn.functional.pad(image, (past, 0))}


FAMILIES = [Gemma3()]
