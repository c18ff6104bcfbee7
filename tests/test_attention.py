"""Attention shares of the answer position (medsyn.eval.attention, ``medsyn analyze attention``)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from medsyn.cli import main
from medsyn.data.build import checked_revision, load_split
from medsyn.eval.attention import AttentionUnavailable, attention_modules, case_shares, token_groups
from medsyn.eval.backends.transformers_vlm import MedsynVLM, VLMConfig
from medsyn.eval.tasks import make_doc

IMAGE_MASS = 0.25


@pytest.fixture(scope="module")
def vlm(tiny_model, tmp_path_factory):
    return MedsynVLM(VLMConfig(model_name=str(tiny_model), batch_size=1, response_cache_dir=str(tmp_path_factory.mktemp("c"))))


@pytest.fixture(scope="module")
def row(built_fixture):
    split = load_split(built_fixture, "en", checked_revision(built_fixture))
    return next(r for r in split if r["case_id"] == "en-0001")


def _force(vlm, make_map):
    """Hooks (registered before the analysis's own) that replace each layer's attention probabilities."""
    def hook(module, args, output):
        return (output[0], None if make_map is None else make_map(output[1]), *output[2:])

    return [m.register_forward_hook(hook) for m in attention_modules(vlm.model)]


def test_forced_attention_gives_the_hand_computed_image_share(vlm, row):
    """A quarter of the last row's mass spread evenly on the image tokens, the rest on the last token itself:
    image share 0.25, textual CE 0, rest 0.75 in every layer; en-0001 has one CT and one pathology image
    (the same number of tokens each), so each type's block gets 0.125."""
    ids = vlm.encode([make_doc(row, "full", "fdx", "t")])["input_ids"][0]
    image = ids == vlm.image_token_id
    assert image.sum() > 0

    def forced(maps):
        new = torch.zeros_like(maps)
        new[..., -1, image] = IMAGE_MASS / int(image.sum())
        new[..., -1, -1] = 1 - IMAGE_MASS
        return new

    handles = _force(vlm, forced)
    try:
        shares = case_shares(vlm, row, "full")
    finally:
        for h in handles:
            h.remove()
    categories = np.array(shares["categories"])
    assert categories.shape == (len(attention_modules(vlm.model)), 3)
    np.testing.assert_allclose(categories, [[0.25, 0.0, 0.75]] * len(categories), atol=1e-6)
    np.testing.assert_allclose(categories.sum(axis=1), 1.0, atol=1e-6)
    assert set(shares["types"]) == {"ct", "pathology"}
    for per_layer in shares["types"].values():
        np.testing.assert_allclose(per_layer, 0.125, atol=1e-6)


def test_real_shares_sum_to_one_and_history_removal_zeroes_textual_ce(vlm, row):
    previous = vlm.model.config._attn_implementation
    full, no_history = case_shares(vlm, row, "full"), case_shares(vlm, row, "no_history")
    assert vlm.model.config._attn_implementation == previous  # eager for this pass only
    for shares in (full, no_history):
        np.testing.assert_allclose(np.array(shares["categories"]).sum(axis=1), 1.0, atol=1e-5)
    assert min(c[1] for c in full["categories"]) > 0
    assert max(c[1] for c in no_history["categories"]) == 0


def test_textual_ce_tokens_are_the_history_and_exam_blocks(vlm, row):
    inputs = vlm.encode([make_doc(row, "full", "fdx", "t")])
    groups, types = token_groups(vlm, row, "full", inputs)
    ids = inputs["input_ids"][0]
    text_ce = vlm.processor.tokenizer.decode(ids[groups[1] == 1])
    rest = vlm.processor.tokenizer.decode(ids[groups[2] == 1])
    assert "pack-year smoking history" in text_ce and "breath sounds" in text_ce
    assert "pack-year" not in rest and "Question" in rest and "CT of the chest" in rest
    assert (groups[:3].sum(axis=0) == 1).all()  # image / textual CE / rest partition the tokens
    assert (groups[0] == (ids == vlm.image_token_id).numpy()).all()
    assert types == ["ct", "pathology"]


def test_unreadable_attention_weights_are_refused(vlm, row):
    handles = _force(vlm, None)
    try:
        with pytest.raises(AttentionUnavailable, match="returns no attention weights"):
            case_shares(vlm, row, "full")
    finally:
        for h in handles:
            h.remove()


def test_analyze_attention_command_writes_table_and_plots(tiny_model, built_fixture, tmp_path, capsys):
    out = tmp_path / "att"
    assert main(["analyze", "attention", "--model", str(tiny_model), "--dataset", str(built_fixture), "--out", str(out)]) == 0
    for name in ("attention.json", "attention_summary.csv", "attention_by_condition.png", "attention_layers.png"):
        assert (out / name).stat().st_size > 0
    rows = list(csv.DictReader((out / "attention_summary.csv").open()))
    means = {(r["language"], r["condition"], r["share"]): r for r in rows if r["layer"] == "mean"}
    for lang, n in (("en", "2"), ("zh", "1")):
        for condition in ("full", "no_history", "random_history"):
            parts = [float(means[lang, condition, s]["mean"]) for s in ("image", "text_ce", "rest")]
            assert sum(parts) == pytest.approx(1.0, abs=1e-5)
            assert means[lang, condition, "image"]["n_cases"] == n
            low, high = float(means[lang, condition, "image"]["ci_low"]), float(means[lang, condition, "image"]["ci_high"])
            assert low <= float(means[lang, condition, "image"]["mean"]) <= high
