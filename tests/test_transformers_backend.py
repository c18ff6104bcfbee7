"""The transformers backend on the tiny model: posteriors, batching, loud errors, the response cache."""

from __future__ import annotations

from pathlib import Path

import datasets
import numpy as np
import pytest
from PIL import Image

from medsyn.data.schema import es_conditions
from medsyn.eval.backends.transformers_vlm import ImageTokenMismatch, MedsynVLM, VLMConfig, model_fingerprint
from medsyn.eval.tasks import make_doc
from medsyn.eval.tiny_model import build_tiny_model


@pytest.fixture(scope="module")
def rows(built_fixture: Path) -> list[dict]:
    return [row for lang in ("en", "zh") for row in datasets.load_dataset(str(built_fixture), lang, split="test")]


@pytest.fixture
def model(tiny_model: Path, tmp_path: Path) -> MedsynVLM:
    return MedsynVLM(VLMConfig(model_name=str(tiny_model), batch_size=4, max_new_tokens=4, response_cache_dir=str(tmp_path)))


def _es_docs(rows: list[dict]) -> list:
    return [make_doc(r, c, "es", "medsyn:es") for r in rows for c in es_conditions(r["evidence_types"])]


def test_posteriors_are_distributions_and_batch_invariant(model: MedsynVLM, rows: list[dict]) -> None:
    docs = _es_docs(rows)
    model.config.use_response_cache = False
    batched = model.loglikelihood(docs)
    model.config.batch_size = 1
    alone = model.loglikelihood(docs)
    for doc, b, a in zip(docs, batched, alone):
        p = np.exp(b.logprobs)
        assert len(p) == len(doc.choices) and abs(p.sum() - 1) < 1e-9
        np.testing.assert_allclose(np.exp(a.logprobs), p, atol=1e-4)
    first_case = [np.exp(r.logprobs) for d, r in zip(docs, batched) if d.specific["case_id"] == docs[0].specific["case_id"]]
    spread = np.ptp(first_case, axis=0).max()  # across the conditions of one case
    assert spread > 1e-3, "posteriors do not depend on the prompt: images or text are not reaching the model"


def test_image_tokens_match_the_images_shown(model: MedsynVLM, rows: list[dict]) -> None:
    for doc in _es_docs(rows):
        inputs = model.encode([doc])
        shown = int((inputs["input_ids"] == model.image_token_id).sum())
        per_image = 16  # 32x32 pixels in 8x8 patches, CLS dropped ("default" strategy)
        assert shown == per_image * len(doc.images) == per_image * doc.specific["n_images"]


def test_dropped_image_is_a_loud_error(model: MedsynVLM, rows: list[dict]) -> None:
    doc = make_doc(rows[0], "full", "es", "t")
    doc.images = doc.images[:-1]
    with pytest.raises(ImageTokenMismatch, match=rf"{doc.specific['case_id']} \[full\]"):
        model.loglikelihood([doc])


def test_prompt_longer_than_context_is_a_loud_error(model: MedsynVLM, rows: list[dict]) -> None:
    doc = make_doc(rows[0], "full", "es", "t")
    doc.query = "word " * (model.max_length + 10) + doc.query
    with pytest.raises(ValueError, match="exceeds the model's context"):
        model.loglikelihood([doc])


def test_generation_returns_text(model: MedsynVLM, rows: list[dict]) -> None:
    docs = [make_doc(r, "full", "fdx", "t") for r in rows]
    out = model.greedy_until(docs)
    assert [isinstance(r.text[0], str) for r in out] == [True] * len(docs)


def test_cache_resumes_and_never_serves_stale_outputs(tiny_model: Path, rows: list[dict], tmp_path: Path) -> None:
    settings = dict(model_name=str(tiny_model), batch_size=4, response_cache_dir=str(tmp_path / "cache"))
    docs = _es_docs(rows)
    first = MedsynVLM(VLMConfig(**settings))
    first.loglikelihood(docs[:5])  # an "interrupted" run: five samples finished
    resumed = MedsynVLM(VLMConfig(**settings))
    out = resumed.loglikelihood(docs)
    assert (resumed.stats["cache_hits"], resumed.stats["computed"]) == (5, len(docs) - 5)
    again = MedsynVLM(VLMConfig(**settings))
    assert [r.logprobs for r in again.loglikelihood(docs)] == [r.logprobs for r in out]
    assert again.stats["computed"] == 0

    changed = make_doc(rows[0], "full", "es", "t")  # a changed dataset: one pixel of one image
    image = changed.images[0].convert("RGB").copy()
    image.putpixel((0, 0), (1, 2, 3))
    changed.images = [image, *changed.images[1:]]
    again.loglikelihood([changed])
    assert again.stats["computed"] == 1

    rebuilt = build_tiny_model(tmp_path / "rebuilt", seed=1)  # a rebuilt model with other weights
    assert model_fingerprint(rebuilt) != model_fingerprint(tiny_model)
    other = MedsynVLM(VLMConfig(**{**settings, "model_name": str(rebuilt)}))
    other.loglikelihood(docs[:3])
    assert (other.stats["cache_hits"], other.stats["computed"]) == (0, 3)


