"""Phi-4-multimodal (``phi4_multimodal``): refused, with the reasons found by trying it on transformers 5.25.

Phi4MultimodalForCausalLM (an AutoModelForCausalLM, not an AutoModelForImageTextToText) loads, but the published
checkpoint reads images through a vision LoRA adapter (its ``vision-lora/`` folder) that loading does not apply:
the model card loads it with peft (``model.load_adapter(path, adapter_name="vision", adapter_kwargs={"subfolder":
"vision-lora"})`` then ``model.set_adapter("vision")``), so the model as loaded would answer image questions with
the base language model. Besides, the family's image processor exists only as a torchvision backend, so its
processor cannot be built without torchvision; and microsoft/Phi-4-multimodal-instruct's main branch is the
remote-code ``phi4mm`` format, the transformers format being on a pull-request branch (refs/pr/94).
"""

from __future__ import annotations

from medsyn.eval.backends.families.base import Family


class Phi4Multimodal(Family):
    name = "Phi-4-multimodal"
    model_types = ("phi4_multimodal",)
    auto_class = "AutoModelForCausalLM"
    refusal = (
        "its image reading lives in the vision LoRA adapter (vision-lora/) that loading the checkpoint does not apply "
        "(the model card applies it with peft: load_adapter(subfolder='vision-lora'), set_adapter('vision')), so images "
        "would be read by the base language model; its image processor also needs torchvision"
    )


FAMILIES = [Phi4Multimodal()]
