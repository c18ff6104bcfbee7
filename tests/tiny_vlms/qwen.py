"""Tiny Qwen2-VL, Qwen2.5-VL and Qwen3-VL: each family's own config, model and processor classes, the chat template
its published Instruct checkpoints ship, and the video processor config they ship (so loading takes the image-only
fallback without torchvision)."""

from __future__ import annotations

from pathlib import Path

import torch
import transformers
from tiny_vlms.common import INIT_RANGE, save_folder, train_tokenizer
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

from medsyn.eval.backends.loading import image_only

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]

QWEN2_VL_TEMPLATE = (  # Qwen2-VL-7B-Instruct's and Qwen2.5-VL-7B-Instruct's chat_template.json, verbatim
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n{% else %}"
    "{% for content in message['content'] %}{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}"
    "<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

QWEN3_VL_TEMPLATE = (  # Qwen3-VL-8B-Instruct's chat_template.json, less its tools and tool-response branches
    "{%- if messages[0].role == 'system' %}{{- '<|im_start|>system\\n' }}{%- if messages[0].content is string %}"
    "{{- messages[0].content }}{%- else %}{%- for content in messages[0].content %}{%- if 'text' in content %}"
    "{{- content.text }}{%- endif %}{%- endfor %}{%- endif %}{{- '<|im_end|>\\n' }}{%- endif %}"
    "{%- set image_count = namespace(value=0) %}{%- set video_count = namespace(value=0) %}"
    "{%- for message in messages %}{%- if message.role == \"user\" %}{{- '<|im_start|>' + message.role + '\\n' }}"
    "{%- if message.content is string %}{{- message.content }}{%- else %}{%- for content in message.content %}"
    "{%- if content.type == 'image' or 'image' in content or 'image_url' in content %}"
    "{%- set image_count.value = image_count.value + 1 %}{%- if add_vision_id %}Picture {{ image_count.value }}: {% endif -%}"
    "<|vision_start|><|image_pad|><|vision_end|>{%- elif content.type == 'video' or 'video' in content %}"
    "{%- set video_count.value = video_count.value + 1 %}{%- if add_vision_id %}Video {{ video_count.value }}: {% endif -%}"
    "<|vision_start|><|video_pad|><|vision_end|>{%- elif 'text' in content %}{{- content.text }}{%- endif %}{%- endfor %}"
    "{%- endif %}{{- '<|im_end|>\\n' }}{%- elif message.role == \"assistant\" %}{{- '<|im_start|>' + message.role + '\\n' }}"
    "{%- if message.content is string %}{{- message.content }}{%- else %}{%- for content_item in message.content %}"
    "{%- if 'text' in content_item %}{{- content_item.text }}{%- endif %}{%- endfor %}{%- endif %}{{- '<|im_end|>\\n' }}"
    "{%- endif %}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

TEXT = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            max_position_embeddings=4096, initializer_range=INIT_RANGE)  # fmt: skip
MROPE = [2, 3, 3]  # halves of the head dimension (16) per axis: temporal, height, width


def _build(folder: Path, model_type: str, *, template: str, patch: int, text: dict, vision: dict, video_processor: str,
           special: list[str] = SPECIAL, image: dict | None = None) -> Path:  # fmt: skip
    """The shared recipe: tokenizer, processor (images of 96 px take 3x3 merged patches), config, seeded random weights."""
    tokenizer = train_tokenizer(special, template, pad_token="<|endoftext|>", eos_token="<|im_end|>")
    factor = 2 * patch  # a merged patch
    grid = {"patch_size": patch, "merge_size": 2, "temporal_patch_size": 2}
    image_processor = Qwen2VLImageProcessorPil(**grid, min_pixels=factor**2, max_pixels=(4 * factor) ** 2, **(image or {}))
    names = {"qwen2_vl": "Qwen2VL", "qwen2_5_vl": "Qwen2_5_VL", "qwen3_vl": "Qwen3VL"}[model_type]
    processor = image_only(getattr(transformers, f"{names}Processor"))(image_processor, tokenizer, chat_template=template)
    ids = {name: tokenizer.convert_tokens_to_ids(token) for name, token in [
        ("image_token_id", "<|image_pad|>"), ("video_token_id", "<|video_pad|>"),
        ("vision_start_token_id", "<|vision_start|>"), ("vision_end_token_id", "<|vision_end|>")]}  # fmt: skip
    config = getattr(transformers, f"{names}Config")(
        text_config={**text, "vocab_size": len(tokenizer), "bos_token_id": None, "eos_token_id": tokenizer.eos_token_id,
                     "pad_token_id": tokenizer.pad_token_id},
        vision_config={**vision, "patch_size": patch, "spatial_merge_size": 2, "temporal_patch_size": 2,
                       "initializer_range": INIT_RANGE},
        **ids,
    )  # fmt: skip
    torch.manual_seed(0)
    model = getattr(transformers, f"{names}ForConditionalGeneration")._from_config(config, dtype=torch.float32).eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = [tokenizer.eos_token_id, tokenizer.pad_token_id]
    return save_folder(model, processor, folder, video_processor={"video_processor_type": video_processor, **grid})


def qwen2_vl(folder: Path) -> Path:
    """Qwen2-VL: 14 px patches, full attention in the vision tower, Qwen2-VL-7B-Instruct's template."""
    return _build(folder, "qwen2_vl", template=QWEN2_VL_TEMPLATE, patch=14,
                  text={**TEXT, "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": MROPE}},
                  vision=dict(depth=2, embed_dim=32, num_heads=2, mlp_ratio=2, hidden_size=64),
                  video_processor="Qwen2VLVideoProcessor")  # fmt: skip


def qwen2_5_vl(folder: Path) -> Path:
    """Qwen2.5-VL: windowed vision attention (one full-attention block), an unaligned vision MLP width (60)."""
    return _build(folder, "qwen2_5_vl", template=QWEN2_VL_TEMPLATE, patch=14,
                  text={**TEXT, "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": MROPE}},
                  vision=dict(depth=2, hidden_size=32, intermediate_size=60, num_heads=2, out_hidden_size=64,
                              window_size=112, fullatt_block_indexes=[1]),
                  video_processor="Qwen2VLVideoProcessor")  # fmt: skip


def qwen3_vl(folder: Path) -> Path:
    """Qwen3-VL: 16 px patches, interpolated position embeddings, deepstack features from both vision blocks into
    both text layers, interleaved 3-axis rotary positions, Qwen3-VL-8B-Instruct's template."""
    return _build(folder, "qwen3_vl", template=QWEN3_VL_TEMPLATE, patch=16, special=[*SPECIAL, "<think>", "</think>"],
                  image={"image_mean": [0.5] * 3, "image_std": [0.5] * 3},
                  text={**TEXT, "head_dim": 16, "rope_parameters": {"rope_type": "default", "rope_theta": 5e6,
                                                                    "mrope_section": MROPE, "mrope_interleaved": True}},
                  vision=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64,
                              num_position_embeddings=64, deepstack_visual_indexes=[0, 1]),
                  video_processor="Qwen3VLVideoProcessor")  # fmt: skip


BUILDERS = {"qwen2_vl": qwen2_vl, "qwen2_5_vl": qwen2_5_vl, "qwen3_vl": qwen3_vl}
