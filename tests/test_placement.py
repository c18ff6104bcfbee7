"""Image placement after the chat template: the slot a template emits, the check on every prompt, in-place
rendering for templates that move images, refusal of templates that cannot keep them in place."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from medsyn.eval.backends.families import UNVERIFIED
from medsyn.eval.backends.placement import INLINE, SHIPPED, PlacementError, Prompter, check_placement, image_slot
from medsyn.eval.backends.transformers_vlm import MedsynVLM, UnsupportedModel, VLMConfig
from medsyn.eval.tiny_model import build_tiny_model

IMAGES_FIRST = (  # the form of llava-hf/llava-1.5-7b-hf's template: every image first, then every text part
    "{% for message in messages %}{{ message['role'].upper() + ': ' }}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\\n' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' ' }}{% endfor %}"
    "{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)
IMAGES_LAST_TEXT_JOINED_BACKWARDS = (  # text parts reversed: no rendering can keep images in place
    "{% for message in messages %}{% for content in message['content'] | reverse %}"
    "{% if content['type'] == 'image' %}<image>{% else %}{{ content['text'] | reverse }}{% endif %}{% endfor %}{% endfor %}"
)
NO_IMAGES = "{% for message in messages %}{% for c in message['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endfor %}"
PARTS = ["## CT\n", None, "\n", None, "\n\n## MRI\n", None, "\n\nQuestion: which?"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture
def processor(tiny: Path):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(tiny)


def test_an_in_place_template_is_used_as_shipped(processor) -> None:
    prompter = Prompter(processor)
    assert (prompter.mode, prompter.slot) == (SHIPPED, "<image>")
    text = prompter(PARTS)
    assert text.index("## CT") < text.index("<image>") < text.index("## MRI") < text.rindex("<image>") < text.index("Question")


def test_an_images_first_template_renders_images_inline_with_a_log_line(processor, caplog) -> None:
    processor.chat_template = IMAGES_FIRST
    with caplog.at_level(logging.WARNING):
        prompter = Prompter(processor, "llava-1.5-style")
    assert (prompter.mode, prompter.slot) == (INLINE, "<image>\n")
    assert "moves images" in caplog.text and INLINE in caplog.text
    text = prompter(PARTS)
    assert text.startswith("USER: ## CT\n<image>\n") and text.count("<image>") == 3
    assert text.index("## MRI") < text.rindex("<image>") < text.index("Question")


@pytest.mark.parametrize("template, reason", [(IMAGES_LAST_TEXT_JOINED_BACKWARDS, "moves images"), (NO_IMAGES, "emits nothing")])
def test_a_template_that_cannot_keep_images_in_place_is_refused(processor, template: str, reason: str) -> None:
    processor.chat_template = template
    with pytest.raises(PlacementError, match=reason):
        Prompter(processor, "bad-template")


def test_the_backend_refuses_such_a_template_and_records_the_one_it_uses(tiny: Path, tmp_path: Path) -> None:
    import shutil

    config = dict(model_name=str(tiny), device="cpu", dtype="float32", use_response_cache=False)
    assert MedsynVLM(VLMConfig(**config)).setup["template"] == SHIPPED
    broken = Path(shutil.copytree(tiny, tmp_path / "broken"))
    for name in ("chat_template.jinja", "chat_template.json"):
        (broken / name).unlink(missing_ok=True)
    (broken / "chat_template.jinja").write_text(IMAGES_LAST_TEXT_JOINED_BACKWARDS)
    with pytest.raises(UnsupportedModel, match="moves images away from their CE positions"):
        MedsynVLM(VLMConfig(**{**config, "model_name": str(broken)}))


def test_prompt_text_carrying_the_slot_is_refused_not_shown_as_an_image(processor) -> None:
    with pytest.raises(PlacementError, match="contains the image slot"):
        Prompter(processor)(["History: see <image> attached", None, "Question"])


def test_the_check_counts_slots_between_the_texts_around_them() -> None:
    check_placement("a<i><i>b<i>c", ["a", None, None, "b", None, "c"], "<i>")
    with pytest.raises(PlacementError, match="2 image slot\\(s\\) where 1 belong, before 'b'"):
        check_placement("a<i><i>bc", ["a", None, "b", None, "c"], "<i>")
    with pytest.raises(PlacementError, match="at the end"):
        check_placement("abc<i>", ["a", "b", "c"], "<i>")
    with pytest.raises(PlacementError, match="changed or reordered"):
        check_placement("ba", ["a", "b"], "<i>")


def test_the_check_runs_in_linear_time() -> None:
    def seconds(n: int) -> float:
        parts = [p for _ in range(n) for p in ("## CT study with findings " * 20, None)]
        text = "".join("<i>" if p is None else p for p in parts)
        start = time.perf_counter()
        check_placement(text, parts, "<i>")
        return time.perf_counter() - start

    small, large = seconds(500), seconds(5000)
    assert large < 2.0 and large < 40 * max(small, 1e-4)


def test_the_slot_is_what_the_template_emits_for_one_image(processor) -> None:
    processor.chat_template = IMAGES_FIRST
    assert image_slot(processor) == "<image>\n"


def test_an_unverified_family_runs_plain_with_a_warning_naming_what_was_not_verified(tiny: Path, monkeypatch, caplog) -> None:
    from medsyn.eval.backends import transformers_vlm

    monkeypatch.setattr(transformers_vlm, "family_for", lambda model_type: UNVERIFIED)
    with caplog.at_level(logging.WARNING):
        vlm = MedsynVLM(VLMConfig(model_name=str(tiny), device="cpu", dtype="float32", use_response_cache=False))
    assert "not one of MEDSYN's tested families" in caplog.text and "were not verified" in caplog.text
    assert all(state.startswith("off: not tested") for state in vlm.fast_paths.values()), vlm.fast_paths
    assert not vlm.fast_path and not vlm.share_prefix


def test_one_log_line_says_which_fast_paths_are_on_and_why(tiny: Path, caplog) -> None:
    with caplog.at_level(logging.WARNING):
        vlm = MedsynVLM(VLMConfig(model_name=str(tiny), device="cpu", dtype="float32", use_response_cache=False, share_prefix=False))
    lines = [r.getMessage() for r in caplog.records if "fast paths:" in r.getMessage()]
    assert len(lines) == 1
    assert "reuse_image_features on" in lines[0] and "share_prefix off: switched off in the model args" in lines[0]
    assert "packed_vision_attention off: not tested for Llava" in lines[0]
    assert vlm.setup["fast_paths"]["reuse_image_features"] == "on"


def test_a_fast_path_whose_processor_internals_are_missing_is_off_with_the_reason(tiny: Path, monkeypatch, caplog) -> None:
    from medsyn.eval.backends import transformers_vlm
    from medsyn.eval.backends.families.llava import Llava

    class NeedsMore(Llava):
        processor_needs = ("replace_image_token_v2",)

    monkeypatch.setattr(transformers_vlm, "family_for", lambda model_type: NeedsMore())
    with caplog.at_level(logging.WARNING):
        vlm = MedsynVLM(VLMConfig(model_name=str(tiny), device="cpu", dtype="float32", use_response_cache=False))
    assert vlm.fast_paths["reuse_image_features"] == "off: this transformers' processor lacks replace_image_token_v2"
    assert vlm.fast_paths["share_prefix"] == "off: needs image features reused" and not vlm.fast_path
    assert "processor lacks replace_image_token_v2" in caplog.text
