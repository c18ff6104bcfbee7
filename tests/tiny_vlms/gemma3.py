"""A tiny Gemma 3 model (MedGemma's base): a SigLIP tower, average-pooled to a fixed number of soft tokens per image.

The chat template is that of google/gemma-3-4b-it (its chat_template.json, which MedGemma ships unchanged),
written here from the published file: ``{{ bos_token }}``, ``<start_of_turn>user\\n ... <end_of_turn>\\n``,
``<start_of_image>`` for each image in place, every text part trimmed. The tokenizer adds ``<bos>`` itself, as
the published one does (``add_bos_token``), so a prompt rendered to text holds one ``<bos>`` already.
"""

from __future__ import annotations

from pathlib import Path

import torch

from tiny_vlms.common import INIT_RANGE, save_folder, train_tokenizer

IMAGE = 32
PATCH = 8
SOFT_TOKENS = 4
"""Soft tokens per image (the published models: 256): the 4×4 patch grid average-pooled to 2×2."""

TEMPLATE = (
    "{{ bos_token }}\n"
    "{%- if messages[0]['role'] == 'system' -%}\n"
    "    {%- if messages[0]['content'] is string -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}\n"
    "    {%- else -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}\n"
    "    {%- endif -%}\n"
    "    {%- set loop_messages = messages[1:] -%}\n"
    "{%- else -%}\n"
    "    {%- set first_user_prefix = \"\" -%}\n"
    "    {%- set loop_messages = messages -%}\n"
    "{%- endif -%}\n"
    "{%- for message in loop_messages -%}\n"
    "    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}\n"
    "        {{ raise_exception(\"Conversation roles must alternate user/assistant/user/assistant/...\") }}\n"
    "    {%- endif -%}\n"
    "    {%- if (message['role'] == 'assistant') -%}\n"
    "        {%- set role = \"model\" -%}\n"
    "    {%- else -%}\n"
    "        {%- set role = message['role'] -%}\n"
    "    {%- endif -%}\n"
    "    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else \"\") }}\n"
    "    {%- if message['content'] is string -%}\n"
    "        {{ message['content'] | trim }}\n"
    "    {%- elif message['content'] is iterable -%}\n"
    "        {%- for item in message['content'] -%}\n"
    "            {%- if item['type'] == 'image' -%}\n"
    "                {{ '<start_of_image>' }}\n"
    "            {%- elif item['type'] == 'text' -%}\n"
    "                {{ item['text'] | trim }}\n"
    "            {%- endif -%}\n"
    "        {%- endfor -%}\n"
    "    {%- else -%}\n"
    "        {{ raise_exception(\"Invalid content type\") }}\n"
    "    {%- endif -%}\n"
    "    {{ '<end_of_turn>\n' }}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "    {{'<start_of_turn>model\n'}}\n"
    "{%- endif -%}\n"
)


def processor():
    """The processor of the tiny model (Gemma3Processor: SigLIP image processor, Gemma's special tokens)."""
    import transformers as tf

    image_tokens = {"boi_token": "<start_of_image>", "eoi_token": "<end_of_image>", "image_token": "<image_soft_token>"}
    tokenizer = train_tokenizer(
        ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>", *image_tokens.values()], TEMPLATE,
        pad_token="<pad>", eos_token="<eos>", bos_token="<bos>", unk_token="<unk>", add_bos_token=True,
        extra_special_tokens=image_tokens,
    )  # fmt: skip
    images = tf.Gemma3ImageProcessorPil(size={"height": IMAGE, "width": IMAGE}, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    return tf.Gemma3Processor(images, tokenizer, chat_template=TEMPLATE, image_seq_length=SOFT_TOKENS)


def build(folder: Path) -> Path:
    """Write a tiny random Gemma 3 model folder (google/gemma-3 layout and chat template)."""
    import transformers as tf

    torch.manual_seed(0)
    made = processor()
    tokenizer = made.tokenizer
    text = tf.Gemma3TextConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, query_pre_attn_scalar=16, sliding_window=64,
        layer_types=["sliding_attention", "full_attention"], max_position_embeddings=8192, initializer_range=INIT_RANGE,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )  # fmt: skip
    vision = tf.SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                                   image_size=IMAGE, patch_size=PATCH, vision_use_head=False)  # fmt: skip
    config = tf.Gemma3Config(
        text_config=text, vision_config=vision, mm_tokens_per_image=SOFT_TOKENS, initializer_range=INIT_RANGE,
        boi_token_index=tokenizer.boi_token_id, eoi_token_index=tokenizer.convert_tokens_to_ids("<end_of_image>"),
        image_token_index=tokenizer.image_token_id,
    )  # fmt: skip
    model = tf.Gemma3ForConditionalGeneration(config).eval()
    projection = model.model.multi_modal_projector.mm_input_projection_weight  # initialized to zeros: images would not count
    torch.nn.init.normal_(projection, std=INIT_RANGE)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = [tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<end_of_turn>")]
    return save_folder(model, made, folder)


BUILDERS = {"gemma3": build}
