"""Tiny DeepSeek-VL: each model type's own config, model and processor classes (a SigLIP tower, an MLP aligner and a
Llama decoder; a fixed number of placeholder tokens per image) with the chat template deepseek-vl-*-chat ships.
``deepseek_vl_hybrid`` (the 7B) adds a SAM tower on a high-resolution copy of each image."""

from __future__ import annotations

from pathlib import Path

import torch
import transformers
from tiny_vlms.common import INIT_RANGE, save_folder, train_tokenizer
from tokenizers import processors

EOS = "<\uff5cend\u2581of\u2581sentence\uff5c>"
BOS = "<\uff5cbegin\u2581of\u2581sentence\uff5c>"
IMAGE = "<image_placeholder>"

DEEPSEEK_VL_TEMPLATE = (  # deepseek-community/deepseek-vl-{1.3b,7b}-chat's chat template: each image in place
    "{% set seps = ['\n\n', '" + EOS + "'] %}{% set i = 0 %}You are a helpful language and vision assistant. You are able "
    "to understand the visual content that the user provides, and assist the user with a variety of tasks using natural "
    "language.\n\n{% for message in messages %}{% if message['role']|lower == 'user' %}User: {% elif message['role']|lower "
    "== 'assistant' %}Assistant:{% if not (loop.last and not add_generation_prompt and message['content'][0]['type']=='text' "
    "and message['content'][0]['text']=='') %} {% endif %}{% else %}{{ message['role'].capitalize() }}: {% endif %}"
    "{% for content in message['content'] %}{% if content['type'] == 'image' %}" + IMAGE + "{% elif content['type'] == "
    "'text' %}{% set text = content['text'] %}{% if loop.first %}{% set text = text.lstrip() %}{% endif %}{% if loop.last %}"
    "{% set text = text.rstrip() %}{% endif %}{% if not loop.first and message['content'][loop.index0-1]['type'] == 'text' %}"
    "{{ ' ' + text }}{% else %}{{ text }}{% endif %}{% endif %}{% endfor %}{% if not loop.last or add_generation_prompt %}"
    "{% if message['role']|lower == 'user' %}{{ seps[0] }}{% else %}{{ seps[1] }}{% endif %}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)

IMAGE_SIZE, PATCH = 32, 8  # 16 image tokens per image (the published ones: 384 px, 16 px patches, 576 tokens)
TEXT = dict(model_type="llama", hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=4, max_position_embeddings=4096, initializer_range=INIT_RANGE)  # fmt: skip
SIGLIP = dict(model_type="siglip_vision_model", hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
              image_size=IMAGE_SIZE, patch_size=PATCH, vision_use_head=False)  # fmt: skip


def _build(names: str, image_processor_kwargs: dict, **vision):
    """The shared recipe: a tokenizer that prepends BOS (as the published LlamaTokenizerFast does), then the processor,
    config and seeded random weights of ``transformers.{names}*``; (model, processor)."""
    tokenizer = train_tokenizer([EOS, BOS, IMAGE], DEEPSEEK_VL_TEMPLATE, pad_token=EOS, eos_token=EOS, bos_token=BOS,
                                extra_special_tokens={"image_token": IMAGE})  # fmt: skip
    tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, tokenizer.bos_token_id)]
    )
    image_processor = getattr(transformers, f"{names}ImageProcessorPil")(
        size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}, min_size=4, image_mean=[0.5] * 3, image_std=[0.5] * 3,
        **image_processor_kwargs,
    )
    processor = getattr(transformers, f"{names}Processor")(image_processor, tokenizer, chat_template=DEEPSEEK_VL_TEMPLATE,
                                                           num_image_tokens=(IMAGE_SIZE // PATCH) ** 2)  # fmt: skip
    text = {**TEXT, "vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id,
            "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id}  # fmt: skip
    image_token_id = tokenizer.convert_tokens_to_ids(IMAGE)
    config = getattr(transformers, f"{names}Config")(text_config=text, **vision, image_token_id=image_token_id)
    torch.manual_seed(0)
    model = getattr(transformers, f"{names}ForConditionalGeneration")._from_config(config, dtype=torch.float32).eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model, processor


def deepseek_vl(folder: Path) -> Path:
    """DeepSeek-VL 1.3B-chat in small: images padded to a square of 32 px, 4x4 SigLIP patches, no vision head."""
    return save_folder(*_build("DeepseekVL", {}, vision_config=SIGLIP), folder)


def deepseek_vl_hybrid(folder: Path) -> Path:
    """DeepSeek-VL 7B-chat in small: the SigLIP branch above plus a SAM branch on a 64 px copy (windowed and global
    attention), both aligned into the same 16 tokens per image."""
    sam = dict(model_type="sam_vision_model", hidden_size=32, output_channels=16, num_hidden_layers=2, num_attention_heads=2,
               image_size=2 * IMAGE_SIZE, patch_size=PATCH, window_size=4, global_attn_indexes=[1], mlp_dim=64,
               num_pos_feats=16, initializer_range=INIT_RANGE)  # fmt: skip
    size = {"height": 2 * IMAGE_SIZE, "width": 2 * IMAGE_SIZE}
    model, processor = _build("DeepseekVLHybrid", {"high_res_size": size}, vision_config=SIGLIP, high_res_vision_config=sam)
    model.model.high_res_vision_alpha.data.fill_(0.5)  # initialized to 0, which would leave the SAM neck unused
    return save_folder(model, processor, folder)


BUILDERS = {"deepseek_vl": deepseek_vl, "deepseek_vl_hybrid": deepseek_vl_hybrid}
