"""Tiny GLM-4.1V (``glm4v``) and GLM-4.5V (``glm4v_moe``): each model type's own config, model and processor classes,
the chat template its published checkpoints ship, and the video processor config they ship (so loading takes the
image-only fallback without torchvision)."""

from __future__ import annotations

from pathlib import Path

import torch
import transformers
from tiny_vlms.common import INIT_RANGE, save_folder, train_tokenizer
from transformers import Glm4vProcessor
from transformers.models.glm4v.image_processing_pil_glm4v import Glm4vImageProcessorPil

from medsyn.eval.backends.loading import image_only

SPECIAL = ["<|endoftext|>", "[gMASK]", "<sop>", "<|system|>", "<|user|>", "<|assistant|>", "<|observation|>",
           "<|begin_of_image|>", "<|end_of_image|>", "<|begin_of_video|>", "<|end_of_video|>", "<|image|>", "<|video|>",
           "<think>", "</think>"]  # fmt: skip

GLM41V_GENERATION = "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
GLM41V_TEMPLATE = (  # GLM-4.1V-9B-Thinking's chat_template.jinja: images in place; the model opens <think> on its own
    "[gMASK]<sop>\n{%- for msg in messages %}\n    {%- if msg.role == 'system' %}\n<|system|>\n{{ msg.content }}\n"
    "    {%- elif msg.role == 'user' %}\n<|user|>{{ '\\n' }}\n\n        {%- if msg.content is string %}\n{{ msg.content }}\n"
    "        {%- else %}\n            {%- for item in msg.content %}\n"
    "                {%- if item.type == 'video' or 'video' in item %}\n<|begin_of_video|><|video|><|end_of_video|>\n"
    "                {%- elif item.type == 'image' or 'image' in item %}\n<|begin_of_image|><|image|><|end_of_image|>\n"
    "                {%- elif item.type == 'text' %}\n{{ item.text }}\n                {%- endif %}\n"
    "            {%- endfor %}\n        {%- endif %}\n    {%- elif msg.role == 'assistant' %}\n        {%- if msg.metadata %}\n"
    "<|assistant|>{{ msg.metadata }}\n{{ msg.content }}\n        {%- else %}\n<|assistant|>\n{{ msg.content }}\n"
    "        {%- endif %}\n    {%- endif %}\n{%- endfor %}\n" + GLM41V_GENERATION
)
THINKING_GENERATION = "{% if add_generation_prompt %}<|assistant|>\n<think>{% endif %}"
"""A generation prompt that opens the reasoning block after the prompt (which ES refuses)."""

GLM45V_TEMPLATE = (  # GLM-4.5V's chat_template.jinja less its tool branches: thinking is on unless enable_thinking=False
    "[gMASK]<sop>\n{%- macro visible_text(content) -%}{%- if content is string -%}{{- content }}"
    "{%- elif content is iterable and content is not mapping -%}{%- for item in content -%}"
    "{%- if item is mapping and item.type == 'text' -%}{{- item.text }}{%- elif item is string -%}{{- item }}{%- endif -%}"
    "{%- endfor -%}{%- else -%}{{- content }}{%- endif -%}{%- endmacro -%}\n"
    "{% for m in messages %}\n{%- if m.role == 'user' -%}<|user|>\n{% if m.content is string %}\n{{ m.content }}\n"
    "{%- else %}\n{%- for item in m.content %}\n{% if item.type == 'video' or 'video' in item %}\n"
    "<|begin_of_video|><|video|><|end_of_video|>{% elif item.type == 'image' or 'image' in item %}\n"
    "<|begin_of_image|><|image|><|end_of_image|>{% elif item.type == 'text' %}\n{{ item.text }}\n{%- endif %}\n"
    "{%- endfor %}\n{%- endif %}\n"
    "{{- '/nothink' if (enable_thinking is defined and not enable_thinking "
    "and not visible_text(m.content).endswith(\"/nothink\")) else '' -}}\n"
    "{%- elif m.role == 'assistant' -%}\n<|assistant|>\n{{- '\\n<think></think>' }}\n"
    "{%- if visible_text(m.content).strip() -%}\n{{ '\\n' + visible_text(m.content).strip() }}\n{%- endif -%}\n"
    "{%- elif m.role == 'system' -%}\n<|system|>\n{{ visible_text(m.content) }}\n{%- endif -%}\n{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n<|assistant|>\n"
    "{{'<think></think>\\n' if (enable_thinking is defined and not enable_thinking) else ''}}\n{%- endif -%}"
)

PATCH = 14
TEXT = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
            max_position_embeddings=4096, initializer_range=INIT_RANGE,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5,
                             "mrope_section": [2, 3, 3]})  # fmt: skip


def _build(folder: Path, names: str, template: str, text: dict) -> Path:
    """The shared recipe: 14 px patches merged 2x2, interpolated vision position embeddings, 3-axis rotary positions over
    half of each head (partial_rotary_factor 0.5); images of ~96 px take 3x3 merged patches."""
    tokenizer = train_tokenizer(SPECIAL, template, pad_token="<|endoftext|>", eos_token="<|endoftext|>")
    factor = 2 * PATCH  # a merged patch
    pixels = {"shortest_edge": 2 * factor * factor, "longest_edge": 2 * (4 * factor) ** 2}  # 2 frames of 1x1 to 4x4 merged patches
    image_processor = Glm4vImageProcessorPil(patch_size=PATCH, merge_size=2, temporal_patch_size=2, size=pixels)
    processor = image_only(Glm4vProcessor)(image_processor, tokenizer, chat_template=template)
    ids = {name: tokenizer.convert_tokens_to_ids(token) for name, token in [
        ("image_token_id", "<|image|>"), ("video_token_id", "<|video|>"),
        ("image_start_token_id", "<|begin_of_image|>"), ("image_end_token_id", "<|end_of_image|>"),
        ("video_start_token_id", "<|begin_of_video|>"), ("video_end_token_id", "<|end_of_video|>")]}  # fmt: skip
    config = getattr(transformers, f"{names}Config")(
        text_config={**TEXT, **text, "vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id},
        vision_config=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64, image_size=56,
                           patch_size=PATCH, spatial_merge_size=2, temporal_patch_size=2, initializer_range=INIT_RANGE),
        **ids,
    )  # fmt: skip
    torch.manual_seed(0)
    model = getattr(transformers, f"{names}ForConditionalGeneration")._from_config(config, dtype=torch.float32).eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.convert_tokens_to_ids(["<|endoftext|>", "<|user|>", "<|observation|>"])
    video = {"video_processor_type": "Glm4vVideoProcessor", "patch_size": PATCH, "temporal_patch_size": 2, "merge_size": 2}
    return save_folder(model, processor, folder, video_processor=video)


def glm4v(folder: Path) -> Path:
    """GLM-4.1V-9B-Thinking in small (a dense GLM-4 decoder)."""
    return _build(folder, "Glm4v", GLM41V_TEMPLATE, {})


def glm4v_moe(folder: Path) -> Path:
    """GLM-4.5V in small: a dense first layer, then a mixture of 4 routed experts (2 per token) and a shared one."""
    moe = dict(moe_intermediate_size=32, n_routed_experts=4, num_experts_per_tok=2, n_shared_experts=1, first_k_dense_replace=1)
    return _build(folder, "Glm4vMoe", GLM45V_TEMPLATE, moe)


BUILDERS = {"glm4v": glm4v, "glm4v_moe": glm4v_moe}
