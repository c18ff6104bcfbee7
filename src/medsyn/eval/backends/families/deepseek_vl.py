"""DeepSeek-VL: a SigLIP tower (the 7B adds a SAM tower on a high-resolution copy), an MLP aligner and a Llama decoder;
a fixed number of image tokens per image, images in place in the published chat template. The vision tower takes
every pixel input the image processor makes (the 7B's high-resolution copy too)."""

from __future__ import annotations

import torch

from medsyn.eval.backends.families.base import Family


class DeepseekVL(Family):
    """DeepSeek-VL 1.3B (``deepseek_vl``). Its forward reshapes the image features it is given, so they go back as one
    (images, tokens, hidden) tensor, not the per-image tuple other families take."""

    name = "DeepSeek-VL"
    model_types = ("deepseek_vl",)
    fast_paths = frozenset({"reuse_image_features", "share_prefix"})
    note = "576 tokens per image (384 px); image features fed back as one stacked tensor"
    join_features = staticmethod(torch.stack)


class DeepseekVLHybrid(DeepseekVL):
    """DeepSeek-VL 7B (``deepseek_vl_hybrid``): SigLIP at 384 px and SAM at 1024 px, aligned into the same 576 tokens."""

    name = "DeepSeek-VL hybrid"
    model_types = ("deepseek_vl_hybrid",)
    note = "the 7B: a SAM tower on a 1024 px copy of each image beside SigLIP, both encoded once per image"


FAMILIES = [DeepseekVL(), DeepseekVLHybrid()]
