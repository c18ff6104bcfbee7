"""LLaVA specifics the family matrix does not show by itself: llava-hf's templates (all images first) are rendered
inline with every image at its CE position, and a template that inline rendering cannot fix is refused; anyres
tiles are not counted as images; LLaVA-Next's reused features have, per image, the rows the processor expands
(newline rows included); LLaVA-OneVision tiles a prompt's image only when it is the prompt's only image, also
inside a batch of mixed prompts."""

from __future__ import annotations

import shutil
from itertools import groupby
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_vlms.llava import BUILDERS, LLAVA_TEMPLATE

from medsyn.eval.backends.placement import INLINE, PlacementError, check_placement, render
from medsyn.eval.backends.transformers_vlm import MedsynVLM, UnsupportedModel, VLMConfig
from medsyn.eval.prompts import interleave
from medsyn.eval.synthetic import synthetic_rows
from medsyn.eval.tasks import make_doc

SETTINGS = dict(device="cpu", dtype="float32", use_response_cache=False)


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {model_type: build(tmp_path_factory.mktemp(model_type)) for model_type, build in BUILDERS.items()}


def _backend(folder: Path, **settings) -> MedsynVLM:
    return MedsynVLM(VLMConfig(model_name=str(folder), **SETTINGS, **settings))


def _images() -> tuple[Image.Image, Image.Image]:
    rng = np.random.default_rng(0)
    return tuple(Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in ((96, 96), (120, 72)))


def _case_doc(n_images: int):
    """The full ES prompt of a case with the first ``n_images`` of its 4 images (the first one not square)."""
    row = synthetic_rows(1, 4, 96, 20)[0]
    row["images"] = [row["images"][0].resize((120, 72)), *row["images"][1:n_images]]
    row["image_evidence"] = row["image_evidence"][:n_images]
    return make_doc(row, "full", "es", "t:es")


@pytest.mark.parametrize("model_type", list(BUILDERS))
def test_llava_hf_templates_are_rendered_inline_with_each_image_at_its_ce_position(folders, model_type: str) -> None:
    backend = _backend(folders[model_type])
    assert backend.setup["template"] == INLINE
    doc, slot = _case_doc(4), backend.prompter.slot
    parts = [None if isinstance(p, Image.Image) else p for p in interleave(doc.query, list(doc.images))]
    with pytest.raises(PlacementError):  # the shipped template moves the images: the test is not vacuous
        check_placement(render(backend.processor, parts), parts, slot)
    in_place = "".join(slot if part is None else part for part in parts)
    assert in_place in backend.rendered(doc)


STRIPS_IMAGE_TEXT = LLAVA_TEMPLATE.replace("{{ content['text'] + ' '}}", "{{ content['text'] | replace('<image>', '') + ' '}}")
FLATTENS_LINES = LLAVA_TEMPLATE.replace("{{ content['text'] + ' '}}", "{{ content['text'] | replace('\\n', ' ') + ' '}}")


@pytest.mark.parametrize("template", [STRIPS_IMAGE_TEXT, FLATTENS_LINES], ids=["strips-image-text", "flattens-lines"])
def test_a_template_that_moves_images_and_breaks_inline_slots_is_refused(folders, tmp_path: Path, template: str) -> None:
    assert template != LLAVA_TEMPLATE
    folder = Path(shutil.copytree(folders["llava"], tmp_path / "llava"))
    (folder / "chat_template.jinja").write_text(template, encoding="utf-8")
    with pytest.raises(UnsupportedModel, match="moves images away from their CE positions.*inline does not keep them in place"):
        _backend(folder)


@pytest.mark.parametrize("model_type", ["llava_next", "llava_onevision"])
def test_the_plain_path_counts_images_not_anyres_tiles(folders, model_type: str) -> None:
    backend = _backend(folders[model_type])
    square, wide = _images()
    texts = [backend.prompter(["One image:", None, "end."]), backend.prompter(["Two:", None, "and", None, "end."])]
    inputs = backend.family.processor_inputs(backend.processor, texts, [[wide], [square, wide]])
    tiles = inputs["pixel_values"].shape[1]
    assert tiles > 1 and backend.family.images_reached(inputs) == 3


def _placeholders(backend: MedsynVLM, images: list[Image.Image]) -> list[int]:
    """The placeholder tokens the processor expands for each image of one prompt holding ``images``."""
    parts = [part for _ in images for part in ("Image:", None)] + ["end."]
    inputs = backend.family.processor_inputs(backend.processor, [backend.prompter(parts)], [images])
    ids = inputs["input_ids"][0].tolist()
    return [len(list(run)) for token, run in groupby(ids) if token == backend.image_token_id]


def test_next_reused_features_have_the_processors_placeholder_rows_per_image(folders) -> None:
    backend = _backend(folders["llava_next"])
    square, wide = _images()
    entries = backend.family.encode_images(backend.model, backend.processor, [square, wide], backend.device)
    expanded = [_placeholders(backend, [image])[0] for image in (square, wide)]
    assert [entry.tokens for entry in entries] == expanded
    side = backend.model.config.vision_config.image_size // backend.model.config.vision_config.patch_size
    assert expanded[0] > side**2 + 1 and expanded[0] != expanded[1]  # tiles, unpadded to each image's aspect


def test_onevision_tiles_an_image_only_when_it_is_alone_in_its_prompt(folders) -> None:
    backend = _backend(folders["llava_onevision"])
    square, wide = _images()
    base = backend.processor.num_image_tokens
    assert _placeholders(backend, [square, wide]) == [base + 1, base + 1]  # base tile and its newline row
    assert _placeholders(backend, [wide])[0] > base + 1


def test_onevision_single_and_multi_image_prompts_batched_equal_alone(folders) -> None:
    docs = [_case_doc(1), _case_doc(3)]
    assert [len(doc.images) for doc in docs] == [1, 3]
    batched, alone = (_backend(folders["llava_onevision"], batch_size=size) for size in (2, 1))
    posteriors = [torch.tensor([r.logprobs for r in b.loglikelihood(docs)], dtype=torch.float64) for b in (batched, alone)]
    torch.testing.assert_close(posteriors[0], posteriors[1], atol=1e-4, rtol=0)


def test_onevision_reused_features_are_kept_apart_for_an_image_alone_and_beside_others(folders) -> None:
    """The same image alone in one prompt (anyres-tiled) and beside others in another (base tile): features reused
    per context equal the plain path's, also when one new image of a multi-image prompt is encoded by itself."""
    folder = folders["llava_onevision"]
    one, two, three = _case_doc(1), _case_doc(2), _case_doc(3)  # the same first image, then one more each
    plain = _backend(folder, batch_size=1, reuse_image_features=False, share_prefix=False)
    expected = [plain.loglikelihood([doc])[0].logprobs for doc in (two, three, one)]
    fast = _backend(folder, batch_size=1)
    assert fast.setup["fast_paths"]["reuse_image_features"] == "on"
    got = [fast.loglikelihood([doc])[0].logprobs for doc in (two, three, one)]  # three brings one new image beside others
    torch.testing.assert_close(torch.tensor(got, dtype=torch.float64), torch.tensor(expected, dtype=torch.float64), atol=1e-4, rtol=0)
    assert fast.stats["images_encoded"] == 4 and fast.stats["images_reused"] == 2  # image 1 again beside others; alone anew
