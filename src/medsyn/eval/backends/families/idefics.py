"""Idefics3 (Idefics3-8B-Llama3, SmolVLM v1) and SmolVLM (SmolVLM2): images split into tiles.

Their processors take one list of images per prompt and, with image splitting (the published default), turn
each image slot ``<image>`` into a grid of tiles and a global view: per tile ``<fake_token_around_image>``,
a ``<row_r_col_c>`` tag and ``image_seq_len`` placeholder tokens, lines ending in ``\\n``, then
``\\n<fake_token_around_image><global-img>``, the global view's placeholders and ``<fake_token_around_image>``.
``pixel_values`` is (prompts, tiles, C, H, W), zero tiles padding the prompts with fewer.

Reused image features hold each image's tiles in that order, and the expanded prompt is the processor's own
expansion for the stored grid. Prefix sharing counts an image's placeholders by its feature count, so the runs
of its tiles (split by tile tags) are one image.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Sequence

import torch
from PIL import Image

from medsyn.eval.backends.families.base import Family, ImageEntry, vision_output

logger = logging.getLogger(__name__)

_IMAGES = "medsyn_images"
"""The processor inputs' count of images (one global view each), read by ``images_reached``; not a model input."""


class Idefics3(Family):
    name = "Idefics3"
    model_types = ("idefics3",)
    nested_images = True
    fast_paths = frozenset({"reuse_image_features", "share_prefix"})
    processor_needs = ("image_seq_len", "replace_image_token", "get_text_with_replacements")
    note = "also SmolVLM v1; images split into tiles (a row/col-tagged grid and a global view), counted per image"
    global_image_attr = "global_image_tag"
    """The processor attribute holding the ``<global-img>`` token (SmolVLM's processor names it differently)."""

    def processor_inputs(self, processor, texts: list[str], images: list[list[Image.Image]]) -> dict[str, Any]:
        """The processor's output, with the number of images it expanded: one ``<global-img>`` each (the model
        refuses inputs whose tiles do not fill every placeholder token, so these are the images that reach it)."""
        inputs = dict(super().processor_inputs(processor, texts, images))
        global_id = processor.tokenizer.convert_tokens_to_ids(getattr(processor, self.global_image_attr))
        inputs[_IMAGES] = int((inputs["input_ids"] == global_id).sum())
        return inputs

    def images_reached(self, inputs: dict[str, Any]) -> int | None:
        """Images (not tiles, not padding tiles) the processor passed on; None without pixels."""
        return inputs.get(_IMAGES) if "pixel_values" in inputs else None

    def forward_inputs(self, model, inputs: dict[str, Any]) -> dict[str, Any]:
        inputs.pop(_IMAGES, None)
        return super().forward_inputs(model, inputs)

    @torch.inference_mode()
    def encode_images(self, model, processor, images: list[Image.Image], device: torch.device) -> list[ImageEntry]:
        """Each image's tiles through the vision tower and connector: one entry per image, its features the tiles'
        in the processor's placeholder order (grid row by row, then the global view), its grid in ``extras``."""
        processed = processor.image_processor(images=[[image] for image in images], return_tensors="pt", return_row_col_info=True)
        encoded = vision_output(model, processed, device, len(images), self.name).pooler_output
        entries = []
        for features, (rows,), (cols,) in zip(encoded, processed["rows"], processed["cols"]):
            tiles = rows * cols + 1  # the grid and the global view (an unsplit image: 0 × 0 + 1)
            if features.shape[0] != tiles * processor.image_seq_len:
                raise ValueError(f"{self.name}: {features.shape[0]} feature rows for {tiles} tiles of {processor.image_seq_len} tokens")
            entries.append(ImageEntry(features, extras={"rows": rows, "cols": cols}))
        return entries

    def expanded_inputs(self, processor, slot_id: int, texts: list[str], entries: Sequence[ImageEntry]) -> dict[str, Any]:
        """Tokenized ``texts`` (left-padded) with each image slot expanded as the processor expands it for the
        image's tile grid (its own ``replace_image_token``)."""
        slots = sum(text.count(processor.image_token) for text in texts)
        if slots != len(entries):
            raise ValueError(f"{len(texts)} prompts: {len(entries)} images given, {slots} image slots in the text")
        grid = {"rows": [[e.extras["rows"] for e in entries]], "cols": [[e.extras["cols"] for e in entries]]}
        replacements = [processor.replace_image_token(grid, i) for i in range(len(entries))]
        expanded, _ = processor.get_text_with_replacements(list(texts), images_replacements=replacements)
        return dict(processor.tokenizer(expanded, padding=True, return_tensors="pt"))


class SmolVLM(Idefics3):
    name = "SmolVLM"
    model_types = ("smolvlm",)
    note = "SmolVLM2; tiles as Idefics3; its processor is loaded image-only (needs neither torchvision nor num2words)"
    global_image_attr = "global_image_token"

    def load_processor(self, path: str):
        """SmolVLM's processor without its video processor (MEDSYN shows images only)."""
        processor = image_only_smolvlm_processor().from_pretrained(path)
        logger.info("%s: SmolVLMProcessor without its video processor (MEDSYN shows images only)", path)
        return processor


_SMOLVLM_TOKENS = {
    "fake_image_token": "<fake_token_around_image>",
    "image_token": "<image>",
    "end_of_utterance_token": "<end_of_utterance>",
    "global_image_token": "<global-img>",
    "video_token": "<video>",
}
"""SmolVLMProcessor's token attributes: each the tokenizer's attribute of the same name, else this default."""


@functools.cache
def image_only_smolvlm_processor():
    """SmolVLMProcessor without a video processor: it needs neither torchvision (the video processor) nor
    num2words (which SmolVLM needs only to word a video's frame count)."""
    from transformers import SmolVLMProcessor
    from transformers.processing_utils import ProcessorMixin

    class ImageOnlySmolVLMProcessor(SmolVLMProcessor):
        def __init__(self, image_processor=None, tokenizer=None, image_seq_len: int = 169, chat_template=None, **kwargs):
            # SmolVLMProcessor.__init__ sets these, then demands num2words: set them here and skip it
            for attr, default in _SMOLVLM_TOKENS.items():
                setattr(self, attr, getattr(tokenizer, attr, default))
            self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
            self.image_seq_len = image_seq_len
            ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template, **kwargs)

        def apply_chat_template(self, conversation, chat_template=None, **kwargs):
            """ProcessorMixin's: SmolVLM's own only adds video defaults (its video processor's frame count and fps)."""
            return ProcessorMixin.apply_chat_template(self, conversation, chat_template, **kwargs)

    return ImageOnlySmolVLMProcessor


FAMILIES = [Idefics3(), SmolVLM()]
