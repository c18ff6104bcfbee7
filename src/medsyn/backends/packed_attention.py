"""Window attention of vision towers in a few batched kernel calls instead of one call per window.

Qwen2.5-VL's vision tower attends within 112-pixel windows in 28 of its 32 layers. With
``attn_implementation="sdpa"`` transformers splits the packed sequence and calls SDPA once per
window: 16 windows per 448-px image, so a batch of 16 cases with 8 images makes about 57,000 tiny
kernel calls per forward pass, plus a host sync per layer. :func:`packed_attention` groups the windows
by length and runs one SDPA call per distinct length (usually one), with no mask, so the fastest
kernel applies. It is registered in transformers' ``AttentionInterface`` and set on the vision
sub-model only (:func:`use_packed_vision_attention`).

transformers passes the packed boundaries (``cu_seq_lens_q``) only to implementations whose name
contains "flash", hence :data:`PACKED_ATTENTION`'s name; nothing of flash-attn is needed.
"""

from __future__ import annotations

import torch
from transformers import AttentionInterface

PACKED_ATTENTION = "medsyn_flash_packed_sdpa"
PACKED_VISION_MODELS = ("qwen2_5_vl_vision",)
"""Vision configs (``model_type``) whose towers pass packed segment boundaries to the attention function (tested)."""


def packed_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    cu_seq_lens_q: torch.Tensor | None = None,
    cu_seq_lens_k: torch.Tensor | None = None,
    is_causal: bool = False,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """Block-diagonal attention over the segments ``cu_seq_lens_q`` of a packed (1, heads, tokens, dim) input.

    Returns (1, tokens, heads, dim) like transformers' other attention functions.
    """
    if cu_seq_lens_q is None:
        raise ValueError("packed_attention serves packed vision towers only: no segment boundaries (cu_seq_lens_q) given")
    if cu_seq_lens_k is not None and cu_seq_lens_k is not cu_seq_lens_q and not torch.equal(cu_seq_lens_k, cu_seq_lens_q):
        raise ValueError("packed_attention needs the same segments for queries and keys")
    if query.shape[0] != 1:
        raise ValueError(f"packed_attention expects one packed sequence, got a batch of {query.shape[0]}")
    heads, tokens, dim = query.shape[1], query.shape[2], query.shape[3]
    groups = _segments_by_length(cu_seq_lens_q)
    out = torch.empty(tokens, heads, dim, dtype=query.dtype, device=query.device)
    for length, index in groups:
        # (heads, n, length, dim) -> (n, heads, length, dim): n independent segments in one call
        if index is None:  # equal segments back to back: a view, no gather
            q, k, v = (t[0].unflatten(1, (-1, length)).transpose(0, 1) for t in (query, key, value))
        else:
            q, k, v = (t[0][:, index].transpose(0, 1) for t in (query, key, value))
        kv_heads = k.shape[1]
        if kv_heads != heads:  # grouped-query attention
            k, v = (t.repeat_interleave(heads // kv_heads, dim=1) for t in (k, v))
        attended = torch.nn.functional.scaled_dot_product_attention(
            q, k, v, dropout_p=dropout, scale=scaling, is_causal=is_causal
        ).permute(0, 2, 1, 3)  # (n, length, heads, dim)
        if index is None:
            return attended.reshape(1, tokens, heads, dim), None
        out[index.flatten()] = attended.reshape(-1, heads, dim)
    return out.unsqueeze(0), None


_PLANS: dict[int, tuple[torch.Tensor, list]] = {}  # by id of the boundaries tensor (kept alive here, so ids stay unique)


def _segments_by_length(cu_seqlens: torch.Tensor) -> list[tuple[int, torch.Tensor | None]]:
    """[(length, (n, length) token indices)] for the segments of each distinct length; the indices are
    None when all segments have one length and follow each other (the usual case).

    A vision forward passes the same two boundaries tensors (windows, whole images) to every layer,
    so the host sync of reading them happens twice per forward, not once per layer.
    """
    plan = _PLANS.get(id(cu_seqlens))
    if plan is not None and plan[0] is cu_seqlens:
        return plan[1]
    bounds = cu_seqlens.tolist()
    by_length: dict[int, list[int]] = {}
    for start, end in zip(bounds[:-1], bounds[1:]):
        if end > start:
            by_length.setdefault(end - start, []).append(start)
    groups: list[tuple[int, torch.Tensor | None]] = []
    for length, starts in by_length.items():
        if len(by_length) == 1 and starts == list(range(bounds[0], bounds[-1], length)) and bounds[0] == 0:
            groups.append((length, None))
            continue
        first = torch.tensor(starts, device=cu_seqlens.device)
        groups.append((length, first[:, None] + torch.arange(length, device=cu_seqlens.device)))
    if len(_PLANS) >= 8:
        _PLANS.clear()
    _PLANS[id(cu_seqlens)] = (cu_seqlens, groups)
    return groups


def use_packed_vision_attention(model: torch.nn.Module) -> bool:
    """Switch ``model``'s vision tower to :func:`packed_attention` where it attends over packed windows.

    Returns whether it was switched: only a tower of :data:`PACKED_VISION_MODELS` that runs SDPA is
    (one on eager or flash attention keeps it, and so do other towers, Llava's CLIP for one).
    """
    vision_config = getattr(model.config, "vision_config", None)
    if vision_config is None or getattr(vision_config, "model_type", "") not in PACKED_VISION_MODELS:
        return False
    if vision_config._attn_implementation not in ("sdpa", PACKED_ATTENTION):
        return False
    AttentionInterface.register(PACKED_ATTENTION, packed_attention)
    model.set_attn_implementation({"vision_config": PACKED_ATTENTION})
    return True
