"""A tiny Llama 3.2 Vision model (transformers' Mllama: a tiled vision encoder whose features the language model
reads through cross-attention layers), laid out as meta-llama/Llama-3.2-11B-Vision-Instruct is.

The chat template is that checkpoint's ``chat_template.json`` (Llama 3.1's, tools left out, which MEDSYN never
passes): content parts in order, each image as ``<|image|>`` where it stands; a system turn with today's date
only when the conversation has no image. The tokenizer adds ``<|begin_of_text|>`` itself, as Llama 3's does.
"""

from __future__ import annotations

from pathlib import Path

import torch

from tiny_vlms.common import INIT_RANGE, save_folder, train_tokenizer

TILE = 28
"""Side of one tile (the published 560, scaled down); an image takes up to 4 tiles."""
PATCH = 14

TEMPLATE = (
    "{{- bos_token }}\n{%- if not date_string is defined %}\n    {%- if strftime_now is defined %}\n"
    "        {%- set date_string = strftime_now(\"%d %b %Y\") %}\n    {%- else %}\n"
    "        {%- set date_string = \"26 Jul 2024\" %}\n    {%- endif %}\n{%- endif %}\n\n"
    "{%- if messages[0]['role'] == 'system' %}\n    {%- set system_message = messages[0]['content']|trim %}\n"
    "    {%- set messages = messages[1:] %}\n{%- else %}\n    {%- set system_message = \"\" %}\n{%- endif %}\n\n"
    "{#- Find out if there are any images #}\n{% set image_ns = namespace(has_images=false) %}      \n"
    "{%- for message in messages %}\n    {%- for content in message['content'] %}\n"
    "        {%- if content['type'] == 'image' %}\n            {%- set image_ns.has_images = true %}\n"
    "        {%- endif %}\n    {%- endfor %}\n{%- endfor %}\n\n"
    "{#- Error out if there are images and system message #}\n"
    "{%- if image_ns.has_images and not system_message == \"\" %}\n"
    "    {{- raise_exception(\"Prompting with images is incompatible with system messages.\") }}\n{%- endif %}\n\n"
    "{#- System message if there are no images #}\n{%- if not image_ns.has_images %}\n"
    "    {{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}\n"
    "    {{- \"Cutting Knowledge Date: December 2023\\n\" }}\n    {{- \"Today Date: \" + date_string + \"\\n\\n\" }}\n"
    "    {{- system_message }}\n    {{- \"<|eot_id|>\" }}\n{%- endif %}\n\n"
    "{%- for message in messages %}\n"
    "    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}\n"
    "        {%- if message['content'] is string %}\n            {{- message['content'] }}\n        {%- else %}\n"
    "            {%- for content in message['content'] %}\n                {%- if content['type'] == 'image' %}\n"
    "                    {{- '<|image|>' }}\n                {%- elif content['type'] == 'text' %}\n"
    "                    {{- content['text'] }}\n                {%- endif %}\n            {%- endfor %}\n"
    "        {%- endif %}\n        {{- '<|eot_id|>' }}\n{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}\n{%- endif %}\n"
)
SPECIAL = ["<|begin_of_text|>", "<|end_of_text|>", "<|finetune_right_pad_id|>", "<|start_header_id|>", "<|end_header_id|>",
           "<|eot_id|>", "<|python_tag|>", "<|image|>"]  # fmt: skip


def processor():
    """The processor of the tiny model: Llama 3's special tokens (the tokenizer prepends ``<|begin_of_text|>``)."""
    import transformers as tf
    from tokenizers.processors import TemplateProcessing

    tokenizer = train_tokenizer(SPECIAL, TEMPLATE, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>",
                                pad_token="<|finetune_right_pad_id|>")  # fmt: skip
    bos = ("<|begin_of_text|>", tokenizer.bos_token_id)
    tokenizer.backend_tokenizer.post_processor = TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B", special_tokens=[bos])
    images = tf.MllamaImageProcessorPil(size={"height": TILE, "width": TILE}, max_image_tiles=4)
    return tf.MllamaProcessor(images, tokenizer, chat_template=TEMPLATE)


def build(folder: Path) -> Path:
    """Write a tiny random Llama 3.2 Vision model folder (meta-llama's layout and chat template)."""
    import transformers as tf

    torch.manual_seed(0)
    made = processor()
    tokenizer = made.tokenizer
    vision = tf.MllamaVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_global_layers=1, attention_heads=2,
                                   image_size=TILE, patch_size=PATCH, max_num_tiles=4, intermediate_layers_indices=[1],
                                   vision_output_dim=64, initializer_range=INIT_RANGE)  # fmt: skip
    text = tf.MllamaTextConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=3,
                               num_attention_heads=4, num_key_value_heads=2, cross_attention_layers=[1], max_position_embeddings=8192,
                               initializer_range=INIT_RANGE, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                               pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    config = tf.MllamaConfig(vision_config=vision, text_config=text, image_token_index=made.image_token_id)
    model = tf.MllamaForConditionalGeneration(config).eval()
    with torch.no_grad():  # the cross-attention and tile-embedding gates start at 0 (images unseen); trained ones are not
        for name, parameter in model.named_parameters():
            if name.rsplit(".", 1)[-1].endswith("gate"):
                parameter.fill_(1.0)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return save_folder(model, made, folder)


BUILDERS = {"mllama": build}
