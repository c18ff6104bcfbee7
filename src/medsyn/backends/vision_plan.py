"""Qwen2.5-VL's vision-tower index tensors, computed on the host before the tower runs.

Given the image grid on the GPU, the tower reads it back several times (rotary positions, the windows, the
longest segment) and ``get_image_features`` once more to split its output per image; each read waits for
the GPU, the last for the whole tower. With the grid on the host and these tensors passed in (transformers'
precomputed-kwargs interface, ``transformers.vision_utils``), the tower is queued without a single wait, and
the host tokenizes and plans the batch while the GPU encodes its images.
"""

from __future__ import annotations

from typing import Any

import torch

from .packed_attention import PACKED_ATTENTION

try:
    from transformers.vision_utils import get_vision_cu_seqlens, get_vision_position_ids, get_vision_window_index
except ImportError:  # transformers without the precomputed-kwargs interface: the tower computes them itself
    get_vision_cu_seqlens = None

PLANNED_VISION_MODELS = ("qwen2_5_vl_vision",)
"""Vision configs (``model_type``) whose towers take these precomputed tensors (tested)."""
HOST_SEGMENT_ATTENTION = (PACKED_ATTENTION, "sdpa", "eager")
"""Vision attention implementations that read the segment boundaries on the host (flash kernels need them on the GPU)."""


def vision_plan(model: torch.nn.Module, grids: torch.Tensor, device: torch.device) -> dict[str, Any]:
    """``get_image_features`` keyword arguments for images of ``grids`` (a host tensor), or {} where the
    model's tower does not take them (it then computes them itself)."""
    visual = getattr(getattr(model, "model", model), "visual", None)
    vision_config = getattr(model.config, "vision_config", None)
    if (
        get_vision_cu_seqlens is None
        or visual is None
        or getattr(vision_config, "model_type", "") not in PLANNED_VISION_MODELS
        or vision_config._attn_implementation not in HOST_SEGMENT_ATTENTION
    ):
        return {}
    merge = visual.spatial_merge_size
    segments = get_vision_cu_seqlens(grids)
    window_index, windows = get_vision_window_index(
        grids, spatial_merge_size=merge, window_size=visual.window_size, patch_size=visual.patch_size
    )
    return {
        "image_position_ids": get_vision_position_ids(grids, merge).to(device),
        "image_cu_seqlens": segments,
        "image_max_seqlen": _longest(segments),
        "image_window_index": window_index,
        "image_cu_window_seqlens": windows,
        "image_max_window_seqlen": _longest(windows),
    }


def _longest(boundaries: torch.Tensor) -> int:
    return int((boundaries[1:] - boundaries[:-1]).max())
