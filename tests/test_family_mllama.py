"""Llama 3.2 Vision: one <|begin_of_text|>, no dated system turn, and text before an image unaffected by it."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from tiny_vlms.mllama import build

from medsyn.eval.backends.families.base import single_bos
from medsyn.eval.backends.families.mllama import Mllama
from medsyn.eval.backends.placement import render


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory):
    folder = str(build(tmp_path_factory.mktemp("mllama")))
    family = Mllama()
    model = family.load_model(folder, dtype=torch.float32).eval()
    family.prepare_model(model)
    return family, family.load_processor(folder), model


def test_prompts_render_alike_with_one_begin_of_text(loaded) -> None:
    family, processor, _ = loaded
    without = render(processor, ["history", "question"])
    assert "Today Date" not in without and render(processor, ["history", None, "question"]) == without.replace("history", f"history{processor.image_token}")
    ids = family.processor_inputs(processor, single_bos(processor.tokenizer, [without]), [[]])["input_ids"][0].tolist()
    assert ids.count(processor.tokenizer.bos_token_id) == 1 and processor.tokenizer("x")["input_ids"][0] == processor.tokenizer.bos_token_id


def test_text_before_an_image_does_not_see_it(loaded) -> None:
    family, processor, model = loaded
    text = single_bos(processor.tokenizer, [render(processor, ["a b c d e f", None, "g h"])])[0]
    first_image = processor.tokenizer(text)["input_ids"].index(processor.image_token_id)
    logits = []
    for color in ("white", "black"):
        inputs = family.forward_inputs(model, dict(family.processor_inputs(processor, [text], [[Image.new("RGB", (64, 40), color)]])))
        with torch.no_grad():
            logits.append(model(**inputs).logits[0])
    torch.testing.assert_close(logits[0][:first_image], logits[1][:first_image], atol=1e-6, rtol=0)
    assert (logits[0][first_image:] - logits[1][first_image:]).abs().max() > 1e-3
