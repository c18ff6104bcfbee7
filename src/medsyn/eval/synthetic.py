"""Random-weight models and MEDSYN-shaped synthetic workloads, built offline, for tests and benchmarks.

:func:`build_model` gives the tiny Llava (:mod:`medsyn.eval.tiny_model`) or a Qwen2.5-VL with random weights,
tiny (CPU tests) or at the 7B's published size (GPU benchmarks; the speed does not depend on the weights).
:func:`synthetic_rows` makes cases in the dataset schema (DESIGN §4) of noise images split over four CE
types, and :func:`workloads` the FDx and Evidence Sensitivity prompts of such cases.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from medsyn.data.schema import es_conditions
from medsyn.eval.tasks import make_doc

CE_TYPES = ("ct", "mri", "pathology", "laboratory")
WORDS = (
    "patient presented with progressive dyspnea fever cough weight loss night sweats chest pain history of "
    "hypertension diabetes smoking examination revealed crackles tachycardia edema laboratory tests showed "
    "elevated inflammatory markers anemia renal function liver enzymes imaging biopsy findings consistent"
).split()
QWEN_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
QWEN_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
QWEN_SIZES = {
    # Qwen2.5-VL-7B-Instruct's published configuration.
    "qwen2_5_vl_7b": (
        dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
             num_key_value_heads=4, max_position_embeddings=128000, rms_norm_eps=1e-6, vocab_size=152064,
             rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]}),
        dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=3584, patch_size=14,
             spatial_merge_size=2, temporal_patch_size=2, window_size=112, fullatt_block_indexes=[7, 15, 23, 31]),
    ),
    "qwen2_5_vl_tiny": (  # its vision MLP unaligned like the 7B's (60 and 3,420 units are not multiples of 8)
        dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
             max_position_embeddings=32768, vocab_size=4096, initializer_range=0.25,
             rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [2, 3, 3]}),
        dict(depth=2, hidden_size=32, intermediate_size=60, num_heads=2, out_hidden_size=64, patch_size=14,
             spatial_merge_size=2, temporal_patch_size=2, window_size=112, fullatt_block_indexes=[1]),
    ),
}  # fmt: skip


# --- models, built offline ---------------------------------------------------------------


def build_model(arch: str, folder: Path, device: str, dtype: torch.dtype):
    """(model, processor) with random weights; ``folder`` gets their config and processor files."""
    if arch == "tiny":
        from transformers import AutoModelForImageTextToText, AutoProcessor

        from medsyn.eval.tiny_model import build_tiny_model

        build_tiny_model(folder)
        model = AutoModelForImageTextToText.from_pretrained(folder, dtype=dtype).to(device).eval()
        return model, AutoProcessor.from_pretrained(folder)
    return _build_qwen(arch, folder, device, dtype)


def _build_qwen(arch: str, folder: Path, device: str, dtype: torch.dtype):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor

    try:  # the torchvision-backed processor where torchvision is installed (GPU machines), else the PIL one
        from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
    except ImportError:
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil as Qwen2VLImageProcessor
    from medsyn.eval.tiny_model import CORPUS

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=2048, special_tokens=QWEN_SPECIAL, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator([*CORPUS, " ".join(WORDS)], trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, pad_token="<|endoftext|>", eos_token="<|im_end|>", chat_template=QWEN_TEMPLATE,
        model_input_names=["input_ids", "attention_mask"], padding_side="left",
    )  # fmt: skip
    pixels = 448 * 448
    image_processor = Qwen2VLImageProcessor(min_pixels=pixels // 4, max_pixels=pixels)
    try:
        from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

        processor = Qwen2_5_VLProcessor(
            image_processor=image_processor, tokenizer=tokenizer, video_processor=Qwen2VLVideoProcessor(), chat_template=QWEN_TEMPLATE
        )
    except ImportError:  # the video processor needs torchvision; images need none
        processor = _image_only_qwen_processor(image_processor, tokenizer)
    text, vision = QWEN_SIZES[arch]
    ids = {name: tokenizer.convert_tokens_to_ids(token) for name, token in [
        ("image_token_id", "<|image_pad|>"), ("video_token_id", "<|video_pad|>"),
        ("vision_start_token_id", "<|vision_start|>"), ("vision_end_token_id", "<|vision_end|>")]}  # fmt: skip
    config = Qwen2_5_VLConfig(
        text_config={**text, "bos_token_id": None, "eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id},
        vision_config=vision,
        **ids,
    )
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=dtype).eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    config.save_pretrained(folder)
    processor.save_pretrained(folder)
    return model, processor


def _image_only_qwen_processor(image_processor, tokenizer):
    """Qwen2.5-VL's processor without its video processor (which needs torchvision), for CPU tests."""
    from transformers import Qwen2_5_VLProcessor

    class ImageOnlyQwenProcessor(Qwen2_5_VLProcessor):
        def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
            super().__init__(image_processor, tokenizer, None, chat_template=chat_template, **kwargs)

    return ImageOnlyQwenProcessor(image_processor, tokenizer, chat_template=QWEN_TEMPLATE)


# --- the synthetic MEDSYN-shaped workload ------------------------------------------------


def synthetic_rows(n_cases: int, n_images: int, image_px: int, text_words: int, seed: int = 0) -> list[dict[str, Any]]:
    """Rows in the dataset schema (DESIGN §4): ``n_images`` noise images split over the CE types."""
    rng = random.Random(seed)
    per_type = n_images // len(CE_TYPES)
    rows = []
    for c in range(n_cases):
        images = [
            Image.fromarray(np.random.default_rng(seed * 1000 + c * 100 + i).integers(0, 255, (image_px, image_px, 3), dtype=np.uint8))
            for i in range(n_images)
        ]
        evidence = [
            {"type": t, "title": f"{t} study", "timepoint": "", "findings": " ".join(rng.choices(WORDS, k=30))}
            for t in CE_TYPES
        ]
        rows.append({
            "case_id": f"bench-{c:04d}", "language": "en", "history": " ".join(rng.choices(WORDS, k=text_words)),
            "physical_exam": " ".join(rng.choices(WORDS, k=40)), "images": images,
            "image_evidence": [i // per_type for i in range(n_images)], "evidence": evidence,
            "evidence_types": list(CE_TYPES), "options": [f"diagnosis {k}" for k in "ABCDE"],
            "answer": "C", "final_diagnosis": "diagnosis C",
        })  # fmt: skip
    return rows


def workloads(rows: list[dict]) -> dict[str, list]:
    """The FDx ``full`` prompts (one per case) and the whole ES sweep (1 + 2·|types| per case)."""
    return {
        "fdx_full": [make_doc(r, "full", "es", "bench:fdx") for r in rows],
        "es_sweep": [make_doc(r, c, "es", "bench:es") for r in rows for c in es_conditions(r["evidence_types"])],
    }
