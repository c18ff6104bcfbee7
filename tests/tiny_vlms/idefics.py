"""Tiny Idefics3 and SmolVLM(2) models: a SigLIP-style vision tower whose 32 px tiles (image splitting on, as
published) pass a pixel-shuffle connector into a Llama text model, 4 placeholder tokens per tile.

With ``size`` 96 and tiles of 32 px, a square image becomes 3×3 tiles and the global view (10 tiles), the
matrix's 120×72 image 2×3 tiles and the global view (7): tile counts differ from image counts, and per image.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tiny_vlms.common import INIT_RANGE, save_folder, train_tokenizer

TILE = 32
PATCH = 8
SCALE = 2
IMAGE_SEQ_LEN = (TILE // PATCH) ** 2 // SCALE**2
ROW_COL = [f"<row_{i + 1}_col_{j + 1}>" for i in range(6) for j in range(6)]
IMAGE_TOKENS = ["<fake_token_around_image>", "<image>", "<end_of_utterance>", "<global-img>", *ROW_COL]

IDEFICS3_TEMPLATE = (  # HuggingFaceM4/Idefics3-8B-Llama3 processor_config.json: content parts in order
    "<|begin_of_text|>{% for message in messages %}{{message['role'].capitalize()}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)
SMOLVLM_TEMPLATE = (  # HuggingFaceTB/SmolVLM2-2.2B-Instruct chat_template.json: content parts in order
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% elif line['type'] == 'video' %}{{ '<video>' }}{% endif %}"
    "{% endfor %}<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)


def _image_processor(cls):
    """The family's image processor (transformers falls back to its PIL backend without torchvision), splitting on."""
    return cls(size={"longest_edge": 3 * TILE}, max_image_size={"longest_edge": TILE}, do_image_splitting=True)


def _config(config_cls, tokenizer):
    text = dict(vocab_size=len(tokenizer), hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, max_position_embeddings=8192, initializer_range=INIT_RANGE,
                pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=None)  # fmt: skip
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=TILE,
                  patch_size=PATCH, initializer_range=INIT_RANGE)  # fmt: skip
    return config_cls(text_config=text, vision_config=vision, scale_factor=SCALE, initializer_range=INIT_RANGE,
                      image_token_id=tokenizer.convert_tokens_to_ids("<image>"), pad_token_id=tokenizer.pad_token_id)  # fmt: skip


def _save(model_cls, config, processor, folder: Path, **kwargs) -> Path:
    torch.manual_seed(0)
    model = model_cls(config).eval()
    model.generation_config.pad_token_id = processor.tokenizer.pad_token_id
    model.generation_config.eos_token_id = processor.tokenizer.eos_token_id
    return save_folder(model, processor, folder, **kwargs)


def idefics3(folder: Path) -> Path:
    """Idefics3 (Idefics3-8B-Llama3, SmolVLM v1): Idefics3Processor, no video processor."""
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration, Idefics3ImageProcessor, Idefics3Processor

    tokenizer = train_tokenizer(["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", *IMAGE_TOKENS], IDEFICS3_TEMPLATE,
                                bos_token="<|begin_of_text|>", eos_token="<end_of_utterance>", pad_token="<|reserved_special_token_0|>")  # fmt: skip
    processor = Idefics3Processor(_image_processor(Idefics3ImageProcessor), tokenizer, image_seq_len=IMAGE_SEQ_LEN, chat_template=IDEFICS3_TEMPLATE)
    return _save(Idefics3ForConditionalGeneration, _config(Idefics3Config, tokenizer), processor, folder)


def smolvlm(folder: Path) -> Path:
    """SmolVLM2: SmolVLMProcessor with the video processor config the published checkpoints ship."""
    from transformers import SmolVLMConfig, SmolVLMForConditionalGeneration, SmolVLMImageProcessor

    from medsyn.eval.backends.families.idefics import image_only_smolvlm_processor

    tokenizer = train_tokenizer(["<|im_start|>", "<|im_end|>", "<video>", *IMAGE_TOKENS], SMOLVLM_TEMPLATE,
                                eos_token="<end_of_utterance>", pad_token="<|im_end|>")  # fmt: skip
    processor = image_only_smolvlm_processor()(_image_processor(SmolVLMImageProcessor), tokenizer, image_seq_len=IMAGE_SEQ_LEN, chat_template=SMOLVLM_TEMPLATE)
    video = {"video_processor_type": "SmolVLMVideoProcessor", "size": {"longest_edge": 3 * TILE}, "max_image_size": {"longest_edge": TILE},
             "fps": 1, "num_frames": 8, "do_image_splitting": False}  # fmt: skip
    return _save(SmolVLMForConditionalGeneration, _config(SmolVLMConfig, tokenizer), processor, folder, video_processor=video)


BUILDERS = {"idefics3": idefics3, "smolvlm": smolvlm}
