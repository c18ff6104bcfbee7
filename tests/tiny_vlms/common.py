"""What the tiny family builders share: a byte-level BPE tokenizer trained offline, and saving a model folder
the way its published checkpoints lay it out (including a video processor's config where they ship one)."""

from __future__ import annotations

import json
from pathlib import Path

from medsyn.eval.synthetic import WORDS
from medsyn.eval.tiny_model import CORPUS

INIT_RANGE = 0.25
"""Wider than the usual 0.02, so that the random models' answers depend visibly on their input."""


def train_tokenizer(special_tokens: list[str], chat_template: str | None, *, vocab_size: int = 1024, **kwargs):
    """A PreTrainedTokenizerFast (byte-level BPE) trained on MEDSYN-like text, with ``special_tokens`` as whole tokens.

    ``kwargs`` go to PreTrainedTokenizerFast (``pad_token``, ``eos_token``, ``bos_token``, ``extra_special_tokens``, ...).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special_tokens, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator([*CORPUS, " ".join(WORDS)], trainer=trainer)
    kwargs.setdefault("padding_side", "left")
    kwargs.setdefault("model_input_names", ["input_ids", "attention_mask"])
    return PreTrainedTokenizerFast(tokenizer_object=bpe, chat_template=chat_template, **kwargs)


def save_folder(model, processor, folder: Path, *, video_processor: dict | None = None) -> Path:
    """Save ``model`` and ``processor`` to ``folder``; ``video_processor``: the video processor config the published
    checkpoints ship (written as JSON, since building the class needs torchvision), under processor_config.json."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    if video_processor is not None:
        config_file = folder / "processor_config.json"
        config = json.loads(config_file.read_text()) if config_file.exists() else {}
        config["video_processor"] = video_processor
        config["processor_class"] = config.get("processor_class", "").removeprefix("ImageOnly") or config.get("processor_class")
        config_file.write_text(json.dumps(config, indent=2))
    return folder
