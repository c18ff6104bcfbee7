"""Llama 3.2 Vision (transformers' Mllama): image tiles read through cross-attention layers, not placeholder tokens.

Each ``<|image|>`` token stays one token; the processor turns the images of each prompt (a list per prompt) into
tiles, aspect-ratio ids and a cross-attention mask (which text tokens see which image: those from its
``<|image|>`` to the next image's). The shipped chat template keeps images in place, but adds a system turn with
today's date only to conversations without an image: rendered as is, a case's image-free conditions would be
prompted differently from the others (and differently each day), and no one image slot could be told apart. The
backend drops that turn (prompts with images render exactly as shipped) and checks the slot is ``<|image|>``.
transformers' Mllama takes no precomputed image features, so no fast path applies.

transformers (through 5.25; huggingface/transformers#39379) zeroes the cross-attention layers' MLP output for text
rows that see no image (the tokens before a prompt's first ``<|image|>``, padding, image-free prompts) but not their
attention output: such rows attend uniformly to every image slot of their batch row, padded slots included, so a
prompt's posterior depended on what it was batched with and text saw images that come after it. Meta's reference
zeroes both; :func:`zero_rows_without_image` does so (idempotent where transformers does too).
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from PIL import Image

from medsyn.eval.backends.families.base import Family
from medsyn.eval.backends.placement import PlacementError, image_slot

logger = logging.getLogger(__name__)

DATED_SYSTEM_TURN = "{%- if not image_ns.has_images %}"
"""The condition of the shipped template's system turn (Llama 3.1's, with "Today Date: ..."), emitted without images."""


class Mllama(Family):
    name = "Llama 3.2 Vision"
    model_types = ("mllama",)
    nested_images = True
    note = ("cross-attention to image tiles; text rows that see no image zeroed, as Meta's reference does (transformers "
            "#39379); the template's dated system turn (image-free prompts only) dropped; no fast path (no `mm_encoder_outputs`)")

    def load_processor(self, path: str):
        """The processor, its chat template without the dated system turn; PlacementError unless ``<|image|>`` is the slot."""
        processor = super().load_processor(path)
        template = processor.chat_template or ""
        if DATED_SYSTEM_TURN in template:
            processor.chat_template = template.replace(DATED_SYSTEM_TURN, "{%- if false %}")
            logger.warning("%s: the chat template's dated system turn (rendered only without images) is dropped, so that "
                           "every prompt is rendered alike; prompts with images are as shipped", path)  # fmt: skip
        slot = image_slot(processor)
        if slot != processor.image_token:
            raise PlacementError(
                f"{path}: the chat template renders an image as {slot!r}, not as {processor.image_token!r} alone "
                "(it renders prompts with and without images differently beyond the image token)"
            )
        return processor

    def prepare_model(self, model) -> None:
        """Zero the cross-attention of text rows that see no image (as Meta's reference)."""
        zero_rows_without_image(model)

    def processor_inputs(self, processor, texts: list[str], images: list[list[Image.Image]]) -> dict[str, Any]:
        """Each prompt's images as its own list; the processor writes ``<|begin_of_text|>`` itself where a text lacks
        it, so the tokenizer adds none."""
        return super().processor_inputs(processor, texts, images, add_special_tokens=False)

    def images_reached(self, inputs: dict[str, Any]) -> int | None:
        """Images, not tiles: the image slots holding a real image (a nonzero aspect-ratio id; 0 pads a prompt's slots)."""
        return int((inputs["aspect_ratio_ids"] > 0).sum())


def zero_rows_without_image(model) -> None:
    """Zero each cross-attention layer's attention output for the text rows its cross-attention mask hides every
    image from (hooks on the layers of ``model``)."""
    from transformers.models.mllama.modeling_mllama import MllamaCrossAttentionDecoderLayer

    for layer in model.model.language_model.layers:
        if isinstance(layer, MllamaCrossAttentionDecoderLayer):
            _zero_attention_of_hidden_rows(layer)


def _zero_attention_of_hidden_rows(layer) -> None:
    rows: dict[str, torch.Tensor | None] = {}

    def keep_row_mask(module, args, kwargs) -> None:
        rows["mask"] = kwargs.get("full_text_row_masked_out_mask")

    def zero_hidden_rows(module, args, output):
        mask = rows.pop("mask", None)
        return output if mask is None else (output[0] * mask[:, 0], *output[1:])

    if getattr(layer, "_medsyn_rows_zeroed", False):  # one pair of hooks per layer, however often a backend wraps it
        return
    layer.register_forward_pre_hook(keep_row_mask, with_kwargs=True)
    layer.cross_attn.register_forward_hook(zero_hidden_rows)
    layer._medsyn_rows_zeroed = True


FAMILIES = [Mllama()]
