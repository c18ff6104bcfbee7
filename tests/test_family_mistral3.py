"""Mistral 3 specifics the family matrix does not show by itself: the processor builds without torchvision
(leaving transformers' modules as they were); the fast path's prompt is the processor's, token for token, for
images of different sizes (rows of ``[IMG]`` ended by ``[IMG_BREAK]``, the last by ``[IMG_END]``), with one
``<s>``; each image's feature count is its ``[IMG]`` count."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_vlms.mistral3 import build

from medsyn.eval.backends.families.base import single_bos
from medsyn.eval.backends.transformers_vlm import MedsynVLM, VLMConfig


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> MedsynVLM:
    folder = build(tmp_path_factory.mktemp("mistral3"))
    return MedsynVLM(VLMConfig(model_name=str(folder), device="cpu", dtype="float32", use_response_cache=False))


def test_the_processor_builds_without_torchvision(backend: MedsynVLM) -> None:
    from transformers.utils import is_torchvision_available

    if is_torchvision_available():
        pytest.skip("torchvision is installed: AutoProcessor builds the processor")
    assert type(backend.processor).__name__ == "PixtralProcessor"
    assert type(backend.processor.image_processor).__name__ == "PixtralImageProcessorPil"
    assert "transformers.models.pixtral.image_processing_pixtral" not in sys.modules


def test_the_fast_paths_prompt_is_the_processors_for_images_of_every_size(backend: MedsynVLM) -> None:
    family, processor = backend.family, backend.processor
    rng = np.random.default_rng(0)
    sizes = ((96, 96), (120, 72), (24, 60))
    square, wide, tall = (Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in sizes)
    texts = single_bos(backend.processor.tokenizer, [backend.prompter(["Case one."]), backend.prompter(["Case two:", None, "end."]),
             backend.prompter(["Case three:", None, "then", None, "end."])])  # fmt: skip
    images = [[], [wide], [tall, square]]
    plain = family.processor_inputs(processor, texts, images)
    entries = family.encode_images(backend.model, processor, [wide, tall, square], backend.device)
    fast = family.expanded_inputs(processor, backend.slot_id, texts, entries)
    for name in ("input_ids", "attention_mask"):
        torch.testing.assert_close(fast[name], plain[name], rtol=0, atol=0, msg=name)
    assert (plain["input_ids"] == processor.tokenizer.bos_token_id).sum(-1).tolist() == [1, 1, 1]
    assert family.images_reached(plain) == 3
    rows = "[IMG]" * 5 + "[IMG_BREAK]"  # 120×72 fits 40×24: 5×3 merged patches of 8 pixels
    assert entries[0].extras["expansion"] == rows * 2 + "[IMG]" * 5 + "[IMG_END]"
    assert [entry.tokens for entry in entries] == [5 * 3, 2 * 5, 5 * 5]  # wide, tall (fits 16×40), square
