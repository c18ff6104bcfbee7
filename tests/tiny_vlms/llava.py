"""Tiny Llava (1.5), LLaVA-Next and LLaVA-OneVision models, with the chat templates llava-hf's checkpoints ship.

The templates are those of llava-hf/llava-1.5-7b-hf, llava-hf/llava-v1.6-mistral-7b-hf and
llava-hf/llava-onevision-qwen2-7b-ov-hf (their chat_template.json): each renders all images of a turn first,
then its text, so the backend renders images inline.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tiny_vlms.common import INIT_RANGE, save_folder, train_tokenizer

from medsyn.eval.backends.loading import image_only

IMAGE = 32
"""Side of the vision tower's input (and of each anyres tile)."""
PATCH = 8
PINPOINTS = [[32, 32], [32, 64], [64, 32], [64, 64], [32, 96], [96, 32]]
"""Anyres resolutions, as the published lists, scaled to :data:`IMAGE`: up to 3 tiles besides the base image."""

LLAVA_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': '}}{% endif %}"
    "{# Render all images first #}{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}"
    "{{ '<image>\n' }}{% endfor %}"
    "{# Render all text next #}{% if message['role'] != 'assistant' %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' '}}{% endfor %}"
    "{% else %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{% generation %}{{ content['text'] + ' '}}{% endgeneration %}{% endfor %}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)
LLAVA_NEXT_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'system' %}"
    "{{ '<<SYS>>\n' + message['content'][0]['text'] + '\n<</SYS>>\n\n' }}"
    "{% elif message['role'] == 'user' %}{{ '[INST] ' }}"
    "{# Render all images first #}{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}"
    "{{ '<image>\n' }}{% endfor %}"
    "{# Render all text next #}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{{ content['text'] }}{% endfor %}{{' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'][0]['text'] + '</s> '}}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
)
ONEVISION_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + ' '}}"
    "{# Render all images first #}{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}"
    "{{ '<image>' }}{% endfor %}"
    "{# Render all video then #}{% for content in message['content'] | selectattr('type', 'equalto', 'video') %}"
    "{{ '<video>' }}{% endfor %}"
    "{# Render all text next #}{% if message['role'] != 'assistant' %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ '\n' + content['text'] }}{% endfor %}"
    "{% else %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{% generation %}{{ '\n' + content['text'] }}{% endgeneration %}{% endfor %}{% endif %}"
    "{{'<|im_end|>'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
TEMPLATES = {"llava": LLAVA_TEMPLATE, "llava_next": LLAVA_NEXT_TEMPLATE, "llava_onevision": ONEVISION_TEMPLATE}


def _tokenizer(model_type: str):
    template = TEMPLATES[model_type]
    if model_type == "llava_onevision":  # Qwen2's tokens
        return train_tokenizer(["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<video>"], template,
                               pad_token="<|endoftext|>", eos_token="<|im_end|>",
                               extra_special_tokens={"image_token": "<image>", "video_token": "<video>"})  # fmt: skip
    return train_tokenizer(["<unk>", "<s>", "</s>", "<pad>", "<image>"], template, pad_token="<pad>", bos_token="<s>",
                           eos_token="</s>", unk_token="<unk>", extra_special_tokens={"image_token": "<image>"})  # fmt: skip


def _text(tokenizer, config_class, **kwargs):
    return config_class(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=8192, initializer_range=INIT_RANGE, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, **kwargs,
    )  # fmt: skip


def _vision(config_class):
    return config_class(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=IMAGE,
                        patch_size=PATCH, initializer_range=INIT_RANGE)  # fmt: skip


def _processor(model_type: str):
    """The processor of a tiny ``model_type`` model: llava-hf's, with PIL image processors and tiny sizes."""
    import transformers as tf

    tokenizer = _tokenizer(model_type)
    template = TEMPLATES[model_type]
    if model_type == "llava":
        images = tf.CLIPImageProcessorPil(size={"shortest_edge": IMAGE}, crop_size={"height": IMAGE, "width": IMAGE})
        return tf.LlavaProcessor(images, tokenizer, patch_size=PATCH, vision_feature_select_strategy="default",
                                 num_additional_image_tokens=1, chat_template=template)  # fmt: skip
    if model_type == "llava_next":
        images = tf.LlavaNextImageProcessorPil(size={"shortest_edge": IMAGE}, crop_size={"height": IMAGE, "width": IMAGE},
                                               image_grid_pinpoints=PINPOINTS)  # fmt: skip
        return tf.LlavaNextProcessor(images, tokenizer, patch_size=PATCH, vision_feature_select_strategy="default",
                                     num_additional_image_tokens=1, chat_template=template)  # fmt: skip
    images = tf.LlavaOnevisionImageProcessorPil(size={"height": IMAGE, "width": IMAGE}, image_grid_pinpoints=PINPOINTS)
    return image_only(tf.LlavaOnevisionProcessor)(images, tokenizer, num_image_tokens=(IMAGE // PATCH) ** 2,
                                                  vision_feature_select_strategy="full", chat_template=template)  # fmt: skip


def _model(model_type: str, tokenizer):
    import transformers as tf

    common = dict(image_token_index=tokenizer.convert_tokens_to_ids("<image>"))
    if model_type == "llava":
        config = tf.LlavaConfig(vision_config=_vision(tf.CLIPVisionConfig), text_config=_text(tokenizer, tf.LlamaConfig),
                                vision_feature_select_strategy="default", vision_feature_layer=-2, **common)  # fmt: skip
        return tf.LlavaForConditionalGeneration(config)
    common.update(image_grid_pinpoints=PINPOINTS)
    if model_type == "llava_next":
        config = tf.LlavaNextConfig(vision_config=_vision(tf.CLIPVisionConfig), text_config=_text(tokenizer, tf.MistralConfig),
                                    vision_feature_select_strategy="default", vision_feature_layer=-2, **common)  # fmt: skip
        return tf.LlavaNextForConditionalGeneration(config)
    config = tf.LlavaOnevisionConfig(vision_config=_vision(tf.SiglipVisionConfig), text_config=_text(tokenizer, tf.Qwen2Config),
                                     video_token_index=tokenizer.convert_tokens_to_ids("<video>"), vision_feature_layer=-1,
                                     vision_feature_select_strategy="full", vision_aspect_ratio="anyres_max_9", **common)  # fmt: skip
    return tf.LlavaOnevisionForConditionalGeneration(config)


def _builder(model_type: str):
    def build(folder: Path) -> Path:
        torch.manual_seed(0)
        made = _processor(model_type)
        model = _model(model_type, made.tokenizer).eval()
        model.generation_config.pad_token_id = made.tokenizer.pad_token_id
        model.generation_config.eos_token_id = made.tokenizer.eos_token_id
        if model_type != "llava_onevision":
            return save_folder(model, made, folder)
        video = {"video_processor_type": "LlavaOnevisionVideoProcessor", "size": {"height": IMAGE, "width": IMAGE}}
        save_folder(model, made, folder, video_processor=video)
        config_file = folder / "processor_config.json"  # what an image-only processor does not save
        config = json.loads(config_file.read_text())
        config.update(num_image_tokens=made.num_image_tokens, vision_feature_select_strategy="full",
                      vision_aspect_ratio="anyres_max_9")  # fmt: skip
        config_file.write_text(json.dumps(config, indent=2))
        return folder

    build.__doc__ = f"Write a tiny random {model_type} model folder (llava-hf layout and chat template)."
    return build


BUILDERS = {model_type: _builder(model_type) for model_type in TEMPLATES}
