"""Loading a model folder on this CPU machine, where torchvision does not import: the image-only processor
fallback keeps every saved setting, and a processor that needs torchvision for images says what to install."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from tiny_vlms import BUILDERS

from medsyn.eval.backends.loading import ProcessorUnavailable, load_processor, parse_max_memory


@pytest.mark.parametrize("model_type, setting", [("llava_onevision", "num_image_tokens"), ("internvl", "image_seq_length")])
def test_the_image_only_fallback_keeps_the_saved_settings(model_type: str, setting: str, tmp_path: Path, caplog) -> None:
    folder = BUILDERS[model_type](tmp_path / model_type)
    saved = json.loads((folder / "processor_config.json").read_text())
    assert "video_processor" in saved, "the folder must name a video processor, as the published checkpoints do"
    saved[setting] = 7  # not the class default: a dropped setting would show
    (folder / "processor_config.json").write_text(json.dumps(saved))
    with caplog.at_level(logging.WARNING):
        processor = load_processor(folder)
    assert "without its video processor" in caplog.text
    assert getattr(processor, setting) == 7 and getattr(processor, "video_processor", None) is None


def test_an_image_processor_that_needs_torchvision_names_what_to_install(tmp_path: Path) -> None:
    folder = BUILDERS["phi4_multimodal"](tmp_path / "phi4")
    with pytest.raises(ProcessorUnavailable, match="install a torchvision build"):
        load_processor(folder)


def test_max_memory_limits_are_checked_before_loading() -> None:
    assert parse_max_memory("0:70GiB;cpu:200GiB") == {0: "70GiB", "cpu": "200GiB"}
    with pytest.raises(ValueError, match="'lots' of cpu is not a size"):
        parse_max_memory("cpu:lots")
