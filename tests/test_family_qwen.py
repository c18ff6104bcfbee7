"""Qwen3-VL specifics the family matrix does not show by itself: reused image features carry each image's
deepstack features, and those reach the text layers (so the matrix's fast == plain check would catch losing or
misordering them); the Thinking variant's template, which opens a <think> block, is refused for ES."""

from __future__ import annotations


import pytest
import torch
from tiny_vlms.qwen import QWEN3_VL_TEMPLATE, qwen3_vl

from medsyn.eval.backends.families.base import ImageEntry
from medsyn.eval.backends.transformers_vlm import MedsynVLM, ReasoningTemplateError, VLMConfig
from medsyn.eval.synthetic import synthetic_rows
from medsyn.eval.tasks import make_doc


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> MedsynVLM:
    folder = qwen3_vl(tmp_path_factory.mktemp("qwen3_vl"))
    return MedsynVLM(VLMConfig(model_name=str(folder), device="cpu", dtype="float32", use_response_cache=False))


@pytest.fixture(scope="module")
def doc():
    row = synthetic_rows(1, 4, 96, 20)[0]
    row["images"][1] = row["images"][1].resize((120, 72))
    return make_doc(row, "full", "es", "t:es")


def _logits(backend: MedsynVLM, inputs: dict) -> torch.Tensor:
    with torch.inference_mode():
        return backend.model(**inputs, logits_to_keep=1).logits[:, -1]


def test_reused_features_keep_each_images_deepstack_features_and_they_reach_the_model(backend: MedsynVLM, doc) -> None:
    family, layers = backend.family, len(backend.model.config.vision_config.deepstack_visual_indexes)
    entries = family.encode_images(backend.model, backend.processor, list(doc.images), backend.device)
    assert len(entries) == len(doc.images)
    for entry in entries:
        assert len(entry.extras["deepstack"]) == layers
        assert all(block.shape == entry.features.shape for block in entry.extras["deepstack"])
    inputs = backend.encode([doc], reuse_images=True)
    reused = _logits(backend, inputs)

    def with_deepstack(blocks: list[ImageEntry]) -> torch.Tensor:
        changed = {**inputs, "mm_encoder_outputs": family.features_input(blocks)}
        changed["mm_encoder_outputs"]["image"].pooler_output = tuple(e.features for e in entries)
        return _logits(backend, changed)

    torch.testing.assert_close(with_deepstack(entries), reused, atol=1e-6, rtol=0)
    zeroed = [ImageEntry(e.features, e.grid, {"deepstack": tuple(map(torch.zeros_like, e.extras["deepstack"]))})
              for e in entries]  # fmt: skip
    assert (with_deepstack(zeroed) - reused).abs().max() > 1e-3, "deepstack features do not change the answer"
    assert entries[0].tokens == entries[2].tokens != entries[1].tokens  # two images of one size, swapped below
    swapped = with_deepstack([entries[2], entries[1], entries[0], *entries[3:]])
    assert (swapped - reused).abs().max() > 1e-3, "the order of the images' deepstack features does not matter"


def test_the_thinking_template_is_refused_for_es(backend: MedsynVLM, doc) -> None:
    instruct = "{{- '<|im_start|>assistant\\n' }}"
    assert QWEN3_VL_TEMPLATE.count(instruct) == 1
    backend.processor.chat_template = QWEN3_VL_TEMPLATE.replace(instruct, "{{- '<|im_start|>assistant\\n<think>\\n' }}")
    try:
        with pytest.raises(ReasoningTemplateError, match="<think>"):
            backend.loglikelihood([doc])
    finally:
        backend.processor.chat_template = QWEN3_VL_TEMPLATE
    assert len(backend.loglikelihood([doc])[0].logprobs) == len(doc.choices)
