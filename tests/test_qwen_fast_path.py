"""The fast path on a tiny random Qwen2.5-VL (3-axis rotary positions, windowed vision attention) on CPU.

The posteriors of the fast path (packed vision attention, the vision MLP padded to an aligned width,
image features reused, the shared prefix of a case run once) must equal the plain path's: one prompt at a time, pixels through the
stock vision tower.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medsyn.eval.backends.aligned_mlp import ALIGN, stock_vision_mlp, use_aligned_vision_mlp
from medsyn.eval.backends.packed_attention import (
    _PackedForward,
    packed_support,
    stock_vision_attention,
    use_packed_vision_attention,
)
from medsyn.eval.backends.transformers_vlm import MedsynVLM, VLMConfig
from medsyn.eval.synthetic import build_model, synthetic_rows, workloads
from medsyn.eval.tasks import make_doc


@pytest.fixture(scope="module")
def qwen(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("qwen")
    model, processor = build_model("qwen2_5_vl_tiny", folder, "cpu", torch.float32)
    return folder, model, processor


@pytest.fixture(scope="module")
def docs() -> list:
    rows = synthetic_rows(2, 8, 112, 60)
    rows[1]["images"][3] = rows[1]["images"][3].resize((150, 90))  # uneven windows and grids
    return [*workloads(rows)["es_sweep"], make_doc(rows[0], "text", "es", "bench:es")]  # the last without images


def _backend(qwen, **settings) -> MedsynVLM:
    folder, model, processor = qwen
    config = VLMConfig(model_name=str(folder), device="cpu", dtype="float32", use_response_cache=False, **settings)
    return MedsynVLM(config, model=model, processor=processor)


def _image_features(model, processor, images) -> torch.Tensor:
    pixels = processor.image_processor(images=images, return_tensors="pt")
    with torch.inference_mode():
        out = model.model.get_image_features(pixels["pixel_values"], pixels["image_grid_thw"], return_dict=True)
    return torch.cat(out.pooler_output)


@pytest.mark.parametrize("uneven", [False, True])  # equal windows back to back (a view) / a gather per window size
def test_packed_vision_attention_equals_the_stock_tower(qwen, docs, uneven: bool) -> None:
    _, model, processor = qwen
    images = list(docs[0].images) + ([docs[-2].images[3]] if uneven else [])  # the resized one
    features = lambda: _image_features(model, processor, images)  # noqa: E731
    stock_vision_attention(model)
    stock = features()
    assert use_packed_vision_attention(model)
    assert _packed(model)
    assert model.config.vision_config._attn_implementation == "sdpa" == model.config.text_config._attn_implementation
    torch.testing.assert_close(features(), stock, atol=1e-6, rtol=0)
    stock_vision_attention(model)
    model.set_attn_implementation({"vision_config": "eager"})
    assert not use_packed_vision_attention(model)  # an implementation chosen on purpose is kept
    assert model.config.vision_config._attn_implementation == "eager" and not _packed(model)
    model.set_attn_implementation({"vision_config": "sdpa"})


def _packed(model) -> bool:
    return all(isinstance(vars(block.attn).get("forward"), _PackedForward) for block in model.model.visual.blocks)


def test_the_capability_probe_accepts_the_installed_transformers(qwen) -> None:
    """The probe's checks (module layout, forward signature, rotary helper, a one-layer self-check) hold for the
    installed transformers; if a release changes the layout, this fails here, and the backend falls back loudly."""
    _, model, _ = qwen
    stock_vision_attention(model)
    assert packed_support(model) is None


def test_no_attention_function_is_registered_under_a_flash_name(qwen) -> None:
    """transformers >= 5.25 takes any implementation named "*flash*" for flash-attn and fails without it; the
    backend registers no attention function at all, so no name can be misread."""
    from transformers import AttentionInterface

    before = set(AttentionInterface._global_mapping)
    _backend(qwen, batch_size=2)
    assert set(AttentionInterface._global_mapping) == before
    assert not any("flash" in str(impl) for impl in (qwen[1].config._attn_implementation, qwen[1].config.vision_config._attn_implementation))


def test_a_tower_whose_layout_changed_stays_stock_with_one_log_line(qwen, monkeypatch, caplog) -> None:
    _, model, _ = qwen
    stock_vision_attention(model)
    monkeypatch.delattr(type(model.model.visual.blocks[0].attn), "forward")  # as if a release renamed it
    with caplog.at_level("WARNING", logger="medsyn.eval.backends.packed_attention"):
        assert not use_packed_vision_attention(model)
    assert not _packed(model)
    assert [r.getMessage() for r in caplog.records if "packed vision attention off" in r.getMessage()], caplog.text


def test_aligned_vision_mlp_is_the_same_function_and_follows_the_weights_dtype(qwen, docs) -> None:
    _, model, processor = qwen
    stock_vision_mlp(model)
    width = model.model.visual.blocks[0].mlp.gate_proj.out_features
    assert width % ALIGN, "the tiny tower's MLP must be unaligned, like the 7B's 3,420 units"
    stock = _image_features(model, processor, list(docs[0].images))
    assert use_aligned_vision_mlp(model) == len(model.model.visual.blocks)
    assert use_aligned_vision_mlp(model) == 0  # switched once
    torch.testing.assert_close(_image_features(model, processor, list(docs[0].images)), stock, atol=1e-6, rtol=0)
    padded = vars(model.model.visual.blocks[0].mlp)["forward"].weights[0]
    assert padded.shape[0] == 2 * (width + (-width % ALIGN)) and not padded[width : width + (-width % ALIGN)].any()
    model.to(torch.float64)  # the copies are made again in the weights' new dtype
    try:
        assert _image_features(model, processor, list(docs[0].images)).dtype == torch.float64
    finally:
        model.to(torch.float32)
    stock_vision_mlp(model)
    assert "forward" not in vars(model.model.visual.blocks[0].mlp)
    torch.testing.assert_close(_image_features(model, processor, list(docs[0].images)), stock, atol=0, rtol=0)


@pytest.mark.parametrize("batch_size", [4, 32])  # a case split over batches; several cases in one batch
def test_fast_path_posteriors_equal_the_plain_path(qwen, docs, batch_size: int) -> None:
    stock_vision_attention(qwen[1])  # the stock tower (another test may have switched it)
    stock_vision_mlp(qwen[1])
    plain = _backend(qwen, batch_size=1, reuse_image_features=False, packed_vision_attention=False, aligned_vision_mlp=False)
    assert not plain.fast_path and not plain.share_prefix
    reference = [np.exp(r.logprobs) for r in plain.loglikelihood(docs)]
    fast = _backend(qwen, batch_size=batch_size)
    assert fast.share_prefix and _packed(qwen[1])
    assert "forward" in vars(qwen[1].model.visual.blocks[0].mlp)  # the aligned MLP
    posteriors = [np.exp(r.logprobs) for r in fast.loglikelihood(docs)]
    np.testing.assert_allclose(posteriors, reference, atol=1e-5)
    assert np.ptp(reference[:9], axis=0).max() > 0.05, "posteriors do not depend on the condition"
    assert fast.stats["lm_tokens"] + fast.stats["lm_tokens_shared"] == plain.stats["lm_tokens"]
    assert fast.stats["lm_tokens"] < 0.7 * plain.stats["lm_tokens"]
    assert fast.stats["images_encoded"] == len({d.images[i].tobytes() for d in docs for i in range(len(d.images))})


def test_an_mlp_that_computes_something_else_stays_stock_with_one_log_line(qwen, monkeypatch, caplog) -> None:
    _, model, _ = qwen
    stock_vision_mlp(model)
    mlp_class = type(model.model.visual.blocks[0].mlp)
    stock_forward = mlp_class.forward
    monkeypatch.setattr(mlp_class, "forward", lambda self, x: stock_forward(self, x) + 1.0)  # as if a release changed it
    with caplog.at_level("WARNING", logger="medsyn.eval.backends.aligned_mlp"):
        assert use_aligned_vision_mlp(model) == 0
    assert "forward" not in vars(model.model.visual.blocks[0].mlp)
    assert "aligned vision MLP off" in caplog.text


def test_prefix_sharing_needs_the_rope_index_it_calls(qwen, monkeypatch, caplog) -> None:
    from medsyn.eval.backends import transformers_vlm

    _, model, _ = qwen
    monkeypatch.setattr(model.model, "get_rope_index", lambda input_ids, image_grid_thw=None: None)  # a changed signature
    with caplog.at_level("WARNING", logger="medsyn.eval.backends.transformers_vlm"):
        assert not transformers_vlm._prefix_sharing_supported(model)
    assert "get_rope_index(mm_token_type_ids=...)" in caplog.text
    assert not _backend(qwen, batch_size=4).share_prefix
