"""Gemma 3 specifics the family matrix does not show by itself: the fast path's prompt is the processor's, token
for token (the ``<start_of_image>`` wrapping, the soft tokens and their ``token_type_ids``, a single ``<bos>``);
the ``token_type_ids`` change the answer (bidirectional attention within an image), so losing them is not
harmless; pan-and-scan crops are refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_vlms.gemma3 import SOFT_TOKENS, build

from medsyn.eval.backends.families.base import single_bos
from medsyn.eval.backends.transformers_vlm import MedsynVLM, VLMConfig


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("gemma3"))


@pytest.fixture(scope="module")
def backend(folder: Path) -> MedsynVLM:
    return MedsynVLM(VLMConfig(model_name=str(folder), device="cpu", dtype="float32", use_response_cache=False))


def _prompts(backend: MedsynVLM) -> tuple[list[str], list[list[Image.Image]]]:
    """Three prompts: no image; one square image; a wide image and the square one."""
    rng = np.random.default_rng(0)
    square, wide = (Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in ((96, 96), (120, 72)))
    texts = single_bos(backend.processor.tokenizer, [backend.prompter(["Case one."]), backend.prompter(["Case two:", None, "end."]),
             backend.prompter(["Case three:", None, "then", None, "end."])])  # fmt: skip
    return texts, [[], [square], [wide, square]]


def test_the_fast_paths_prompt_is_the_processors_with_one_bos(backend: MedsynVLM) -> None:
    family, processor = backend.family, backend.processor
    texts, images = _prompts(backend)
    plain = family.processor_inputs(processor, texts, images)
    entries = family.encode_images(backend.model, processor, [img for imgs in images for img in imgs], backend.device)
    fast = family.expanded_inputs(processor, backend.slot_id, texts, entries)
    for name in ("input_ids", "attention_mask", "token_type_ids"):
        torch.testing.assert_close(fast[name], plain[name], rtol=0, atol=0, msg=name)
    assert plain["token_type_ids"].sum(-1).tolist() == [0, SOFT_TOKENS, 2 * SOFT_TOKENS]
    assert (plain["input_ids"] == processor.tokenizer.bos_token_id).sum(-1).tolist() == [1, 1, 1]
    assert family.images_reached(plain) == 3


def test_token_type_ids_change_the_answer(backend: MedsynVLM) -> None:
    texts, images = _prompts(backend)
    inputs = backend.family.forward_inputs(backend.model, dict(backend.family.processor_inputs(backend.processor, texts, images)))
    with torch.inference_mode():
        bidirectional = backend.model(**inputs, logits_to_keep=1).logits
        causal = backend.model(**{**inputs, "token_type_ids": None}, logits_to_keep=1).logits
    assert (bidirectional[1:] - causal[1:]).abs().max() > 1e-3
    torch.testing.assert_close(bidirectional[0], causal[0])  # no image, nothing bidirectional


def test_pan_and_scan_is_refused(folder: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(folder, tmp_path / "pan_and_scan"))
    config_file = copy / "processor_config.json"
    config = json.loads(config_file.read_text())
    config["image_processor"]["do_pan_and_scan"] = True
    config_file.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="pan-and-scan"):
        MedsynVLM(VLMConfig(model_name=str(copy), device="cpu", dtype="float32", use_response_cache=False))
