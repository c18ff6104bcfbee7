"""A tiny InternVL3 model (transformers' InternVL: InternViT, pixel shuffle, a Qwen2 language model), laid out as
OpenGVLab's ``-hf`` checkpoints are (GotOcr2 image processor, InternVLProcessor, a video processor config).

The chat template is the one transformers' InternVL conversion script writes into those checkpoints
(``chat_template.json`` of OpenGVLab/InternVL3-1B-hf): each image part renders as ``<IMG_CONTEXT>\\n`` where it
stands; the processor then expands it to ``<img>`` + one ``<IMG_CONTEXT>`` per feature of each tile + ``</img>``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from tiny_vlms.common import INIT_RANGE, save_folder, train_tokenizer

TILE = 56
"""Side of one tile (the published 448, scaled down): the default tiling gives up to 12 tiles plus a thumbnail."""
PATCH = 14
TOKENS_PER_TILE = (TILE // PATCH) ** 2 // 4
"""Features per tile after the pixel shuffle (downsample ratio 0.5): 4 here, 256 in the published models."""

TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n'}}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}{{ '<IMG_CONTEXT>\n' }}{% elif content['type'] == 'video' %}{{ '<video>\n' }}"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{{'<|im_end|>\n'}}{% endfor %}{% if add_generation_prompt %}{{'<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL = {"context_image_token": "<IMG_CONTEXT>", "start_image_token": "<img>", "end_image_token": "</img>", "video_token": "<video>"}


def processor():
    """The processor of the tiny model (without its video processor, which needs torchvision; the folder names it)."""
    import transformers as tf

    from medsyn.eval.backends.loading import image_only

    tokenizer = train_tokenizer(["<|endoftext|>", "<|im_start|>", "<|im_end|>", *SPECIAL.values()], TEMPLATE,
                                pad_token="<|endoftext|>", eos_token="<|im_end|>", extra_special_tokens=SPECIAL)  # fmt: skip
    images = tf.GotOcr2ImageProcessorPil(size={"height": TILE, "width": TILE}, image_mean=[0.485, 0.456, 0.406],
                                         image_std=[0.229, 0.224, 0.225])  # fmt: skip
    return image_only(tf.InternVLProcessor)(images, tokenizer, image_seq_length=TOKENS_PER_TILE, chat_template=TEMPLATE)


def build(folder: Path) -> Path:
    """Write a tiny random InternVL3 model folder (OpenGVLab's -hf layout and chat template)."""
    import transformers as tf

    torch.manual_seed(0)
    made = processor()
    tokenizer = made.tokenizer
    vision = tf.InternVLVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                                     image_size=TILE, patch_size=PATCH, initializer_range=INIT_RANGE)  # fmt: skip
    text = tf.Qwen2Config(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=8192,
                          initializer_range=INIT_RANGE, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)  # fmt: skip
    config = tf.InternVLConfig(vision_config=vision, text_config=text, image_token_id=made.image_token_id,
                               image_seq_length=TOKENS_PER_TILE, initializer_range=INIT_RANGE)  # fmt: skip
    model = tf.InternVLForConditionalGeneration(config).eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    video = {"video_processor_type": "InternVLVideoProcessor", "size": {"height": TILE, "width": TILE}, "initial_shift": True}
    save_folder(model, made, folder, video_processor=video)
    config_file = folder / "processor_config.json"  # the image-only class does not save its own init arguments
    config_file.write_text(json.dumps({**json.loads(config_file.read_text()), "image_seq_length": TOKENS_PER_TILE}, indent=2))
    return folder


BUILDERS = {"internvl": build}
