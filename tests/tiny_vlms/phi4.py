"""A tiny Phi-4-multimodal (``phi4_multimodal``): Phi4MultimodalForCausalLM with its vision and audio towers.

The family is refused (:mod:`medsyn.eval.backends.families.phi4`); this folder is what the refusal is tested on,
laid out as the transformers-format checkpoint (microsoft/Phi-4-multimodal-instruct, refs/pr/94) lays it out.
Its image processor exists only as a torchvision backend in transformers 5.25, so it cannot be built here: its
config is written as JSON, as the checkpoint ships it. The chat template is written from that checkpoint's
``chat_template`` (no copy was at hand): each ``{"type": "image"}`` item is one ``<|image|>`` where it stands,
inside ``<|user|>...<|end|>``, and the generation prompt is ``<|assistant|>``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from tiny_vlms.common import INIT_RANGE, train_tokenizer

CROP = 28
"""Side of each crop (the published 448, scaled down) and of the vision tower's input."""
PATCH = 14

TEMPLATE = (
    "{% for message in messages %}{{ '<|' + message['role'] + '|>' }}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}{{ '<|image|>' }}{% elif content['type'] == 'audio' %}{{ '<|audio|>' }}"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}{{ '<|end|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% else %}{{ eos_token }}{% endif %}"
)
SPECIAL = ["<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>", "<|image|>", "<|audio|>"]


def build(folder: Path) -> Path:
    """Write the tiny Phi-4-multimodal folder (weights, config, tokenizer, processor configs) and return it."""
    from transformers import GenerationConfig, Phi4MultimodalConfig, Phi4MultimodalFeatureExtractor, Phi4MultimodalForCausalLM

    folder = Path(folder)
    text = "<|endoftext|>"
    tokenizer = train_tokenizer(SPECIAL, TEMPLATE, bos_token=text, eos_token=text, pad_token=text,
                                extra_special_tokens={"image_token": "<|image|>", "audio_token": "<|audio|>"})  # fmt: skip
    end = tokenizer.convert_tokens_to_ids("<|end|>")
    config = Phi4MultimodalConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=4096, original_max_position_embeddings=4096,
        initializer_range=INIT_RANGE, bos_token_id=tokenizer.bos_token_id, eos_token_id=[tokenizer.eos_token_id, end],
        pad_token_id=tokenizer.pad_token_id,
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=CROP,
                           crop_size=CROP, patch_size=PATCH, image_token_id=tokenizer.image_token_id),
        audio_config=dict(hidden_size=32, intermediate_size=64, num_blocks=1, num_attention_heads=2, ext_pw_out_channel=32,
                          depthwise_separable_out_channel=32, nemo_conv_channels=32, audio_token_id=tokenizer.audio_token_id),
    )  # fmt: skip
    torch.manual_seed(0)
    model = Phi4MultimodalForCausalLM(config).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=config.bos_token_id, eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id
    )
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    image_processor = {"image_processor_type": "Phi4MultimodalImageProcessor", "size": {"height": CROP, "width": CROP},
                       "patch_size": PATCH, "dynamic_hd": 4, "image_mean": [0.5] * 3, "image_std": [0.5] * 3}  # fmt: skip
    processor = {"processor_class": "Phi4MultimodalProcessor", "image_processor": image_processor,
                 "audio_processor": Phi4MultimodalFeatureExtractor().to_dict()}  # fmt: skip
    (folder / "processor_config.json").write_text(json.dumps(processor, indent=2))
    return folder


BUILDERS = {"phi4_multimodal": build}
