"""A tiny, randomly initialised Llava vision-language model, built offline (STACK.md).

It exercises the whole evaluation path (processor, chat template, interleaved images,
generation, option log-probabilities) in seconds on a CPU. Its answers are noise: it is
for tests and the demo, never for ranking. Which option letter it prefers is random, but that it
answers with a letter is built in (:func:`favour_option_letters`), so its posteriors have the
letter mass ES requires. ``think=True`` gives it a reasoning model's chat template, which opens
a ``<think>`` block after the prompt.
"""

from __future__ import annotations

from pathlib import Path

TINY_MODEL_NAME = "tiny-llava-random"
IMAGE_TOKEN = "<image>"
SPECIAL_TOKENS = ["<pad>", "<s>", "</s>", IMAGE_TOKEN, "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image>{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
THINK_TEMPLATE = CHAT_TEMPLATE.replace("<|assistant|>\n{% endif %}", "<|assistant|>\n<think>\n{% endif %}")
LETTER_BOOST = 125.0
"""Weight of the constant hidden unit on the option letters' logits (see :func:`favour_option_letters`):
about +10 after the final norm, so the letters hold most of the probability, and logits stay small
enough for float32 to compare the fast path with the plain one."""
CORPUS = [
    "You are an experienced physician. Read the clinical case below and answer the question.",
    "History Physical examination Findings Question: What is the most likely final diagnosis? Answer: A B C D E",
    "A 64-year-old woman presented with cough, fever, weight loss and chest pain. Laboratory data, CT, MRI, ECG.",
    "Differential diagnosis: pneumonia, tuberculosis, lymphoma, sarcoidosis, carcinoma, infarction, hematoma.",
    "你是一名经验丰富的临床医师。请阅读以下病例及其全部临床证据，并回答问题。",
    "病史 体格检查 检查所见 问题：该患者最可能的最终诊断是什么？ 答案：A B C D E",
    "患者男，58岁，因发热、咳嗽、胸痛入院。血常规、胸部CT、心电图、病理活检。鉴别诊断：肺炎、结核、淋巴瘤。",
]
VOCAB_SIZE = 640
IMAGE_SIZE = 32
PATCH_SIZE = 8
MAX_POSITIONS = 16384
INIT_RANGE = 0.25
"""Wider than the usual 0.02, so that the random model's answers depend visibly on its input."""


def favour_option_letters(model, tokenizer, letters: str = "ABCD") -> None:
    """Make hidden unit 0 a constant that raises the logits of every token variant of ``letters``.

    The default is the letters every MEDSYN-mini case has (4 or 5 options): a raised E would take
    the mass of a 4-option case's letters, so E keeps the random model's small probability.

    Unit 0 of the residual stream is 1 in every token embedding, and no layer reads or writes it
    (its norm weights and its output rows are zero), so after the final norm it is a positive
    constant at every position; the letters' output rows weigh it with :data:`LETTER_BOOST`, and
    every other token's output row is zero (logit 0). The letters' order among themselves stays
    the random model's.
    """
    import torch

    from medsyn.eval.backends.transformers_vlm import token_letters

    ids = [i for letter, group in token_letters(tokenizer).items() if letter in letters for i in group]
    text = model.model.language_model
    with torch.no_grad():
        text.embed_tokens.weight[:, 0] = 1.0
        for layer in text.layers:
            layer.input_layernorm.weight[0] = layer.post_attention_layernorm.weight[0] = 0.0
            layer.self_attn.o_proj.weight[0] = layer.mlp.down_proj.weight[0] = 0.0
        others = torch.ones(model.lm_head.weight.shape[0], dtype=torch.bool)
        others[ids] = False
        model.lm_head.weight[others] = 0.0
        model.lm_head.weight[:, 0] = 0.0
        model.lm_head.weight[ids, 0] = LETTER_BOOST


def build_tiny_model(out_dir: str | Path, seed: int = 0, think: bool = False) -> Path:
    """Write the tiny model (weights, config, tokenizer, processor) to ``out_dir``; deterministic for a seed.

    ``think``: the chat template of a reasoning model (the generation prompt opens ``<think>``).
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator(CORPUS, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="<|end|>",
        extra_special_tokens={"image_token": IMAGE_TOKEN},
        chat_template=THINK_TEMPLATE if think else CHAT_TEMPLATE,
        model_input_names=["input_ids", "attention_mask"],
        padding_side="left",
    )
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=PATCH_SIZE,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=THINK_TEMPLATE if think else CHAT_TEMPLATE,
    )
    vision = CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        image_size=IMAGE_SIZE, patch_size=PATCH_SIZE, initializer_range=INIT_RANGE,
    )  # fmt: skip
    text = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=MAX_POSITIONS,
        initializer_range=INIT_RANGE, pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )  # fmt: skip
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
    )
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config).eval()
    favour_option_letters(model, tokenizer)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out
