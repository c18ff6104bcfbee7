"""InternVL3 and InternVL3.5 as transformers ships them (``-hf`` checkpoints; Lingshu-I is an InternVL3).

The processor cuts each image into tiles (``crop_to_patches``: up to 12 tiles plus a thumbnail) and expands each
image slot ``<IMG_CONTEXT>`` to ``<img>`` + one ``<IMG_CONTEXT>`` per feature of each of its tiles + ``</img>``:
``pixel_values`` holds tiles, not images, so images are counted from the runs of ``<IMG_CONTEXT>`` (one contiguous
run per image) and each run's tiles are checked against the tiles that reached the model. Reused image features
hold all tiles of an image, in the processor's order.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image

from medsyn.eval.backends.families.base import Family, ImageEntry

TILES = "medsyn_tiles_per_image"
"""The key under which :meth:`InternVL.processor_inputs` passes each image's tile count to the checks (never to the model)."""


class InternVL(Family):
    name = "InternVL3"
    model_types = ("internvl",)
    fast_paths = frozenset({"reuse_image_features", "share_prefix"})
    join_features = staticmethod(torch.cat)
    processor_needs = ("image_seq_length", "start_image_token", "end_image_token")
    note = "InternVL3/3.5 -hf checkpoints (Lingshu-I is an InternVL3); each image tiled (up to 12 + thumbnail), counted per image"

    def processor_inputs(self, processor, texts: list[str], images: list[list[Image.Image]]) -> dict[str, Any]:
        """The processor's output, plus each image's tile count (read from its ``<IMG_CONTEXT>`` run)."""
        inputs = dict(super().processor_inputs(processor, texts, images))
        if "pixel_values" in inputs:
            inputs[TILES] = tiles_per_image(processor, inputs["input_ids"], int(inputs["pixel_values"].shape[0]))
        return inputs

    def images_reached(self, inputs: dict[str, Any]) -> int | None:
        """Images, not tiles: one ``<img>…</img>`` run per image, whose tiles all reached the model."""
        return len(inputs[TILES])

    def forward_inputs(self, model, inputs: dict[str, Any]) -> dict[str, Any]:
        inputs.pop(TILES, None)
        return super().forward_inputs(model, inputs)

    @torch.inference_mode()
    def encode_images(self, model, processor, images: list[Image.Image], device: torch.device) -> list[ImageEntry]:
        """Each image's features, all its tiles' in order, as the processor tiles it on the plain path."""
        processed = processor(text=[processor.image_token] * len(images), images=images, padding=True, return_tensors="pt")
        pixel_values = processed["pixel_values"]
        tiles = tiles_per_image(processor, processed["input_ids"], int(pixel_values.shape[0]))
        encoded = model.model.get_image_features(pixel_values=pixel_values.to(device, model.dtype), return_dict=True).pooler_output
        return [ImageEntry(block.reshape(-1, block.shape[-1])) for block in encoded.split(tiles.tolist())]

    def expanded_inputs(self, processor, slot_id: int, texts: list[str], entries: Sequence[ImageEntry]) -> dict[str, Any]:
        """Each image slot as the processor expands it: ``<img>``, its features' ``<IMG_CONTEXT>`` tokens, ``</img>``."""
        wrap = processor.start_image_token + processor.image_token + processor.end_image_token
        return super().expanded_inputs(processor, slot_id, [text.replace(processor.image_token, wrap) for text in texts], entries)


def tiles_per_image(processor, input_ids: torch.Tensor, tiles_given: int) -> torch.Tensor:
    """Each image's tile count, in order: its contiguous ``<IMG_CONTEXT>`` run over the tokens per tile.

    Raises ValueError when a run is not a whole number of tiles or the runs' tiles are not the ``tiles_given``.
    """
    counts = []
    for row in input_ids:
        positions = np.flatnonzero(row.numpy() == processor.image_token_id)
        runs = np.split(positions, np.flatnonzero(np.diff(positions) != 1) + 1) if positions.size else []
        counts += [run.size for run in runs]
    tiles, rest = np.divmod(np.asarray(counts, dtype=np.int64), processor.image_seq_length)
    if rest.any() or tiles.sum() != tiles_given:
        raise ValueError(
            f"InternVL: image token runs of {counts} tokens are not the {tiles_given} tiles given at "
            f"{processor.image_seq_length} tokens per tile"
        )
    return torch.from_numpy(tiles)


FAMILIES = [InternVL()]