def test_reusing_image_features_matches_the_plain_path(tiny_model: Path, rows: list[dict], tmp_path: Path) -> None:
    docs = _es_docs(rows)
    settings = dict(model_name=str(tiny_model), batch_size=4, use_response_cache=False, response_cache_dir=str(tmp_path))
    fast = MedsynVLM(VLMConfig(**settings))  # batches of 4: each case's 1 + 2·|types| prompts span several
    plain = MedsynVLM(VLMConfig(**settings, reuse_image_features=False))
    assert fast.fast_path and fast.share_prefix and not plain.fast_path and not plain.share_prefix
    for a, b in zip(fast.loglikelihood(docs), plain.loglikelihood(docs)):
        np.testing.assert_allclose(np.exp(a.logprobs), np.exp(b.logprobs), atol=1e-5)
    assert fast.stats["lm_tokens"] + fast.stats["lm_tokens_shared"] == plain.stats["lm_tokens"]
    assert fast.stats["lm_tokens"] < 0.8 * plain.stats["lm_tokens"]  # the shared prefix ran once per case
    distinct = len({img.tobytes() for d in docs for img in d.images})
    assert fast.stats["images_encoded"] == distinct  # each distinct image through the vision tower once
    assert fast.stats["images_reused"] == sum(len(d.images) for d in docs) - distinct


def test_max_pixels_downscales_images(model: MedsynVLM) -> None:
    from medsyn.eval.backends.transformers_vlm import fit_to_budget

    small = fit_to_budget(Image.new("RGB", (2000, 1000)), 500_000)
    assert small.width * small.height <= 500_000 and abs(small.width / small.height - 2) < 0.01
    assert fit_to_budget(Image.new("L", (10, 10)), 500_000).size == (10, 10)


def test_max_pixels_reaches_both_paths(tiny_model: Path, rows: list[dict], tmp_path: Path) -> None:
    docs = _es_docs(rows)[:9]
    settings = dict(model_name=str(tiny_model), batch_size=4, use_response_cache=False, response_cache_dir=str(tmp_path))
    budget = dict(settings, max_pixels=200)  # the tiny model's 32x32 inputs come from ~14x14 images
    fast, plain = MedsynVLM(VLMConfig(**budget)), MedsynVLM(VLMConfig(**budget, reuse_image_features=False))
    full = MedsynVLM(VLMConfig(**settings))
    def posteriors(backend: MedsynVLM) -> np.ndarray:
        return np.concatenate([np.exp(r.logprobs) for r in backend.loglikelihood(docs)])

    small = posteriors(fast)
    np.testing.assert_allclose(small, posteriors(plain), atol=1e-5)
    assert np.abs(small - posteriors(full)).max() > 1e-4


def test_prompts_without_images_share_a_batch_with_prompts_with_images(tiny_model: Path, rows: list[dict], tmp_path: Path) -> None:
    row = rows[0]
    docs = [make_doc(row, c, "es", "t") for c in ["full", "text", "no_history", *es_conditions(row["evidence_types"])[1:]]]
    assert not docs[1].images and docs[0].images
    settings = dict(model_name=str(tiny_model), batch_size=16, use_response_cache=False, response_cache_dir=str(tmp_path))
    fast, plain = MedsynVLM(VLMConfig(**settings)), MedsynVLM(VLMConfig(**settings, reuse_image_features=False))
    for a, b in zip(fast.loglikelihood(docs), plain.loglikelihood(docs)):
        np.testing.assert_allclose(np.exp(a.logprobs), np.exp(b.logprobs), atol=1e-5)
    assert fast.stats["lm_tokens_shared"] > 0
    alone = fast.loglikelihood(docs[1:2])  # a batch with no image at all
    np.testing.assert_allclose(np.exp(alone[0].logprobs), np.exp(plain.loglikelihood(docs[1:2])[0].logprobs), atol=1e-5)


def test_a_prompt_entirely_shared_still_computes_its_last_token(tiny_model: Path, rows: list[dict], tmp_path: Path) -> None:
    docs = _es_docs(rows[:1])
    docs = [*docs, make_doc(rows[0], "full", "es", "t")]  # the same prompt as docs[0], a second time
    settings = dict(model_name=str(tiny_model), batch_size=16, use_response_cache=False, response_cache_dir=str(tmp_path))
    fast, plain = MedsynVLM(VLMConfig(**settings)), MedsynVLM(VLMConfig(**settings, reuse_image_features=False))
    out = fast.loglikelihood(docs)
    for a, b in zip(out, plain.loglikelihood(docs)):
        np.testing.assert_allclose(np.exp(a.logprobs), np.exp(b.logprobs), atol=1e-5)
    np.testing.assert_allclose(out[-1].logprobs, out[0].logprobs, atol=1e-5)  # float32 sums in another order


def test_settings_that_change_an_output_are_in_the_cache_key(tiny_model: Path, rows: list[dict], tmp_path: Path) -> None:
    """A bfloat16 run and a float32 run (or another attention implementation, pixel budget or generation length)
    never share cached outputs."""
    settings = dict(model_name=str(tiny_model), batch_size=4, device="cpu", response_cache_dir=str(tmp_path / "cache"))
    docs = _es_docs(rows)[:3]
    MedsynVLM(VLMConfig(**settings, dtype="float32")).loglikelihood(docs)
    for changed in ({"dtype": "bfloat16"}, {"dtype": "float32", "attn_implementation": "eager"}, {"dtype": "float32", "max_pixels": 200}):
        other = MedsynVLM(VLMConfig(**settings, **changed))
        other.loglikelihood(docs)
        assert (other.stats["cache_hits"], other.stats["computed"]) == (0, 3), changed
    same = MedsynVLM(VLMConfig(**settings, dtype="float32"))
    same.loglikelihood(docs)
    assert (same.stats["cache_hits"], same.stats["computed"]) == (3, 0)
    fdx = [make_doc(r, "full", "fdx", "t") for r in rows[:2]]
    MedsynVLM(VLMConfig(**settings, max_new_tokens=4)).greedy_until(fdx)
    longer = MedsynVLM(VLMConfig(**settings, max_new_tokens=8))
    longer.greedy_until(fdx)
    assert longer.stats["computed"] == 2
