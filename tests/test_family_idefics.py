"""Idefics3 and SmolVLM split each image into tiles: the backend counts images, not tiles, and the reused image
features and expanded prompts match the processor's tile layout exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_vlms.idefics import BUILDERS

from medsyn.eval.backends.families import family_for
from medsyn.eval.backends.transformers_vlm import ImageTokenMismatch, MedsynVLM, VLMConfig


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def backend(request, tmp_path_factory: pytest.TempPathFactory) -> MedsynVLM:
    folder = BUILDERS[request.param](tmp_path_factory.mktemp(request.param))
    return MedsynVLM(VLMConfig(model_name=str(folder), device="cpu", dtype="float32", use_response_cache=False))


def _image(width: int, height: int, seed: int) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))


def _prompts(backend: MedsynVLM) -> tuple[list[str], list[list[Image.Image]]]:
    """Three prompts: no image; one square image (3×3 tiles + global); a wide image (2×3 + global) and a square one."""
    square, wide = _image(96, 96, 0), _image(120, 72, 1)
    texts = [backend.prompter(["Case one."]), backend.prompter(["Case two:", None, "end."]),
             backend.prompter(["Case three:", None, "then", None, "end."])]  # fmt: skip
    return texts, [[], [square], [wide, square]]


def test_images_reached_counts_images_not_tiles(backend: MedsynVLM) -> None:
    texts, images = _prompts(backend)
    inputs = backend.family.processor_inputs(backend.processor, texts, images)
    tiles = inputs["pixel_attention_mask"].flatten(2).any(-1).sum().item()
    assert tiles == 10 + 7 + 10 and inputs["pixel_values"].shape[:2] == (3, 17)
    assert backend.family.images_reached(inputs) == 3
    assert "medsyn_images" not in backend.family.forward_inputs(backend.model, inputs)  # not a model input


def test_reused_features_and_expanded_prompt_equal_the_processors(backend: MedsynVLM) -> None:
    family, processor, model = backend.family, backend.processor, backend.model
    texts, images = _prompts(backend)
    plain = family.processor_inputs(processor, texts, images)
    flat = [image for prompt_images in images for image in prompt_images]
    entries = family.encode_images(model, processor, flat, backend.device)
    assert [(e.extras["rows"], e.extras["cols"]) for e in entries] == [(3, 3), (2, 3), (3, 3)]
    expanded = family.expanded_inputs(processor, backend.slot_id, texts, entries)
    torch.testing.assert_close(expanded["input_ids"], plain["input_ids"], rtol=0, atol=0)
    torch.testing.assert_close(expanded["attention_mask"], plain["attention_mask"], rtol=0, atol=0)
    with torch.inference_mode():
        pixels = model.model.get_image_features(plain["pixel_values"], plain["pixel_attention_mask"], return_dict=True).pooler_output
    torch.testing.assert_close(torch.cat([e.features for e in entries]), torch.cat(list(pixels)), rtol=0, atol=1e-5)


def test_an_image_slot_without_its_image_is_refused(backend: MedsynVLM) -> None:
    texts, images = _prompts(backend)
    entries = backend.family.encode_images(backend.model, backend.processor, images[2], backend.device)
    with pytest.raises(ValueError, match="2 images given, 3 image slots"):
        backend.family.expanded_inputs(backend.processor, backend.slot_id, texts, entries)
    with pytest.raises(ImageTokenMismatch, match="2 images given, 3 image slots"):
        backend._expanded(texts, entries)


def test_smolvlm_processor_is_image_only_and_needs_neither_torchvision_nor_num2words(tmp_path: Path) -> None:
    folder = BUILDERS["smolvlm"](tmp_path / "smolvlm")
    processor = family_for("smolvlm").load_processor(str(folder))
    assert not hasattr(processor, "video_processor") and processor.image_seq_len == 4
    text = processor.apply_chat_template([{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image"}]}],
                                         add_generation_prompt=True, tokenize=False)  # fmt: skip
    assert text == "<|im_start|>User: a<image><end_of_utterance>\nAssistant:"
