"""InternVL: the processor's tiles are not counted as images, and a tile count that disagrees with the pixels is loud."""

from __future__ import annotations

import pytest
from PIL import Image
from tiny_vlms.internvl import processor as tiny_processor

from medsyn.eval.backends.families.internvl import TILES, InternVL, tiles_per_image


def test_images_are_counted_per_image_not_per_tile() -> None:
    processor = tiny_processor()
    texts = [f"a{processor.image_token}b{processor.image_token}", f"c{processor.image_token}"]
    images = [[Image.new("RGB", (96, 96)), Image.new("RGB", (120, 72))], [Image.new("RGB", (40, 40))]]
    inputs = InternVL().processor_inputs(processor, texts, images)
    assert inputs["pixel_values"].shape[0] > 3  # tiled
    assert inputs[TILES].tolist() == [processor.image_processor.get_number_of_image_patches(img.height, img.width, {
        "crop_to_patches": True, "min_patches": 1, "max_patches": 12, "size": processor.image_processor.size}) for doc in images for img in doc]  # fmt: skip
    assert InternVL().images_reached(inputs) == 3
    with pytest.raises(ValueError, match="tiles given"):
        tiles_per_image(processor, inputs["input_ids"], int(inputs["pixel_values"].shape[0]) - 1)
