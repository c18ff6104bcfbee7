"""A tiny Mistral 3 model (Mistral-Small-3.1/3.2): a Pixtral tower on variable-size images, 2×2 patches merged.

The chat template follows mistralai/Mistral-Small-3.1-24B-Instruct-2503's chat_template.json, written here from
the published file: ``<s>``, a default ``[SYSTEM_PROMPT]`` that names today's date (``strftime_now``), then
``[INST]`` + the user's content parts in order (``[IMG]`` for an image, in place) + ``[/INST]``. The tokenizer
adds ``<s>`` itself, as the published one does. The processor expands each ``[IMG]`` to rows of ``[IMG]``
ended by ``[IMG_BREAK]``, the last by ``[IMG_END]``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from tiny_vlms.common import INIT_RANGE, save_folder, train_tokenizer

LONGEST_EDGE = 40
PATCH = 4
MERGE = 2
"""Images fit in 40×40 pixels, cut to multiples of PATCH·MERGE = 8: up to 5×5 image tokens each."""

TEMPLATE = (
    '{%- set today = strftime_now("%Y-%m-%d") %}\n'
    '{%- set default_system_message = "You are Mistral Small 3.1, a Large Language Model (LLM) created by Mistral AI, '
    'a French startup headquartered in Paris.\\nYou power an AI assistant called Le Chat.\\nYour knowledge base was '
    'last updated on 2023-10-01.\\nThe current date is " + today + ".\\n\\nWhen you\'re not sure about some information, '
    'you say that you don\'t have the information and don\'t make up anything." %}\n'
    "\n"
    "{{- bos_token }}\n"
    "\n"
    "{%- if messages[0]['role'] == 'system' %}\n"
    "    {%- if messages[0]['content'] is string %}\n"
    "        {%- set system_message = messages[0]['content'] %}\n"
    "    {%- else %}\n"
    "        {%- set system_message = messages[0]['content'][0]['text'] %}\n"
    "    {%- endif %}\n"
    "    {%- set loop_messages = messages[1:] %}\n"
    "{%- else %}\n"
    "    {%- set system_message = default_system_message %}\n"
    "    {%- set loop_messages = messages %}\n"
    "{%- endif %}\n"
    "{{- '[SYSTEM_PROMPT]' + system_message + '[/SYSTEM_PROMPT]' }}\n"
    "\n"
    "{%- for message in loop_messages %}\n"
    "    {%- if message['role'] == 'user' %}\n"
    "        {%- if message['content'] is string %}\n"
    "            {{- '[INST]' + message['content'] + '[/INST]' }}\n"
    "        {%- else %}\n"
    "            {{- '[INST]' }}\n"
    "            {%- for block in message['content'] %}\n"
    "                {%- if block['type'] == 'text' %}\n"
    "                    {{- block['text'] }}\n"
    "                {%- elif block['type'] in ['image', 'image_url'] %}\n"
    "                    {{- '[IMG]' }}\n"
    "                {%- else %}\n"
    "                    {{- raise_exception('Only text and image blocks are supported in message content!') }}\n"
    "                {%- endif %}\n"
    "            {%- endfor %}\n"
    "            {{- '[/INST]' }}\n"
    "        {%- endif %}\n"
    "    {%- elif message['role'] == 'system' %}\n"
    "        {{- '[SYSTEM_PROMPT]' + message['content'] + '[/SYSTEM_PROMPT]' }}\n"
    "    {%- elif message['role'] == 'assistant' %}\n"
    "        {%- if message['content'] is string %}\n"
    "            {{- message['content'] + eos_token }}\n"
    "        {%- else %}\n"
    "            {{- message['content'][0]['text'] + eos_token }}\n"
    "        {%- endif %}\n"
    "    {%- else %}\n"
    "        {{- raise_exception('Only user, system and assistant roles are supported!') }}\n"
    "    {%- endif %}\n"
    "{%- endfor %}"
)


def processor():
    """The processor of the tiny model: PixtralProcessor (built as the family loads it, without torchvision)."""
    import transformers as tf

    from medsyn.eval.backends.families.mistral3 import pixtral_processor_class

    tokenizer = train_tokenizer(
        ["<unk>", "<s>", "</s>", "[INST]", "[/INST]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]", "[IMG]", "[IMG_BREAK]", "[IMG_END]",
         "<pad>"], TEMPLATE, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>", add_bos_token=True,
    )  # fmt: skip
    images = tf.PixtralImageProcessorPil(size={"longest_edge": LONGEST_EDGE}, patch_size={"height": PATCH, "width": PATCH})
    return pixtral_processor_class()(images, tokenizer, patch_size=PATCH, spatial_merge_size=MERGE, chat_template=TEMPLATE)


def build(folder: Path) -> Path:
    """Write a tiny random Mistral 3 model folder (Mistral-Small-3.1 layout and chat template)."""
    import transformers as tf

    torch.manual_seed(0)
    made = processor()
    tokenizer = made.tokenizer
    text = tf.MistralConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, max_position_embeddings=8192, initializer_range=INIT_RANGE,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )  # fmt: skip
    vision = tf.PixtralVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                                    image_size=LONGEST_EDGE, patch_size=PATCH, initializer_range=INIT_RANGE)  # fmt: skip
    config = tf.Mistral3Config(vision_config=vision, text_config=text, image_token_index=made.image_token_id,
                               spatial_merge_size=MERGE, vision_feature_layer=-1, tie_word_embeddings=False)  # fmt: skip
    model = tf.Mistral3ForConditionalGeneration(config).eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return save_folder(model, made, folder)


BUILDERS = {"mistral3": build}
