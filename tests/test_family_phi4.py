"""Phi-4-multimodal is refused loudly: by the backend, by ``medsyn eval``, for the reasons transformers still gives."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_vlms.phi4 import build

from medsyn.eval.backends.families import family_for
from medsyn.eval.backends.transformers_vlm import MedsynVLM, UnsupportedModel, VLMConfig

REFUSAL = family_for("phi4_multimodal").refusal


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("phi4_multimodal"))


def test_the_backend_refuses_phi4_with_the_reason(folder: Path) -> None:
    with pytest.raises(UnsupportedModel) as refused:
        MedsynVLM(VLMConfig(model_name=str(folder), device="cpu", dtype="float32", use_response_cache=False))
    assert "Phi-4-multimodal (phi4_multimodal) is not supported" in str(refused.value) and REFUSAL in str(refused.value)


def test_medsyn_eval_exits_non_zero_with_the_reason(folder: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    from medsyn.cli import main

    monkeypatch.setenv("MEDSYN_CACHE", str(tmp_path / "cache"))
    args = ["eval", "--model", str(folder), "--tasks", "medsyn:fdx_en", "--max-samples", "1", "--out", str(tmp_path / "run")]
    try:  # as the console script runs it: an uncaught exception is printed and exits with status 1
        status, shown = main(args), capsys.readouterr().err
    except Exception as error:
        status, shown = 1, f"{type(error).__name__}: {error}"
    assert status != 0 and REFUSAL in shown, shown
    assert not (tmp_path / "run" / "results.json").exists()


def test_the_reasons_for_the_refusal_still_hold_in_transformers() -> None:
    """Revisit the refusal when one fails: the model is no image-text-to-text model, its image processor has
    no torchvision-free backend, and loading it applies no LoRA adapter."""
    from transformers.models.auto.image_processing_auto import IMAGE_PROCESSOR_MAPPING_NAMES
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    assert "phi4_multimodal" not in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES
    assert set(IMAGE_PROCESSOR_MAPPING_NAMES["phi4_multimodal"]) == {"torchvision"}


def test_the_tiny_phi4_loads_as_a_causal_lm_without_any_adapter(folder: Path) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder)
    assert type(model).__name__ == "Phi4MultimodalForCausalLM"
    assert not any("lora" in name.lower() for name, _ in model.named_modules())
